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

/// Reads `content` into memory, checking it against `digest` and `size`.
///
/// Errors: `Mismatch` for short, long or wrong content; `Io` from the reader.
pub(crate) async fn read_verified(
    digest: &ValidDigest,
    size: u64,
    content: BoxReader,
) -> Result<Bytes> {
    let mut reader = VerifyReader::with_digest(content, digest.clone(), size);
    let mut out = Vec::with_capacity(size.min(IN_MEMORY_LIMIT_BYTES) as usize);
    reader
        .read_to_end(&mut out)
        .await
        .map_err(|e| error_from_io(e, format!("reading the content of {digest}")))?;
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
    let (hash_tx, mut hash_rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
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
            if hash_tx.send(chunk.clone()).await.is_err() || write_tx.send(chunk).await.is_err() {
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
