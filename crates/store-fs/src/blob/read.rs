//! Stored blobs on their way out: opened without following symbolic links, size-checked against
//! the descriptor, and wrapped in a reader that checks the digest, so callers never see
//! unverified bytes by accident.

use super::chunks::ChunkReader;
use super::{io_err, Blobs, INLINE_IO_LIMIT_BYTES, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil::{self, spawn_blocking};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use store_core::content::{BoxReader, VerifyReader};
use store_core::digest::ValidDigest;
use store_core::{error_from_io, Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Opens the blob `digest` of `size` bytes for a verified read: a small one is read whole (on
/// this thread up to [`INLINE_IO_LIMIT_BYTES`]), a big one streamed in large chunks from a
/// blocking thread.
///
/// Errors: `NotFound`; `Mismatch` when the file's size differs from `size` (or, while reading,
/// when the bytes differ from the digest); `InvalidLayout` when the path is a symbolic link
/// (never followed); `Io`.
pub(crate) async fn open(blobs: &Blobs, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
    let path = blobs.path(digest);
    let digest_text = digest.to_string();
    let inner: Box<dyn AsyncRead + Send + Unpin> = if size <= INLINE_IO_LIMIT_BYTES {
        // A few syscalls on cached metadata: cheaper here than two thread switches.
        let bytes = read_small(&path, &digest_text, digest, size)?;
        Box::new(io::Cursor::new(bytes))
    } else {
        let opened_path = path.clone();
        let (file, actual) = spawn_blocking(move || {
            let file = open_blob(&opened_path, &digest_text)?;
            let len = file
                .metadata()
                .map_err(|e| io_err("inspecting", &opened_path, e))?
                .len();
            Ok((file, len))
        })
        .await?;
        check_size(digest, actual, size)?;
        if size <= IN_MEMORY_LIMIT_BYTES {
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

/// Opens a blob file without following a symbolic link. Blocking.
///
/// Errors: `NotFound` (naming `digest`); `InvalidLayout` when the path is a symbolic link; `Io`.
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
