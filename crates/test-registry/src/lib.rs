//! Test infrastructure for registry clients. Nothing here is shipped: the crate is a
//! dev-dependency of the crates whose tests talk to a registry.
//!
//! - [`Registry`] starts a real registry, Debian's `docker-registry` (distribution 2.8), on a free
//!   port of 127.0.0.1 in one of three [`Auth`] configurations: anonymous, htpasswd basic auth, or
//!   token auth against a [`TokenServer`] running inside the test process.
//! - [`TokenServer`] implements the Docker token flow (GET with Basic auth, OAuth2 POST with
//!   `password` and `refresh_token` grants) and signs RS256 JWTs with a certificate made for the
//!   test; it counts and records what it is asked, and has knobs to make tokens expire or fail.
//! - [`FakeRegistry`] is a test double: an in-process HTTP server following the OCI distribution
//!   spec, for what no installable registry does (the referrers API, a 202 on mount, `Link`
//!   pagination, 429 with `Retry-After`, `OCI-Chunk-Min-Length`, ...) and for broken or hostile
//!   answers on demand. It records every request it receives.
//! - [`docker_config_with_password`] and friends write the Docker `config.json` a credential
//!   lookup reads.
//!
//! Every server runs on a thread of its own with its own runtime, so the harness works from sync
//! tests (that run a command-line binary) as well as from `#[tokio::test]`s, and stops when its
//! handle is dropped.

mod docker_config;
mod double;
mod error;
mod http;
mod real;
mod token;

pub use docker_config::{
    docker_config_with_identity_token, docker_config_with_password, write_docker_config,
};
pub use double::{
    BodyFault, DoubleAuth, FakeOptions, FakeRegistry, Fault, Malformed, MountMode, RecordedRequest,
};
pub use error::Error;
pub use real::{require_interop, Auth, Registry, RunningRegistry, Skip, INSTALL_HINT, REQUIRE_ENV};
pub use token::{
    decode_claims, Grant, TokenConfig, TokenRequest, TokenServer, User, READER, READER_PASSWORD,
    WRITER, WRITER_PASSWORD,
};

/// Locks `mutex`, going on with the data if a panicking test poisoned it (the servers outlive
/// a failed assertion in one test thread and must keep answering the others).
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
