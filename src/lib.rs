//! ocistore: an async OCI content store over an OCI image layout directory, with the oras-style
//! Target trait family (fetch, push, exists, resolve, tag, untag, tags, predecessors, delete).
//!
//! This crate only re-exports: the traits and errors from `ocistore-core`, the layout store from
//! `ocistore-fs`, and the index-flushing policy from `ocistore-autosave`.

pub use store_core::{
    content, descriptor, digest, error_from_io, graph, resolver, spec, traits, Deleter, Error,
    ErrorKind, Fetcher, GraphTarget, PredecessorFinder, Pusher, ReadOnlyGraphTarget,
    ReadOnlyStorage, ReadOnlyTarget, Resolver, Result, Side, Storage, TagLister, TagResolver,
    Tagger, Target, Untagger,
};

/// The OCI image layout store: [`fs::Store`] (read/write) and [`fs::ReadOnlyStore`].
pub mod fs {
    pub use store_fs::*;
}
/// When `index.json` is written: [`autosave::AutoSave`] and the engine behind it.
pub use autosave;
/// Copying between targets: [`copy::copy`], [`copy::copy_graph`], [`copy::extended_copy`].
pub use store_core::copy;
/// [`memory::MemoryStore`]: the in-memory target, for tests and caches.
pub use store_core::memory;
/// Tag syntax: the image-spec `ref.name` grammar every store checks tags against.
pub use store_core::reference;
/// The conformance suite (feature `testkit`); its macros are `store_core::conformance_tests!` and
/// `store_core::read_only_conformance_tests!`.
#[cfg(feature = "testkit")]
pub use store_core::testkit;
