#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The OCI image-spec types (`oci_spec::image`): `Descriptor`, `Digest`, `MediaType`,
/// `ImageManifest`, `ImageIndex`, `Platform` and their builders.
pub use store_core::spec;
pub use store_core::{
    Deleter, Fetcher, GraphTarget, PredecessorFinder, Pusher, ReadOnlyGraphTarget, ReadOnlyStorage,
    ReadOnlyTarget, ReferencePusher, Resolver, Storage, TagLister, TagResolver, Tagger, Target,
    Untagger,
};
pub use store_core::{Error, ErrorKind, Result, SharedDescriptor};

/// The attribute every implementation of the traits carries (`#[ocistore::async_trait]`), so
/// that a store of one's own needs no direct dependency on the `async-trait` crate.
pub use async_trait::async_trait;

pub use store_core::{content, copy, descriptor, digest, memory, reference};

/// The OCI image layout store: [`fs::Store`] (read/write) and [`fs::ReadOnlyStore`] (a layout
/// directory or a `.tar` of one), with [`fs::StoreOptions`] and the reports of `gc` and `fsck`.
pub mod fs {
    pub use store_fs::*;
}

/// An OCI distribution registry as a target: [`remote::Repository`] (the traits over the
/// registry API, so that [`copy`] works between a registry and any store), [`remote::Registry`]
/// (catalog, ping), [`remote::Reference`] (references as users type them), [`remote::Client`]
/// with its [`remote::ClientOptions`] and credentials.
pub mod remote {
    pub use store_remote::*;
}

/// OCI image layout archives for every target: [`archive::import`] reads one from any
/// `AsyncRead` (plain, gzip or zstd) in one pass, [`archive::export`] writes a reproducible one
/// to any `AsyncWrite`; see the module for the rules each follows.
pub mod archive {
    pub use store_archive::*;
}

/// The OCI image layout in an object store (S3 and kin): [`object::Store`] over any
/// `Arc<dyn object::object_store::ObjectStore>` and a prefix, with the traits, autosave policies,
/// `gc` and `fsck` of [`fs::Store`]; `index.json` changes by compare-and-swap, so several
/// machines can share one bucket.
pub mod object {
    pub use store_object::*;
}

/// When a [`fs::Store`] writes `index.json`: the [`AutoSave`](autosave::AutoSave) policy set
/// with [`StoreOptions::autosave`](fs::StoreOptions::autosave).
pub mod autosave {
    pub use ::autosave::AutoSave;
}

/// The traits and the descriptor type they return, for `use ocistore::prelude::*;`.
pub mod prelude {
    /// What `resolve` and `predecessors` return (needed to implement them).
    pub use store_core::SharedDescriptor;
    pub use store_core::{
        Deleter, Fetcher, GraphTarget, PredecessorFinder, Pusher, ReadOnlyGraphTarget,
        ReadOnlyStorage, ReadOnlyTarget, ReferencePusher, Resolver, Storage, TagLister,
        TagResolver, Tagger, Target, Untagger,
    };
}

/// Machinery for writing a store of one's own, beyond the traits: the engines the built-in
/// stores are made of. Users of the stores need none of it, and it may change more freely than
/// the rest of the API.
///
/// - [`graph::MemoryGraph`](implementors::graph::MemoryGraph): the predecessor graph behind
///   [`PredecessorFinder`], filled from manifest bodies.
/// - [`resolver::MemoryResolver`](implementors::resolver::MemoryResolver): tags and digest
///   entries behind [`Resolver`], [`Tagger`], [`Untagger`] and [`TagLister`].
/// - [`manifest`](implementors::manifest): the successors a manifest body lists, per media type.
/// - [`error_from_io`](implementors::error_from_io): turns the `io::Error` of a
///   [`content::VerifyReader`] back into the [`Error`] it carries.
/// - [`autosave`](implementors::autosave): the engine behind [`autosave::AutoSave`]: an
///   `AutoSaver` that decides when something implementing `Flush` is written (group commit,
///   debounce).
pub mod implementors {
    pub use ::autosave;
    pub use store_core::error_from_io;
    pub use store_core::{graph, manifest, resolver};
}

/// The conformance suite of the traits (feature `testkit`): the
/// [`conformance_tests!`](testkit::conformance_tests),
/// [`read_only_conformance_tests!`](testkit::read_only_conformance_tests) and
/// [`copy_tests!`](testkit::copy_tests) macros generate one `#[tokio::test]` per check for a
/// store of one's own; they need only `ocistore` (and `tokio` with `macros` and
/// `rt-multi-thread`) among the dev-dependencies.
#[cfg(feature = "testkit")]
pub use store_core::testkit;
