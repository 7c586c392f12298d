//! The core of ocistore: the oras-style Target traits, the error type, digest and descriptor
//! helpers, the verifying reader, the in-memory tag resolver and predecessor graph, the
//! [`memory::MemoryStore`], and (feature `testkit`) the conformance suite every store runs.
//!
//! This crate never touches the file system; `ocistore-fs` is the OCI image layout store. Users
//! reach all of it through the `ocistore` crate, whose documentation is the guide; the graph
//! and resolver engines ([`graph`], [`resolver`], [`manifest`]) and [`error_from_io`] are for
//! store implementors (`ocistore::implementors`).
//!
//! ocistore supports Unix only (Linux and macOS): the layout store relies on `flock`, hard
//! links and directory fsync.

#![warn(missing_docs)]

pub mod archive_entry;
pub mod content;
pub mod copy;
pub mod descriptor;
pub mod digest;
pub mod error;
mod fetched;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod manifest;
pub mod memory;
pub mod reference;
pub mod resolver;
mod shared;
mod sharing;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod traits;
mod verify;

pub use error::{Error, ErrorKind, Result, Side};
pub use shared::SharedDescriptor;
pub use traits::*;
pub use verify::error_from_io;

/// The OCI image-spec types (re-exported from `oci_spec::image`).
pub use oci_spec::image as spec;
