//! Garbage collection on the bucket: take in other writers' changes, mark from the tags (plus
//! referrers of reachable nodes, to any depth), forget unreachable untagged entries, save the
//! pruned `index.json`, then sweep `blobs/` and stale probe objects in `ingest/` by listing the
//! prefix. Objects whose last-modified time is younger than the grace period are spared: another
//! store may have pushed them and be about to reference them.
//!
//! Unlike the layout store, nothing stops another machine from writing `index.json` between
//! our mark and our sweep; the grace period is what protects its fresh content, so it must
//! exceed the longest push-then-tag any writer does (the default is an hour).

use crate::contents::Contents;
use chrono_free::age_of;
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use store_core::descriptor::is_manifest;
use store_core::digest::ValidDigest;
use store_core::Result;
use store_fs::GcReport;

use crate::error::from_service;

/// Runs a collection; the caller makes sure nothing else of this store runs meanwhile.
///
/// Errors: `Backend` listing, saving or deleting; fetch and parse errors of a manifest.
pub(crate) async fn collect(contents: &Contents, grace: Duration) -> Result<GcReport> {
    let learnt = contents.remote.absorb(&contents.model).await?;
    contents.learn_all(&learnt).await;
    let reachable = mark(contents, grace).await?;

    let mut report = GcReport::default();
    for (reference, desc) in contents.model.references() {
        let digest = desc.digest().as_ref();
        if reference == digest && !reachable.contains(digest) {
            contents.model.forget_digest(digest);
            report.entries_removed += 1;
        }
    }
    for node in contents.graph.nodes() {
        if !reachable.contains(node.digest().as_ref()) {
            contents.graph.remove(&node);
        }
    }
    // The pruned index is saved before any object goes.
    contents.write_index().await?;

    let keys = &contents.blobs.keys;
    let store = &contents.blobs.store;
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&keys.blobs()))
        .try_collect()
        .await
        .map_err(|e| from_service("listing", &keys.name(&keys.blobs()), e))?;
    for meta in listed {
        let Some(digest) = keys.digest_of(&meta.location) else {
            continue;
        };
        if reachable.contains(digest.as_str()) || age_of(&meta) < grace {
            continue;
        }
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                report.blobs_removed += 1;
                report.bytes_removed += meta.size;
            }
            Err(e) => return Err(from_service("deleting", &keys.name(&meta.location), e)),
        }
    }
    let staged: Vec<object_store::ObjectMeta> = store
        .list(Some(&keys.ingest()))
        .try_collect()
        .await
        .map_err(|e| from_service("listing", &keys.name(&keys.ingest()), e))?;
    for meta in staged {
        if age_of(&meta) < grace {
            continue;
        }
        match store.delete(&meta.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => report.temp_files_removed += 1,
            Err(e) => return Err(from_service("deleting", &keys.name(&meta.location), e)),
        }
    }
    Ok(report)
}

/// The digests reachable from the tags, plus untagged manifests whose subject is reachable
/// (and what they reach), repeated until nothing is added. An untagged manifest pushed within
/// the grace period is a root.
async fn mark(contents: &Contents, grace: Duration) -> Result<HashSet<String>> {
    let model = &contents.model;
    let mut reachable = HashSet::new();
    let mut candidates: HashMap<String, String> = HashMap::new();
    for (reference, desc) in model.references() {
        let digest = desc.digest().to_string();
        if reference != digest || is_young(contents, &desc, grace).await {
            walk(contents, &digest, &mut reachable);
        } else if !model.is_tagged(&digest) && is_manifest(&desc) {
            if let Some(subject) = contents.subject_of(&desc).await? {
                candidates.insert(digest, subject);
            }
        }
    }
    loop {
        let ready: Vec<String> = candidates
            .iter()
            .filter(|(_, subject)| reachable.contains(*subject))
            .map(|(digest, _)| digest.clone())
            .collect();
        if ready.is_empty() {
            return Ok(reachable);
        }
        for digest in ready {
            candidates.remove(&digest);
            walk(contents, &digest, &mut reachable);
        }
    }
}

/// Whether the blob of `desc` was written within `grace`.
async fn is_young(
    contents: &Contents,
    desc: &oci_spec::image::Descriptor,
    grace: Duration,
) -> bool {
    let Ok(digest) = ValidDigest::from_digest(desc.digest()) else {
        return false;
    };
    let key = contents.blobs.keys.blob(&digest);
    match contents.blobs.store.head(&key).await {
        Ok(meta) => age_of(&meta) < grace,
        Err(_) => false,
    }
}

/// Adds `digest` and everything the graph says it reaches.
fn walk(contents: &Contents, digest: &str, reachable: &mut HashSet<String>) {
    let mut stack = vec![digest.to_string()];
    while let Some(next) = stack.pop() {
        if !reachable.insert(next.clone()) {
            continue;
        }
        for child in contents.graph.successors(&next).unwrap_or_default() {
            if !reachable.contains(child.digest().as_ref()) {
                stack.push(child.digest().to_string());
            }
        }
    }
}

/// Ages of objects from their last-modified time, without a date crate of our own.
mod chrono_free {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// How long ago the service says the object was last modified (zero if in the future).
    pub(crate) fn age_of(meta: &object_store::ObjectMeta) -> Duration {
        let millis = meta.last_modified.timestamp_millis();
        let modified = if millis >= 0 {
            UNIX_EPOCH + Duration::from_millis(millis as u64)
        } else {
            UNIX_EPOCH
        };
        SystemTime::now()
            .duration_since(modified)
            .unwrap_or(Duration::ZERO)
    }
}
