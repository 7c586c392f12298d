//! The consistency check of a layout in a bucket: `oci-layout`, every blob object re-hashed
//! against its key, every `index.json` entry and everything reachable from it present with the
//! right size and, for manifests, parsable. Reports, never modifies.

use crate::contents::Contents;
use crate::error::from_service;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use oci_spec::image::Descriptor;
use std::collections::{HashMap, HashSet};
use store_core::descriptor::is_manifest;
use store_core::manifest::parse_successors;
use store_core::{ErrorKind, Result};
use store_fs::index_model::ParsedIndex;
use store_fs::FsckReport;
use tokio::io::AsyncReadExt;

/// Objects re-hashed at once.
const CHECKERS: usize = 8;

/// Checks the layout as the bucket holds it now.
///
/// Errors: `Backend` when the prefix cannot be listed or read.
pub(crate) async fn check(contents: &Contents) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let blobs = &contents.blobs;
    let keys = &blobs.keys;
    if let Err(e) = crate::layout::read_or_create(&*blobs.store, keys, false).await {
        report.layout_errors.push(e.to_string());
    }
    let listed: Vec<object_store::ObjectMeta> = blobs
        .store
        .list(Some(&keys.blobs()))
        .try_collect()
        .await
        .map_err(|e| from_service("listing", &keys.name(&keys.blobs()), e))?;
    let mut sizes: HashMap<String, u64> = HashMap::new();
    let present: Vec<_> = listed
        .iter()
        .filter_map(|meta| keys.digest_of(&meta.location).map(|d| (d, meta.size)))
        .collect();
    for (digest, size) in &present {
        sizes.insert(digest.to_string(), *size);
    }
    let results: Vec<(String, Result<()>)> = futures::stream::iter(present)
        .map(|(digest, size)| async move {
            let outcome = async {
                let mut reader = blobs.open(&digest, size).await?;
                let mut sink = tokio::io::sink();
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = reader
                        .read(&mut buf)
                        .await
                        .map_err(|e| store_core::error_from_io(e, digest.to_string()))?;
                    if n == 0 {
                        break;
                    }
                    let _ = tokio::io::AsyncWriteExt::write_all(&mut sink, &buf[..n]).await;
                }
                Ok(())
            }
            .await;
            (digest.to_string(), outcome)
        })
        .buffer_unordered(CHECKERS)
        .collect()
        .await;
    for (digest, outcome) in results {
        report.blobs_checked += 1;
        match outcome {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Mismatch => report.corrupt.push(digest),
            Err(e) => return Err(e),
        }
    }

    let roots = match read_index(contents).await {
        Ok(roots) => roots,
        Err(e) => {
            report.layout_errors.push(e.to_string());
            Vec::new()
        }
    };
    let corrupt: HashSet<String> = report.corrupt.iter().cloned().collect();
    let mut reached: HashSet<String> = HashSet::new();
    let mut stack: Vec<Descriptor> = roots;
    while let Some(node) = stack.pop() {
        let digest = node.digest().to_string();
        if !reached.insert(digest.clone()) {
            continue;
        }
        let Some(size) = sizes.get(&digest) else {
            report.missing.push(digest);
            continue;
        };
        if *size != node.size() {
            report.size_mismatch.push(digest);
            continue;
        }
        if !is_manifest(&node) || corrupt.contains(&digest) {
            continue;
        }
        match contents.read_manifest(&node).await {
            Ok(body) => match parse_successors(&digest, node.media_type().as_ref(), &body) {
                Ok(children) => stack.extend(children),
                Err(_) => report.invalid_manifests.push(digest),
            },
            Err(e) if e.kind() == ErrorKind::SizeExceedsLimit => {
                report.invalid_manifests.push(digest)
            }
            Err(e) => return Err(e),
        }
    }
    for digest in sizes.keys() {
        if !reached.contains(digest) {
            report.orphaned.push(digest.clone());
        }
    }
    for list in [
        &mut report.corrupt,
        &mut report.missing,
        &mut report.size_mismatch,
        &mut report.invalid_manifests,
        &mut report.orphaned,
    ] {
        list.sort();
        list.dedup();
    }
    Ok(report)
}

/// The entries of `index.json` as the bucket holds it now, plain.
async fn read_index(contents: &Contents) -> Result<Vec<Descriptor>> {
    let keys = &contents.blobs.keys;
    let key = keys.index();
    let name = keys.name(&key);
    let got = contents
        .blobs
        .store
        .get(&key)
        .await
        .map_err(|e| from_service("reading", &name, e))?;
    let bytes = got
        .bytes()
        .await
        .map_err(|e| from_service("reading", &name, e))?;
    let doc = ParsedIndex::parse(&name, &bytes)?;
    Ok(doc
        .descriptors()
        .iter()
        .map(store_core::descriptor::plain)
        .collect())
}
