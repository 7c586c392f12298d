//! The ocistore conformance suite against a repository of the real `docker-registry`
//! (distribution 2.8), each check on a registry of its own. Where docker-registry is not
//! installed (and `OCISTORE_REQUIRE_INTEROP` is not `1`), the checks run against the test
//! double of ocistore-test-registry instead, after saying so.
//!
//! Left out, because a registry does otherwise (tested in real_registry.rs instead):
//! - `untag_errors_and_effects`, `tag_moves_between_manifests`: 2.8 deletes no tags (untag is
//!   `Unsupported`).
//! - `tag_errors`, `tags_pagination`: tags follow the distribution grammar (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`),
//!   not the layout's `ref.name` grammar (`release/1.2`, `x@y` are no registry tags).
//! - `resolve_tag_digest_and_blob`: a registry keeps no descriptor annotations on a tag, and
//!   resolves manifests only, not blobs.
//! - `predecessors_of_the_graph`: 2.8 refuses the withdrawn artifact manifest the fixture
//!   holds, and lists referrers only (no index knows its parents on a registry).
//! - `concurrent_pushes_of_one_blob`: concurrent uploads of one blob all succeed on a
//!   registry; only the first `HEAD` tells `AlreadyExists`.

mod common;

use ocistore_test_registry::{
    Auth, Error, FakeOptions, FakeRegistry, Registry as RealRegistry, RunningRegistry,
};
use store_remote::{Credential, Repository};

/// What keeps the registry of one check alive.
#[allow(dead_code)]
enum Guard {
    Real(RunningRegistry),
    Double(FakeRegistry),
}

fn open() -> (Repository, Guard) {
    match RealRegistry::start(Auth::Anonymous) {
        Ok(registry) => {
            let client = common::client_for(&registry);
            let repo = common::repo(&client, &registry, "conformance/repo");
            (repo, Guard::Real(registry))
        }
        Err(Error::Skipped(skip)) => {
            skip.print();
            let double = FakeRegistry::start(FakeOptions::default()).expect("test double");
            let client = common::client_with(common::test_options(), Credential::Anonymous);
            let repo = Repository::new(&client, &format!("{}/conformance/repo", double.host()))
                .expect("repository");
            (repo, Guard::Double(double))
        }
        Err(err) => panic!("starting docker-registry: {err}"),
    }
}

store_core::conformance_tests!(
    || async { open() },
    only [
        push_twice_is_already_exists,
        mismatched_content_is_not_stored,
        invalid_digests_are_refused,
        absurd_sizes_are_refused,
        invalid_manifest_is_not_stored,
        concurrent_fetches,
        delete_removes_content,
    ]
);

/// The round trip includes sha384 content, which the distribution spec leaves optional and the
/// test double refuses: it runs on the real registry only (skipped without one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_fetch_round_trip() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = common::client_for(&registry);
    let repo = common::repo(&client, &registry, "conformance/repo");
    store_core::testkit::push_fetch_round_trip(&repo).await;
}
