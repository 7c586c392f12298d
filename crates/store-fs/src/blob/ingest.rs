//! Pushed content on its way in: read and verified against its descriptor (size, trailing data,
//! digest), kept in memory or staged in `ingest/`, then handed to [`super::publish`] as a
//! [`Ready`] blob. Small content is handled whole in memory; big content streams through a
//! writer thread and a hashing thread, so memory stays bounded by a few [`CHUNK_BYTES`] pieces.

use super::chunks::{CHUNKS_IN_FLIGHT, CHUNK_BYTES};
use super::publish::Ready;
use super::{io_err, Blobs, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil;
use bytes::{Bytes, BytesMut};
use std::io::{self, Write};
use store_core::content::{BoxReader, VerifyReader};
use store_core::digest::ValidDigest;
use store_core::{error_from_io, Error, Result};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

/// Who checks pushed content against its digest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Check {
    /// The store hashes what it reads.
    Hash,
    /// The reader checks itself against this very digest and size and fails its last read
    /// otherwise (see `store_core::content::Fetched`); the store still reads to the end.
    Reader,
}

/// Reads `content` into memory, checking it against `digest` and `size`.
///
/// Errors: `Mismatch` for short, long or wrong content; `Io` from the reader.
pub(crate) async fn read_verified(
    digest: &ValidDigest,
    size: u64,
    content: BoxReader,
    check: Check,
) -> Result<Bytes> {
    let context = || format!("reading the content of {digest}");
    let mut out = Vec::with_capacity(size.min(IN_MEMORY_LIMIT_BYTES) as usize);
    match check {
        Check::Hash => {
            let mut reader = VerifyReader::with_digest(content, digest.clone(), size);
            reader
                .read_to_end(&mut out)
                .await
                .map_err(|e| error_from_io(e, context()))?;
        }
        Check::Reader => {
            // One byte over tells trailing data apart even from a reader that would not.
            content
                .take(size.saturating_add(1))
                .read_to_end(&mut out)
                .await
                .map_err(|e| error_from_io(e, context()))?;
            if out.len() as u64 != size {
                return Err(Error::mismatch(
                    digest,
                    format!("{} bytes arrived, {size} were expected", out.len()),
                ));
            }
        }
    }
    Ok(Bytes::from(out))
}

/// Streams `content` into a staging file while hashing it on another thread, and checks size,
/// trailing data and digest; returns the staging file, fsynced when durable, ready for its
/// publish step. Memory stays bounded by a few [`CHUNK_BYTES`] pieces. Holds no lock: a slow
/// reader delays nobody else.
///
/// Errors: `Mismatch`; `InvalidLayout` when `ingest/` or `blobs/<alg>/` is a symbolic link or
/// not a directory; `Io` (a full disk included); the staging file is removed in every case, and
/// when the future is dropped.
pub(crate) async fn ingest_stream(
    blobs: &Blobs,
    digest: &ValidDigest,
    size: u64,
    mut content: BoxReader,
    check: Check,
) -> Result<Ready> {
    blobs.prepare_dirs(Some(digest))?;
    // The guard exists before the file and before any await: a cancelled push can never leave
    // a file the guard does not know about, and gc never sweeps it meanwhile.
    let staging = blobs.stage("push-");
    let staging_path = staging.path();
    let file = fsutil::create_new_at(blobs.ingest_dir()?, staging.name())
        .map_err(|e| io_err("creating", &staging_path, e))?;
    let durable = blobs.is_durable();

    let (write_tx, mut write_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let writer_path = staging_path;
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
    // With `Check::Reader` there is no hashing thread: chunks go to the writer only.
    let (hash_tx, hashing) = match check {
        Check::Reader => (None, None),
        Check::Hash => {
            let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
            let mut hasher = digest.algorithm().hasher();
            let hashing = tokio::task::spawn_blocking(move || {
                while let Some(chunk) = hash_rx.blocking_recv() {
                    hasher.update(&chunk);
                }
                hasher.finish()
            });
            (Some(hash_tx), Some(hashing))
        }
    };

    let mut seen: u64 = 0;
    let read_result: Result<()> = async {
        loop {
            let want = (size - seen).min(CHUNK_BYTES as u64) as usize;
            if want == 0 {
                break;
            }
            let mut buf = BytesMut::with_capacity(want);
            while buf.len() < want {
                let mut limited = (&mut content).take((want - buf.len()) as u64);
                let n = limited
                    .read_buf(&mut buf)
                    .await
                    .map_err(|e| error_from_io(e, format!("reading the content of {digest}")))?;
                if n == 0 {
                    break;
                }
            }
            if buf.is_empty() {
                break;
            }
            seen += buf.len() as u64;
            let chunk = buf.freeze();
            let hash_stopped = match &hash_tx {
                Some(hash_tx) => hash_tx.send(chunk.clone()).await.is_err(),
                None => false,
            };
            if hash_stopped || write_tx.send(chunk).await.is_err() {
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
    let actual = match hashing {
        Some(hashing) => Some(
            hashing
                .await
                .map_err(|e| Error::io("hashing", io::Error::other(e)))?,
        ),
        None => None,
    };
    read_result?;
    written?;
    if seen < size {
        return Err(Error::mismatch(
            digest,
            format!("ended after {seen} of the expected {size} bytes"),
        ));
    }
    // With `Check::Reader` this read is the one where the reader checks its digest.
    if has_trailing_data(&mut content).await? {
        return Err(Error::mismatch(
            digest,
            format!("trailing data after the expected {size} bytes"),
        ));
    }
    if let Some(actual) = actual.filter(|actual| actual != digest.as_str()) {
        return Err(Error::mismatch(
            digest,
            format!("the content's digest is {actual}"),
        ));
    }
    Ready::from_file(blobs, digest, staging, size)
}

async fn has_trailing_data(content: &mut BoxReader) -> Result<bool> {
    let mut probe = [0u8; 1];
    let n = content
        .read(&mut probe)
        .await
        .map_err(|e| error_from_io(e, "reading past the end of the content"))?;
    Ok(n > 0)
}
