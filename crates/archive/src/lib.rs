//! OCI image layout archives for every ocistore target: [`import`] reads one from any
//! `AsyncRead` in a single pass, [`export`] writes a reproducible one to any `AsyncWrite`.
//!
//! # Import
//!
//! The stream may be a plain tar or one compressed with gzip or zstd (told by the magic bytes).
//! It is never seeked, so stdin, a pipe from another process or an HTTP body will do.
//! Entries are checked by the rules of [`store_core::archive_entry`], shared with the
//! read-only store over a tar: `oci-layout`, `index.json` and `blobs/<alg>/<hex>` (with or
//! without `./`) in any order, and their directories, are read; `..`, absolute paths, links,
//! devices and any other name under `blobs/` fail the import, naming the entry; other files
//! beside the layout (a store's `ingest/`, `docker save`'s `manifest.json`) are skipped unread.
//!
//! - A blob the destination already has (`exists`) is skipped: its bytes are read past, not
//!   hashed.
//! - A blob larger than 4 MiB streams straight into `push`, whose own verification checks it
//!   against the digest its name gives; it is never held in memory.
//! - A blob of at most 4 MiB is read whole and hashed. If it is a manifest (by its `mediaType`,
//!   or by its fields for an OCI manifest without one), it is held until the end of the
//!   archive; otherwise it is pushed at once.
//! - At the end-of-archive marker, everything `index.json` reaches (and every held manifest
//!   reaches) must be in the archive or in the destination. Then the held manifests are pushed,
//!   children before parents (so a registry accepts them), with the media type the referring
//!   descriptor gives; then each `index.json` entry is tagged with its name: the
//!   `io.containerd.image.name` annotation, else `org.opencontainers.image.ref.name`, as
//!   containerd does, or what [`ImportOptions::name_mapping`] says. All names are checked
//!   before the first tag.
//!
//! A failed import creates no tag and pushes no manifest; the blobs it pushed before failing
//! are whole (each push verifies) and unreferenced, so a layout store's `gc` removes them.
//!
//! # Export
//!
//! [`export`] writes `oci-layout`, `index.json` and exactly the blobs the chosen references
//! reach (with [`ExportOptions::referrers`], their referrers too), in a fixed order with fixed
//! metadata: the same content always gives the same bytes, so an archive's digest can be
//! published. skopeo's `oci-archive:` transport reads it.
//!
//! ```no_run
//! # async fn demo(src: &store_core::memory::MemoryStore, dst: &store_core::memory::MemoryStore) -> store_core::Result<()> {
//! use store_archive::{export, import, ExportOptions, ImportOptions};
//! let mut archive = Vec::new();
//! export(src, ["v1"], &mut archive, &ExportOptions::default()).await?;
//! let imported = import(std::io::Cursor::new(archive), dst, &ImportOptions::default()).await?;
//! assert_eq!(imported[0].name.as_deref(), Some("v1"));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod decompress;
mod export;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod import;
mod options;
mod tar_read;
mod tar_write;

pub use export::export;
pub use import::{default_name, import, CONTAINERD_IMAGE_NAME};
pub use options::{ExportOptions, Exported, ImportOptions, Imported, NameMapping};
/// The rules an archive entry must follow (shared with the read-only store over a tar).
pub use store_core::archive_entry;
