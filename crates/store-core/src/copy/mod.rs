//! Copying content between targets: [`copy`] (a reference, tagged in the destination),
//! [`copy_graph`] (the graph below a descriptor), [`extended_copy`] and
//! [`extended_copy_graph`] (a graph together with what points at it: referrers, indexes).
//!
//! The algorithm is oras-go v2.6.2's `CopyGraph`, with one repair added:
//!
//! - **Children strictly before parents.** A node is pushed only once every successor is in
//!   the destination, so a failed copy never leaves a parent without its children.
//! - **Each node fetched once, pushed once.** Manifest bodies are fetched once to find their
//!   successors, kept in memory (each at most [`CopyGraphOptions::max_metadata_bytes`], else
//!   `SizeExceedsLimit`) and pushed from there; blobs are streamed from the source straight
//!   into the destination. A node reached through several parents is handled by the first
//!   task that reaches it; the others wait for it. `AlreadyExists` from the destination counts
//!   as success.
//! - **What is there is skipped.** A node the destination already has is not pushed and is
//!   reported through `on_copy_skipped`; for a blob that ends the walk below it.
//! - **Repair** (beyond oras-go v2.6.2; see oras-go#1211): a *manifest*
//!   found in the destination is not taken on trust. Its body is read (from the source,
//!   through the same cache; from the destination when the source lacks it) and its
//!   successors are visited like any other node, so a child
//!   missing after an interrupted copy or a deletion is copied. The price: one source fetch per
//!   manifest already in the destination, and one destination `exists` per node that only
//!   such manifests point at (nodes reachable through a missing parent are checked anyway).
//!   [`CopyGraphOptions::repair`]` = false` restores oras-go's skip of the whole
//!   sub-graph.
//! - **Foreign layers** (non-distributable media types) are neither fetched nor pushed.
//! - **Bounded concurrency** ([`CopyGraphOptions::concurrency`], default 3): a slot is held
//!   while a node is checked, fetched, pushed or passed to a hook, and given back while the
//!   node waits for its successors or for another task, so even 1 cannot deadlock.
//! - **The first error cancels the rest**: every other operation in flight is dropped at once.
//!   Errors of the targets come back as [`crate::Error::Copy`], which keeps the underlying
//!   [`crate::ErrorKind`] and says which [`Side`] failed ([`crate::Error::side`]) in which
//!   operation (`resolve`, `exists`, `fetch`, `find successors`, `push`, `tag`, ...).
//!
//! # Hooks
//! [`CopyGraphOptions`] carries four optional hooks: `pre_copy` (before a node is fetched and
//! pushed; returns [`PreCopy::Skip`] to leave it out), `post_copy` (after it was pushed),
//! `on_copy_skipped` (for a node found in the destination) and `find_successors` (replaces
//! [`crate::content::successors`]; it is given the copy's caching view of the source). Use
//! the `with_*` builder methods to set them from closures:
//!
//! ```text
//! use ocistore::copy::{copy, CopyOptions, CopyGraphOptions, PreCopy};
//! use ocistore::memory::MemoryStore;
//!
//! async fn example(src: &MemoryStore, dst: &MemoryStore) -> ocistore::Result<()> {
//! let graph = CopyGraphOptions { concurrency: 4, ..Default::default() }
//!     .with_pre_copy(|desc| async move {
//!         // Leave large layers behind.
//!         Ok(if desc.size() > 1 << 30 { PreCopy::Skip } else { PreCopy::Copy })
//!     })
//!     .with_post_copy(|desc| async move {
//!         println!("copied {}", desc.digest());
//!         Ok(())
//!     });
//! let root = copy(src, "v1", dst, "", &CopyOptions { graph, ..Default::default() }).await?;
//! println!("copied {}", root.digest());
//! Ok(())
//! }
//! ```

mod cache;
#[allow(clippy::module_inception)]
mod copy;
mod extended;
mod graph_copy;
mod options;
mod platform;
mod tracker;

pub use crate::error::Side;
pub use crate::sharing::{CopyCounts, CopyReport, FileSharing, ShareRequest, StoredAs};
pub use copy::copy;
pub use extended::{extended_copy, extended_copy_graph};
pub use graph_copy::copy_graph;
pub use options::{
    BoxFuture, CopyGraphOptions, CopyOptions, ExtendedCopyOptions, FindPredecessorsHook,
    FindSuccessorsHook, MapRootHook, MountFromHook, NodeHook, PreCopy, PreCopyHook,
    DEFAULT_CONCURRENCY, DEFAULT_MAX_METADATA_BYTES,
};
pub use platform::platform_matches;
