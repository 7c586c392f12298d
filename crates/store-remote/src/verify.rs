//! A blob body checked against its size and digest while it streams, the hashing done on a
//! blocking thread beside the reader so that the copy into a destination (a layout store
//! writing a file) runs on the other core meanwhile.

use crate::pieces::Pieces;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io;
use store_core::content::ChunkStream;
use store_core::digest::ValidDigest;
use store_core::Error;
use tokio::sync::mpsc::Sender;
use tokio::task::JoinHandle;

/// How many pieces may wait for the hashing thread before the reader waits for it.
const QUEUE: usize = 4;

struct State<S> {
    body: S,
    pieces: Pieces,
    /// What did not fit into the last piece.
    rest: Bytes,
    ended: bool,
    tx: Option<Sender<Bytes>>,
    hashing: Option<JoinHandle<String>>,
    digest: ValidDigest,
    size: u64,
    seen: u64,
}

fn mismatch(digest: &ValidDigest, reason: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, Error::mismatch(digest, reason))
}

impl<S> State<S>
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    /// The next piece of the body, hashed meanwhile; `None` at the end of the body.
    async fn next_piece(&mut self) -> io::Result<Option<Bytes>> {
        while !self.pieces.is_full() {
            if self.rest.is_empty() {
                if self.ended {
                    break;
                }
                match self.body.next().await {
                    Some(Ok(chunk)) => {
                        self.seen += chunk.len() as u64;
                        if self.seen > self.size {
                            let reason = format!("more than the expected {} bytes", self.size);
                            return Err(mismatch(&self.digest, reason));
                        }
                        self.rest = chunk;
                    }
                    Some(Err(err)) => return Err(io::Error::other(err.without_url())),
                    None => self.ended = true,
                }
            }
            let chunk = std::mem::take(&mut self.rest);
            self.rest = self.pieces.fill(chunk);
        }
        let Some(piece) = self.pieces.take() else {
            return Ok(None);
        };
        let sent = match &self.tx {
            Some(tx) => tx.send(piece.clone()).await.is_ok(),
            None => false,
        };
        if !sent {
            return Err(io::Error::other("the hashing thread stopped"));
        }
        Ok(Some(piece))
    }

    /// At the end of the body: `Ok` only when exactly `size` bytes hashed to `digest`.
    async fn check_end(&mut self) -> io::Result<()> {
        if self.seen < self.size {
            let reason = format!(
                "ended after {} of the expected {} bytes",
                self.seen, self.size
            );
            return Err(mismatch(&self.digest, reason));
        }
        self.tx = None;
        let actual = match self.hashing.take() {
            Some(handle) => handle.await.unwrap_or_default(),
            None => String::new(),
        };
        if actual != self.digest.as_str() {
            let reason = format!("the content's digest is {actual}");
            return Err(mismatch(&self.digest, reason));
        }
        Ok(())
    }
}

/// The bytes of `body` in pieces (see [`crate::pieces`]), failing (with an `io::Error` carrying
/// [`Error::Mismatch`]) as soon as more than `size` bytes come, or in place of the end when
/// fewer came or they do not hash to `digest`. The end is reported only once the hash matched.
pub(crate) fn verified<S>(body: S, digest: ValidDigest, size: u64) -> ChunkStream
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let algorithm = digest.algorithm();
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = algorithm.hasher();
        while let Some(piece) = rx.blocking_recv() {
            hasher.update(&piece);
        }
        hasher.finish()
    });
    let state = State {
        body,
        pieces: Pieces::default(),
        rest: Bytes::new(),
        ended: false,
        tx: Some(tx),
        hashing: Some(hashing),
        digest,
        size,
        seen: 0,
    };
    let stream = futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        match state.next_piece().await {
            Ok(Some(piece)) => Some((Ok(piece), Some(state))),
            Ok(None) => match state.check_end().await {
                Ok(()) => None,
                Err(err) => Some((Err(err), None)),
            },
            Err(err) => Some((Err(err), None)),
        }
    });
    Box::pin(stream)
}
