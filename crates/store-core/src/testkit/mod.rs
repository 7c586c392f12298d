//! The conformance suite every ocistore store runs (feature `testkit`), reached as
//! `ocistore::testkit` with the `ocistore` crate's `testkit` feature; the macros below work for a
//! crate that depends on `ocistore` alone.
//!
//! Like object_store's integration module, the checks are plain async functions generic over the
//! store, and two macros turn them into one `#[tokio::test]` each for a given backend:
//!
//! ```text
//! // A read-write store: `$make` is a closure returning a future of (store, guard). The guard
//! // lives as long as the test (a tempdir, say); MemoryStore passes `()`.
//! ocistore::testkit::conformance_tests!(|| async { (ocistore::memory::MemoryStore::new(), ()) });
//!
//! // A read-only store: `$make` takes the `Seed` to open the store on.
//! ocistore::testkit::read_only_conformance_tests!(|seed: ocistore::testkit::Seed| async move {
//!     let store = ocistore::memory::MemoryStore::new();
//!     seed.push_to(&store).await.expect("seeding");
//!     (store, ())
//! });
//! ```
//!
//! The generated tests use `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`, so the
//! calling crate needs `tokio` (features `macros` and `rt-multi-thread`) among its
//! dev-dependencies. Invoke each macro at most once per module; the read-only tests are named
//! `read_only_*` so both fit in one module.
//!
//! Every check panics with a message naming the operation and what differed. A check only
//! asserts what holds whether or not the store garbage-collects on delete.

mod capabilities;
pub mod copy_fixtures;
pub mod copy_suite;
pub mod fixtures;
pub mod instrumented;
mod read_only;
mod suite;

// The generating macros live at the crate root (`#[macro_export]`); they are named here too so
// that `ocistore::testkit::conformance_tests!` works through the facade's module re-export.
pub use crate::{conformance_tests, copy_tests, read_only_conformance_tests};
pub use capabilities::{Capabilities, TagGrammar};
pub use read_only::{
    open_seeded, read_only_digest_and_reference_errors, read_only_fetch_and_exists,
    read_only_predecessors_and_referrers, read_only_resolve, read_only_tags,
    ReadOnlyConformanceStore, Seed,
};
pub use suite::{
    absurd_sizes_are_refused, concurrent_fetches, concurrent_pushes_of_one_blob,
    delete_removes_content, invalid_digests_are_refused, invalid_manifest_is_not_stored,
    mismatched_content_is_not_stored, predecessors_of_the_graph, push_fetch_round_trip,
    push_reference_stores_and_tags, push_twice_is_already_exists, resolve_tag_digest_and_blob,
    tag_errors, tag_moves_between_manifests, tags_pagination, untag_errors_and_effects,
    ConformanceStore,
};

use crate::content::{referrers, walk};
use crate::descriptor::same_content;
use crate::error::{Error, ErrorKind, Result};
use crate::traits::ReadOnlyGraphTarget;
use fixtures::{GraphFixture, SBOM_TYPE, SIGNATURE_TYPE};
use oci_spec::image::Descriptor;
use std::borrow::Borrow;

/// The predecessors of every node of [`GraphFixture`], worked out by hand from the edges listed
/// in its documentation: node name → the names of the nodes pointing at it, sorted.
pub const PREDECESSOR_TABLE: [(&str, &[&str]); 15] = [
    ("layer1", &["manifest1", "manifest2"]),
    ("layer2", &["manifest2", "manifest3"]),
    ("layer3", &["manifest3"]),
    ("config", &["manifest1", "manifest2", "manifest3"]),
    ("sbom-blob", &["sbom"]),
    ("signature-config", &["signature"]),
    ("manifest1", &["index1", "sbom", "signature"]),
    ("manifest2", &["index1"]),
    ("manifest3", &["index2"]),
    ("sbom", &[]),
    ("signature", &[]),
    ("index1", &["index-nested"]),
    ("index2", &["index-nested"]),
    ("index-nested", &[]),
    ("index-empty", &[]),
];

/// Checks that `result` is an error of `kind` and returns it.
///
/// # Panics
/// When `result` is `Ok` or an error of another kind; the message starts with `what`.
#[track_caller]
pub fn expect_err<T>(result: Result<T>, kind: ErrorKind, what: &str) -> Error {
    match result {
        Ok(_) => panic!("{what}: expected {kind:?}, got Ok"),
        Err(err) => {
            assert_eq!(
                err.kind(),
                kind,
                "{what}: expected {kind:?}, got {:?} ({err})",
                err.kind()
            );
            err
        }
    }
}

/// The fixture names of `list` (digests not in the graph are shown as such), sorted.
fn plain_names<D: Borrow<Descriptor>>(graph: &GraphFixture, list: &[D]) -> Vec<String> {
    let mut names: Vec<String> = list
        .iter()
        .map(Borrow::borrow)
        .map(
            |desc: &Descriptor| match graph.name_of(desc.digest().as_ref()) {
                Some(name) => name.to_string(),
                None => format!("<not in the graph: {}>", desc.digest()),
            },
        )
        .collect();
    names.sort();
    names
}

/// The predecessors of `name` a store with `capabilities` lists: the whole row of
/// [`PREDECESSOR_TABLE`], or only the referrers (`sbom` and `signature`, of `manifest1`) when it
/// does not index parents.
fn expected_predecessors(name: &str, capabilities: &Capabilities) -> Vec<&'static str> {
    let row = PREDECESSOR_TABLE
        .iter()
        .find(|(node, _)| *node == name)
        .map_or(&[][..], |(_, row)| *row);
    if capabilities.indexes_parents {
        row.to_vec()
    } else if name == "manifest1" {
        vec!["sbom", "signature"]
    } else {
        Vec::new()
    }
}

/// Checks the predecessors of every node of `graph` against [`PREDECESSOR_TABLE`] (only its
/// referrers when `capabilities` index no parents) and the referrers of `manifest1` (`sbom` and
/// `signature`) with and without an artifact-type filter.
///
/// # Panics
/// On the first difference, naming the node.
pub async fn assert_graph<S: ReadOnlyGraphTarget + ?Sized>(
    store: &S,
    graph: &GraphFixture,
    capabilities: &Capabilities,
) {
    assert_eq!(
        PREDECESSOR_TABLE.len(),
        graph.nodes().len(),
        "the table must cover every node"
    );
    for (name, _) in PREDECESSOR_TABLE {
        let expected = expected_predecessors(name, capabilities);
        let node = graph.get(name);
        let found = match store.predecessors(&node.desc).await {
            Ok(found) => found,
            Err(err) => panic!("predecessors({name}) failed: {err}"),
        };
        assert_eq!(
            plain_names(graph, &found),
            expected,
            "predecessors of {name}"
        );
        for predecessor in &found {
            let Some(name) = graph.name_of(predecessor.digest().as_ref()) else {
                continue;
            };
            assert!(
                same_content(predecessor, &graph.get(name).desc),
                "the predecessor {name} came back as {predecessor:?}"
            );
        }
    }

    let manifest1 = &graph.get("manifest1").desc;
    let found = match referrers(store, manifest1, None).await {
        Ok(found) => found,
        Err(err) => panic!("referrers(manifest1) failed: {err}"),
    };
    assert_eq!(
        plain_names(graph, &found),
        ["sbom", "signature"],
        "referrers of manifest1"
    );
    for referrer in &found {
        let name = graph.name_of(referrer.digest().as_ref());
        let (kind, note) = match name {
            Some("sbom") => (SBOM_TYPE, "sbom"),
            _ => (SIGNATURE_TYPE, "signature"),
        };
        assert_eq!(
            referrer.artifact_type().as_ref().map(|t| t.to_string()),
            Some(kind.to_string()),
            "artifact type of the referrer {name:?}"
        );
        let annotation = referrer
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.example.kind"));
        assert_eq!(
            annotation.map(String::as_str),
            Some(note),
            "annotations of the referrer {name:?}"
        );
    }
    for (filter, expected) in [
        (SBOM_TYPE, &["sbom"][..]),
        (SIGNATURE_TYPE, &["signature"][..]),
        ("application/vnd.example.none", &[][..]),
    ] {
        let found = match referrers(store, manifest1, Some(filter)).await {
            Ok(found) => found,
            Err(err) => panic!("referrers(manifest1, {filter}) failed: {err}"),
        };
        assert_eq!(
            plain_names(graph, &found),
            expected.to_vec(),
            "referrers of manifest1 of type {filter}"
        );
    }
    for name in ["manifest2", "index1", "index-empty", "sbom"] {
        match referrers(store, &graph.get(name).desc, None).await {
            Ok(found) => assert!(
                found.is_empty(),
                "{name} has referrers {:?}",
                plain_names(graph, &found)
            ),
            Err(err) => panic!("referrers({name}) failed: {err}"),
        }
    }
    expect_err(
        referrers(store, &graph.get("layer1").desc, None).await,
        ErrorKind::Unsupported,
        "referrers of a layer",
    );
    assert_walks(store, graph).await;
}

/// The graph under each root, as [`walk`] finds it in `store`, is what the fixture's table
/// says: every node once (shared ones included), and a referrer's walk goes through its subject.
async fn assert_walks<S: ReadOnlyGraphTarget + ?Sized>(store: &S, graph: &GraphFixture) {
    let cases: [(&str, &[&str]); 3] = [
        (
            "index-nested",
            &[
                "config",
                "index-nested",
                "index1",
                "index2",
                "layer1",
                "layer2",
                "layer3",
                "manifest1",
                "manifest2",
                "manifest3",
            ],
        ),
        (
            "sbom",
            &["config", "layer1", "manifest1", "sbom", "sbom-blob"],
        ),
        ("layer3", &["layer3"]),
    ];
    for (root, expected) in cases {
        let found = match walk(store, &graph.get(root).desc).await {
            Ok(found) => found,
            Err(err) => panic!("walk({root}) failed: {err}"),
        };
        assert_eq!(
            found.first().map(|d| d.digest()),
            Some(graph.get(root).desc.digest()),
            "walk({root}) starts at the root"
        );
        let names = plain_names(graph, &found);
        let mut distinct = names.clone();
        distinct.dedup();
        assert_eq!(distinct, names, "walk({root}) listed a node twice");
        assert_eq!(names, expected.to_vec(), "the nodes under {root}");
    }
}

/// Generates one `#[tokio::test]` per read-write check of [`crate::testkit`] for the store made
/// by `$make`, a closure returning a future of `(store, guard)`; see the module documentation.
///
/// `conformance_tests!($make, capabilities = expr)` runs the same checks against a store that
/// does less than a layout store (a registry that deletes no tags, keeps no descriptor
/// annotations, follows another tag grammar): `expr` is its [`crate::testkit::Capabilities`],
/// and each check asserts what those promise. Without it, `Capabilities::default()`.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::conformance_tests!(
            $make,
            capabilities = $crate::testkit::Capabilities::default()
        );
    };
    ($make:expr, capabilities = $capabilities:expr) => {
        $crate::__conformance_tests!(
            $make,
            $capabilities,
            [
                push_fetch_round_trip,
                push_twice_is_already_exists,
                mismatched_content_is_not_stored,
                invalid_digests_are_refused,
                absurd_sizes_are_refused,
                invalid_manifest_is_not_stored,
                resolve_tag_digest_and_blob,
                tag_errors,
                tag_moves_between_manifests,
                untag_errors_and_effects,
                tags_pagination,
                predecessors_of_the_graph,
                concurrent_pushes_of_one_blob,
                concurrent_fetches,
                delete_removes_content,
                push_reference_stores_and_tags,
            ]
        );
    };
}

/// The read-write conformance tests of a list of checks; used by [`conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make:expr, $capabilities:expr, [$($check:ident),* $(,)?]) => {
        $( $crate::__conformance_test!($make, $capabilities, $check); )*
    };
}
/// One read-write conformance test; used by [`conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ($make:expr, $capabilities:expr, $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let capabilities: $crate::testkit::Capabilities = $capabilities;
            let (store, _guard) = ($make)().await;
            $crate::testkit::$check(&store, &capabilities).await;
        }
    };
}

/// Generates one `#[tokio::test]` per read-only check of [`crate::testkit`] for the store made
/// by `$make`, a closure taking a [`crate::testkit::Seed`] and returning a future of
/// `(store, guard)`; see the module documentation.
#[macro_export]
macro_rules! read_only_conformance_tests {
    ($make:expr) => {
        $crate::__read_only_conformance_test!($make, read_only_fetch_and_exists);
        $crate::__read_only_conformance_test!($make, read_only_resolve);
        $crate::__read_only_conformance_test!($make, read_only_tags);
        $crate::__read_only_conformance_test!($make, read_only_predecessors_and_referrers);
        $crate::__read_only_conformance_test!($make, read_only_digest_and_reference_errors);
    };
}

/// One read-only conformance test; used by [`read_only_conformance_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __read_only_conformance_test {
    ($make:expr, $check:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let seed = $crate::testkit::Seed::new();
            let (store, _guard) = $crate::testkit::open_seeded($make, seed.clone()).await;
            $crate::testkit::$check(&store, &seed).await;
        }
    };
}
