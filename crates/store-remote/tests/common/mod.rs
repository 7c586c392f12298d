//! Helpers shared by the integration tests: clients for a running registry, small images.

#![allow(dead_code)]

use bytes::Bytes;
use ocistore_test_registry::{
    Auth, Error, FakeOptions, FakeRegistry, Registry as RealRegistry, RunningRegistry,
};
use std::sync::Arc;
use std::time::Duration;
use store_core::content::{push_artifact, push_image};
use store_core::spec::{Descriptor, MediaType};
use store_core::testkit::{Capabilities, TagGrammar};
use store_remote::{Client, ClientOptions, Credential, Repository, Secret, Static};

/// Options for tests: tiny backoff so that retries take milliseconds.
pub fn test_options() -> ClientOptions {
    ClientOptions {
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        read_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

/// A client with `credential` for every registry.
pub fn client_with(options: ClientOptions, credential: Credential) -> Client {
    Client::with_credentials(options, Arc::new(Static(credential))).expect("client")
}

/// A client with the registry's own credentials (anonymous for an anonymous registry).
pub fn client_for(registry: &RunningRegistry) -> Client {
    let credential = match registry.credentials() {
        Some((user, password)) => Credential::Basic {
            username: user.to_string(),
            password: Secret::new(password),
        },
        None => Credential::Anonymous,
    };
    client_with(test_options(), credential)
}

/// Repository `name` on `registry` through `client`.
pub fn repo(client: &Client, registry: &RunningRegistry, name: &str) -> Repository {
    Repository::new(client, &format!("{}/{name}", registry.host())).expect("repository")
}

/// Pushes a one-layer image whose bytes depend on `label`; returns the manifest's descriptor.
pub async fn push_small_image(target: &Repository, label: &str) -> Descriptor {
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"config":{{"Labels":{{"l":"{label}"}}}}}}"#
    );
    push_image(
        target,
        MediaType::ImageConfig,
        Bytes::from(config),
        [(
            MediaType::ImageLayer,
            Bytes::from(format!("layer bytes of {label}").into_bytes()),
        )],
        None,
    )
    .await
    .expect("push_image")
}

/// Pushes an SBOM-like artifact whose subject is `subject`.
pub async fn push_sbom(target: &Repository, subject: &Descriptor, label: &str) -> Descriptor {
    push_artifact(
        target,
        "application/vnd.example.sbom",
        [(
            MediaType::Other("application/vnd.example.sbom.json".into()),
            Bytes::from(format!("{{\"sbom\":\"{label}\"}}")),
        )],
        Some(subject),
        None,
    )
    .await
    .expect("push_artifact")
}

/// What keeps the registry of one test alive: the real one or the test double.
pub enum Guard {
    Real(RunningRegistry),
    Double(FakeRegistry),
}

/// Repository `name` on a `docker-registry` of its own; where docker-registry is not installed
/// (and `OCISTORE_REQUIRE_INTEROP` is not `1`), on the test double instead, after saying so.
pub fn registry_or_double(name: &str) -> (Repository, Guard) {
    match RealRegistry::start(Auth::Anonymous) {
        Ok(registry) => {
            let client = client_for(&registry);
            let repo = repo(&client, &registry, name);
            (repo, Guard::Real(registry))
        }
        Err(Error::Skipped(skip)) => {
            skip.print();
            let double = FakeRegistry::start(FakeOptions::default()).expect("test double");
            let client = client_with(test_options(), Credential::Anonymous);
            let repo =
                Repository::new(&client, &format!("{}/{name}", double.host())).expect("repository");
            (repo, Guard::Double(double))
        }
        Err(err) => panic!("starting docker-registry: {err}"),
    }
}

/// What distribution 2.8 does otherwise than a layout.
pub fn distribution() -> Capabilities {
    Capabilities {
        // DELETE /manifests/<tag> answers DIGEST_INVALID.
        untag: false,
        tag_grammar: TagGrammar::Distribution,
        // Tags and manifest requests name manifests only.
        references_blobs: false,
        // A tag is the manifest's bytes under a name: no descriptor annotations.
        keeps_tag_annotations: false,
        // No API tells which indexes list a manifest; referrers come from the tag schema.
        indexes_parents: false,
        // 2.8 refuses the withdrawn artifact manifest (MANIFEST_INVALID).
        artifact_manifest: false,
        // Concurrent uploads of one blob all complete; only the first HEAD tells
        // AlreadyExists.
        exclusive_concurrent_push: false,
    }
}

/// The capabilities of the registry [`registry_or_double`] starts: distribution 2.8's, or the
/// test double's, which deletes tags.
pub fn registry_capabilities() -> Capabilities {
    if RealRegistry::installed() {
        distribution()
    } else {
        Capabilities {
            untag: true,
            ..distribution()
        }
    }
}
