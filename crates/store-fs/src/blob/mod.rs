//! Blob files of one layout: where they live, whether they are there, and their removal. The
//! submodules move bytes in and out: [`ingest`] (verified writes into `ingest/`), [`publish`] (the
//! no-clobber link into `blobs/<alg>/<hex>`), [`read`] (verified reads), [`writer`] (content whose
//! digest is not known in advance) and [`chunks`] (big transfers off the async threads).
//!
//! A blob becomes visible only by a hard link made after its size and digest were checked (and,
//! when durable, after the file was fsynced); the link is the arbiter between concurrent pushers
//! of one digest. A guard deletes the staging file on every early exit, including the push
//! future being dropped, so nothing partial is ever left under `blobs/` or in `ingest/`.
//!
//! The submodules use [`Blobs`]; this module uses none of them.

pub(crate) mod chunks;
pub(crate) mod ingest;
pub(crate) mod publish;
pub(crate) mod read;
pub(crate) mod writer;

use crate::fsutil::{self, spawn_blocking};
use crate::layout::Layout;
use publish::{InFlight, Staging};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// Content up to this size is handled whole in memory: read, verified, and written or returned
/// in one blocking call. Larger content streams in [`chunks::CHUNK_BYTES`] pieces.
pub(crate) const IN_MEMORY_LIMIT_BYTES: u64 = 256 << 10;

/// Content up to this size is read, and (when not durable) written, on the calling thread; see
/// [`runs_inline`].
pub(crate) const INLINE_IO_LIMIT_BYTES: u64 = 64 << 10;

/// Whether a file operation on `size` bytes runs on the calling (async) thread rather than on the
/// blocking pool: reads up to [`INLINE_IO_LIMIT_BYTES`] (pass `durable: false`), and writes up to
/// it when nothing is fsynced. Such an operation is a handful of syscalls on cached metadata (tens
/// of µs), cheaper than the two thread switches a trip through the blocking pool costs; an fsync
/// can take milliseconds and always goes to the pool.
pub(crate) fn runs_inline(size: u64, durable: bool) -> bool {
    size <= INLINE_IO_LIMIT_BYTES && !durable
}

/// How many blob files [`Blobs::remove_many`] unlinks at once.
const REMOVALS_AT_ONCE: usize = 8;

/// The blob half of a layout.
#[derive(Debug)]
pub(crate) struct Blobs {
    layout: Layout,
    durable: bool,
    ingest_ready: AtomicBool,
    in_flight: Arc<InFlight>,
}

pub(crate) fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

impl Blobs {
    /// The blobs of `layout`; `durable` says whether writes and removals are fsynced.
    pub(crate) fn new(layout: Layout, durable: bool) -> Self {
        Blobs {
            layout,
            durable,
            ingest_ready: AtomicBool::new(false),
            in_flight: Arc::default(),
        }
    }

    /// The layout the blobs belong to.
    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Whether writes and removals are fsynced.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable
    }

    /// Where the blob `digest` lives.
    pub(crate) fn path(&self, digest: &ValidDigest) -> PathBuf {
        self.layout.blob_path(digest)
    }

    /// A fresh staging name in `ingest/`, in flight until the guard is dropped (the directory
    /// may not exist yet: see [`Blobs::prepare_dirs`]; the file is not created).
    pub(crate) fn stage(&self, prefix: &str) -> Staging {
        Staging::new(&self.layout.ingest_dir(), prefix, &self.in_flight)
    }

    /// Whether `name`, a file in `ingest/`, is a staging file of this store still in use (a
    /// push or a [`writer::BlobWriter`] in flight): never stale, whatever its age.
    pub(crate) fn is_in_flight(&self, name: &std::ffi::OsStr) -> bool {
        self.in_flight.contains(name)
    }

    /// The size of the stored blob, or `None` when there is none (a symbolic link or anything
    /// else that is not a regular file does not count). A single `lstat`: cheap enough to run
    /// on the async thread.
    ///
    /// Errors: `Io` when the path cannot be inspected.
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        let path = self.path(digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => Ok(Some(meta.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(io_err("inspecting", &path, e)),
        }
    }

    /// Creates `ingest/` (once per store) and, when `digest` is given, `blobs/<alg>/`.
    ///
    /// Errors: `Io` naming the directory.
    pub(crate) fn prepare_dirs(&self, digest: Option<&ValidDigest>) -> Result<()> {
        if !self.ingest_ready.load(Ordering::Relaxed) {
            let ingest = self.layout.ingest_dir();
            fsutil::ensure_dir(&ingest, self.durable)
                .map_err(|e| io_err("creating", &ingest, e))?;
            self.ingest_ready.store(true, Ordering::Relaxed);
        }
        if let Some(digest) = digest {
            let alg_dir = self.layout.algorithm_dir(digest.algorithm().name());
            if !alg_dir.is_dir() {
                fsutil::ensure_dir(&alg_dir, self.durable)
                    .map_err(|e| io_err("creating", &alg_dir, e))?;
            }
        }
        Ok(())
    }

    /// Removes the blob files of `digests`, [`REMOVALS_AT_ONCE`] at a time; one result per
    /// digest, in order: `NotFound` or `Io` for a file that could not be removed. Freeing a
    /// file's blocks can wait for the disk (a `discard` mount trims them synchronously), and
    /// unlinks on separate threads overlap those waits.
    pub(crate) async fn remove_many(&self, digests: &[ValidDigest]) -> Vec<Result<()>> {
        let mut results = Vec::with_capacity(digests.len());
        for group in digests.chunks(REMOVALS_AT_ONCE) {
            let tasks: Vec<_> = group
                .iter()
                .map(|digest| {
                    let path = self.path(digest);
                    let digest_text = digest.to_string();
                    tokio::task::spawn_blocking(move || remove_blob_file(&path, &digest_text))
                })
                .collect();
            for task in tasks {
                results.push(task.await.unwrap_or_else(|e| {
                    Err(Error::io("a blocking file operation", io::Error::other(e)))
                }));
            }
        }
        results
    }

    /// fsyncs `blobs/<alg>/` for every algorithm directory present (after removals); nothing
    /// when not durable.
    ///
    /// Errors: `Io` naming the directory.
    pub(crate) async fn sync_dirs(&self) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        let layout = self.layout.clone();
        spawn_blocking(move || {
            for algorithm in store_core::digest::Algorithm::ALL {
                let dir = layout.algorithm_dir(algorithm.name());
                if dir.is_dir() {
                    fsutil::sync_dir(&dir).map_err(|e| io_err("syncing", &dir, e))?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Removes the blob file at `path` (named `digest` in errors). Blocking.
///
/// Errors: `NotFound`, `Io`.
fn remove_blob_file(path: &Path, digest: &str) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::not_found(digest)),
        Err(e) => Err(io_err("removing", path, e)),
    }
}
