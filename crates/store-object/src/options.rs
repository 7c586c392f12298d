//! How a [`crate::Store`] behaves: autosave policy, auto GC, grace period, what it demands of
//! the service.

use autosave::AutoSave;
use std::time::Duration;

/// Unreferenced blobs and staged uploads younger than this are spared by `gc` (another machine
/// may be about to reference them). Longer than on disk: clocks of machines sharing a bucket
/// drift, and a large upload to a remote service takes minutes.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(60 * 60);

/// Options of [`crate::Store::open_with`]; `StoreOptions::default()` then the builder methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    autosave: AutoSave,
    auto_gc: bool,
    gc_grace: Duration,
    create: bool,
    last_writer_wins: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            autosave: AutoSave::Always,
            auto_gc: true,
            gc_grace: DEFAULT_GC_GRACE,
            create: true,
            last_writer_wins: false,
        }
    }
}

impl StoreOptions {
    /// When `index.json` is written (default [`AutoSave::Always`]).
    pub fn autosave(mut self, policy: AutoSave) -> Self {
        self.autosave = policy;
        self
    }

    /// Whether `delete` also removes what only the deleted node kept alive (default true).
    pub fn auto_gc(mut self, on: bool) -> Self {
        self.auto_gc = on;
        self
    }

    /// The grace period of `gc` (default [`DEFAULT_GC_GRACE`]), judged by the objects'
    /// last-modified time as the service reports it.
    pub fn gc_grace(mut self, grace: Duration) -> Self {
        self.gc_grace = grace;
        self
    }

    /// Whether opening a prefix that holds no layout creates one (default true). With false,
    /// opening it fails with `NotFound` naming the prefix's `oci-layout`.
    pub fn create(mut self, create: bool) -> Self {
        self.create = create;
        self
    }

    /// Opts into last-writer-wins on a service without atomic conditional writes (default
    /// false: opening refuses such a service). With it, `index.json` is overwritten without a
    /// version check: concurrent writers from several stores can lose each other's tags.
    pub fn last_writer_wins(mut self, on: bool) -> Self {
        self.last_writer_wins = on;
        self
    }

    /// The autosave policy.
    pub fn autosave_policy(&self) -> AutoSave {
        self.autosave
    }

    /// Whether delete cascades.
    pub fn is_auto_gc(&self) -> bool {
        self.auto_gc
    }

    /// The grace period of `gc`.
    pub fn gc_grace_period(&self) -> Duration {
        self.gc_grace
    }

    /// Whether a missing layout is created.
    pub fn creates(&self) -> bool {
        self.create
    }

    /// Whether last-writer-wins was opted into.
    pub fn is_last_writer_wins(&self) -> bool {
        self.last_writer_wins
    }
}
