//! Copying a response's chunks into pieces of [`PIECE_BYTES`] whose buffers are reused.
//!
//! The HTTP client reads the socket into buffers of its own and hands out slices of them. A
//! slice that is kept (queued for the hashing thread, then for a file writer) keeps its buffer
//! alive, so the client allocates fresh ones, and the allocator hands memory back to the system
//! and faults it in again: on a 1 GiB pull that cost more CPU than a copy. Copying each chunk
//! into a piece frees the client's buffer at once (it reads into the same memory again), and
//! a piece's buffer goes back to its [`Pool`] when the last holder drops it.

use bytes::Bytes;
use std::sync::{Arc, Mutex};

/// The size of a piece: big enough that one hand-off per piece costs nothing next to hashing it.
pub(crate) const PIECE_BYTES: usize = 1 << 20;

/// Buffers kept for reuse; more than the pieces in flight at once are dropped.
const KEPT: usize = 16;

/// Buffers of [`PIECE_BYTES`] returned by dropped pieces, for the next ones.
#[derive(Default)]
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl Pool {
    fn get(&self) -> Vec<u8> {
        let reused = self.free.lock().ok().and_then(|mut free| free.pop());
        reused.unwrap_or_else(|| Vec::with_capacity(PIECE_BYTES))
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        if let Ok(mut free) = self.free.lock() {
            if free.len() < KEPT {
                free.push(buf);
            }
        }
    }
}

/// A filled buffer lent out as [`Bytes`]; back to the pool when dropped.
struct Piece {
    buf: Vec<u8>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Piece {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Piece {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

/// Gathers chunks into pieces of at most [`PIECE_BYTES`].
#[derive(Default)]
pub(crate) struct Pieces {
    pool: Arc<Pool>,
    current: Vec<u8>,
}

impl Pieces {
    /// Copies what fits of `chunk` into the current piece and returns the rest (empty when
    /// all of it fit).
    pub(crate) fn fill(&mut self, chunk: Bytes) -> Bytes {
        if self.current.capacity() == 0 {
            self.current = self.pool.get();
        }
        let n = (PIECE_BYTES - self.current.len()).min(chunk.len());
        self.current.extend_from_slice(&chunk[..n]);
        chunk.slice(n..)
    }

    /// Whether the current piece is complete.
    pub(crate) fn is_full(&self) -> bool {
        self.current.len() >= PIECE_BYTES
    }

    /// The current piece, if it holds anything; the next [`Pieces::fill`] starts a new one.
    pub(crate) fn take(&mut self) -> Option<Bytes> {
        if self.current.is_empty() {
            return None;
        }
        Some(Bytes::from_owner(Piece {
            buf: std::mem::take(&mut self.current),
            pool: Arc::clone(&self.pool),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_come_out_in_order_in_pieces_of_the_piece_size() {
        let data: Vec<u8> = (0..(PIECE_BYTES * 2 + 12_345))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut pieces = Pieces::default();
        let mut out = Vec::new();
        for chunk in data.chunks(300_000) {
            let mut rest = Bytes::copy_from_slice(chunk);
            while !rest.is_empty() {
                rest = pieces.fill(rest);
                if pieces.is_full() {
                    let piece = pieces.take().unwrap();
                    assert_eq!(piece.len(), PIECE_BYTES);
                    out.push(piece);
                }
            }
        }
        out.extend(pieces.take());
        assert_eq!(out.len(), 3);
        assert_eq!(out.concat(), data);
        assert!(pieces.take().is_none(), "nothing is left once taken");
    }

    #[test]
    fn a_dropped_piece_lends_its_buffer_to_the_next() {
        let mut pieces = Pieces::default();
        let rest = pieces.fill(Bytes::from_static(b"first"));
        assert!(rest.is_empty());
        let first = pieces.take().unwrap();
        let address = first.as_ptr();
        let kept = first.clone();
        drop(first);
        assert_eq!(&kept[..], b"first", "a clone keeps the piece alive");
        drop(kept);
        let _ = pieces.fill(Bytes::from_static(b"second"));
        let second = pieces.take().unwrap();
        assert_eq!(&second[..], b"second");
        assert_eq!(second.as_ptr(), address, "the buffer was reused");
    }
}
