//! Delete with oras-go's auto-GC cascade, made safe, in three steps the store runs in order:
//! [`doomed`] works the whole cascade out first (a set, so a node reached twice is handled once),
//! [`forget`] drops it from the index (which the store then saves, or puts back with
//! [`restore`] when the save fails), and only then [`unlink`] removes the files. A crash or
//! failure after the save leaves only unreferenced files, which the next `gc` removes;
//! `index.json` never names a file that is gone.

use super::contents::Contents;
use oci_spec::image::Descriptor;
use std::collections::{HashSet, VecDeque};
use store_core::descriptor::{self, is_manifest};
use store_core::digest::ValidDigest;
use store_core::{Error, ErrorKind, Result};

/// References removed from the index by [`forget`], to put back with [`restore`].
pub(crate) type Forgotten = Vec<(String, Descriptor, Option<crate::index::state::RawEntry>)>;

/// Everything deleting `target` removes: only `target` without `auto_gc`; with it, the cascade
/// of [`cascade`].
///
/// Errors: `InvalidDigest`, `NotFound` when `target` is not stored; fetch and parse errors of a
/// present manifest.
pub(crate) async fn doomed(
    contents: &Contents,
    target: &Descriptor,
    auto_gc: bool,
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
        cascade(contents, target).await
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
/// carries no tag. Each node once, in the order found.
async fn cascade(contents: &Contents, target: &Descriptor) -> Result<Vec<Descriptor>> {
    let graph = contents.graph();
    let mut doomed: Vec<Descriptor> = Vec::new();
    let mut doomed_set: HashSet<String> = HashSet::new();
    let mut queue: VecDeque<Descriptor> = VecDeque::from([target.clone()]);
    loop {
        while let Some(head) = queue.pop_front() {
            if !doomed_set.insert(head.digest().to_string()) {
                continue;
            }
            if is_manifest(&head) {
                for predecessor in graph.predecessors(&head) {
                    if doomed_set.contains(predecessor.digest().as_ref()) {
                        continue;
                    }
                    if contents.subject_of(&predecessor).await?.as_deref()
                        == Some(head.digest().as_ref())
                    {
                        queue.push_back(predecessor);
                    }
                }
            }
            doomed.push(head);
        }
        // Danglings: present successors all of whose predecessors are doomed. Checked once
        // the queue is empty, so the order in which parents were found does not matter.
        let mut found = false;
        for node in &doomed {
            for child in graph.successors(node.digest().as_ref()).unwrap_or_default() {
                let key = child.digest().as_ref();
                if doomed_set.contains(key) || contents.index().is_tagged(key) {
                    continue;
                }
                let Some(present) = graph.get(key) else {
                    continue;
                };
                let orphaned = graph
                    .predecessors(&present)
                    .iter()
                    .all(|p| doomed_set.contains(p.digest().as_ref()));
                if orphaned && !queue.iter().any(|q| q.digest() == present.digest()) {
                    queue.push_back(present);
                    found = true;
                }
            }
        }
        if !found {
            break;
        }
    }
    Ok(doomed)
}
