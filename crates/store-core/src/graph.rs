//! The in-memory predecessor graph, keyed by digest.
//!
//! A node is present once indexed; its successor edges carry the descriptors its body lists.
//! Predecessor sets exist for any digest an indexed node points at, present or not, and survive
//! the removal of the node itself (so the removed node's parents still list it), as in oras-go
//! v2.6.2.

use crate::content::successors;
use crate::error::{Error, ErrorKind, Result};
use crate::traits::Fetcher;
use crate::SharedDescriptor;
use futures::stream::{self, StreamExt, TryStreamExt};
use oci_spec::image::{Descriptor, Digest, MediaType};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

/// How many manifests [`MemoryGraph::index_all`] fetches at once.
pub const INDEX_CONCURRENCY: usize = 16;

/// The hasher of the maps: foldhash with a random seed per map (hashbrown's default), several
/// times faster than SipHash on digests; predecessors looks up one node per predecessor.
type Hasher = foldhash::fast::RandomState;

/// The maps share what they repeat: a digest is one `Arc<str>` whatever map names it, and a
/// descriptor listed by many manifests (a shared config or layer) one `Arc<Descriptor>`. A node
/// recorded with a plain descriptor (media type, digest and size: every `index.json` root) keeps
/// only its media type and size, its digest being its key: a whole descriptor costs about 400
/// bytes, and a layout may hold hundreds of thousands of nodes.
#[derive(Debug, Default)]
struct GraphState {
    nodes: HashMap<Arc<str>, NodeRecord, Hasher>,
    predecessors: HashMap<Arc<str>, Parents, Hasher>,
    /// The media types of plain nodes, each once: a node names its own by position.
    media_types: Vec<MediaType>,
}

/// How many media types plain nodes name by position; a node of yet another type keeps its
/// whole descriptor. A store holds a handful (manifests, indexes, configs, layers, artifacts).
const MEDIA_TYPES: usize = 256;

/// A present node: the descriptor it was recorded with, and its successors as its body lists
/// them.
#[derive(Debug)]
struct NodeRecord {
    desc: NodeDesc,
    successors: Box<[Arc<Descriptor>]>,
}

/// The descriptor a node was recorded with, its digest left out (it is the node's key).
#[derive(Debug)]
enum NodeDesc {
    /// Its media type by position in [`GraphState::media_types`].
    Plain {
        media_type: u32,
        size: u64,
        /// The whole descriptor, made on the first lookup by a caller (`predecessors`, `get`)
        /// and shared by the next ones: rebuilding it per call (oci-spec's digest parse checks
        /// the digest char by char) was most of a `predecessors` call over many parents, and
        /// building it for every node up front would cost a large graph hundreds of bytes per
        /// node never asked for.
        looked_up: OnceLock<SharedDescriptor>,
    },
    Full(Arc<Descriptor>),
}

impl NodeDesc {
    /// The descriptor of the node with digest `key` (`media_types` of its graph), kept for the
    /// next call when `keep` (a lookup by a caller, not a pass over every node); `None` only if
    /// the key no longer parses as a digest, which cannot happen: it was taken from a
    /// descriptor's.
    fn descriptor(
        &self,
        key: &str,
        media_types: &[MediaType],
        keep: bool,
    ) -> Option<SharedDescriptor> {
        match self {
            NodeDesc::Plain {
                media_type,
                size,
                looked_up,
            } => {
                if let Some(desc) = looked_up.get() {
                    return Some(desc.clone());
                }
                let digest = Digest::from_str(key).ok()?;
                let media_type = media_types.get(*media_type as usize)?.clone();
                let desc = SharedDescriptor::new(Descriptor::new(media_type, *size, digest));
                Some(if keep {
                    looked_up.get_or_init(|| desc).clone()
                } else {
                    desc
                })
            }
            NodeDesc::Full(desc) => Some(SharedDescriptor::from(Arc::clone(desc))),
        }
    }
}

/// Whether `desc` has nothing but media type, digest and size.
fn is_plain(desc: &Descriptor) -> bool {
    desc.urls().is_none()
        && desc.annotations().is_none()
        && desc.platform().is_none()
        && desc.artifact_type().is_none()
        && desc.data().is_none()
}

/// The nodes listing one digest, with the last descriptor one of them listed it with (which
/// the next parent listing it alike shares).
#[derive(Debug, Default)]
struct Parents {
    listed_as: Option<Arc<Descriptor>>,
    set: BTreeSet<Arc<str>>,
}

impl GraphState {
    /// `digest` as the maps already hold it.
    fn existing_key(&self, digest: &str) -> Option<Arc<str>> {
        if let Some((key, _)) = self.nodes.get_key_value(digest) {
            return Some(Arc::clone(key));
        }
        if let Some((key, _)) = self.predecessors.get_key_value(digest) {
            return Some(Arc::clone(key));
        }
        None
    }

    /// The position of `media_type` in [`GraphState::media_types`], added if new; `None` when
    /// there are too many.
    fn media_type_id(&mut self, media_type: &MediaType) -> Option<u32> {
        if let Some(at) = self.media_types.iter().position(|m| m == media_type) {
            return u32::try_from(at).ok();
        }
        if self.media_types.len() >= MEDIA_TYPES {
            return None;
        }
        self.media_types.push(media_type.clone());
        u32::try_from(self.media_types.len() - 1).ok()
    }

    /// The descriptor of the present node `key` (see [`NodeDesc::descriptor`] for `keep`).
    fn descriptor(&self, key: &str, keep: bool) -> Option<SharedDescriptor> {
        let record = self.nodes.get(key)?;
        record.desc.descriptor(key, &self.media_types, keep)
    }

    /// `digest` as the maps already hold it, or a new one.
    fn key(&self, digest: &str) -> Arc<str> {
        self.existing_key(digest)
            .unwrap_or_else(|| Arc::from(digest))
    }

    /// Records `node` under `key` (see [`MemoryGraph::insert_keyed`]) with `successors`, which
    /// name each digest once.
    fn insert_keyed(
        &mut self,
        key: Option<Arc<str>>,
        node: &Descriptor,
        successors: Vec<Descriptor>,
    ) {
        let digest = node.digest().as_ref();
        let key = match (self.existing_key(digest), key) {
            (Some(existing), _) => existing,
            (None, Some(key)) if *key == *digest => key,
            (None, _) => Arc::from(digest),
        };
        let (desc, old) = match self.nodes.remove(&key) {
            Some(record) => (record.desc, record.successors),
            None => {
                let plain = match is_plain(node) {
                    true => self.media_type_id(node.media_type()),
                    false => None,
                };
                let desc = if let Some(media_type) = plain {
                    NodeDesc::Plain {
                        media_type,
                        size: node.size(),
                        looked_up: OnceLock::new(),
                    }
                } else {
                    let shared = self
                        .predecessors
                        .get(&key)
                        .and_then(|parents| parents.listed_as.clone())
                        .filter(|listed| **listed == *node)
                        .unwrap_or_else(|| Arc::new(node.clone()));
                    NodeDesc::Full(shared)
                };
                (desc, Box::default())
            }
        };
        if !old.is_empty() {
            let listed: HashSet<&str, Hasher> =
                successors.iter().map(|s| s.digest().as_ref()).collect();
            for child in old.iter() {
                if !listed.contains(child.digest().as_ref()) {
                    unlink(&mut self.predecessors, child.digest().as_ref(), &key);
                }
            }
        }
        let mut stored = Vec::with_capacity(successors.len());
        for child in successors {
            let child_key = self.key(child.digest().as_ref());
            let parents = self.predecessors.entry(child_key).or_default();
            let shared = match &parents.listed_as {
                Some(listed) if **listed == child => Arc::clone(listed),
                _ => {
                    let listed = Arc::new(child);
                    parents.listed_as = Some(Arc::clone(&listed));
                    listed
                }
            };
            parents.set.insert(Arc::clone(&key));
            stored.push(shared);
        }
        let record = NodeRecord {
            desc,
            successors: stored.into_boxed_slice(),
        };
        self.nodes.insert(key, record);
    }
}

/// A digest-keyed predecessor graph. All operations take a short internal lock, never held across
/// an await.
#[derive(Debug, Default)]
pub struct MemoryGraph {
    state: RwLock<GraphState>,
}

impl MemoryGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, GraphState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // more than losing the whole store, so a poisoned lock is simply taken over.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, GraphState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Records `node` with the successors its body lists (replacing any earlier record of it).
    /// The first descriptor a node is recorded with is kept.
    pub fn insert(&self, node: &Descriptor, successors: Vec<Descriptor>) {
        self.insert_keyed(None, node, successors);
    }

    /// [`MemoryGraph::insert`], with the node's digest already made into a key (`None`: make
    /// one), so that the walk's set of visited digests and the graph share one string.
    fn insert_keyed(&self, key: Option<Arc<str>>, node: &Descriptor, successors: Vec<Descriptor>) {
        let successors = distinct_by_digest(successors);
        self.write().insert_keyed(key, node, successors);
    }

    /// Fetches `node`'s successors through `fetcher` (for manifest media types) and records it.
    ///
    /// Errors: those of [`crate::content::successors`], `NotFound` included.
    pub async fn index(&self, fetcher: &(impl Fetcher + ?Sized), node: &Descriptor) -> Result<()> {
        let children = successors(fetcher, node).await?;
        self.insert(node, children);
        Ok(())
    }

    /// Indexes `root` and everything reachable from it; see [`MemoryGraph::index_all_many`].
    pub async fn index_all(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        root: &Descriptor,
    ) -> Result<()> {
        self.index_all_many(fetcher, std::slice::from_ref(root))
            .await
    }

    /// Indexes every root and everything reachable from them, each node once (a manifest shared
    /// by many roots is fetched and parsed once), at most [`INDEX_CONCURRENCY`] fetches at a time.
    /// A node whose content is missing is skipped (no node, no edges); nodes already present are
    /// not indexed again.
    ///
    /// Errors: the first fetch or parse error other than `NotFound`.
    pub async fn index_all_many(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        roots: &[Descriptor],
    ) -> Result<()> {
        let roots: Vec<(Arc<str>, Descriptor)> = roots
            .iter()
            .map(|root| (Arc::from(root.digest().as_ref()), root.clone()))
            .collect();
        self.index_reachable(fetcher, roots.into_iter(), false)
            .await
            .map(drop)
    }

    /// As [`MemoryGraph::index_all_many`], but a node whose content cannot be fetched or parsed
    /// (a wrong size, a corrupt manifest) is skipped like a missing one instead of failing the
    /// whole walk: what opening a layout needs, so that one bad entry is refused only where it
    /// is used. Never fails; returns each skipped node with its error, in no particular order.
    pub async fn index_all_many_tolerant(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        roots: &[Descriptor],
    ) -> Vec<(Descriptor, Error)> {
        let roots = roots
            .iter()
            .map(|root| (Arc::from(root.digest().as_ref()), root.clone()));
        self.index_roots_tolerant(fetcher, roots.collect::<Vec<_>>())
            .await
    }

    /// As [`MemoryGraph::index_all_many_tolerant`], with the roots made one at a time as the
    /// walk takes them, so that a large index never holds them all at once, each with its digest
    /// as a string the caller holds already: the graph keeps the node under that string rather
    /// than a copy of its own (a root whose string is not its digest gets a copy). Never fails;
    /// returns each skipped node with its error, in no particular order.
    pub async fn index_roots_tolerant<I>(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        roots: I,
    ) -> Vec<(Descriptor, Error)>
    where
        I: IntoIterator<Item = (Arc<str>, Descriptor)>,
        I::IntoIter: Send,
    {
        self.index_reachable(fetcher, roots.into_iter(), true)
            .await
            .unwrap_or_default()
    }

    /// The walk of [`MemoryGraph::index_all_many`]; `tolerant` collects the nodes that failed
    /// (other than `NotFound`) instead of returning the first error.
    async fn index_reachable(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        roots: impl Iterator<Item = (Arc<str>, Descriptor)> + Send,
        tolerant: bool,
    ) -> Result<Vec<(Descriptor, Error)>> {
        let mut skipped = Vec::new();
        // The digests taken into the walk, as the keys the graph then holds them under.
        let visited: Mutex<HashSet<Arc<str>, Hasher>> = Mutex::default();
        {
            // Room for the roots: growing the maps one rehash at a time costs more, and at its
            // peak a growth holds both the old table and the new.
            let (low, high) = roots.size_hint();
            let at_least = high.unwrap_or(low);
            let mut state = self.write();
            state.nodes.reserve(at_least);
            state.predecessors.reserve(at_least.min(1024));
        }
        let first = Unvisited {
            graph: self,
            visited: &visited,
            roots,
        };
        let mut frontier = self
            .index_round(fetcher, first, tolerant, &visited, &mut skipped)
            .await?;
        while !frontier.is_empty() {
            let round = std::mem::take(&mut frontier);
            frontier = self
                .index_round(fetcher, round.into_iter(), tolerant, &visited, &mut skipped)
                .await?;
        }
        Ok(skipped)
    }

    /// Fetches and records one round of [`MemoryGraph::index_reachable`]'s walk, each node as
    /// its fetch completes (so that no round's worth of successor lists is held at once);
    /// returns the children not seen before, the next round.
    async fn index_round(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        round: impl Iterator<Item = (Arc<str>, Descriptor)> + Send,
        tolerant: bool,
        visited: &Mutex<HashSet<Arc<str>, Hasher>>,
        skipped: &mut Vec<(Descriptor, Error)>,
    ) -> Result<Vec<(Arc<str>, Descriptor)>> {
        type Outcome = std::result::Result<Vec<Descriptor>, Option<Error>>;
        let mut next = Vec::new();
        let mut results = stream::iter(round)
            .map(|(key, node)| async move {
                let outcome: Result<Outcome> = match successors(fetcher, &node).await {
                    Ok(children) => Ok(Ok(children)),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(Err(None)),
                    Err(e) if tolerant => Ok(Err(Some(e))),
                    Err(e) => Err(e),
                };
                outcome.map(|outcome| (key, node, outcome))
            })
            .buffer_unordered(INDEX_CONCURRENCY);
        while let Some((key, node, children)) = results.try_next().await? {
            let children = match children {
                Ok(children) => children,
                Err(None) => continue,
                Err(Some(e)) => {
                    skipped.push((node, e));
                    continue;
                }
            };
            for child in &children {
                let digest = child.digest().as_ref();
                if !self.contains(digest) {
                    if let Some(child_key) = take(visited, digest, None) {
                        next.push((child_key, child.clone()));
                    }
                }
            }
            self.insert_keyed(Some(key), &node, children);
        }
        Ok(next)
    }

    /// The descriptors of every present node that lists `node` as a successor, by digest order.
    pub fn predecessors(&self, node: &Descriptor) -> Vec<SharedDescriptor> {
        let state = self.read();
        state
            .predecessors
            .get(node.digest().as_ref())
            .map(|parents| {
                let mut out = Vec::with_capacity(parents.set.len());
                out.extend(
                    parents
                        .set
                        .iter()
                        .filter_map(|key| state.descriptor(key, true)),
                );
                out
            })
            .unwrap_or_default()
    }

    /// The successors recorded for the node with `digest`, as its body lists them; `None` when the
    /// node is not present.
    pub fn successors(&self, digest: &str) -> Option<Vec<Descriptor>> {
        self.read().nodes.get(digest).map(|record| {
            record
                .successors
                .iter()
                .map(|d| Descriptor::clone(d))
                .collect()
        })
    }

    /// The descriptor the node with `digest` was recorded with.
    pub fn get(&self, digest: &str) -> Option<SharedDescriptor> {
        self.read().descriptor(digest, true)
    }

    /// Whether the node with `digest` is present.
    pub fn contains(&self, digest: &str) -> bool {
        self.read().nodes.contains_key(digest)
    }

    /// Removes `node`; returns its danglings: present successors left with no predecessor.
    /// Its own predecessor set is kept. Removing an unknown node returns nothing.
    pub fn remove(&self, node: &Descriptor) -> Vec<Descriptor> {
        let key = node.digest().as_ref();
        let mut state = self.write();
        let mut danglings = Vec::new();
        if let Some(record) = state.nodes.remove(key) {
            for child in record.successors.iter() {
                let child_key = child.digest().as_ref();
                if unlink(&mut state.predecessors, child_key, key) {
                    danglings.extend(
                        state
                            .descriptor(child_key, false)
                            .map(SharedDescriptor::into_owned),
                    );
                }
            }
        }
        danglings
    }

    /// The digests of every present node.
    pub fn digest_set(&self) -> HashSet<String> {
        self.read().nodes.keys().map(|k| k.to_string()).collect()
    }

    /// Every present node's descriptor.
    pub fn nodes(&self) -> Vec<Descriptor> {
        let state = self.read();
        state
            .nodes
            .iter()
            .filter_map(|(key, record)| record.desc.descriptor(key, &state.media_types, false))
            .map(SharedDescriptor::into_owned)
            .collect()
    }

    /// The number of present nodes.
    pub fn len(&self) -> usize {
        self.read().nodes.len()
    }

    /// Whether no node is present.
    pub fn is_empty(&self) -> bool {
        self.read().nodes.is_empty()
    }

    /// Removes every node and edge.
    pub fn clear(&self) {
        *self.write() = GraphState::default();
    }
}

/// The roots a walk has yet to index, each with its key (see [`take`]). A type rather than a
/// `filter_map` closure: a closure taking a reference would have to be general over every
/// lifetime, which the `Send` check of callers' futures rejects.
struct Unvisited<'a, I> {
    graph: &'a MemoryGraph,
    visited: &'a Mutex<HashSet<Arc<str>, Hasher>>,
    roots: I,
}

impl<I: Iterator<Item = (Arc<str>, Descriptor)>> Iterator for Unvisited<'_, I> {
    type Item = (Arc<str>, Descriptor);

    fn next(&mut self) -> Option<Self::Item> {
        for (key, root) in self.roots.by_ref() {
            let digest = root.digest().as_ref();
            if self.graph.contains(digest) {
                continue;
            }
            if let Some(key) = take(self.visited, digest, Some(key)) {
                return Some((key, root));
            }
        }
        None
    }
}

/// Takes `digest` into the walk unless `visited` has it; returns the key to hold it under:
/// `key` when it spells `digest`, else a new one.
fn take(
    visited: &Mutex<HashSet<Arc<str>, Hasher>>,
    digest: &str,
    key: Option<Arc<str>>,
) -> Option<Arc<str>> {
    let mut visited = visited.lock().unwrap_or_else(|p| p.into_inner());
    if visited.contains(digest) {
        return None;
    }
    let key = key
        .filter(|key| **key == *digest)
        .unwrap_or_else(|| Arc::from(digest));
    visited.insert(Arc::clone(&key));
    Some(key)
}

/// `successors` with each digest once, the first listing of it kept: a body may list one blob
/// twice (the same layer in two places), the graph records one edge.
fn distinct_by_digest(successors: Vec<Descriptor>) -> Vec<Descriptor> {
    let first: Vec<bool> = {
        let mut seen: HashSet<&str, Hasher> = HashSet::default();
        successors
            .iter()
            .map(|s| seen.insert(s.digest().as_ref()))
            .collect()
    };
    successors
        .into_iter()
        .zip(first)
        .filter_map(|(s, first)| first.then_some(s))
        .collect()
}

/// Removes `parent` from `child`'s predecessor set; returns true when the set became empty (and
/// was dropped).
fn unlink(
    predecessors: &mut HashMap<Arc<str>, Parents, Hasher>,
    child: &str,
    parent: &str,
) -> bool {
    if let Some(parents) = predecessors.get_mut(child) {
        parents.set.remove(parent);
        if parents.set.is_empty() {
            predecessors.remove(child);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::descriptor_from_bytes;
    use oci_spec::image::MediaType;

    fn blob(n: u8) -> Descriptor {
        descriptor_from_bytes(MediaType::ImageLayer, &[n])
    }

    fn digests<D: std::borrow::Borrow<Descriptor>>(list: &[D]) -> Vec<String> {
        let mut out: Vec<String> = list
            .iter()
            .map(|d| d.borrow().digest().to_string())
            .collect();
        out.sort();
        out
    }

    #[test]
    fn descriptors_are_the_same_before_and_after_a_lookup_keeps_the_digest() {
        let graph = MemoryGraph::new();
        let (parent, child) = (blob(1), blob(2));
        graph.insert(&child, vec![]);
        graph.insert(&parent, vec![child.clone()]);
        let sorted_nodes = || {
            let mut nodes = graph.nodes();
            nodes.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
            nodes
        };
        let before = sorted_nodes();
        for _ in 0..2 {
            assert_eq!(graph.predecessors(&child), vec![parent.clone()]);
            assert_eq!(graph.get(parent.digest().as_ref()).unwrap(), parent);
        }
        assert_eq!(sorted_nodes(), before);
        // Every later lookup shares the descriptor the first one kept.
        let [first] = <[SharedDescriptor; 1]>::try_from(graph.predecessors(&child)).unwrap();
        let got = graph.get(parent.digest().as_ref()).unwrap();
        assert!(Arc::ptr_eq(&first.into_arc(), &got.into_arc()));
    }

    #[test]
    fn remove_reports_danglings_and_keeps_predecessors() {
        let graph = MemoryGraph::new();
        let (a, b, shared, only_a) = (blob(1), blob(2), blob(3), blob(4));
        graph.insert(&shared, vec![]);
        graph.insert(&only_a, vec![]);
        graph.insert(&a, vec![shared.clone(), only_a.clone()]);
        graph.insert(&b, vec![shared.clone()]);
        assert_eq!(
            digests(&graph.predecessors(&shared)),
            digests(&[a.clone(), b.clone()])
        );

        let danglings = graph.remove(&a);
        assert_eq!(digests(&danglings), digests(std::slice::from_ref(&only_a)));
        assert_eq!(
            digests(&graph.predecessors(&shared)),
            digests(std::slice::from_ref(&b))
        );
        assert!(!graph.contains(a.digest().as_ref()));
        assert!(graph.remove(&a).is_empty(), "removing twice is a no-op");

        let danglings = graph.remove(&b);
        assert_eq!(digests(&danglings), digests(std::slice::from_ref(&shared)));
        assert_eq!(graph.len(), 2);
    }

    /// Serves manifests from memory and counts fetches per digest.
    struct CountingFetcher {
        blobs: HashMap<String, bytes::Bytes>,
        fetches: std::sync::Mutex<HashMap<String, usize>>,
    }

    #[async_trait::async_trait]
    impl crate::Fetcher for CountingFetcher {
        async fn fetch(&self, target: &Descriptor) -> Result<crate::content::BoxReader> {
            let key = target.digest().to_string();
            *self.fetches.lock().unwrap().entry(key.clone()).or_default() += 1;
            match self.blobs.get(&key) {
                Some(b) => Ok(crate::content::reader_from_bytes(b.clone())),
                None => Err(crate::Error::not_found(key)),
            }
        }
    }

    #[tokio::test]
    async fn each_shared_manifest_is_fetched_once_however_many_roots_reach_it() {
        let layer = blob(1);
        let missing = descriptor_from_bytes(MediaType::ImageManifest, b"absent");
        let manifest_body = format!(
            r#"{{"config":{{"mediaType":"a/b","digest":"{}","size":1}},"layers":[]}}"#,
            layer.digest()
        );
        let manifest = descriptor_from_bytes(MediaType::ImageManifest, manifest_body.as_bytes());
        let mut blobs = HashMap::new();
        blobs.insert(
            manifest.digest().to_string(),
            bytes::Bytes::from(manifest_body),
        );
        let mut roots = Vec::new();
        for i in 0..2000 {
            let body = format!(
                r#"{{"manifests":[{{"mediaType":"{}","digest":"{}","size":{}}},{{"mediaType":"{}","digest":"{}","size":{}}}],"n":{i}}}"#,
                manifest.media_type(),
                manifest.digest(),
                manifest.size(),
                missing.media_type(),
                missing.digest(),
                missing.size()
            );
            let index = descriptor_from_bytes(MediaType::ImageIndex, body.as_bytes());
            blobs.insert(index.digest().to_string(), bytes::Bytes::from(body));
            roots.push(index.clone());
            roots.push(index);
        }
        let fetcher = CountingFetcher {
            blobs,
            fetches: Default::default(),
        };
        let graph = MemoryGraph::new();
        graph.index_all_many(&fetcher, &roots).await.unwrap();
        let fetches = fetcher.fetches.lock().unwrap();
        assert_eq!(fetches[manifest.digest().as_ref()], 1);
        assert_eq!(fetches[missing.digest().as_ref()], 1);
        assert!(fetches.values().all(|&n| n == 1), "every node fetched once");
        assert_eq!(fetches.len(), 2002);
        assert_eq!(graph.predecessors(&manifest).len(), 2000);
        assert!(
            !graph.contains(missing.digest().as_ref()),
            "a missing child is skipped"
        );
        assert_eq!(graph.predecessors(&missing).len(), 2000);
        assert_eq!(graph.predecessors(&layer).len(), 1);
        // A layer is recorded without being fetched.
        assert!(graph.contains(layer.digest().as_ref()));
        assert!(!fetches.contains_key(layer.digest().as_ref()));
    }

    #[test]
    fn reindexing_replaces_edges() {
        let graph = MemoryGraph::new();
        let (parent, x, y) = (blob(1), blob(2), blob(3));
        graph.insert(&parent, vec![x.clone(), x.clone()]);
        assert_eq!(graph.successors(parent.digest().as_ref()).unwrap().len(), 1);
        graph.insert(&parent, vec![y.clone()]);
        assert!(graph.predecessors(&x).is_empty());
        assert_eq!(graph.predecessors(&y).len(), 1);
    }
}
