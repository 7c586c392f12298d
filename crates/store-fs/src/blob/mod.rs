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
pub(crate) mod share;
pub(crate) mod writer;

use crate::fsutil::{self, spawn_blocking, FileKind};
use crate::layout::{Create, Layout};
use publish::{InFlight, Staging};
use std::io;
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
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

    /// Where the blob `digest` lives, for messages.
    pub(crate) fn path(&self, digest: &ValidDigest) -> PathBuf {
        self.layout.blob_path(digest)
    }

    /// The staging names in use, shared with the [`Staging`] guards.
    pub(crate) fn in_flight(&self) -> Arc<InFlight> {
        Arc::clone(&self.in_flight)
    }

    /// A fresh staging name in `ingest/`, in flight until the guard is dropped (the directory
    /// may not exist yet: see [`Blobs::prepare_dirs`]; the file is not created).
    pub(crate) fn stage(&self, prefix: &str) -> Staging {
        Staging::new(&self.layout, prefix, &self.in_flight)
    }

    /// Whether `name`, a file in `ingest/`, is a staging file of this store still in use (a
    /// push or a [`writer::BlobWriter`] in flight): never stale, whatever its age.
    pub(crate) fn is_in_flight(&self, name: &std::ffi::OsStr) -> bool {
        self.in_flight.contains(name)
    }

    /// The size of the stored blob, or `None` when there is none (a symbolic link or anything
    /// else that is not a regular file does not count). A single `lstat` in the handle of
    /// `blobs/<alg>/`: cheap enough to run on the async thread.
    ///
    /// Errors: `InvalidLayout` when `blobs/` or `blobs/<alg>/` is a symbolic link or not a
    /// directory; `Io` when the path cannot be inspected.
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        Ok(self
            .lstat(digest)?
            .filter(|st| st.kind == FileKind::Regular)
            .map(|st| st.len))
    }

    /// When the stored blob (a regular file) was last modified; `None` when there is none.
    ///
    /// Errors: those of [`Blobs::stat`].
    pub(crate) fn modified(&self, digest: &ValidDigest) -> Result<Option<SystemTime>> {
        Ok(self
            .lstat(digest)?
            .filter(|st| st.kind == FileKind::Regular)
            .map(|st| st.modified))
    }

    /// What is at the blob's path, whatever it is; `None` when nothing is.
    fn lstat(&self, digest: &ValidDigest) -> Result<Option<fsutil::Stat>> {
        let Some(dir) = self.layout.algorithm_dir(digest.algorithm(), Create::No)? else {
            return Ok(None);
        };
        match fsutil::stat_at(dir, digest.hex()) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("inspecting", &self.path(digest), e)),
        }
    }

    /// The handle of `ingest/`, created when missing.
    ///
    /// Errors: `InvalidLayout` when it is a symbolic link or not a directory; `Io`.
    pub(crate) fn ingest_dir(&self) -> Result<BorrowedFd<'_>> {
        ingest_dir(&self.layout, self.durable)
    }

    /// Creates `ingest/` and, when `digest` is given, `blobs/<alg>/`, unless they exist (their
    /// handles are kept: after the first push this costs nothing).
    ///
    /// Errors: `InvalidLayout` naming a directory that is a symbolic link or not a directory;
    /// `Io` naming the directory.
    pub(crate) fn prepare_dirs(&self, digest: Option<&ValidDigest>) -> Result<()> {
        self.ingest_dir()?;
        if let Some(digest) = digest {
            algorithm_dir(&self.layout, digest, self.durable)?;
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
                    let layout = self.layout.clone();
                    let digest = digest.clone();
                    tokio::task::spawn_blocking(move || remove_blob_file(&layout, &digest))
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
    /// Errors: `InvalidLayout` naming a directory that is a symbolic link; `Io` naming the
    /// directory.
    pub(crate) async fn sync_dirs(&self) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        let layout = self.layout.clone();
        spawn_blocking(move || {
            for algorithm in store_core::digest::Algorithm::ALL {
                if let Some(dir) = layout.algorithm_dir(algorithm, Create::No)? {
                    fsutil::sync_fd(dir)
                        .map_err(|e| io_err("syncing", &layout.algorithm_path(algorithm), e))?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// The handle of `ingest/` of `layout`, created when missing (its parent fsynced when
/// `durable`).
///
/// Errors: `InvalidLayout` when it is a symbolic link or not a directory; `Io`.
pub(crate) fn ingest_dir(layout: &Layout, durable: bool) -> Result<BorrowedFd<'_>> {
    layout
        .ingest_dir(Create::Yes { durable })?
        .ok_or_else(|| Error::io("creating ingest/", io::Error::from(io::ErrorKind::NotFound)))
}

/// The handle of `blobs/<alg>/` for `digest`, created when missing.
///
/// Errors: `InvalidLayout` when it (or `blobs/`) is a symbolic link or not a directory; `Io`.
pub(crate) fn algorithm_dir<'a>(
    layout: &'a Layout,
    digest: &ValidDigest,
    durable: bool,
) -> Result<BorrowedFd<'a>> {
    layout
        .algorithm_dir(digest.algorithm(), Create::Yes { durable })?
        .ok_or_else(|| {
            Error::io(
                format!(
                    "creating {}",
                    layout.algorithm_path(digest.algorithm()).display()
                ),
                io::Error::from(io::ErrorKind::NotFound),
            )
        })
}

/// Removes the blob file of `digest`. Blocking.
///
/// Errors: `NotFound`, `InvalidLayout` (a linked `blobs/<alg>/`), `Io`.
fn remove_blob_file(layout: &Layout, digest: &ValidDigest) -> Result<()> {
    let Some(dir) = layout.algorithm_dir(digest.algorithm(), Create::No)? else {
        return Err(Error::not_found(digest));
    };
    match fsutil::unlink_at(dir, digest.hex()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::not_found(digest)),
        Err(e) => Err(io_err("removing", &layout.blob_path(digest), e)),
    }
}
