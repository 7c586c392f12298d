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
//! Nothing outside the layout is ever touched, and nothing in it can make the store wait: the
//! root is opened once (it may itself be a symbolic link: the user chose it) and everything
//! below it is reached from that directory handle, one component at a time, with `openat`,
//! `mkdirat`, `linkat`, `renameat` and `unlinkat`, never through a symbolic link. `blobs/`,
//! `blobs/<alg>/` and `ingest/` are opened with `O_NOFOLLOW` and their handles kept (a directory
//! swapped for a link later is never followed: the store keeps using the directory it opened);
//! a link or anything but a directory there is `InvalidLayout` naming it. Files are opened with
//! `O_NOFOLLOW | O_NONBLOCK` (opening a FIFO or device returns at once) and read only when
//! `fstat` says they are regular: a blob, `index.json`, `oci-layout` or `index.json.lock` that is
//! a link, directory, FIFO, socket or device is `InvalidLayout` naming it, a blob path holding
//! one does not count as the blob (`exists` is false), and `fsck` reports it as corrupt.
//!
//! Unix only: the store relies on `flock` (the cross-process `index.json.lock`), hard links
//! (publishing a blob without replacing anything), `openat` and the other `*at` calls with
//! `O_NOFOLLOW` (never following a symbolic link out of the layout) and directory fsync; it does
//! not compile elsewhere.
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
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod index;
pub mod index_model;
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
