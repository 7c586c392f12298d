//! The copy checks: plain async functions over a seeded source and an empty destination, run
//! for every pair of stores by [`crate::copy_tests!`]. Each wraps both stores in
//! [`Instrumented`] and asserts the exact number of calls of every method.
//!
//! Costs asserted on the 11-node graph of [`CopyFixture`] (7 manifests and indexes, 4 blobs):
//! - full `copy_graph`: source 11 fetches; destination 11 exists, 11 pushes; nothing else.
//! - full `copy`: the same plus one source resolve and one destination tag.
//! - a destination already holding `index1`'s sub-graph (6 nodes): 5 pushes, 11 exists, 8
//!   fetches. An oras-go-style skip would make 9 exists and 5 fetches: the repair's price is
//!   one fetch per manifest already present (`index1`, `manifest1`, `manifest2`) and one exists
//!   per node only they point at (`manifest1`, `layer1`).
//! - a complete destination: 11 exists and 7 fetches (the manifests' bodies), no push; with
//!   `repair: false`, one exists.

use super::copy_fixtures::{CopyFixture, GRAPH, GRAPH_MANIFESTS, SBOM, SIGNATURE_TYPE};
use super::instrumented::{CallCounts, Gauge, Instrumented, Method};
use super::Capabilities;
use crate::content::fetch_all;
use crate::copy::{
    copy, copy_graph, extended_copy, extended_copy_graph, CopyGraphOptions, CopyOptions,
    ExtendedCopyOptions, Side,
};
use crate::descriptor::same_content;
use crate::error::{Error, ErrorKind};
use crate::traits::{Deleter, GraphTarget, ReadOnlyGraphTarget, ReadOnlyStorage};
use oci_spec::image::{Arch, Descriptor, Os, Platform, PlatformBuilder};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The capabilities of the two stores of a copy: the checks assert what they promise (a
/// registry source lists referrers only as predecessors and resolves no blob digest, ...).
/// The default is two layout stores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyCapabilities {
    /// What the source can do.
    pub source: Capabilities,
    /// What the destination can do.
    pub destination: Capabilities,
}

impl CopyCapabilities {
    /// The fixture both stores take (see [`CopyFixture::with_artifact_manifest`]).
    pub fn fixture(&self) -> CopyFixture {
        CopyFixture::with_artifact_manifest(
            self.source.artifact_manifest && self.destination.artifact_manifest,
        )
    }
}

/// How long a copy may take before a check calls it a deadlock (generous: every copy here
/// takes milliseconds).
const DEADLOCK_GUARD: Duration = Duration::from_secs(120);

/// The names of `digests`, sorted.
fn sorted_names(fixture: &CopyFixture, digests: &[String]) -> Vec<&'static str> {
    let mut names = fixture.names(digests);
    names.sort_unstable();
    names
}

fn sorted(names: &[&'static str]) -> Vec<&'static str> {
    let mut names = names.to_vec();
    names.sort_unstable();
    names
}

fn ok<T>(result: crate::Result<T>, what: &str) -> T {
    match result {
        Ok(value) => value,
        Err(err) => panic!("{what} failed: {err}"),
    }
}

/// Checks that `result` failed with `kind` on `side`, naming `operation`.
#[track_caller]
fn expect_copy_err<T>(
    result: crate::Result<T>,
    kind: ErrorKind,
    side: Side,
    operation: &str,
    what: &str,
) -> Error {
    let err = super::expect_err(result, kind, what);
    assert_eq!(err.side(), Some(side), "{what}: the side of {err}");
    match &err {
        Error::Copy { operation: op, .. } => assert_eq!(*op, operation, "{what}: {err}"),
        other => panic!("{what}: not a copy error: {other}"),
    }
    let text = err.to_string();
    assert!(text.contains(&side.to_string()), "{what}: {text}");
    err
}

async fn exists(store: &(impl ReadOnlyStorage + ?Sized), desc: &Descriptor) -> bool {
    ok(store.exists(desc).await, "exists")
}

/// Panics unless every node of `names` is in `dst` with its exact bytes.
async fn assert_present(
    dst: &(impl ReadOnlyStorage + ?Sized),
    fixture: &CopyFixture,
    names: &[&str],
) {
    for name in names {
        let blob = fixture.get(name);
        let body = match fetch_all(dst, &blob.desc).await {
            Ok(body) => body,
            Err(err) => panic!("{name} is not in the destination: {err}"),
        };
        assert_eq!(body, blob.data, "{name}: bytes in the destination");
    }
}

/// Panics if any of `names` is in `dst`.
async fn assert_absent(
    dst: &(impl ReadOnlyStorage + ?Sized),
    fixture: &CopyFixture,
    names: &[&str],
) {
    for name in names {
        assert!(
            !exists(dst, &fixture.desc(name)).await,
            "{name} must not be in the destination"
        );
    }
}

/// Panics if a manifest of the fixture is in `dst` without all its successors.
async fn assert_no_parent_without_children(
    dst: &(impl ReadOnlyStorage + ?Sized),
    fixture: &CopyFixture,
) {
    for (name, blob) in fixture.nodes() {
        if !crate::descriptor::is_manifest(&blob.desc) || !exists(dst, &blob.desc).await {
            continue;
        }
        for child in fixture.successors(name) {
            assert!(
                exists(dst, &fixture.desc(child)).await,
                "{name} is in the destination without its successor {child}"
            );
        }
    }
}

/// Panics unless every pushed manifest came after the successors pushed in the same run.
fn assert_children_first(fixture: &CopyFixture, pushes: &[String]) {
    let order = fixture.names(pushes);
    for (position, name) in order.iter().enumerate() {
        for child in fixture.successors(name) {
            if let Some(at) = order.iter().position(|n| *n == child) {
                assert!(
                    at < position,
                    "{name} was pushed before its successor {child}: {order:?}"
                );
            }
        }
    }
}

/// Collects the names passed to a hook.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<String>>>);

impl Seen {
    fn hook(&self) -> impl Fn(Descriptor) -> futures::future::Ready<crate::Result<()>> {
        let seen = self.0.clone();
        move |desc: Descriptor| {
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(desc.digest().to_string());
            futures::future::ready(Ok(()))
        }
    }

    fn names(&self, fixture: &CopyFixture) -> Vec<&'static str> {
        let digests = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        sorted_names(fixture, &digests)
    }
}

fn platform(os: Os, arch: Arch, variant: Option<&str>, version: Option<&str>) -> Platform {
    let mut builder = PlatformBuilder::default().os(os).architecture(arch);
    if let Some(v) = variant {
        builder = builder.variant(v);
    }
    if let Some(v) = version {
        builder = builder.os_version(v);
    }
    ok(
        builder
            .build()
            .map_err(|e| Error::unsupported(e.to_string())),
        "platform",
    )
}

/// A full `copy_graph` of the 11-node graph costs 11 source fetches, 11 destination exists and
/// 11 pushes, nothing else; every node is fetched and pushed once, children first.
pub async fn copy_graph_costs<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let root = fixture.desc("root");
    ok(
        copy_graph(&isrc, &idst, &root, &CopyGraphOptions::default()).await,
        "copy_graph",
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            fetch: 11,
            ..Default::default()
        },
        "source calls"
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 11,
            push: 11,
            ..Default::default()
        },
        "destination calls"
    );
    let all = sorted(&GRAPH);
    assert_eq!(
        sorted_names(fixture, &isrc.calls(Method::Fetch)),
        all,
        "fetched once each"
    );
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        all,
        "pushed once each"
    );
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Exists)),
        all,
        "checked once each"
    );
    assert_children_first(fixture, &idst.calls(Method::Push));
    assert_present(dst, fixture, &GRAPH).await;
}

/// `copy` adds one source resolve and one destination tag; copying again into a complete
/// destination pushes nothing but still tags (walking the present graph: 11 exists, 7 fetches;
/// with `repair: false`, 1 exists); an empty destination reference means the source's.
pub async fn copy_tags_and_copies_again<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let root = ok(
        copy(&isrc, "graph", &idst, "copied", &CopyOptions::default()).await,
        "copy",
    );
    assert!(
        same_content(&root, &fixture.desc("root")),
        "copy returns the root"
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            fetch: 11,
            ..Default::default()
        },
        "source calls"
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 11,
            push: 11,
            tag: 1,
            ..Default::default()
        },
        "destination calls"
    );
    assert_eq!(idst.calls(Method::Tag), ["copied"]);
    let tagged = ok(dst.resolve("copied").await, "resolve the new tag");
    assert_eq!(tagged.digest(), root.digest());
    assert_present(dst, fixture, &GRAPH).await;

    // Again, into a destination that has everything: nothing pushed, the tag set anyway.
    isrc.reset();
    idst.reset();
    let skipped = Seen::default();
    let opts = CopyOptions {
        graph: CopyGraphOptions::default().with_on_copy_skipped(skipped.hook()),
        ..Default::default()
    };
    ok(
        copy(&isrc, "graph", &idst, "again", &opts).await,
        "copy again",
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            fetch: 7,
            ..Default::default()
        },
        "source calls of a copy into a complete destination (the repair walk)"
    );
    assert_eq!(
        sorted_names(fixture, &isrc.calls(Method::Fetch)),
        sorted(&GRAPH_MANIFESTS)
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 11,
            tag: 1,
            ..Default::default()
        },
        "destination calls of a copy into a complete destination"
    );
    assert_eq!(
        skipped.names(fixture),
        sorted(&GRAPH),
        "every node reported skipped"
    );
    let tagged = ok(dst.resolve("again").await, "resolve the second tag");
    assert_eq!(tagged.digest(), root.digest());

    // oras-go v2.6.2's way: the root exists, so its whole graph is skipped.
    isrc.reset();
    idst.reset();
    let skipped = Seen::default();
    let opts = CopyOptions {
        graph: CopyGraphOptions {
            repair: false,
            ..Default::default()
        }
        .with_on_copy_skipped(skipped.hook()),
        ..Default::default()
    };
    ok(
        copy(&isrc, "graph", &idst, "", &opts).await,
        "copy without repair",
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 1,
            tag: 1,
            ..Default::default()
        }
    );
    assert_eq!(skipped.names(fixture), ["root"]);
    assert_eq!(
        idst.calls(Method::Tag),
        ["graph"],
        "an empty dst_ref means src_ref"
    );
    let tagged = ok(dst.resolve("graph").await, "resolve the source's tag");
    assert_eq!(tagged.digest(), root.digest());
}

/// With `index1`'s sub-graph (6 nodes) already in the destination, a copy of the root pushes
/// only the 5 missing nodes. It checks all 11 nodes and fetches 8 (7 manifest bodies and
/// `layer3`): an oras-go-style skip would check 9 and fetch 5; the difference is the repair's
/// price (the bodies of `index1`, `manifest1`, `manifest2`; the exists of `manifest1`,
/// `layer1`).
pub async fn copy_pushes_only_missing_nodes<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    ok(
        copy_graph(
            src,
            dst,
            &fixture.desc("index1"),
            &CopyGraphOptions::default(),
        )
        .await,
        "copy index1",
    );
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let skipped = Seen::default();
    let opts = CopyGraphOptions::default().with_on_copy_skipped(skipped.hook());
    ok(
        copy_graph(&isrc, &idst, &fixture.desc("root"), &opts).await,
        "copy root",
    );
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        ["index2", "index3", "layer3", "manifest3", "root"],
        "only the missing nodes are pushed"
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 11,
            push: 5,
            ..Default::default()
        }
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            fetch: 8,
            ..Default::default()
        }
    );
    assert_eq!(
        sorted_names(fixture, &isrc.calls(Method::Fetch)),
        sorted(&[
            "index1",
            "index2",
            "index3",
            "layer3",
            "manifest1",
            "manifest2",
            "manifest3",
            "root"
        ])
    );
    assert_eq!(
        skipped.names(fixture),
        [
            "config",
            "index1",
            "layer1",
            "layer2",
            "manifest1",
            "manifest2"
        ]
    );
    assert_children_first(fixture, &idst.calls(Method::Push));
    assert_present(dst, fixture, &GRAPH).await;
}

/// A layer deleted from a complete destination (as an interrupted copy would leave it) stays
/// missing after an oras-go-style copy (`repair: false`: 1 exists, nothing else) and is back
/// after a default copy (11 exists, 8 fetches: 7 bodies and the layer, 1 push).
pub async fn copy_repairs_an_incomplete_destination<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let root = fixture.desc("root");
    ok(
        copy_graph(src, dst, &root, &CopyGraphOptions::default()).await,
        "first copy",
    );
    let layer2 = fixture.desc("layer2");
    ok(
        dst.delete(&layer2).await,
        "delete layer2 from the destination",
    );
    assert!(!exists(dst, &layer2).await, "layer2 was deleted");
    assert!(exists(dst, &root).await, "the root survives the deletion");

    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let reference_style = CopyGraphOptions {
        repair: false,
        ..Default::default()
    };
    ok(
        copy_graph(&isrc, &idst, &root, &reference_style).await,
        "copy without repair",
    );
    assert_eq!(isrc.counts(), CallCounts::default());
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 1,
            ..Default::default()
        }
    );
    assert!(
        !exists(dst, &layer2).await,
        "an oras-go-style copy takes the present root on trust and misses layer2"
    );

    isrc.reset();
    idst.reset();
    ok(
        copy_graph(&isrc, &idst, &root, &CopyGraphOptions::default()).await,
        "copy with repair",
    );
    assert_eq!(fixture.names(&idst.calls(Method::Push)), ["layer2"]);
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 11,
            push: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            fetch: 8,
            ..Default::default()
        }
    );
    assert_present(dst, fixture, &GRAPH).await;
}

/// `target_platform`: the first matching child of an index (variant and OS version compared
/// only when wanted, OS features a subset), a single manifest by its config, `NotFound` when
/// nothing matches, `Unsupported` for a layer or a manifest whose config is no image config.
pub async fn copy_selects_a_platform<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let with = |p: Platform| CopyOptions {
        target_platform: Some(p),
        ..Default::default()
    };

    let arm = platform(Os::Linux, Arch::ARM64, None, None);
    let root = ok(
        copy(&isrc, "multi", &idst, "arm", &with(arm)).await,
        "copy arm64",
    );
    assert!(
        same_content(&root, &fixture.desc("arm64")),
        "the arm64 child"
    );
    assert_eq!(
        root.platform()
            .as_ref()
            .map(|p| p.architecture().to_string()),
        Some("arm64".to_string()),
        "the child's descriptor as the index lists it"
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            fetch: 4,
            ..Default::default()
        },
        "the index, the manifest, its config and layer, each fetched once"
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 3,
            push: 3,
            tag: 1,
            ..Default::default()
        }
    );
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        ["arm64", "arm64-config", "arm64-layer"]
    );
    assert_absent(dst, fixture, &["multi", "amd64", "windows"]).await;
    assert_eq!(
        ok(dst.resolve("arm").await, "resolve arm").digest(),
        root.digest()
    );

    let v8 = platform(Os::Linux, Arch::ARM64, Some("v8"), None);
    let root = ok(copy(&isrc, "multi", &idst, "arm", &with(v8)).await, "v8");
    assert!(same_content(&root, &fixture.desc("arm64")));

    isrc.reset();
    idst.reset();
    let v7 = platform(Os::Linux, Arch::ARM64, Some("v7"), None);
    expect_copy_err(
        copy(&isrc, "multi", &idst, "v7", &with(v7)).await,
        ErrorKind::NotFound,
        Side::Source,
        "select platform",
        "no arm64/v7 child",
    );
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            fetch: 1,
            ..Default::default()
        }
    );
    assert_eq!(idst.counts(), CallCounts::default(), "nothing copied");

    let mut windows = platform(Os::Windows, Arch::Amd64, None, Some("10.0.17763.1"));
    windows.set_os_features(Some(vec!["win32k".into()]));
    let root = ok(
        copy(&isrc, "multi", &idst, "win", &with(windows)).await,
        "windows",
    );
    assert!(same_content(&root, &fixture.desc("windows")));
    let other_build = platform(Os::Windows, Arch::Amd64, None, Some("10.0.20348.1"));
    expect_copy_err(
        copy(&isrc, "multi", &idst, "win", &with(other_build)).await,
        ErrorKind::NotFound,
        Side::Source,
        "select platform",
        "another Windows build",
    );

    // A single manifest: the platform comes from its config, which is fetched once.
    isrc.reset();
    idst.reset();
    let amd = platform(Os::Linux, Arch::Amd64, None, None);
    let root = ok(
        copy(&isrc, "amd64-image", &idst, "amd", &with(amd)).await,
        "single manifest",
    );
    assert!(same_content(&root, &fixture.desc("amd64")));
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            fetch: 3,
            ..Default::default()
        }
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 3,
            push: 3,
            tag: 1,
            ..Default::default()
        }
    );
    expect_copy_err(
        copy(
            &isrc,
            "amd64-image",
            &idst,
            "x",
            &with(platform(Os::Linux, Arch::ARM64, None, None)),
        )
        .await,
        ErrorKind::NotFound,
        Side::Source,
        "select platform",
        "a single manifest of another platform",
    );

    let any = platform(Os::Linux, Arch::Amd64, None, None);
    let layer_copy = copy(
        &isrc,
        &fixture.digest("app-layer"),
        &idst,
        "x",
        &with(any.clone()),
    )
    .await;
    if capabilities.source.references_blobs {
        expect_copy_err(
            layer_copy,
            ErrorKind::Unsupported,
            Side::Source,
            "select platform",
            "a layer has no platform",
        );
    } else {
        expect_copy_err(
            layer_copy,
            ErrorKind::NotFound,
            Side::Source,
            "resolve",
            "a layer's digest names nothing where references name manifests only",
        );
    }
    expect_copy_err(
        copy(&isrc, &fixture.digest("signature"), &idst, "x", &with(any)).await,
        ErrorKind::Unsupported,
        Side::Source,
        "select platform",
        "a manifest whose config is not an image config",
    );
}

/// `extended_copy` with an artifact-type filter, then `extended_copy_graph` with depth 1 and
/// with unlimited depth, into one destination: each step pushes exactly what it adds. From a
/// source listing referrers only (no [`Capabilities::indexes_parents`]), `app-index` is no
/// predecessor of `app` and stays behind, and the referrers come with their artifact type, so
/// no body is read for the filter.
pub async fn extended_copy_depth_and_filter<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    let app = fixture.desc("app");

    let sbom_only = ExtendedCopyOptions {
        artifact_types: vec![SBOM.to_string()],
        ..Default::default()
    };
    let node = ok(
        extended_copy(&isrc, "app", &idst, "", &sbom_only).await,
        "extended copy of the SBOM",
    );
    assert!(same_content(&node, &app));
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        ["app", "app-config", "app-layer", "sbom", "sbom-blob"]
    );
    assert_eq!(
        idst.counts(),
        CallCounts {
            exists: 5,
            push: 5,
            tag: 1,
            ..Default::default()
        }
    );
    // Predecessors of app and of sbom; the bodies of app-index, sbom and signature read for
    // their artifact type (sbom's is then pushed from memory), and the 4 other nodes copied;
    // from a referrers listing, only the 5 nodes copied.
    let parents = capabilities.source.indexes_parents;
    assert_eq!(
        isrc.counts(),
        CallCounts {
            resolve: 1,
            predecessors: 2,
            fetch: if parents { 7 } else { 5 },
            ..Default::default()
        }
    );
    assert_eq!(
        ok(dst.resolve("app").await, "resolve app").digest(),
        app.digest()
    );
    assert_absent(dst, fixture, &["signature", "app-index", "sig-of-sig"]).await;

    isrc.reset();
    idst.reset();
    let one_hop = ExtendedCopyOptions {
        depth: 1,
        ..Default::default()
    };
    ok(
        extended_copy_graph(&isrc, &idst, &app, &one_hop).await,
        "depth 1",
    );
    let one_hop_pushes: &[&str] = if parents {
        &["app-index", "sig-config", "signature"]
    } else {
        &["sig-config", "signature"]
    };
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        one_hop_pushes
    );
    assert_eq!(isrc.counts().predecessors, 1, "only app's predecessors");
    assert_absent(dst, fixture, &["sig-of-sig"]).await;

    isrc.reset();
    idst.reset();
    ok(
        extended_copy_graph(&isrc, &idst, &app, &ExtendedCopyOptions::default()).await,
        "unlimited depth",
    );
    assert_eq!(
        sorted_names(fixture, &idst.calls(Method::Push)),
        ["sig-of-sig", "sig2-config"]
    );
    let mut asked: Vec<&str> = vec!["app", "sbom", "sig-of-sig", "signature"];
    if parents {
        asked.insert(1, "app-index");
    }
    assert_eq!(
        sorted_names(fixture, &isrc.calls(Method::Predecessors)),
        asked
    );
    let family = app_family(parents);
    assert_present(dst, fixture, &family).await;
    if !parents {
        assert_absent(dst, fixture, &["app-index"]).await;
    }

    // Following signatures only, from the signature: its signature is the one root.
    isrc.reset();
    let signatures = ExtendedCopyOptions {
        artifact_types: vec![SIGNATURE_TYPE.to_string()],
        ..Default::default()
    };
    ok(
        extended_copy_graph(&isrc, &idst, &fixture.desc("signature"), &signatures).await,
        "signatures of the signature",
    );
    assert_eq!(
        sorted_names(fixture, &isrc.calls(Method::Predecessors)),
        ["sig-of-sig", "signature"]
    );
}

/// At `concurrency`, on a graph whose nodes share successors: no deadlock, each node fetched
/// and pushed exactly once, children first, and never more than `concurrency` calls in flight
/// on both stores together; then the same for an extended copy whose roots share `app` (from
/// `app-layer`; from `app`, without `app-index`, for a source listing referrers only).
pub async fn copy_at_concurrency<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    capabilities: &CopyCapabilities,
    concurrency: usize,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let gauge = Gauge::new();
    let isrc = Instrumented::with_gauge(src, gauge.clone());
    let idst = Instrumented::with_gauge(dst, gauge.clone());
    let graph = CopyGraphOptions {
        concurrency,
        ..Default::default()
    };
    let copied = tokio::time::timeout(
        DEADLOCK_GUARD,
        copy_graph(&isrc, &idst, &fixture.desc("root"), &graph),
    )
    .await;
    match copied {
        Ok(result) => ok(result, "copy_graph"),
        Err(_) => panic!("copy_graph at concurrency {concurrency} did not finish: deadlock"),
    }
    let all = sorted(&GRAPH);
    assert_eq!(sorted_names(fixture, &idst.calls(Method::Push)), all);
    assert_eq!(sorted_names(fixture, &isrc.calls(Method::Fetch)), all);
    assert_children_first(fixture, &idst.calls(Method::Push));
    assert!(
        (1..=concurrency).contains(&gauge.peak()),
        "{} calls in flight at concurrency {concurrency}",
        gauge.peak()
    );

    isrc.reset();
    idst.reset();
    let extended = ExtendedCopyOptions {
        graph,
        ..Default::default()
    };
    // A source listing referrers only has no predecessor of a layer: the copy starts at `app`.
    let parents = capabilities.source.indexes_parents;
    let start = if parents { "app-layer" } else { "app" };
    let copied = tokio::time::timeout(
        DEADLOCK_GUARD,
        extended_copy_graph(&isrc, &idst, &fixture.desc(start), &extended),
    )
    .await;
    match copied {
        Ok(result) => ok(result, "extended_copy_graph"),
        Err(_) => panic!("extended_copy_graph at concurrency {concurrency}: deadlock"),
    }
    let family = sorted(&app_family(parents));
    assert_eq!(sorted_names(fixture, &idst.calls(Method::Push)), family);
    assert_eq!(sorted_names(fixture, &idst.calls(Method::Exists)), family);
    assert_children_first(fixture, &idst.calls(Method::Push));
    assert!(gauge.peak() <= concurrency, "{} in flight", gauge.peak());
}

/// `app` and everything an extended copy of it reaches: its successors, its referrers and
/// theirs, and `app-index` where the source lists parent indexes.
fn app_family(parents: bool) -> Vec<&'static str> {
    let mut family = vec![
        "app",
        "app-config",
        "app-layer",
        "sbom",
        "sbom-blob",
        "signature",
        "sig-config",
        "sig-of-sig",
        "sig2-config",
    ];
    if parents {
        family.push("app-index");
    }
    family
}

/// A source fetch fails (`layer2`): the error keeps its kind and names the source; nothing
/// above `layer2` reaches the destination, no manifest there lacks a successor; once the source
/// recovers, the same copy completes.
pub async fn copy_source_fetch_error<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    isrc.fail(
        Method::Fetch,
        &fixture.digest("layer2"),
        Error::io("injected", std::io::Error::other("source unavailable")),
    );
    let root = fixture.desc("root");
    let err = expect_copy_err(
        copy_graph(&isrc, &idst, &root, &CopyGraphOptions::default()).await,
        ErrorKind::Io,
        Side::Source,
        "fetch",
        "a failing source fetch",
    );
    assert!(err.to_string().contains("source unavailable"), "{err}");
    let above = [
        "layer2",
        "manifest2",
        "manifest3",
        "index1",
        "index2",
        "index3",
        "root",
    ];
    let pushed = fixture.names(&idst.calls(Method::Push));
    for name in above {
        assert!(!pushed.contains(&name), "{name} was pushed: {pushed:?}");
    }
    assert_absent(dst, fixture, &above).await;
    assert_no_parent_without_children(dst, fixture).await;

    isrc.clear_faults();
    ok(
        copy_graph(&isrc, &idst, &root, &CopyGraphOptions::default()).await,
        "the copy after the source recovered",
    );
    assert_present(dst, fixture, &GRAPH).await;
}

/// A destination push fails (`manifest3`): the error keeps its kind and names the
/// destination's push; nothing above `manifest3` is pushed.
pub async fn copy_destination_push_error<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    idst.fail(
        Method::Push,
        &fixture.digest("manifest3"),
        Error::io("injected", std::io::Error::other("disk full")),
    );
    let err = expect_copy_err(
        copy(&isrc, "graph", &idst, "t", &CopyOptions::default()).await,
        ErrorKind::Io,
        Side::Destination,
        "push",
        "a failing destination push",
    );
    assert!(err.to_string().contains("disk full"), "{err}");
    let pushed = fixture.names(&idst.calls(Method::Push));
    for name in ["index2", "index3", "root"] {
        assert!(!pushed.contains(&name), "{name} was pushed: {pushed:?}");
    }
    assert_eq!(idst.counts().tag, 0, "no tag after a failed copy");
    assert_absent(dst, fixture, &["manifest3", "index2", "index3", "root"]).await;
    assert_no_parent_without_children(dst, fixture).await;

    // A failing exists names the destination too.
    idst.clear_faults();
    idst.fail(
        Method::Exists,
        &fixture.digest("root"),
        Error::not_found("injected"),
    );
    expect_copy_err(
        copy(&isrc, "graph", &idst, "t", &CopyOptions::default()).await,
        ErrorKind::NotFound,
        Side::Destination,
        "exists",
        "a failing exists",
    );
}

/// The source's reader breaks in the middle of `layer3`: the push fails, but the error names
/// the source (`fetch`) and keeps the reader's kind; nothing above `layer3` is pushed.
pub async fn copy_source_reader_error<S, D>(
    src: &S,
    dst: &D,
    fixture: &CopyFixture,
    _capabilities: &CopyCapabilities,
) where
    S: ReadOnlyGraphTarget + ?Sized,
    D: GraphTarget + Deleter + ?Sized,
{
    let (isrc, idst) = (Instrumented::new(src), Instrumented::new(dst));
    isrc.break_reader(
        &fixture.digest("layer3"),
        Error::io("injected", std::io::Error::other("connection reset")),
    );
    expect_copy_err(
        copy_graph(
            &isrc,
            &idst,
            &fixture.desc("root"),
            &CopyGraphOptions::default(),
        )
        .await,
        ErrorKind::Io,
        Side::Source,
        "fetch",
        "a source reader failing mid-stream",
    );
    assert_absent(
        dst,
        fixture,
        &["layer3", "manifest3", "index2", "index3", "root"],
    )
    .await;
    assert_no_parent_without_children(dst, fixture).await;
}

/// Generates one `#[tokio::test]` per copy check for a source made by `$make_src` (a closure
/// taking a [`CopyFixture`] and returning a future of `(store, guard)` holding it, tags
/// included) and a destination made by `$make_dst` (a closure returning a future of
/// `(store, guard)`, empty; it must implement `Deleter` without deleting more than it is
/// asked). Invoke it once per module.
///
/// `copy_tests!($make_src, $make_dst, capabilities = expr)` takes the stores'
/// [`CopyCapabilities`] (a registry on either side); without it, two layout stores.
#[macro_export]
macro_rules! copy_tests {
    ($make_src:expr, $make_dst:expr) => {
        $crate::copy_tests!(
            $make_src,
            $make_dst,
            capabilities = $crate::testkit::copy_suite::CopyCapabilities::default()
        );
    };
    ($make_src:expr, $make_dst:expr, capabilities = $caps:expr) => {
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_graph_costs);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_tags_and_copies_again);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_pushes_only_missing_nodes);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_repairs_an_incomplete_destination);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_selects_a_platform);
        $crate::__copy_test!($make_src, $make_dst, $caps, extended_copy_depth_and_filter);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_source_fetch_error);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_destination_push_error);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_source_reader_error);
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_at_concurrency_1 => copy_at_concurrency(1));
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_at_concurrency_2 => copy_at_concurrency(2));
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_at_concurrency_3 => copy_at_concurrency(3));
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_at_concurrency_4 => copy_at_concurrency(4));
        $crate::__copy_test!($make_src, $make_dst, $caps, copy_at_concurrency_5 => copy_at_concurrency(5));
    };
}

/// One copy test; used by [`copy_tests!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __copy_test {
    ($make_src:expr, $make_dst:expr, $caps:expr, $name:ident) => {
        $crate::__copy_test!($make_src, $make_dst, $caps, $name => $name());
    };
    ($make_src:expr, $make_dst:expr, $caps:expr, $name:ident => $check:ident($($arg:expr),*)) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let capabilities: $crate::testkit::copy_suite::CopyCapabilities = $caps;
            let fixture = capabilities.fixture();
            let (src, _src_guard) = ($make_src)(fixture.clone()).await;
            let (dst, _dst_guard) = ($make_dst)().await;
            $crate::testkit::copy_suite::$check(&src, &dst, &fixture, &capabilities $(, $arg)*)
                .await;
        }
    };
}
