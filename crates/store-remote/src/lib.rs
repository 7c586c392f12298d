//! An OCI distribution registry as an ocistore target: [`Repository`] implements the ocistore
//! traits over the registry HTTP API (so `ocistore::copy` works between a registry and any
//! store), [`Registry`] lists and pings one host, [`Reference`] parses references as users type
//! them. HTTP is reqwest with rustls; authentication is anonymous, basic, or bearer tokens
//! from the registry's challenge (cached per host and scope, one fetch per token however many
//! requests wait), with credentials given or read from the Docker config.
//!
//! `resolve` reaches manifests only (as in oras-go): a digest of a layer or config is a blob,
//! whose size a registry tells only to a HEAD of the blob itself, so
//! [`Repository::blob_descriptor`] gives its descriptor. To learn what an unknown digest names,
//! ask it first and `resolve` on [`store_core::ErrorKind::NotFound`]: distribution 2.8 answers
//! a manifest HEAD of a blob's digest with a 500, not a 404. Requests that are safe to repeat,
//! token requests included, are retried on dropped connections, 429 and 5xx answers, honouring
//! `Retry-After` (see [`ClientOptions`]).

#![warn(missing_docs)]

mod auth;
pub mod challenge;
mod client;
pub mod credentials;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod options;
mod pieces;
pub mod reference;
mod registry;
mod repository;
mod secret;
mod verify;
pub mod wire;

pub use client::Client;
pub use credentials::{Credential, CredentialProvider, DockerConfig, Static};
pub use options::ClientOptions;
pub use reference::Reference;
pub use registry::Registry;
pub use repository::{ContentSource, Repository};
pub use secret::Secret;
