//! Making verified content visible: a no-clobber hard link from `ingest/` to
//! `blobs/<alg>/<hex>`, the only way any blob appears, whoever wrote it (a push from memory, a
//! streamed push, a [`crate::BlobWriter`]).
//!
//! Staging files are [`Staging`] guards: registered as in flight before the file is created (so
//! that `gc` of this store never sweeps one, whatever its age) and removed when the guard goes,
//! on every path, including a dropped future. A [`Ready`] blob is content verified and waiting
//! for its publish step, which the store runs under its gate together with the record.

use super::{io_err, runs_inline, Blobs};
use crate::fsutil;
use bytes::Bytes;
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The names of this store's staging files in `ingest/` that are still in use.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<OsString>>);

impl InFlight {
    fn names(&self) -> std::sync::MutexGuard<'_, HashSet<OsString>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `name` (a file name in `ingest/`) is a staging file still in use.
    pub(crate) fn contains(&self, name: &OsStr) -> bool {
        self.names().contains(name)
    }
}

/// A staging file in `ingest/`, in flight until dropped; dropping it removes the staging name
/// (a blob published from it keeps its own name).
#[derive(Debug)]
pub(crate) struct Staging {
    path: PathBuf,
    name: OsString,
    in_flight: Arc<InFlight>,
}

impl Staging {
    /// Registers a fresh name in `dir` (the file is not created).
    pub(crate) fn new(dir: &Path, prefix: &str, in_flight: &Arc<InFlight>) -> Staging {
        let name = OsString::from(fsutil::unique_name(prefix));
        in_flight.names().insert(name.clone());
        Staging {
            path: dir.join(&name),
            name,
            in_flight: Arc::clone(in_flight),
        }
    }

    /// Where the staging file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Removed before it is forgotten, so that gc never sees a file of ours as a stale one.
        let _ = fs::remove_file(&self.path);
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
    target: PathBuf,
    durable: bool,
    digest: String,
    size: u64,
}

impl Ready {
    /// Verified in-memory `bytes` of the blob `digest`.
    ///
    /// Errors: `Io` creating `ingest/` or `blobs/<alg>/`.
    pub(crate) fn from_bytes(blobs: &Blobs, digest: &ValidDigest, bytes: Bytes) -> Result<Ready> {
        blobs.prepare_dirs(Some(digest))?;
        let size = bytes.len() as u64;
        Ok(Ready {
            staging: blobs.stage("push-"),
            bytes: Some(bytes),
            target: blobs.path(digest),
            durable: blobs.is_durable(),
            digest: digest.to_string(),
            size,
        })
    }

    /// The complete, verified (and, when durable, fsynced) staging file of `size` bytes of the
    /// blob `digest`.
    ///
    /// Errors: `Io` creating `blobs/<alg>/`.
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
            target: blobs.path(digest),
            durable: blobs.is_durable(),
            digest: digest.to_string(),
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
    /// Errors: `AlreadyExists` (naming the digest) when the blob's path exists; `Io`.
    pub(crate) fn publish(self) -> Result<()> {
        let staging = self.staging.path();
        if let Some(bytes) = &self.bytes {
            let mut file =
                fsutil::create_new(staging).map_err(|e| io_err("creating", staging, e))?;
            file.write_all(bytes)
                .map_err(|e| io_err("writing", staging, e))?;
            if self.durable {
                file.sync_all().map_err(|e| io_err("syncing", staging, e))?;
            }
        }
        link(staging, &self.target, self.durable, &self.digest)
    }
}

/// Links `staging` to `target` without replacing anything there; when `durable`, fsyncs the
/// directory of `target`. Blocking.
///
/// Errors: `AlreadyExists` (naming `digest`) when `target` exists; `Io`.
fn link(staging: &Path, target: &Path, durable: bool, digest: &str) -> Result<()> {
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
