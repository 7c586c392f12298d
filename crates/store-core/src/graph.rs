//! The in-memory predecessor graph, keyed by digest.
//!
//! A node is present once indexed; its successor edges carry the descriptors its body lists.
//! Predecessor sets exist for any digest an indexed node points at, present or not, and survive
//! the removal of the node itself (so the removed node's parents still list it), as in oras-go
//! v2.6.2.

use crate::content::successors;
use crate::error::{Error, ErrorKind, Result};
use crate::traits::Fetcher;
use futures::stream::{self, StreamExt, TryStreamExt};
use oci_spec::image::Descriptor;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// How many manifests [`MemoryGraph::index_all`] fetches at once.
pub const INDEX_CONCURRENCY: usize = 16;

/// The hasher of the maps: foldhash with a random seed per map (hashbrown's default), several
/// times faster than SipHash on digests; predecessors looks up one node per predecessor.
type Hasher = foldhash::fast::RandomState;

/// The maps share what they repeat: a digest is one `Arc<str>` whatever map names it, and a
/// descriptor listed by many manifests (a shared config or layer) one `Arc<Descriptor>`.
#[derive(Debug, Default)]
struct GraphState {
    nodes: HashMap<Arc<str>, Arc<Descriptor>, Hasher>,
    successors: HashMap<Arc<str>, Box<[Arc<Descriptor>]>, Hasher>,
    predecessors: HashMap<Arc<str>, Parents, Hasher>,
}

/// The nodes listing one digest, with the last descriptor one of them listed it with (which
/// the next parent listing it alike shares).
#[derive(Debug, Default)]
struct Parents {
    listed_as: Option<Arc<Descriptor>>,
    set: BTreeSet<Arc<str>>,
}

impl GraphState {
    /// `digest` as the maps already hold it, or a new one.
    fn key(&self, digest: &str) -> Arc<str> {
        if let Some((key, _)) = self.nodes.get_key_value(digest) {
            return Arc::clone(key);
        }
        if let Some((key, _)) = self.predecessors.get_key_value(digest) {
            return Arc::clone(key);
        }
        Arc::from(digest)
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
        let mut seen = HashSet::new();
        let successors: Vec<Descriptor> = successors
            .into_iter()
            .filter(|s| seen.insert(s.digest().to_string()))
            .collect();
        let mut state = self.write();
        let key = state.key(node.digest().as_ref());
        if !state.nodes.contains_key(&key) {
            let shared = state
                .predecessors
                .get(&key)
                .and_then(|parents| parents.listed_as.clone())
                .filter(|listed| **listed == *node)
                .unwrap_or_else(|| Arc::new(node.clone()));
            state.nodes.insert(Arc::clone(&key), shared);
        }
        if let Some(old) = state.successors.remove(&key) {
            for child in old.iter() {
                if !seen.contains(child.digest().as_ref()) {
                    unlink(&mut state.predecessors, child.digest().as_ref(), &key);
                }
            }
        }
        let mut stored = Vec::with_capacity(successors.len());
        for child in successors {
            let child_key = state.key(child.digest().as_ref());
            let parents = state.predecessors.entry(child_key).or_default();
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
        state.successors.insert(key, stored.into_boxed_slice());
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
        self.index_reachable(fetcher, roots, false).await.map(drop)
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
        self.index_reachable(fetcher, roots, true)
            .await
            .unwrap_or_default()
    }

    /// The walk of [`MemoryGraph::index_all_many`]; `tolerant` collects the nodes that failed
    /// (other than `NotFound`) instead of returning the first error.
    async fn index_reachable(
        &self,
        fetcher: &(impl Fetcher + ?Sized),
        roots: &[Descriptor],
        tolerant: bool,
    ) -> Result<Vec<(Descriptor, Error)>> {
        let mut skipped = Vec::new();
        let mut visited: HashSet<String> = HashSet::new();
        {
            // Room for the roots at least: growing the maps one rehash at a time costs more.
            let mut state = self.write();
            state.nodes.reserve(roots.len());
            state.successors.reserve(roots.len());
            state.predecessors.reserve(roots.len());
        }
        let mut first: Vec<&Descriptor> = Vec::new();
        {
            let state = self.read();
            for root in roots {
                let key = root.digest().to_string();
                if !state.nodes.contains_key(key.as_str()) && visited.insert(key) {
                    first.push(root);
                }
            }
        }
        let mut frontier = self
            .index_round(fetcher, &first, tolerant, &mut visited, &mut skipped)
            .await?;
        while !frontier.is_empty() {
            let round = std::mem::take(&mut frontier);
            let round: Vec<&Descriptor> = round.iter().collect();
            frontier = self
                .index_round(fetcher, &round, tolerant, &mut visited, &mut skipped)
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
        round: &[&Descriptor],
        tolerant: bool,
        visited: &mut HashSet<String>,
        skipped: &mut Vec<(Descriptor, Error)>,
    ) -> Result<Vec<Descriptor>> {
        type Outcome = std::result::Result<Vec<Descriptor>, Option<Error>>;
        let mut next = Vec::new();
        // By position, not by reference: a closure taking `&Descriptor` would have to be
        // general over every lifetime, which the `Send` check of callers' futures rejects.
        let mut results = stream::iter(0..round.len())
            .map(|i| async move {
                let node = round[i];
                let outcome: Result<Outcome> = match successors(fetcher, node).await {
                    Ok(children) => Ok(Ok(children)),
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(Err(None)),
                    Err(e) if tolerant => Ok(Err(Some(e))),
                    Err(e) => Err(e),
                };
                outcome.map(|outcome| (node, outcome))
            })
            .buffer_unordered(INDEX_CONCURRENCY);
        while let Some((node, children)) = results.try_next().await? {
            let children = match children {
                Ok(children) => children,
                Err(None) => continue,
                Err(Some(e)) => {
                    skipped.push((node.clone(), e));
                    continue;
                }
            };
            {
                let state = self.read();
                for child in &children {
                    if !state.nodes.contains_key(child.digest().as_ref())
                        && !visited.contains(child.digest().as_ref())
                    {
                        visited.insert(child.digest().to_string());
                        next.push(child.clone());
                    }
                }
            }
            self.insert(node, children);
        }
        Ok(next)
    }

    /// The descriptors of every present node that lists `node` as a successor, by digest order.
    pub fn predecessors(&self, node: &Descriptor) -> Vec<Descriptor> {
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
                        .filter_map(|key| state.nodes.get(key).map(|d| Descriptor::clone(d))),
                );
                out
            })
            .unwrap_or_default()
    }

    /// The successors recorded for the node with `digest`, as its body lists them; `None` when the
    /// node is not present.
    pub fn successors(&self, digest: &str) -> Option<Vec<Descriptor>> {
        self.read()
            .successors
            .get(digest)
            .map(|list| list.iter().map(|d| Descriptor::clone(d)).collect())
    }

    /// The descriptor the node with `digest` was recorded with.
    pub fn get(&self, digest: &str) -> Option<Descriptor> {
        self.read().nodes.get(digest).map(|d| Descriptor::clone(d))
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
        if let Some(children) = state.successors.remove(key) {
            for child in children.iter() {
                let child_key = child.digest().as_ref();
                if unlink(&mut state.predecessors, child_key, key) {
                    if let Some(present) = state.nodes.get(child_key) {
                        danglings.push(Descriptor::clone(present));
                    }
                }
            }
        }
        state.nodes.remove(key);
        danglings
    }

    /// The digests of every present node.
    pub fn digest_set(&self) -> HashSet<String> {
        self.read().nodes.keys().map(|k| k.to_string()).collect()
    }

    /// Every present node's descriptor.
    pub fn nodes(&self) -> Vec<Descriptor> {
        self.read()
            .nodes
            .values()
            .map(|d| Descriptor::clone(d))
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

    fn digests(list: &[Descriptor]) -> Vec<String> {
        let mut out: Vec<String> = list.iter().map(|d| d.digest().to_string()).collect();
        out.sort();
        out
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
