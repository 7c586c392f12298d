//! Delete with oras-go's auto-GC cascade, made safe, in three steps the store runs in order:
//! [`doomed`] works the whole cascade out first (a set, so a node reached twice is handled once),
//! [`forget`] drops it from the index (which the store then saves, under every autosave policy,
//! or puts back with [`restore`] when the save fails), and only then [`unlink`] removes the
//! files. A crash or failure after the save leaves only unreferenced files, which the next `gc`
//! removes; `index.json` never names a file that is gone. The cascade spares what a push still
//! needs (see [`super::in_flight`]).

use super::contents::Contents;
use super::in_flight::{Sparer, Touches};
use oci_spec::image::Descriptor;
use std::collections::{HashMap, HashSet, VecDeque};
use store_core::descriptor::{self, is_manifest};
use store_core::digest::ValidDigest;
use store_core::{Error, ErrorKind, Result};

/// References removed from the index by [`forget`], to put back with [`restore`].
pub(crate) type Forgotten = Vec<crate::index::state::Removed>;

/// Everything deleting `target` removes: only `target` without `auto_gc`; with it, the cascade
/// of [`cascade`].
///
/// Errors: `InvalidDigest`, `NotFound` when `target` is not stored; fetch and parse errors of a
/// present manifest.
pub(crate) async fn doomed(
    contents: &Contents,
    target: &Descriptor,
    auto_gc: bool,
    touches: &Touches,
) -> Result<Vec<Descriptor>> {
    let digest = descriptor::validate(target)?;
    if contents.stat(&digest)?.is_none() {
        return Err(Error::not_found(format!(
            "{} ({})",
            target.digest(),
            target.media_type()
        )));
    }
    if auto_gc {
        Ok(cascade(contents, target, touches).await?.doomed)
    } else {
        Ok(vec![target.clone()])
    }
}

/// Removes every reference to the `doomed` nodes from the index; returns them.
pub(crate) fn forget(contents: &Contents, doomed: &[Descriptor]) -> Forgotten {
    let mut removed = Vec::new();
    for node in doomed {
        removed.extend(contents.index().forget_digest(node.digest().as_ref()));
    }
    removed
}

/// Puts back what [`forget`] removed (its save failed; nothing was unlinked yet).
pub(crate) fn restore(contents: &Contents, forgotten: Forgotten) {
    contents.index().restore(forgotten);
}

/// Drops the `doomed` nodes from the graph and unlinks their files (a node that was never on
/// disk has nothing to remove), then syncs the blob directories.
///
/// Errors: the first `Io` of a removal (the others are still attempted), or of the sync.
pub(crate) async fn unlink(contents: &Contents, doomed: &[Descriptor]) -> Result<()> {
    for node in doomed {
        contents.graph().remove(node);
    }
    let digests: Vec<ValidDigest> = doomed
        .iter()
        .filter_map(|node| ValidDigest::from_digest(node.digest()).ok())
        .collect();
    let mut first_error = None;
    for result in contents.blobs().remove_many(&digests).await {
        match result {
            Ok(()) => {}
            // A cascaded node that was never on disk (a child listed by an index whose
            // blob the layout does not hold) has nothing to remove.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    contents.blobs().sync_dirs().await?;
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Everything deleting `target` removes: the target, the referrers of every deleted manifest
/// (tagged or not, as oras-go does), and every present node left with no predecessor that
/// carries no tag and that `touches` does not spare (a blob a push touched after its deleted
/// predecessors, which an image on its way still needs). Each node once, in the order found.
///
/// Linear in the nodes and edges it visits: each doomed node's successors are visited once, and
/// a child's predecessors are counted once, when it is first reached; it is doomed when as many
/// of its predecessors are.
async fn cascade(contents: &Contents, target: &Descriptor, touches: &Touches) -> Result<Cascade> {
    let graph = contents.graph();
    let mut doomed: Vec<Descriptor> = Vec::new();
    let mut doomed_set: HashSet<String> = HashSet::new();
    // For each child reached: how many of its predecessors are not doomed yet.
    let mut undoomed_parents: HashMap<String, usize> = HashMap::new();
    let mut queue: VecDeque<Descriptor> = VecDeque::from([target.clone()]);
    let mut work = 0;
    let mut sparer = touches.sparer(contents.blobs());
    while let Some(head) = queue.pop_front() {
        let head_key = head.digest().to_string();
        if !doomed_set.insert(head_key.clone()) {
            continue;
        }
        if is_manifest(&head) {
            for predecessor in graph.predecessors(&head) {
                work += 1;
                if doomed_set.contains(predecessor.digest().as_ref()) {
                    continue;
                }
                if contents.subject_of(&predecessor).await?.as_deref() == Some(head_key.as_str()) {
                    queue.push_back(predecessor.into_owned());
                }
            }
        }
        for child in graph.successors(&head_key).unwrap_or_default() {
            work += 1;
            let key = child.digest().as_ref();
            if doomed_set.contains(key) {
                continue;
            }
            let left = match undoomed_parents.get_mut(key) {
                Some(left) => left,
                None => {
                    // `head` is still in the graph, so it is one of them.
                    let count = graph.predecessors(&child).len();
                    work += count;
                    undoomed_parents.entry(key.to_string()).or_insert(count)
                }
            };
            *left = left.saturating_sub(1);
            if *left > 0 || contents.index().is_tagged(key) {
                continue;
            }
            let Some(present) = stored_child(contents, &child)? else {
                continue;
            };
            if !spared(contents, &mut sparer, &present) {
                queue.push_back(present);
            }
        }
        doomed.push(head);
    }
    Ok(Cascade { doomed, work })
}

/// The node `child` as the graph knows it, or, for a blob stored but not in the graph (pushed
/// before the store was reopened, and reached by no `index.json` entry then), `child` as its
/// parent lists it; `None` when the blob is not stored.
///
/// Errors: `Io` when the blob's path cannot be inspected.
fn stored_child(contents: &Contents, child: &Descriptor) -> Result<Option<Descriptor>> {
    if let Some(present) = contents.graph().get(child.digest().as_ref()) {
        return Ok(Some(present.into_owned()));
    }
    let Ok(digest) = ValidDigest::from_digest(child.digest()) else {
        return Ok(None);
    };
    Ok(contents.stat(&digest)?.map(|_| child.clone()))
}

/// What [`cascade`] found, and how much it looked at to find it.
struct Cascade {
    doomed: Vec<Descriptor>,
    /// Edges followed and predecessors counted; what makes the cascade's cost, which the tests
    /// measure this way rather than by a clock (only they read it).
    #[cfg_attr(not(test), allow(dead_code))]
    work: usize,
}

/// Whether `sparer` spares `child`, all of whose predecessors are doomed.
fn spared(contents: &Contents, sparer: &mut Sparer<'_>, child: &Descriptor) -> bool {
    if !sparer.is_on() {
        return false;
    }
    let Ok(child_digest) = ValidDigest::from_digest(child.digest()) else {
        return false;
    };
    let parents = contents.graph().predecessors(child);
    sparer.spares(&child_digest, &parents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::prepare_root;
    use std::time::Duration;
    use store_core::descriptor::OCI_MANIFEST;

    fn desc(media_type: &str, n: usize) -> Descriptor {
        let digest = format!("sha256:{n:064x}");
        Descriptor::new(
            media_type.into(),
            n as u64,
            oci_spec::image::Digest::try_from(digest.as_str()).unwrap(),
        )
    }

    /// The cascade of a manifest of `layers` layers, half of them also listed by a second
    /// manifest: what it dooms and how much it looked at.
    async fn cascade_of(layers: usize) -> (usize, usize, usize) {
        let dir = tempfile::tempdir().unwrap();
        let (layout, _) = prepare_root(dir.path(), false).unwrap();
        let contents = Contents::new(layout, false);
        let graph = contents.graph();
        let blobs: Vec<Descriptor> = (1..=layers)
            .map(|n| desc("application/octet-stream", n))
            .collect();
        for blob in &blobs {
            graph.insert(blob, Vec::new());
        }
        let target = desc(OCI_MANIFEST, layers + 1);
        let other = desc(OCI_MANIFEST, layers + 2);
        graph.insert(&target, blobs.clone());
        graph.insert(&other, blobs[..layers / 2].to_vec());
        let edges = layers + layers / 2;
        let found = cascade(&contents, &target, &Touches::new(Duration::ZERO))
            .await
            .unwrap();
        (found.doomed.len(), found.work, edges)
    }

    #[tokio::test]
    async fn the_cascade_is_linear_in_the_edges_it_visits() {
        let (doomed, small, edges) = cascade_of(2_000).await;
        assert_eq!(doomed, 1 + 1_000, "the target and its unshared layers");
        // Each edge of the target is followed once and each layer's predecessors (at most two)
        // counted once.
        assert!(small <= 2 * edges, "{small} steps for {edges} edges");
        let (doomed, large, edges) = cascade_of(8_000).await;
        assert_eq!(doomed, 1 + 4_000);
        assert!(large <= 2 * edges, "{large} steps for {edges} edges");
        assert_eq!(
            large,
            4 * small,
            "four times the layers, four times the work"
        );
    }
}
