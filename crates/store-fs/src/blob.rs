//! Blob files: verified streaming ingest into `ingest/`, no-clobber publish into
//! `blobs/<alg>/<hex>`, verified reads, stat and removal.
//!
//! A blob becomes visible only by a hard link made after its size and digest were checked (and,
//! when durable, after the file was fsynced); the link is the arbiter between concurrent pushers
//! of one digest. A guard deletes the staging file on every early exit, including the push
//! future being dropped, so nothing partial is ever left under `blobs/` or in `ingest/`.

use crate::chunks::{ChunkReader, CHUNK, DEPTH};
use crate::fsutil;
use crate::layout::Layout;
use bytes::{Bytes, BytesMut};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use store_core::content::{BoxReader, VerifyReader};
use store_core::digest::ValidDigest;
use store_core::{error_from_io, Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Content up to this size is read into memory, verified, and written in one blocking call;
/// larger content streams through a writer thread in [`CHUNK`]s.
pub(crate) const SMALL: u64 = 256 << 10;

/// Content up to this size is read, and (when not durable) written, on the calling thread; see
/// [`runs_inline`].
pub(crate) const INLINE: u64 = 64 << 10;

/// The blob half of a layout.
#[derive(Debug)]
pub(crate) struct Blobs {
    layout: Layout,
    durable: bool,
    ingest_ready: AtomicBool,
}

/// Removes a staging file when dropped, unless disarmed.
struct StagingGuard {
    path: Option<PathBuf>,
}

impl StagingGuard {
    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for StagingGuard {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = fs::remove_file(path);
        }
    }
}

fn io_err(what: &str, path: &Path, e: io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

impl Blobs {
    pub(crate) fn new(layout: Layout, durable: bool) -> Self {
        Blobs {
            layout,
            durable,
            ingest_ready: AtomicBool::new(false),
        }
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn path(&self, digest: &ValidDigest) -> PathBuf {
        self.layout.blob_path(digest)
    }

    /// The size of the stored blob, or `None` when there is none (a symbolic link or anything
    /// else that is not a regular file does not count). A single `lstat`: cheap enough to run
    /// on the async thread.
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

    /// Creates `ingest/` and `blobs/<alg>/` once per store.
    fn prepare_dirs(&self, digest: &ValidDigest) -> Result<()> {
        let alg_dir = self.layout.algorithm_dir(digest.algorithm().name());
        if !self.ingest_ready.load(Ordering::Relaxed) {
            let ingest = self.layout.ingest_dir();
            fsutil::ensure_dir(&ingest, self.durable)
                .map_err(|e| io_err("creating", &ingest, e))?;
            self.ingest_ready.store(true, Ordering::Relaxed);
        }
        if !alg_dir.is_dir() {
            fsutil::ensure_dir(&alg_dir, self.durable)
                .map_err(|e| io_err("creating", &alg_dir, e))?;
        }
        Ok(())
    }

    /// Reads `content` into memory, checking it against `digest` and `size`.
    ///
    /// Errors: `Mismatch` for short, long or wrong content; `Io` from the reader.
    pub(crate) async fn read_verified(
        digest: &ValidDigest,
        size: u64,
        content: BoxReader,
    ) -> Result<Bytes> {
        let mut reader = VerifyReader::with_digest(content, digest.clone(), size);
        let mut out = Vec::with_capacity(size.min(SMALL) as usize);
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| error_from_io(e, format!("reading the content of {digest}")))?;
        Ok(Bytes::from(out))
    }

    /// Publishes verified `bytes` as the blob `digest`.
    ///
    /// Errors: `AlreadyExists` when another writer published it first; `Io`.
    pub(crate) async fn commit_bytes(&self, digest: &ValidDigest, bytes: Bytes) -> Result<()> {
        self.prepare_dirs(digest)?;
        let staging = self.layout.ingest_dir().join(fsutil::unique_name("push-"));
        let target = self.path(digest);
        let durable = self.durable;
        let digest_text = digest.to_string();
        if runs_inline(bytes.len() as u64, durable) {
            return commit_file(&staging, &target, &bytes, durable, &digest_text);
        }
        // One blocking call does the whole publish; if the caller goes away meanwhile it still
        // runs to the end and cleans up after itself.
        spawn_blocking(move || commit_file(&staging, &target, &bytes, durable, &digest_text)).await
    }

    /// Streams `content` into a staging file while hashing it on another thread, checks size,
    /// trailing data and digest, then publishes it. Memory stays bounded by a few [`CHUNK`]s.
    ///
    /// Errors: `Mismatch`, `AlreadyExists`, `Io` (a full disk included); the staging file is
    /// removed in every case, and when the future is dropped.
    pub(crate) async fn ingest_stream(
        &self,
        digest: &ValidDigest,
        size: u64,
        mut content: BoxReader,
    ) -> Result<()> {
        self.prepare_dirs(digest)?;
        let staging = self.layout.ingest_dir().join(fsutil::unique_name("push-"));
        // Created here, synchronously, so that the guard exists before any await: a cancelled
        // push can never leave a file the guard does not know about.
        let file = fsutil::create_new(&staging).map_err(|e| io_err("creating", &staging, e))?;
        let guard = StagingGuard {
            path: Some(staging.clone()),
        };
        let durable = self.durable;

        let (write_tx, mut write_rx) = mpsc::channel::<Bytes>(DEPTH);
        let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(DEPTH);
        let writer_path = staging.clone();
        let writer = tokio::task::spawn_blocking(move || -> Result<()> {
            let mut file = file;
            while let Some(chunk) = write_rx.blocking_recv() {
                file.write_all(&chunk)
                    .map_err(|e| io_err("writing", &writer_path, e))?;
            }
            if durable {
                file.sync_all()
                    .map_err(|e| io_err("syncing", &writer_path, e))?;
            }
            Ok(())
        });
        let mut hasher = digest.algorithm().hasher();
        let hashing = tokio::task::spawn_blocking(move || {
            while let Some(chunk) = hash_rx.blocking_recv() {
                hasher.update(&chunk);
            }
            hasher.finish()
        });

        let mut seen: u64 = 0;
        let read_result: Result<()> = async {
            loop {
                let want = (size - seen).min(CHUNK as u64) as usize;
                if want == 0 {
                    break;
                }
                let mut buf = BytesMut::with_capacity(want);
                while buf.len() < want {
                    let mut limited = (&mut content).take((want - buf.len()) as u64);
                    let n = limited.read_buf(&mut buf).await.map_err(|e| {
                        error_from_io(e, format!("reading the content of {digest}"))
                    })?;
                    if n == 0 {
                        break;
                    }
                }
                if buf.is_empty() {
                    break;
                }
                seen += buf.len() as u64;
                let chunk = buf.freeze();
                if hash_tx.send(chunk.clone()).await.is_err() || write_tx.send(chunk).await.is_err()
                {
                    // The writer stopped early: its own error says why.
                    break;
                }
            }
            Ok(())
        }
        .await;
        drop(write_tx);
        drop(hash_tx);
        let written = writer
            .await
            .map_err(|e| Error::io("staging writer", io::Error::other(e)))?;
        let actual = hashing
            .await
            .map_err(|e| Error::io("hashing", io::Error::other(e)))?;
        read_result?;
        written?;
        if seen < size {
            return Err(Error::mismatch(
                digest,
                format!("ended after {seen} of the expected {size} bytes"),
            ));
        }
        if has_trailing_data(&mut content).await? {
            return Err(Error::mismatch(
                digest,
                format!("trailing data after the expected {size} bytes"),
            ));
        }
        if actual != digest.as_str() {
            return Err(Error::mismatch(
                digest,
                format!("the content's digest is {actual}"),
            ));
        }
        let target = self.path(digest);
        let digest_text = digest.to_string();
        let result =
            spawn_blocking(move || publish(&staging, &target, durable, &digest_text)).await;
        // `publish` linked the file (or failed); the guard removes the staging name either way.
        drop(guard);
        result
    }

    /// Opens the blob for a verified read.
    ///
    /// Errors: `NotFound`; `Mismatch` when the file's size differs from `size`;
    /// `InvalidLayout` when the path is a symbolic link (never followed); `Io`.
    pub(crate) async fn open(&self, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
        let path = self.path(digest);
        let digest_text = digest.to_string();
        let inner: Box<dyn AsyncRead + Send + Unpin> = if size <= INLINE {
            // A few syscalls on cached metadata: cheaper here than two thread switches.
            let bytes = read_small(&path, &digest_text, digest, size)?;
            Box::new(io::Cursor::new(bytes))
        } else {
            let (file, actual) = spawn_blocking(move || {
                let file = open_blob(&path, &digest_text)?;
                let len = file
                    .metadata()
                    .map_err(|e| io_err("inspecting", &path, e))?
                    .len();
                Ok((file, len))
            })
            .await?;
            check_size(digest, actual, size)?;
            if size <= SMALL {
                let path = self.path(digest);
                let bytes = spawn_blocking(move || {
                    let mut file = file;
                    let mut out = Vec::with_capacity(size as usize);
                    file.read_to_end(&mut out)
                        .map_err(|e| io_err("reading", &path, e))?;
                    Ok(out)
                })
                .await?;
                Box::new(io::Cursor::new(bytes))
            } else {
                Box::new(ChunkReader::spawn(file))
            }
        };
        Ok(Box::pin(VerifyReader::with_digest(
            inner,
            digest.clone(),
            size,
        )))
    }

    /// Reads a whole blob of at most `limit` bytes, verified.
    ///
    /// Errors: those of [`Blobs::open`], `SizeExceedsLimit`.
    pub(crate) async fn read_all(&self, digest: &ValidDigest, size: u64) -> Result<Bytes> {
        let reader = self.open(digest, size).await?;
        let mut out = Vec::with_capacity(size.min(SMALL) as usize);
        let mut reader = reader;
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| error_from_io(e, format!("reading {digest}")))?;
        Ok(Bytes::from(out))
    }

    /// Removes the blob files of `digests`, [`REMOVALS_AT_ONCE`] at a time; one result per
    /// digest, in order: `NotFound` or `Io` for a file that could not be removed. Freeing a file's blocks can wait for the disk
    /// (a `discard` mount trims them synchronously), and unlinks on separate threads overlap
    /// those waits.
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

    /// fsyncs `blobs/<alg>/` for every algorithm directory present (after removals).
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

/// Whether a file operation on `size` bytes runs on the calling (async) thread rather than on the
/// blocking pool: reads up to [`INLINE`], and writes up to [`INLINE`] when nothing is fsynced.
/// Such an operation is a handful of syscalls on cached metadata (tens of µs), cheaper than the
/// two thread switches a trip through the blocking pool costs; an fsync can take milliseconds
/// and always goes to the pool.
fn runs_inline(size: u64, durable: bool) -> bool {
    size <= INLINE && !durable
}

/// Fails with `Mismatch` when the stored size differs from the descriptor's.
fn check_size(digest: &ValidDigest, actual: u64, size: u64) -> Result<()> {
    if actual != size {
        return Err(Error::mismatch(
            digest,
            format!("the stored blob has {actual} bytes, the descriptor says {size}"),
        ));
    }
    Ok(())
}

/// Opens, checks the size of and reads a blob of `size` bytes (small: read whole). Blocking.
fn read_small(path: &Path, digest_text: &str, digest: &ValidDigest, size: u64) -> Result<Vec<u8>> {
    let mut file = open_blob(path, digest_text)?;
    let actual = file
        .metadata()
        .map_err(|e| io_err("inspecting", path, e))?
        .len();
    check_size(digest, actual, size)?;
    let mut out = Vec::with_capacity(size as usize);
    file.read_to_end(&mut out)
        .map_err(|e| io_err("reading", path, e))?;
    Ok(out)
}

/// Writes `bytes` to a new staging file, fsyncs it when `durable`, and publishes it at `target`;
/// the staging name is removed in every case. Blocking.
fn commit_file(
    staging: &Path,
    target: &Path,
    bytes: &[u8],
    durable: bool,
    digest_text: &str,
) -> Result<()> {
    let mut guard = StagingGuard {
        path: Some(staging.to_path_buf()),
    };
    let mut file = fsutil::create_new(staging).map_err(|e| io_err("creating", staging, e))?;
    file.write_all(bytes)
        .map_err(|e| io_err("writing", staging, e))?;
    if durable {
        file.sync_all().map_err(|e| io_err("syncing", staging, e))?;
    }
    drop(file);
    let result = publish(staging, target, durable, digest_text);
    guard.disarm();
    let _ = fs::remove_file(staging);
    result
}

/// How many blob files [`Blobs::remove_many`] unlinks at once.
const REMOVALS_AT_ONCE: usize = 8;

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

/// Opens a blob file without following a symbolic link.
pub(crate) fn open_blob(path: &Path, digest: &str) -> Result<File> {
    match fsutil::open_nofollow(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::not_found(digest)),
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(Error::not_found(digest)),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => Err(Error::InvalidLayout {
            path: path.to_path_buf(),
            reason: format!(
                "the blob of {digest} is a symbolic link; it is never followed out of the layout"
            ),
        }),
        Err(e) => Err(io_err("opening", path, e)),
    }
}

/// Links `staging` to `target` without replacing anything there.
///
/// Errors: `AlreadyExists` when `target` exists; `Io`.
fn publish(staging: &Path, target: &Path, durable: bool, digest: &str) -> Result<()> {
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

async fn has_trailing_data(content: &mut BoxReader) -> Result<bool> {
    let mut probe = [0u8; 1];
    let n = content
        .read(&mut probe)
        .await
        .map_err(|e| error_from_io(e, "reading past the end of the content"))?;
    Ok(n > 0)
}

/// Runs `f` on the blocking pool and flattens a join failure into `Io`.
pub(crate) async fn spawn_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("a blocking file operation", io::Error::other(e)))?
}
