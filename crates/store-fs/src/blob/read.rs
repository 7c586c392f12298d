//! Stored blobs on their way out: opened without following symbolic links and without waiting on
//! special files (anything but a regular file is refused before a byte is read), size-checked
//! against the descriptor, and wrapped in a reader that checks the digest, so callers never see
//! unverified bytes by accident.

use super::chunks::{ChunkReader, CHUNK_BYTES};
use super::{io_err, Blobs, INLINE_IO_LIMIT_BYTES, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil::{self, spawn_blocking, Opened};
use crate::layout::{self, Create, Layout};
use async_trait::async_trait;
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use store_core::content::{BoxReader, VerifyReader};
use store_core::descriptor;
use store_core::digest::{Algorithm, ValidDigest};
use store_core::{error_from_io, Error, Fetcher, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Who reads a blob: the access time of its file records a caller's reads only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadFor {
    /// A caller's fetch: the file system records the access as it is set to (a cache pruner
    /// may go by it).
    Caller,
    /// The store's own reading (indexing the graph): no use of the content, so no access
    /// time is written where the file's owner allows (see [`fsutil::open_file_at_quietly`]).
    Store,
}

/// The store's own reads of blobs (indexing the graph) as a [`Fetcher`]: verified like a
/// caller's, without writing access times (see [`ReadFor::Store`]).
pub(crate) struct StoreReads<'a>(pub(crate) &'a Blobs);

#[async_trait]
impl Fetcher for StoreReads<'_> {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        open_for(self.0, &digest, target.size(), ReadFor::Store).await
    }
}

/// Opens the blob `digest` of `size` bytes for a caller's verified read: a small one is read
/// whole (on this thread up to [`INLINE_IO_LIMIT_BYTES`]), a big one streamed in large chunks
/// from a blocking thread.
///
/// Errors: `NotFound`; `Mismatch` when the file's size differs from `size` (or, while reading,
/// when the bytes differ from the digest); `InvalidLayout` when the path holds anything but a
/// regular file (a symbolic link, directory, FIFO, socket or device: never followed, never
/// read, and opening it never waits), or a layout directory is a link; `Io`.
pub(crate) async fn open(blobs: &Blobs, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
    open_for(blobs, digest, size, ReadFor::Caller).await
}

/// [`open`] for `reader`.
///
/// Errors: those of [`open`].
pub(crate) async fn open_for(
    blobs: &Blobs,
    digest: &ValidDigest,
    size: u64,
    reader: ReadFor,
) -> Result<BoxReader> {
    let inner: Box<dyn AsyncRead + Send + Unpin> = if size <= INLINE_IO_LIMIT_BYTES {
        // A few syscalls on cached metadata: cheaper here than two thread switches. Opening
        // cannot wait (`O_NONBLOCK`), and only a regular file is read.
        let bytes = read_small(blobs.layout(), digest, size, reader)?;
        Box::new(io::Cursor::new(bytes))
    } else {
        let layout = blobs.layout().clone();
        let opened = digest.clone();
        let (file, actual) =
            spawn_blocking(move || open_blob_for(&layout, &opened, reader)).await?;
        check_size(digest, actual, size)?;
        if size <= IN_MEMORY_LIMIT_BYTES {
            let path = blobs.path(digest);
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

/// [`open`], with a second handle on the blob's file when the blob is large enough to be worth
/// sharing rather than streaming (see [`super::share`]): what a copy to another layout offers.
///
/// Errors: those of [`open`]; `Io` duplicating the handle.
pub(crate) async fn open_shareable(
    blobs: &Blobs,
    digest: &ValidDigest,
    size: u64,
) -> Result<(BoxReader, Option<File>)> {
    if size <= IN_MEMORY_LIMIT_BYTES {
        return Ok((open(blobs, digest, size).await?, None));
    }
    let layout = blobs.layout().clone();
    let opened = digest.clone();
    let path = blobs.path(digest);
    let (file, actual, shared) = spawn_blocking(move || {
        let (file, actual) = open_blob(&layout, &opened)?;
        let shared = file
            .try_clone()
            .map_err(|e| io_err("duplicating the handle of", &path, e))?;
        Ok((file, actual, shared))
    })
    .await?;
    check_size(digest, actual, size)?;
    let reader = VerifyReader::with_digest(ChunkReader::spawn(file), digest.clone(), size);
    Ok((Box::pin(reader), Some(shared)))
}

/// The digest (`<algorithm>:<hex>`) of all of `file`, read from its start whatever its
/// position, and how many bytes it holds. Blocking.
///
/// Errors: those of reading it.
pub(crate) fn digest_of_file(file: &File, algorithm: Algorithm) -> io::Result<(String, u64)> {
    let mut hasher = algorithm.hasher();
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut offset = 0u64;
    loop {
        match file.read_at(&mut buf, offset) {
            Ok(0) => return Ok((hasher.finish(), offset)),
            Ok(n) => {
                hasher.update(&buf[..n]);
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Reads the whole blob `digest` of `size` bytes, verified. Callers bound `size` first.
///
/// Errors: those of [`open`].
pub(crate) async fn read_all(blobs: &Blobs, digest: &ValidDigest, size: u64) -> Result<Bytes> {
    let mut reader = open(blobs, digest, size).await?;
    let mut out = Vec::with_capacity(size.min(IN_MEMORY_LIMIT_BYTES) as usize);
    reader
        .read_to_end(&mut out)
        .await
        .map_err(|e| error_from_io(e, format!("reading {digest}")))?;
    Ok(Bytes::from(out))
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
fn read_small(
    layout: &Layout,
    digest: &ValidDigest,
    size: u64,
    reader: ReadFor,
) -> Result<Vec<u8>> {
    let (mut file, actual) = open_blob_for(layout, digest, reader)?;
    check_size(digest, actual, size)?;
    // Exactly the size fstat gave: one read, where `read_to_end` would add a size-hint fstat, a
    // seek and an end-of-file probe (a file cut short meanwhile is an error; the digest check
    // covers one that changed).
    let mut out = vec![0u8; size as usize];
    file.read_exact(&mut out)
        .map_err(|e| io_err("reading", &layout.blob_path(digest), e))?;
    Ok(out)
}

/// Opens the blob file of `digest` for reading, through the handle of `blobs/<alg>/`, and
/// returns it with its size. Never follows a symbolic link, never waits on a FIFO or device.
/// Blocking (briefly).
///
/// Errors: `NotFound` (naming `digest`); `InvalidLayout` naming the path when it holds anything
/// but a regular file, or naming a layout directory that is a link; `Io`.
pub(crate) fn open_blob(layout: &Layout, digest: &ValidDigest) -> Result<(File, u64)> {
    open_blob_for(layout, digest, ReadFor::Caller)
}

/// [`open_blob`] for `reader`.
///
/// Errors: those of [`open_blob`].
fn open_blob_for(layout: &Layout, digest: &ValidDigest, reader: ReadFor) -> Result<(File, u64)> {
    let Some(dir) = layout.algorithm_dir(digest.algorithm(), Create::No)? else {
        return Err(Error::not_found(digest));
    };
    let opened = match reader {
        ReadFor::Caller => fsutil::open_file_at(dir, digest.hex()),
        ReadFor::Store => fsutil::open_file_at_quietly(dir, digest.hex()),
    };
    match opened {
        Ok(Opened::File(file, len)) => Ok((file, len)),
        Ok(Opened::Not(kind)) => Err(layout::not_regular(&layout.blob_path(digest), kind)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::not_found(digest)),
        Err(e) => Err(io_err("opening", &layout.blob_path(digest), e)),
    }
}
