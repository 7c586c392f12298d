//! When to flush an index: the autosave policy engine of ocistore (which supports Unix only).
//! Users of ocistore meet only [`AutoSave`], as `ocistore::autosave::AutoSave`; the engine is
//! for store implementors, as `ocistore::implementors::autosave`.
//!
//! This crate knows nothing of OCI, JSON or files. It decides *when* something implementing
//! [`Flush`] is written, according to an [`AutoSave`] policy:
//!
//! - [`AutoSave::Always`] (the default): each [`AutoSaver::changed`] resolves once a flush covering
//!   the change succeeded. Changes recorded while a flush runs are written together by the next
//!   flush (group commit, no timers), so N concurrent changes cost far fewer than N flushes.
//! - [`AutoSave::Manual`]: nothing is flushed until [`AutoSaver::flush_now`] or
//!   [`AutoSaver::close`].
//! - [`AutoSave::Debounce`]`(d)`: flushed at most `d` after the first unsaved change.
//!
//! Every change bumps a version counter. A flush reads the current version `v`, calls
//! [`Flush::flush`], and on success publishes `durable = v` and wakes every waiter at or below
//! `v`; on failure it hands the error (shared, as an `Arc`) to the waiters of that attempt and
//! stays dirty so a later flush retries. One flush at most is in flight, run by whoever needs it
//! first: a caller awaiting its [`Saved`] while no flush runs makes the flush itself, in its own
//! task (no hand-off to another task and back); the background task makes the others (changes
//! nobody awaits, the group that gathered while a flush ran, the `Debounce` deadline, the last
//! flush of a dropped engine).
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use autosave::{AutoSave, AutoSaver, Flush};
//!
//! struct Index { tags: Mutex<Vec<String>> }
//!
//! #[async_trait::async_trait]
//! impl Flush for Index {
//!     type Error = std::io::Error;
//!     async fn flush(&self) -> Result<(), std::io::Error> {
//!         let snapshot = self.tags.lock().unwrap().clone(); // snapshot first, then write it
//!         let _ = snapshot;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let index = Arc::new(Index { tags: Mutex::new(Vec::new()) });
//! let saver = AutoSaver::new(Arc::clone(&index), AutoSave::Always);
//! index.tags.lock().unwrap().push("v1".into()); // apply the change first,
//! saver.changed().await.unwrap();                // then record it: returns once flushed
//! assert_eq!(saver.durable_version(), 1);
//! saver.close().await.unwrap();
//! # });
//! ```

#![warn(missing_docs)]

mod engine;
mod error;
mod flush;
mod policy;

pub use engine::{AutoSaver, Saved};
pub use error::Error;
pub use flush::Flush;
pub use policy::AutoSave;
