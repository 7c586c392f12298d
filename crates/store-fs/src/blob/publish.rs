//! Making a verified staging file visible: a no-clobber hard link from `ingest/` to
//! `blobs/<alg>/<hex>`, the only way any blob appears, whoever wrote it (a push from memory, a
//! streamed push, a [`crate::BlobWriter`]). Both ends are reached through the layout's directory
//! handles, never through a symbolic link.

use super::{algorithm_dir, ingest_dir, io_err, Blobs};
use crate::fsutil::{self, spawn_blocking, FileKind};
use crate::layout::{Create, Layout};
use std::io::{self, Write};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// Removes a staging file of `ingest/` when dropped.
pub(crate) struct StagingGuard {
    layout: Layout,
    name: Option<String>,
}

impl StagingGuard {
    /// Guards the staging file `name` in the `ingest/` of `layout`.
    pub(crate) fn new(layout: &Layout, name: &str) -> Self {
        StagingGuard {
            layout: layout.clone(),
            name: Some(name.to_string()),
        }
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            remove_staging(&self.layout, &name);
        }
    }
}

/// Removes the staging file `name` from `ingest/`, if it is there.
pub(crate) fn remove_staging(layout: &Layout, name: &str) {
    if let Ok(Some(dir)) = layout.ingest_dir(Create::No) {
        let _ = fsutil::unlink_at(dir, name);
    }
}

/// Links the staging file `staging` of `ingest/` as the blob `digest` without replacing
/// anything there; when `durable`, fsyncs `blobs/<alg>/`. Blocking.
///
/// Errors: `AlreadyExists` (naming `digest`) when the blob is stored; `InvalidLayout` naming the
/// blob's path when something other than a regular file occupies it (a directory, a FIFO, a
/// symbolic link...), or naming a layout directory that is a link; `Io`.
pub(crate) fn publish(
    layout: &Layout,
    staging: &str,
    digest: &ValidDigest,
    durable: bool,
) -> Result<()> {
    let ingest = ingest_dir(layout, durable)?;
    let target = algorithm_dir(layout, digest, durable)?;
    match fsutil::link_at(ingest, staging, target, digest.hex()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(occupied(layout, target, digest))
        }
        Err(e) => return Err(io_err("publishing", &layout.blob_path(digest), e)),
    }
    if durable {
        fsutil::sync_fd(target)
            .map_err(|e| io_err("syncing", &layout.algorithm_path(digest.algorithm()), e))?;
    }
    Ok(())
}

/// Why the link to the blob's path found something there: `AlreadyExists` for a blob file,
/// `InvalidLayout` saying what else is in the way (which `exists` does not count as the blob).
fn occupied(layout: &Layout, dir: std::os::fd::BorrowedFd<'_>, digest: &ValidDigest) -> Error {
    match fsutil::stat_at(dir, digest.hex()) {
        Ok(st) if st.kind != FileKind::Regular => Error::InvalidLayout {
            path: layout.blob_path(digest),
            reason: format!(
                "is {}, not a blob file: it occupies the path of {digest}, which cannot be \
                 stored until it is removed",
                st.kind.describe()
            ),
        },
        // A regular file, or gone again since: the blob was (or is being) stored by another
        // writer.
        _ => Error::already_exists(digest),
    }
}

/// Writes `bytes` to the new staging file `staging` of `ingest/`, fsyncs it when `durable`, and
/// publishes it as `digest`; the staging name is removed in every case. Blocking.
///
/// Errors: those of [`publish`]; `Io` writing the staging file.
pub(crate) fn write_and_publish(
    layout: &Layout,
    staging: &str,
    bytes: &[u8],
    digest: &ValidDigest,
    durable: bool,
) -> Result<()> {
    let ingest = ingest_dir(layout, durable)?;
    let path = layout.ingest_path().join(staging);
    let _guard = StagingGuard::new(layout, staging);
    let mut file =
        fsutil::create_new_at(ingest, staging).map_err(|e| io_err("creating", &path, e))?;
    file.write_all(bytes)
        .map_err(|e| io_err("writing", &path, e))?;
    if durable {
        file.sync_all().map_err(|e| io_err("syncing", &path, e))?;
    }
    drop(file);
    publish(layout, staging, digest, durable)
}

/// Publishes the complete, already fsynced (when durable) staging file `staging` of `ingest/`
/// as the blob `digest`, then removes the staging name (also on failure).
///
/// Errors: those of [`publish`].
pub(crate) async fn publish_staged(
    blobs: &Blobs,
    staging: &str,
    digest: &ValidDigest,
) -> Result<()> {
    let _guard = StagingGuard::new(blobs.layout(), staging);
    blobs.prepare_dirs(Some(digest))?;
    let layout = blobs.layout().clone();
    let staging = staging.to_string();
    let digest = digest.clone();
    let durable = blobs.is_durable();
    spawn_blocking(move || publish(&layout, &staging, &digest, durable)).await
}
