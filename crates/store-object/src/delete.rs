//! Delete with the auto-GC cascade, in the layout store's order: work the cascade out, drop it
//! from the index and save `index.json`, then remove the objects. A failure after the save
//! leaves only unreferenced objects, which the next `gc` removes.

use crate::contents::Contents;
use oci_spec::image::Descriptor;
use std::collections::{HashSet, VecDeque};
use store_core::descriptor::{self, is_manifest};
use store_core::digest::ValidDigest;
use store_core::{Error, ErrorKind, Result};

/// Everything deleting `target` removes: `target` alone without `auto_gc`; with it, the target,
/// the referrers of every deleted manifest, and every present node left with no predecessor
/// that carries no tag.
///
/// Errors: `InvalidDigest`, `NotFound` when `target` is not stored; fetch and parse errors.
pub(crate) async fn doomed(
    contents: &Contents,
    target: &Descriptor,
    auto_gc: bool,
) -> Result<Vec<Descriptor>> {
    let digest = descriptor::validate(target)?;
    if contents.blobs.stat(&digest).await?.is_none() {
        return Err(Error::not_found(format!(
            "{} ({})",
            target.digest(),
            target.media_type()
        )));
    }
    if !auto_gc {
        return Ok(vec![target.clone()]);
    }
    let graph = &contents.graph;
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
                        queue.push_back(predecessor.into_owned());
                    }
                }
            }
            doomed.push(head);
        }
        let mut found = false;
        for node in &doomed {
            for child in graph.successors(node.digest().as_ref()).unwrap_or_default() {
                let key = child.digest().as_ref();
                if doomed_set.contains(key) || contents.model.is_tagged(key) {
                    continue;
                }
                let Some(present) = stored_child(contents, &child).await? else {
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
            return Ok(doomed);
        }
    }
}

/// The node `child` as the graph knows it, or, for a blob stored but not in the graph (pushed
/// before the store was reopened, and reached by no `index.json` entry then), `child` as its
/// parent lists it; `None` when the blob is not stored.
///
/// Errors: `Backend` when the object cannot be checked.
async fn stored_child(contents: &Contents, child: &Descriptor) -> Result<Option<Descriptor>> {
    if let Some(present) = contents.graph.get(child.digest().as_ref()) {
        return Ok(Some(present.into_owned()));
    }
    let Ok(digest) = ValidDigest::from_digest(child.digest()) else {
        return Ok(None);
    };
    Ok(contents.blobs.stat(&digest).await?.map(|_| child.clone()))
}

/// Drops the `doomed` nodes from the graph and removes their objects.
///
/// Errors: the first `Backend` error of a removal (the others are still attempted).
pub(crate) async fn remove(contents: &Contents, doomed: &[Descriptor]) -> Result<()> {
    let mut first_error = None;
    for node in doomed {
        contents.graph.remove(node);
        let Ok(digest) = ValidDigest::from_digest(node.digest()) else {
            continue;
        };
        match contents.blobs.remove(&digest).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
