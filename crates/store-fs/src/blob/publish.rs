//! Making verified content visible: a no-clobber hard link from `ingest/` to
//! `blobs/<alg>/<hex>`, the only way any blob appears, whoever wrote it (a push from memory, a
//! streamed push, a [`crate::BlobWriter`]). Both ends are reached through the layout's directory
//! handles, never through a symbolic link.
//!
//! Staging files are [`Staging`] guards: registered as in flight before the file is created (so
//! that `gc` of this store never sweeps one, whatever its age) and removed when the guard goes,
//! on every path, including a dropped future. A [`Ready`] blob is content verified and waiting
//! for its publish step, which the store runs under its gate together with the record.

use super::{algorithm_dir, ingest_dir, io_err, runs_inline, Blobs};
use crate::fsutil::{self, FileKind};
use crate::layout::{Create, Layout};
use bytes::Bytes;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The names of this store's staging files in `ingest/` that are still in use.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn names(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `name` (a file name in `ingest/`) is a staging file still in use.
    pub(crate) fn contains(&self, name: &OsStr) -> bool {
        name.to_str()
            .is_some_and(|name| self.names().contains(name))
    }
}

/// A staging file in `ingest/`, in flight until dropped; dropping it removes the staging name
/// (a blob published from it keeps its own name).
#[derive(Debug)]
pub(crate) struct Staging {
    layout: Layout,
    name: String,
    in_flight: Arc<InFlight>,
}

impl Staging {
    /// Registers a fresh name in the `ingest/` of `layout` (the file is not created).
    pub(crate) fn new(layout: &Layout, prefix: &str, in_flight: &Arc<InFlight>) -> Staging {
        let name = fsutil::unique_name(prefix);
        in_flight.names().insert(name.clone());
        Staging {
            layout: layout.clone(),
            name,
            in_flight: Arc::clone(in_flight),
        }
    }

    /// The staging file's name in `ingest/`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the staging file is, for messages.
    pub(crate) fn path(&self) -> PathBuf {
        self.layout.ingest_path().join(&self.name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Removed before it is forgotten, so that gc never sees a file of ours as a stale one.
        remove_staging(&self.layout, &self.name);
        self.in_flight.names().remove(&self.name);
    }
}

/// Verified content waiting for its publish step ([`Ready::publish`]).
#[derive(Debug)]
pub(crate) struct Ready {
    staging: Staging,
    /// The content when it is in memory: it is written to `staging` only in the publish step, so
    /// the staging file never outlives that step.
    bytes: Option<Bytes>,
    digest: ValidDigest,
    durable: bool,
    size: u64,
}

impl Ready {
    /// Verified in-memory `bytes` of the blob `digest`.
    ///
    /// Errors: `InvalidLayout` when `ingest/` or `blobs/<alg>/` is a symbolic link or not a
    /// directory; `Io` creating them.
    pub(crate) fn from_bytes(blobs: &Blobs, digest: &ValidDigest, bytes: Bytes) -> Result<Ready> {
        blobs.prepare_dirs(Some(digest))?;
        let size = bytes.len() as u64;
        Ok(Ready {
            staging: blobs.stage("push-"),
            bytes: Some(bytes),
            digest: digest.clone(),
            durable: blobs.is_durable(),
            size,
        })
    }

    /// The complete, verified (and, when durable, fsynced) staging file of `size` bytes of the
    /// blob `digest`.
    ///
    /// Errors: `InvalidLayout` when `blobs/<alg>/` is a symbolic link or not a directory; `Io`
    /// creating it.
    pub(crate) fn from_file(
        blobs: &Blobs,
        digest: &ValidDigest,
        staging: Staging,
        size: u64,
    ) -> Result<Ready> {
        blobs.prepare_dirs(Some(digest))?;
        Ok(Ready {
            staging,
            bytes: None,
            digest: digest.clone(),
            durable: blobs.is_durable(),
            size,
        })
    }

    /// Whether [`Ready::publish`] is cheap enough for the calling (async) thread (see
    /// [`runs_inline`]); otherwise it belongs on the blocking pool.
    pub(crate) fn runs_inline(&self) -> bool {
        let written = if self.bytes.is_some() { self.size } else { 0 };
        runs_inline(written, self.durable)
    }

    /// Writes the in-memory content to the staging file (fsynced when durable), links the
    /// staging file at the blob's path without replacing anything, and fsyncs that directory
    /// when durable; the staging name is removed in every case. Blocking.
    ///
    /// Errors: those of [`publish`]; `Io` writing the staging file.
    pub(crate) fn publish(self) -> Result<()> {
        let layout = &self.staging.layout;
        let name = self.staging.name();
        if let Some(bytes) = &self.bytes {
            let ingest = ingest_dir(layout, self.durable)?;
            let path = self.staging.path();
            let mut file =
                fsutil::create_new_at(ingest, name).map_err(|e| io_err("creating", &path, e))?;
            file.write_all(bytes)
                .map_err(|e| io_err("writing", &path, e))?;
            if self.durable {
                file.sync_all().map_err(|e| io_err("syncing", &path, e))?;
            }
        }
        publish(layout, name, &self.digest, self.durable)
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
fn publish(layout: &Layout, staging: &str, digest: &ValidDigest, durable: bool) -> Result<()> {
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
