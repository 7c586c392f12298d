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
