//! Moving big blobs between the async world and the blocking pool in large chunks, so that a
//! 1 GiB read or write costs a few thousand channel hops instead of one pool hop per small buffer.

use bytes::{Buf, Bytes};
use std::io::{self, Read};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

/// The chunk size of big reads and writes: large enough to stay near the SHA-256 limit.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight per channel; with [`CHUNK_BYTES`] this bounds the memory of one transfer.
pub(crate) const CHUNKS_IN_FLIGHT: usize = 4;

/// An [`AsyncRead`] fed by a blocking thread that reads `file` in [`CHUNK_BYTES`]s. Dropping the
/// reader stops the thread at its next chunk.
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
    done: bool,
}

impl ChunkReader {
    /// Starts reading `file` (a blob file, or a `Take` of one entry of a tar) on the blocking
    /// pool, until it ends.
    pub(crate) fn spawn<R: Read + Send + 'static>(mut file: R) -> ChunkReader {
        let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
        tokio::task::spawn_blocking(move || loop {
            // Read into spare capacity: zeroing each chunk first would cost a pass over every
            // byte (retrying on `Interrupted` is `read_to_end`'s).
            let mut buf = Vec::with_capacity(CHUNK_BYTES);
            match (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut buf) {
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                Ok(0) => return,
                Ok(filled) => {
                    if tx.blocking_send(Ok(Bytes::from(buf))).is_err() || filled < CHUNK_BYTES {
                        return;
                    }
                }
            }
        });
        ChunkReader {
            rx,
            current: Bytes::new(),
            done: false,
        }
    }
}

impl AsyncRead for ChunkReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.current.is_empty() {
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match ready!(self.rx.poll_recv(cx)) {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    self.done = true;
                    return Poll::Ready(Err(e));
                }
                None => self.done = true,
            }
        }
        let n = self.current.len().min(buf.remaining());
        buf.put_slice(&self.current[..n]);
        self.current.advance(n);
        Poll::Ready(Ok(()))
    }
}
