//! An OCI distribution registry as an ocistore target: [`Repository`] implements the ocistore
//! traits over the registry HTTP API (so `ocistore::copy` works between a registry and any
//! store), [`Registry`] lists and pings one host, [`Reference`] parses references as users type
//! them. HTTP is reqwest with rustls; authentication is anonymous, basic, or bearer tokens
//! from the registry's challenge (cached per host and scope, one fetch per token however many
//! requests wait), with credentials given or read from the Docker config.

#![warn(missing_docs)]

mod auth;
pub mod challenge;
mod client;
pub mod credentials;
pub mod options;
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
