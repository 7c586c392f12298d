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
//! Every change bumps a version counter. One background task runs the loop: wait until a flush
//! is due → read the current version `v` → [`Flush::flush`] → on success publish
//! `durable = v` and wake every waiter at or below `v`; on failure hand the error (shared, as an
//! `Arc`) to the waiters of that attempt and stay dirty so a later flush retries.
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
