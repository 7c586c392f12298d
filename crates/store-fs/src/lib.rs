//! The OCI image layout store of ocistore: [`Store`] (read/write) and [`ReadOnlyStore`] (a
//! layout directory or a tar of one).
//!
//! Blobs live at `blobs/<alg>/<hex>`; pushes stream through `ingest/` and are published by a
//! no-clobber hard link only after their size and digest were checked. `index.json` is replaced
//! atomically (temp file, fsync, rename, directory fsync; without `durable`, a swap of the temp
//! file with the old one and no fsync). `oci-layout` is never replaced: when missing it is
//! created, whole or not at all, by a no-clobber link of a complete temp file (fsynced with its
//! directory when durable), and an existing one is only read.
//!
//! Unix only: the store relies on `flock` (the cross-process `index.json.lock`), hard links
//! (publishing a blob without replacing anything), `O_NOFOLLOW` (never following a symbolic
//! link out of the layout) and directory fsync; it does not compile elsewhere.
//!
//! Modules, top-down: [`Store`] lives in `store` (with `store::contents`, what it holds, and
//! `store::{delete, gc, fsck}`), [`ReadOnlyStore`] in `readonly` (with `readonly::{dir, tar}`);
//! both build on `blob` (`ingest`, `publish`, `read`, `writer`, `chunks`), on `index` (`codec`,
//! `state`, `merge`, `sync`, `lock`), and on `resolve`, `layout`, `options` and `fsutil`.

#![warn(missing_docs)]

#[cfg(not(unix))]
compile_error!(
    "ocistore-fs is Unix-only: it needs flock (index.json.lock), hard links (publishing blobs \
     without replacing anything), O_NOFOLLOW and directory fsync"
);

mod blob;
mod fsutil;
mod index;
mod layout;
mod options;
mod readonly;
mod resolve;
mod store;

pub use blob::writer::BlobWriter;
pub use index::codec::MAX_INDEX_JSON_SIZE;
pub use index::lock::LOCK_FILE;
pub use layout::LAYOUT_VERSION;
pub use options::{StoreOptions, DEFAULT_GC_GRACE};
pub use readonly::ReadOnlyStore;
pub use store::fsck::FsckReport;
pub use store::gc::GcReport;
pub use store::Store;
