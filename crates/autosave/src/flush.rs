//! What the engine flushes.

use async_trait::async_trait;

/// Something whose pending changes can be written out, e.g. an in-memory index written to
/// `index.json`.
///
/// The engine calls [`flush`](Flush::flush) from its background task or from the task of a
/// caller awaiting a save, never two calls at once. The contract that makes group commit correct: the caller applies each change to its
/// in-memory state *before* telling the engine about it with
/// [`AutoSaver::changed`](crate::AutoSaver::changed). The engine reads its change counter just
/// before calling `flush`, so a flush that snapshots the state when it starts covers every change
/// counted so far.
#[async_trait]
pub trait Flush: Send + Sync + 'static {
    /// The error a failed flush returns. Many callers may share one failed flush, so the engine
    /// hands it to each of them as an `Arc<Self::Error>` inside [`Error::Flush`](crate::Error::Flush).
    type Error: Send + Sync + 'static;

    /// Writes a snapshot of everything changed so far.
    ///
    /// On error the engine keeps its state dirty: the changes this flush was meant to save are
    /// written by a later flush (the next change under `Always` or `Debounce`, or the next
    /// [`flush_now`](crate::AutoSaver::flush_now) / [`close`](crate::AutoSaver::close)).
    /// A panic here stops the engine: every waiter then gets [`Error::Stopped`](crate::Error::Stopped).
    async fn flush(&self) -> Result<(), Self::Error>;
}
