//! How a [`crate::Store`] is opened.

use autosave::AutoSave;
use std::time::Duration;

/// The default [`StoreOptions::gc_grace`]: one hour.
///
/// An unreferenced blob is usually one whose manifest has not been pushed yet: a copy of a large
/// image into a shared layout pushes every layer first and the manifest last, which over a slow
/// link takes many minutes. An hour covers such copies with a wide margin, while a cache that
/// runs gc daily still reclaims everything older.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(60 * 60);

/// Options of [`crate::Store::open_with`]; build with `StoreOptions::default()` and the builder
/// methods.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    autosave: AutoSave,
    auto_gc: bool,
    durable: bool,
    gc_grace: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            autosave: AutoSave::Always,
            auto_gc: true,
            durable: true,
            gc_grace: DEFAULT_GC_GRACE,
        }
    }
}

impl StoreOptions {
    /// When `index.json` is written after a change (default [`AutoSave::Always`]). `delete`
    /// and `gc` always write `index.json` before they unlink anything, whatever the policy
    /// (pending changes are written with it).
    pub fn autosave(mut self, policy: AutoSave) -> Self {
        self.autosave = policy;
        self
    }

    /// Whether `delete` also removes referrers of deleted manifests and content left
    /// unreferenced and untagged (default true).
    pub fn auto_gc(mut self, on: bool) -> Self {
        self.auto_gc = on;
        self
    }

    /// Whether every commit fsyncs the file and its directory (default true). Without it a
    /// crash of the machine (not of the process) can lose recent writes, and can leave
    /// `index.json` empty (it is replaced by swapping in a new file whose data may not have
    /// reached the disk); for throwaway caches and like-for-like benchmarks against stores that
    /// never fsync. Without it, writes of blobs and of an `index.json` up to 64 KiB run on the
    /// calling thread rather than on the blocking pool (as reads up to 64 KiB always do).
    pub fn durable(mut self, on: bool) -> Self {
        self.durable = on;
        self
    }

    /// Unreferenced blobs and `ingest/` temp files younger than this are spared by `gc`,
    /// because another process may be about to reference them (default [`DEFAULT_GC_GRACE`]).
    /// A push that finds its blob already stored makes the file young again, and this store's
    /// own `gc` also keeps what its pushes, commits and `exists` touched within the period.
    ///
    /// It also bounds what a delete's cascade spares: a blob touched by a push (stored or found
    /// already there), a commit or an `exists` that found it, after the deleted manifest was
    /// pushed and less than this ago, is left to `gc` (an image being copied in still needs
    /// it). With zero, nothing is spared: tasks of one process that push an image sharing
    /// blobs with one being deleted race, and must order themselves.
    pub fn gc_grace(mut self, grace: Duration) -> Self {
        self.gc_grace = grace;
        self
    }

    /// The autosave policy, as set by [`StoreOptions::autosave`].
    pub fn autosave_policy(&self) -> AutoSave {
        self.autosave
    }

    /// Whether delete cascades, as set by [`StoreOptions::auto_gc`].
    pub fn is_auto_gc(&self) -> bool {
        self.auto_gc
    }

    /// Whether commits fsync, as set by [`StoreOptions::durable`].
    pub fn is_durable(&self) -> bool {
        self.durable
    }

    /// The gc grace period, as set by [`StoreOptions::gc_grace`].
    pub fn gc_grace_period(&self) -> Duration {
        self.gc_grace
    }
}
