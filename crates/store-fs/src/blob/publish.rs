//! Making a verified staging file visible: a no-clobber hard link from `ingest/` to
//! `blobs/<alg>/<hex>`, the only way any blob appears, whoever wrote it (a push from memory, a
//! streamed push, a [`crate::BlobWriter`]).

use super::{io_err, Blobs};
use crate::fsutil::{self, spawn_blocking};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// Removes a staging file when dropped.
pub(crate) struct StagingGuard {
    path: Option<PathBuf>,
}

impl StagingGuard {
    /// Guards the staging file at `path`.
    pub(crate) fn new(path: PathBuf) -> Self {
        StagingGuard { path: Some(path) }
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

/// Links `staging` to `target` without replacing anything there; when `durable`, fsyncs the
/// directory of `target`. Blocking.
///
/// Errors: `AlreadyExists` (naming `digest`) when `target` exists; `Io`.
pub(crate) fn publish(staging: &Path, target: &Path, durable: bool, digest: &str) -> Result<()> {
    match fs::hard_link(staging, target) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::already_exists(digest))
        }
        Err(e) => return Err(io_err("publishing", target, e)),
    }
    if durable {
        let dir = fsutil::parent_of(target);
        fsutil::sync_dir(&dir).map_err(|e| io_err("syncing", &dir, e))?;
    }
    Ok(())
}

/// Writes `bytes` to a new staging file, fsyncs it when `durable`, and publishes it at `target`;
/// the staging name is removed in every case. Blocking.
///
/// Errors: those of [`publish`]; `Io` writing the staging file.
pub(crate) fn write_and_publish(
    staging: &Path,
    target: &Path,
    bytes: &[u8],
    durable: bool,
    digest: &str,
) -> Result<()> {
    let _guard = StagingGuard::new(staging.to_path_buf());
    let mut file = fsutil::create_new(staging).map_err(|e| io_err("creating", staging, e))?;
    file.write_all(bytes)
        .map_err(|e| io_err("writing", staging, e))?;
    if durable {
        file.sync_all().map_err(|e| io_err("syncing", staging, e))?;
    }
    drop(file);
    publish(staging, target, durable, digest)
}

/// Publishes the complete, already fsynced (when durable) staging file `staging` as the blob
/// `digest`, then removes the staging name (also on failure).
///
/// Errors: `AlreadyExists` when the blob is already stored; `Io`.
pub(crate) async fn publish_staged(
    blobs: &Blobs,
    staging: &Path,
    digest: &ValidDigest,
) -> Result<()> {
    let _guard = StagingGuard::new(staging.to_path_buf());
    blobs.prepare_dirs(Some(digest))?;
    let staging = staging.to_path_buf();
    let target = blobs.path(digest);
    let durable = blobs.is_durable();
    let digest_text = digest.to_string();
    spawn_blocking(move || publish(&staging, &target, durable, &digest_text)).await
}
