//! Garbage collection: mark from the tags (plus referrers of reachable nodes, following subject
//! chains of any length), forget what is unreachable, save the pruned index, then sweep
//! `blobs/` and stale `ingest/` temp files. Terminates on every graph: the mark only ever grows.

use super::contents::Contents;
use crate::fsutil::{self, spawn_blocking, FileKind};
use crate::layout::{Create, Layout};
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use store_core::descriptor::is_manifest;
use store_core::digest::{Algorithm, ValidDigest};
use store_core::{Error, Result};

/// What [`crate::Store::gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Blob files removed from `blobs/`.
    pub blobs_removed: usize,
    /// Their total size in bytes.
    pub bytes_removed: u64,
    /// Stale temp files removed from `ingest/`.
    pub temp_files_removed: usize,
    /// Untagged `index.json` entries dropped (manifests that are not referrers of reachable
    /// content).
    pub entries_removed: usize,
}

/// Removes every blob not reachable from a tag, keeping the referrers of reachable nodes (to
/// any depth); blob files the store never knew; and temp files in `ingest/` left by crashed
/// pushes. Files younger than `grace` are spared, as is anything under `blobs/` that is not a
/// file named like a digest. Saves the pruned `index.json`. The caller makes sure nothing else
/// of this store runs meanwhile. `touched` are the digests this process's pushes, commits and
/// `exists` touched within the grace period: kept with what they reach, as young files are (an
/// `exists` that found an old layer leaves its file's time as it was).
///
/// With `dry_run`, counts what would go and changes nothing (neither files nor `index.json`).
///
/// Errors: `Io` from the sweep or the save; fetch and parse errors of a present manifest.
pub(crate) async fn collect(
    contents: &Arc<Contents>,
    grace: Duration,
    touched: Vec<String>,
    dry_run: bool,
) -> Result<GcReport> {
    let pooled = Arc::clone(contents);
    // The index lock is held from the merge to the end of the sweep: another process's
    // index write waits, so nothing it references can be swept from under it; what it
    // pushed but has not referenced yet is young and spared by the grace period.
    let (lock, learnt) = spawn_blocking(move || {
        let file = pooled.index_file();
        let lock = file.lock()?;
        let learnt = file.absorb_locked(&lock, pooled.index())?;
        Ok((lock, learnt))
    })
    .await?;
    contents.learn_all(&learnt).await;
    let reachable = mark(contents, grace, touched).await?;

    let mut report = GcReport::default();
    let index = contents.index();
    for (reference, desc) in index.references() {
        let digest = desc.digest().as_ref();
        if reference == digest && !reachable.contains(digest) {
            if !dry_run {
                index.forget_digest(digest);
            }
            report.entries_removed += 1;
        }
    }
    for node in contents.graph().nodes() {
        if !dry_run && !reachable.contains(node.digest().as_ref()) {
            contents.graph().remove(&node);
        }
    }

    let pooled = Arc::clone(contents);
    let swept = spawn_blocking(move || {
        // The pruned index is on disk before any file goes.
        if !dry_run {
            pooled.index_file().write_locked(&lock, pooled.index())?;
        }
        let durable = pooled.blobs().is_durable();
        let in_flight = |name: &std::ffi::OsStr| pooled.blobs().is_in_flight(name);
        let swept = sweep(
            pooled.layout(),
            &reachable,
            grace,
            durable,
            &in_flight,
            dry_run,
        )?;
        drop(lock);
        Ok(swept)
    })
    .await?;
    report.blobs_removed = swept.blobs_removed;
    report.bytes_removed = swept.bytes_removed;
    report.temp_files_removed = swept.temp_files_removed;
    Ok(report)
}

/// The digests reachable from the tags and from `touched`, plus untagged manifests whose subject
/// is reachable (and what they reach), repeated until nothing is added.
async fn mark(
    contents: &Contents,
    grace: Duration,
    touched: Vec<String>,
) -> Result<HashSet<String>> {
    let index = contents.index();
    let mut reachable = HashSet::new();
    for digest in touched {
        walk(contents, &digest, &mut reachable);
    }
    let mut candidates: HashMap<String, String> = HashMap::new();
    for (reference, desc) in index.references() {
        let digest = desc.digest().to_string();
        if reference != digest || is_young(contents, &desc, grace) {
            // Tagged, or an untagged manifest pushed within the grace period (another
            // process may be about to tag it): a root.
            walk(contents, &digest, &mut reachable);
        } else if !index.is_tagged(&digest) && is_manifest(&desc) {
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

/// Whether the blob of `desc` was written within `grace` (a single `lstat`).
fn is_young(contents: &Contents, desc: &oci_spec::image::Descriptor, grace: Duration) -> bool {
    let Ok(digest) = ValidDigest::from_digest(desc.digest()) else {
        return false;
    };
    match contents.blobs().modified(&digest) {
        Ok(Some(modified)) => !older_than(modified, grace),
        _ => false,
    }
}

/// Adds `digest` and everything the graph says it reaches.
fn walk(contents: &Contents, digest: &str, reachable: &mut HashSet<String>) {
    let mut stack = vec![digest.to_string()];
    while let Some(next) = stack.pop() {
        if !reachable.insert(next.clone()) {
            continue;
        }
        for child in contents.graph().successors(&next).unwrap_or_default() {
            if !reachable.contains(child.digest().as_ref()) {
                stack.push(child.digest().to_string());
            }
        }
    }
}

#[derive(Default)]
struct Swept {
    blobs_removed: usize,
    bytes_removed: u64,
    temp_files_removed: usize,
}

/// Whether an entry modified at `modified` was modified longer than `grace` ago.
fn older_than(modified: SystemTime, grace: Duration) -> bool {
    SystemTime::now()
        .duration_since(modified)
        .map(|age| age >= grace)
        .unwrap_or(false)
}

fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

/// How many threads [`remove_files`] uses at most.
const REMOVERS: usize = 8;

/// Removes every `(name, size)` of `doomed` from `dir` (whose path, for messages, is `dir_path`;
/// a file already gone does not count); returns how many were removed and their total size. Several threads unlink at once: freeing a file's
/// blocks can wait for the disk (a `discard` mount trims them synchronously), and the kernel
/// does that after releasing the directory, so unlinks in one directory overlap their waits.
///
/// Errors: the first `Io` of a removal (the other threads finish their current file first).
fn remove_files(
    dir: BorrowedFd<'_>,
    dir_path: &Path,
    doomed: &[(OsString, u64)],
) -> Result<(usize, u64)> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let work = || -> Result<(usize, u64)> {
        let (mut removed, mut bytes) = (0, 0);
        while !failed.load(Ordering::Relaxed) {
            let Some((name, size)) = doomed.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            match fsutil::unlink_at(dir, name) {
                Ok(()) => {
                    removed += 1;
                    bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    failed.store(true, Ordering::Relaxed);
                    return Err(io_err("removing", &dir_path.join(name), e));
                }
            }
        }
        Ok((removed, bytes))
    };
    let threads = (doomed.len() / 16).clamp(1, REMOVERS);
    if threads == 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut total = work();
        for helper in helpers {
            let result = helper
                .join()
                .unwrap_or_else(|_| Err(Error::io("gc", io::Error::other("a remover panicked"))));
            total = match (total, result) {
                (Ok((r1, b1)), Ok((r2, b2))) => Ok((r1 + r2, b1 + b2)),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
        }
        total
    })
}

/// Removes unreachable blob files and stale temp files (never a staging file `in_flight` says
/// this store still uses: pushes stream without the gate gc holds); with `dry_run`, only counts
/// them. Never follows a link: directories are the layout's own handles (a `blobs/<alg>/` or
/// `ingest/` that is a link is refused), entries are inspected with `lstat`, and removing a
/// symbolic link removes the link only.
///
/// Errors: `InvalidLayout` naming a layout directory that is a symbolic link or not a
/// directory; `Io`.
fn sweep(
    layout: &Layout,
    reachable: &HashSet<String>,
    grace: Duration,
    durable: bool,
    in_flight: &dyn Fn(&std::ffi::OsStr) -> bool,
    dry_run: bool,
) -> Result<Swept> {
    let mut swept = Swept::default();
    for algorithm in Algorithm::ALL {
        let Some(dir) = layout.algorithm_dir(algorithm, Create::No)? else {
            continue;
        };
        let dir_path = layout.algorithm_path(algorithm);
        let entries = fsutil::list_dir(dir).map_err(|e| io_err("listing", &dir_path, e))?;
        let mut doomed = Vec::new();
        for entry in entries {
            let Some(hex) = entry.name.to_str() else {
                continue;
            };
            let digest = format!("{}:{hex}", algorithm.name());
            if ValidDigest::parse(&digest).is_err() || reachable.contains(&digest) {
                continue;
            }
            let st = match fsutil::stat_at(dir, &entry.name) {
                Ok(st) => st,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("inspecting", &dir_path.join(hex), e)),
            };
            if !matches!(st.kind, FileKind::Regular | FileKind::Symlink)
                || !older_than(st.modified, grace)
            {
                continue;
            }
            let size = if st.kind == FileKind::Regular {
                st.len
            } else {
                0
            };
            doomed.push((entry.name, size));
        }
        let (removed, bytes) = if dry_run {
            (doomed.len(), doomed.iter().map(|(_, size)| size).sum())
        } else {
            remove_files(dir, &dir_path, &doomed)?
        };
        swept.blobs_removed += removed;
        swept.bytes_removed += bytes;
        if removed > 0 && durable {
            fsutil::sync_fd(dir).map_err(|e| io_err("syncing", &dir_path, e))?;
        }
    }
    if let Some(ingest) = layout.ingest_dir(Create::No)? {
        if let Ok(entries) = fsutil::list_dir(ingest) {
            for entry in entries {
                let Ok(st) = fsutil::stat_at(ingest, &entry.name) else {
                    continue;
                };
                if st.kind == FileKind::Directory
                    || !older_than(st.modified, grace)
                    || in_flight(&entry.name)
                {
                    continue;
                }
                if dry_run || fsutil::unlink_at(ingest, &entry.name).is_ok() {
                    swept.temp_files_removed += 1;
                }
            }
        }
    }
    // Temp files of index.json / oci-layout writes that a crash left in the root (the names
    // `fsutil` gives them); nothing else in the root is touched.
    let root = layout.root_fd();
    if let Ok(entries) = fsutil::list_dir(root) {
        for entry in entries {
            let name = entry.name.to_string_lossy();
            let ours = [".index.json.tmp-", ".oci-layout.tmp-", ".new.tmp-"]
                .iter()
                .any(|prefix| name.starts_with(prefix));
            if !ours {
                continue;
            }
            let Ok(st) = fsutil::stat_at(root, &entry.name) else {
                continue;
            };
            if st.kind == FileKind::Regular
                && older_than(st.modified, grace)
                && (dry_run || fsutil::unlink_at(root, &entry.name).is_ok())
            {
                swept.temp_files_removed += 1;
            }
        }
    }
    Ok(swept)
}
