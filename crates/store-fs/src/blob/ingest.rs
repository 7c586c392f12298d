//! Pushed content on its way in: read and verified against its descriptor (size, trailing data,
//! digest), kept in memory or staged in `ingest/`, then handed to [`super::publish`] as a
//! [`Ready`] blob. Small content is handled whole in memory; big content streams through a
//! writer thread and (unless the content checks itself) a hashing thread, so memory stays
//! bounded by a few batches of about [`CHUNK_BYTES`].

use super::chunks::{CHUNKS_IN_FLIGHT, CHUNK_BYTES};
use super::publish::Ready;
use super::{io_err, Blobs, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::io::{self, IoSlice, Write};
use store_core::content::{BoxReader, ChunkStream, FetchedBody, VerifyReader};
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

/// Content to ingest: a reader, or the chunks it arrived in (written out as they are).
pub(crate) type Content = FetchedBody;

/// Chunks gathered for one write: up to [`CHUNK_BYTES`] (plus the last chunk) in at most this
/// many pieces, so that a stream of tiny chunks still batches into bounded memory.
const PIECES_PER_BATCH: usize = 256;

/// Where the bytes of an ingest come from, one batch at a time.
enum Source {
    Reader(BoxReader),
    Chunks(ChunkStream),
}

impl Source {
    /// The next batch, of about [`CHUNK_BYTES`] and never more than `remaining` bytes (a chunk
    /// that goes past `remaining` is trailing data: `Mismatch`); empty at the end.
    async fn next_batch(&mut self, digest: &ValidDigest, remaining: u64) -> Result<Vec<Bytes>> {
        let context = || format!("reading the content of {digest}");
        match self {
            Source::Reader(content) => {
                let want = remaining.min(CHUNK_BYTES as u64) as usize;
                let mut buf = BytesMut::with_capacity(want);
                while buf.len() < want {
                    let mut limited = content.take((want - buf.len()) as u64);
                    let n = limited
                        .read_buf(&mut buf)
                        .await
                        .map_err(|e| error_from_io(e, context()))?;
                    if n == 0 {
                        break;
                    }
                }
                Ok(if buf.is_empty() {
                    Vec::new()
                } else {
                    vec![buf.freeze()]
                })
            }
            Source::Chunks(chunks) => {
                let mut batch = Vec::new();
                let mut taken = 0u64;
                while taken < remaining.min(CHUNK_BYTES as u64) && batch.len() < PIECES_PER_BATCH {
                    let Some(chunk) = chunks.next().await else {
                        break;
                    };
                    let chunk = chunk.map_err(|e| error_from_io(e, context()))?;
                    taken += chunk.len() as u64;
                    if taken > remaining {
                        return Err(Error::mismatch(
                            digest,
                            "trailing data after the expected bytes".to_string(),
                        ));
                    }
                    if !chunk.is_empty() {
                        batch.push(chunk);
                    }
                }
                Ok(batch)
            }
        }
    }

    /// Whether anything comes after the expected bytes. For checking content this read is the
    /// one where it checks its digest, so its error is returned.
    async fn has_trailing_data(&mut self) -> Result<bool> {
        let context = "reading past the end of the content";
        match self {
            Source::Reader(content) => {
                let mut probe = [0u8; 1];
                let n = content
                    .read(&mut probe)
                    .await
                    .map_err(|e| error_from_io(e, context))?;
                Ok(n > 0)
            }
            Source::Chunks(chunks) => loop {
                match chunks.next().await {
                    None => return Ok(false),
                    Some(Ok(chunk)) if chunk.is_empty() => {}
                    Some(Ok(_)) => return Ok(true),
                    Some(Err(e)) => return Err(error_from_io(e, context)),
                }
            },
        }
    }
}

/// Writes every byte of `batch` with as few `writev` calls as the kernel allows.
fn write_batch(file: &mut std::fs::File, batch: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        match file.write_vectored(rest) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => IoSlice::advance_slices(&mut rest, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Streams `content` into a staging file while hashing it on another thread, and checks size,
/// trailing data and digest; returns the staging file, fsynced when durable, ready for its
/// publish step. Chunks are written as they came, without a copy; a reader is read in
/// [`CHUNK_BYTES`] pieces. Memory stays bounded by a few such batches. Holds no lock: a slow
/// reader delays nobody else.
///
/// Errors: `Mismatch`; `InvalidLayout` when `ingest/` or `blobs/<alg>/` is a symbolic link or
/// not a directory; `Io` (a full disk included); the staging file is removed in every case, and
/// when the future is dropped.
pub(crate) async fn ingest_stream(
    blobs: &Blobs,
    digest: &ValidDigest,
    size: u64,
    content: Content,
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
    let mut source = match content {
        FetchedBody::Reader(reader) => Source::Reader(reader),
        FetchedBody::Chunks(chunks) => Source::Chunks(chunks),
    };

    let (write_tx, mut write_rx) = mpsc::channel::<Vec<Bytes>>(CHUNKS_IN_FLIGHT);
    let writer_path = staging_path;
    let writer = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut file = file;
        while let Some(batch) = write_rx.blocking_recv() {
            write_batch(&mut file, &batch).map_err(|e| io_err("writing", &writer_path, e))?;
        }
        if durable {
            file.sync_all()
                .map_err(|e| io_err("syncing", &writer_path, e))?;
        }
        Ok(())
    });
    // With `Check::Reader` there is no hashing thread: batches go to the writer only.
    let (hash_tx, hashing) = match check {
        Check::Reader => (None, None),
        Check::Hash => {
            let (hash_tx, mut hash_rx) = mpsc::channel::<Vec<Bytes>>(CHUNKS_IN_FLIGHT);
            let mut hasher = digest.algorithm().hasher();
            let hashing = tokio::task::spawn_blocking(move || {
                while let Some(batch) = hash_rx.blocking_recv() {
                    for chunk in &batch {
                        hasher.update(chunk);
                    }
                }
                hasher.finish()
            });
            (Some(hash_tx), Some(hashing))
        }
    };

    let mut seen: u64 = 0;
    let read_result: Result<()> = async {
        loop {
            let remaining = size - seen;
            if remaining == 0 {
                break;
            }
            let batch = source.next_batch(digest, remaining).await?;
            if batch.is_empty() {
                break;
            }
            seen += batch.iter().map(|b| b.len() as u64).sum::<u64>();
            let hash_stopped = match &hash_tx {
                Some(hash_tx) => hash_tx.send(batch.clone()).await.is_err(),
                None => false,
            };
            if hash_stopped || write_tx.send(batch).await.is_err() {
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
    // With `Check::Reader` this read is the one where the content checks its digest.
    if source.has_trailing_data().await? {
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
