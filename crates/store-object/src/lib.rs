//! An OCI image layout in an object store (S3 and kin, through the `object_store` crate):
//! [`Store`], over any `Arc<dyn ObjectStore>` and a prefix, with the traits and autosave
//! policies of the layout store of `ocistore-fs`.
//!
//! The bucket holds a real OCI image layout under the prefix: `oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`; a prefix synced to disk opens as a layout directory.
//!
//! - Blobs become visible only once verified: small ones are verified in memory and written
//!   with one put; big ones stream into a multipart upload at their final key, hashed as they
//!   go, completed only when size and digest match and aborted otherwise (see `blob`).
//! - `index.json` changes by compare-and-swap on its ETag/version, retried after a three-way
//!   merge per entry, as the layout store merges under its file lock (see `index`), with group
//!   commit through the autosave policies.
//! - What the service must offer: atomic conditional writes (create-if-absent and
//!   update-if-ETag-matches). Opening probes for them and refuses a service without them unless
//!   [`StoreOptions::last_writer_wins`] is set.
//! - `gc` and `fsck` work by listing the prefix; the grace period is judged by the objects'
//!   last-modified times.
//!
//! Modules: [`Store`] lives in `store`; it builds on `contents` (what it holds), `blob`,
//! `index`, `layout` (with the probe), `delete`, `gc`, `fsck`, `keys`, `error` and `options`.

#![warn(missing_docs)]

mod absent;
mod blob;
mod contents;
mod delete;
mod error;
mod fsck;
mod gc;
mod index;
mod keys;
mod layout;
mod options;
mod store;
mod stored;

pub use layout::LAYOUT_VERSION;
pub use object_store;
pub use options::{StoreOptions, DEFAULT_GC_GRACE};
pub use store::Store;
pub use store_fs::{FsckReport, GcReport};
