//! The OCI image layout store of ocistore: [`Store`] (read/write) and [`ReadOnlyStore`] (a
//! layout directory or a tar of one).
//!
//! Blobs live at `blobs/<alg>/<hex>`; pushes stream through `ingest/` and are published by a
//! no-clobber link only after their size and digest were checked; `index.json` and `oci-layout`
//! are replaced atomically (temp file, fsync, rename, directory fsync).

#![warn(missing_docs)]

mod blob;
mod blob_writer;
mod chunks;
mod delete;
mod disk_sync;
mod fsck;
mod fsutil;
mod gc;
mod index_file;
mod index_state;
mod layout;
mod lock;
mod manifest_info;
mod merge;
mod options;
mod readonly;
mod resolve;
mod shared;
mod source;
mod store;
mod tar_source;

pub use blob_writer::BlobWriter;
pub use fsck::FsckReport;
pub use gc::GcReport;
pub use layout::LAYOUT_VERSION;
pub use lock::LOCK_FILE;
pub use options::{StoreOptions, DEFAULT_GC_GRACE};
pub use readonly::ReadOnlyStore;
pub use store::Store;
