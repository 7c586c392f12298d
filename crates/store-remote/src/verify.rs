//! A blob body checked against its size and digest while it streams, the hashing done on a
//! blocking thread beside the reader so that a caller that hashes again (a layout store
//! verifying what it writes) does not halve the throughput on a single core.

use bytes::Bytes;
use futures::{Stream, StreamExt};
use std::io;
use store_core::content::BoxReader;
use store_core::digest::ValidDigest;
use store_core::Error;
use tokio_util::io::StreamReader;

/// How many chunks may wait for the hashing thread before the reader waits for it.
const QUEUE: usize = 32;

/// A reader over `body` that yields its bytes as they arrive and fails (with an `io::Error`
/// carrying [`Error::Mismatch`]) as soon as more than `size` bytes come, or at the end when
/// fewer came or they do not hash to `digest`. The end is reported only once the hash matched.
pub(crate) fn verified<S>(body: S, digest: ValidDigest, size: u64) -> BoxReader
where
    S: Stream<Item = Result<Bytes, reqwest::Error>> + Send + Unpin + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(QUEUE);
    let algorithm = digest.algorithm();
    let hashing = tokio::task::spawn_blocking(move || {
        let mut hasher = algorithm.hasher();
        while let Some(chunk) = rx.blocking_recv() {
            hasher.update(&chunk);
        }
        hasher.finish()
    });
    struct State<S> {
        body: S,
        tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
        hashing: Option<tokio::task::JoinHandle<String>>,
        digest: ValidDigest,
        size: u64,
        seen: u64,
    }
    let mismatch = |digest: &ValidDigest, reason: String| {
        io::Error::new(io::ErrorKind::InvalidData, Error::mismatch(digest, reason))
    };
    let state = State {
        body,
        tx: Some(tx),
        hashing: Some(hashing),
        digest,
        size,
        seen: 0,
    };
    let stream = futures::stream::unfold(Some(state), move |state| async move {
        let mut state = state?;
        match state.body.next().await {
            Some(Ok(chunk)) => {
                state.seen += chunk.len() as u64;
                if state.seen > state.size {
                    let err = mismatch(
                        &state.digest,
                        format!("more than the expected {} bytes", state.size),
                    );
                    return Some((Err(err), None));
                }
                let sent = match &state.tx {
                    Some(tx) => tx.send(chunk.clone()).await.is_ok(),
                    None => false,
                };
                if !sent {
                    let err = io::Error::other("the hashing thread stopped");
                    return Some((Err(err), None));
                }
                Some((Ok(chunk), Some(state)))
            }
            Some(Err(err)) => Some((Err(io::Error::other(err.without_url())), None)),
            None => {
                if state.seen < state.size {
                    let err = mismatch(
                        &state.digest,
                        format!(
                            "ended after {} of the expected {} bytes",
                            state.seen, state.size
                        ),
                    );
                    return Some((Err(err), None));
                }
                state.tx = None;
                let actual = match state.hashing.take() {
                    Some(handle) => handle.await.unwrap_or_default(),
                    None => String::new(),
                };
                if actual != state.digest.as_str() {
                    let err = mismatch(&state.digest, format!("the content's digest is {actual}"));
                    return Some((Err(err), None));
                }
                None
            }
        }
    });
    Box::pin(StreamReader::new(Box::pin(stream)))
}
