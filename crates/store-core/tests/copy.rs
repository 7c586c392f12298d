//! Copy from a MemoryStore to a MemoryStore: the shared copy checks (costs counted per method,
//! repair, platforms, extended copy, concurrency 1 to 5, errors on each side), then what only
//! needs one pair of stores: hooks, limits, foreign layers, overrides and argument errors.

#![cfg(feature = "testkit")]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use store_core::content::push_bytes;
use store_core::copy::{
    copy, copy_graph, extended_copy, CopyGraphOptions, CopyOptions, ExtendedCopyOptions, PreCopy,
    Side,
};
use store_core::descriptor::same_content;
use store_core::memory::MemoryStore;
use store_core::spec::Descriptor;
use store_core::testkit::copy_fixtures::{CopyFixture, GRAPH};
use store_core::testkit::expect_err;
use store_core::testkit::fixtures::{config, image_manifest, layer, Blob};
use store_core::testkit::instrumented::{CallCounts, Instrumented, Method};
use store_core::{Error, ErrorKind, ReadOnlyStorage, Resolver};

store_core::copy_tests!(
    |fixture: CopyFixture| async move {
        let store = MemoryStore::new();
        fixture.push_to(&store).await.expect("seeding the source");
        (store, ())
    },
    || async { (MemoryStore::new(), ()) }
);

async fn seeded() -> (MemoryStore, CopyFixture) {
    let fixture = CopyFixture::new();
    let store = MemoryStore::new();
    fixture.push_to(&store).await.expect("seeding the source");
    (store, fixture)
}

/// Names passed to a hook, in call order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, fixture: &CopyFixture, desc: &Descriptor) {
        let name = fixture.name_of(desc.digest().as_ref()).unwrap_or("?");
        self.0.lock().unwrap().push(name.to_string());
    }
    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

#[tokio::test]
async fn hooks_see_every_node_children_first_and_pre_copy_can_skip() {
    let (src, fixture) = seeded().await;
    let dst = Instrumented::new(MemoryStore::new());
    let (pre, post, skipped) = (Log::default(), Log::default(), Log::default());
    let layer3 = fixture.desc("layer3");
    let graph = CopyGraphOptions {
        concurrency: 1,
        ..Default::default()
    }
    .with_pre_copy({
        let (pre, fixture, layer3) = (pre.clone(), fixture.clone(), layer3.clone());
        move |desc| {
            pre.push(&fixture, &desc);
            let skip = same_content(&desc, &layer3);
            async move { Ok(if skip { PreCopy::Skip } else { PreCopy::Copy }) }
        }
    })
    .with_post_copy({
        let (post, fixture) = (post.clone(), fixture.clone());
        move |desc| {
            post.push(&fixture, &desc);
            async { Ok(()) }
        }
    })
    .with_on_copy_skipped({
        let (skipped, fixture) = (skipped.clone(), fixture.clone());
        move |desc| {
            skipped.push(&fixture, &desc);
            async { Ok(()) }
        }
    });
    copy_graph(&src, &dst, &fixture.desc("root"), &graph)
        .await
        .unwrap();

    let mut pre_sorted = pre.names();
    pre_sorted.sort();
    let mut all: Vec<String> = GRAPH.iter().map(|s| s.to_string()).collect();
    all.sort();
    assert_eq!(pre_sorted, all, "pre_copy sees every node once");
    let post = post.names();
    assert_eq!(
        post.len(),
        10,
        "post_copy sees every node but the skipped one"
    );
    assert!(!post.contains(&"layer3".to_string()));
    // post_copy order is push order: children first.
    for (i, name) in post.iter().enumerate() {
        for child in fixture.successors(name) {
            if let Some(at) = post.iter().position(|n| n == child) {
                assert!(at < i, "{name} before {child}: {post:?}");
            }
        }
    }
    assert!(skipped.names().is_empty(), "nothing was in the destination");
    assert!(
        !dst.inner().exists(&layer3).await.unwrap(),
        "layer3 was skipped"
    );
    assert_eq!(dst.counts().push, 10);
}

#[tokio::test]
async fn a_root_skipped_by_pre_copy_is_not_tagged_but_a_present_root_is() {
    let (src, fixture) = seeded().await;
    let dst = Instrumented::new(MemoryStore::new());
    let root = fixture.desc("root");
    let opts = CopyOptions {
        graph: CopyGraphOptions::default().with_pre_copy(move |desc| {
            let skip = same_content(&desc, &root);
            async move { Ok(if skip { PreCopy::Skip } else { PreCopy::Copy }) }
        }),
        ..Default::default()
    };
    copy(&src, "graph", &dst, "t", &opts).await.unwrap();
    assert_eq!(dst.counts().tag, 0);
    assert_eq!(dst.counts().push, 10);

    // Copying without the hook finds the children present and pushes the root, then tags.
    dst.reset();
    copy(&src, "graph", &dst, "t", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(dst.calls(Method::Push), [fixture.digest("root")]);
    assert_eq!(dst.calls(Method::Tag), ["t"]);
}

#[tokio::test]
async fn hook_errors_are_returned_as_they_are() {
    let (src, fixture) = seeded().await;
    let dst = MemoryStore::new();
    let graph = CopyGraphOptions::default()
        .with_post_copy(|_| async { Err(Error::unsupported("refused by the hook")) });
    let err = copy_graph(&src, &dst, &fixture.desc("root"), &graph)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(err.side(), None, "a hook's error names no side");
}

#[tokio::test]
async fn manifests_above_max_metadata_bytes_fail_before_anything_is_pushed() {
    let (src, fixture) = seeded().await;
    let isrc = Instrumented::new(&src);
    let dst = Instrumented::new(MemoryStore::new());
    let root = fixture.desc("root");
    let graph = CopyGraphOptions {
        max_metadata_bytes: root.size() - 1,
        ..Default::default()
    };
    let err = expect_err(
        copy_graph(&isrc, &dst, &root, &graph).await,
        ErrorKind::SizeExceedsLimit,
        "a root above the limit",
    );
    assert_eq!(err.side(), Some(Side::Source));
    assert_eq!(isrc.counts(), CallCounts::default(), "nothing was fetched");
    assert_eq!(dst.counts().push, 0);

    // A limit that fits the root but not some child manifest fails too, with nothing above it.
    let graph = CopyGraphOptions {
        max_metadata_bytes: root.size(),
        ..Default::default()
    };
    let biggest_child = ["index1", "index2", "index3"]
        .iter()
        .map(|n| fixture.desc(n).size())
        .max()
        .unwrap();
    assert!(biggest_child > root.size() || fixture.desc("manifest2").size() > root.size());
    expect_err(
        copy_graph(&src, &dst, &root, &graph).await,
        ErrorKind::SizeExceedsLimit,
        "a child above the limit",
    );
    assert!(!dst.inner().exists(&root).await.unwrap());
}

#[tokio::test]
async fn foreign_layers_are_neither_fetched_nor_pushed() {
    let src = Instrumented::new(MemoryStore::new());
    let cfg = config("windows", "amd64", "foreign");
    let local = layer(b"a distributable layer");
    let foreign = Blob::new(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        &b"never distributed"[..],
    );
    let manifest = image_manifest(
        &cfg.desc,
        &[foreign.desc.clone(), local.desc.clone()],
        None,
        None,
        &[],
    );
    // The source does not even hold the foreign layer.
    for blob in [&cfg, &local, &manifest] {
        blob.push_to(src.inner()).await.unwrap();
    }
    let dst = Instrumented::new(MemoryStore::new());
    copy_graph(&src, &dst, &manifest.desc, &CopyGraphOptions::default())
        .await
        .unwrap();
    assert!(!src
        .calls(Method::Fetch)
        .contains(&foreign.digest().to_string()));
    assert!(!dst
        .calls(Method::Exists)
        .contains(&foreign.digest().to_string()));
    assert_eq!(dst.counts().push, 3);
    assert!(dst.inner().exists(&manifest.desc).await.unwrap());
}

#[tokio::test]
async fn find_successors_and_map_root_can_be_replaced() {
    let (src, fixture) = seeded().await;
    let dst = Instrumented::new(MemoryStore::new());
    // Successors: only the config of image manifests (layers left behind), indexes as usual.
    let graph = CopyGraphOptions::default().with_find_successors(|fetcher, desc| {
        Box::pin(async move {
            let mut found = store_core::content::successors(fetcher, desc).await?;
            found.retain(|d| !d.media_type().as_ref().contains("layer"));
            Ok(found)
        })
    });
    let manifest1 = fixture.desc("manifest1");
    let opts = CopyOptions {
        graph,
        ..Default::default()
    }
    .with_map_root(move |_fetcher, _root| {
        let manifest1 = manifest1.clone();
        Box::pin(async move { Ok(manifest1) })
    });
    let root = copy(&src, "graph", &dst, "m1", &opts).await.unwrap();
    assert!(same_content(&root, &fixture.desc("manifest1")));
    let mut pushed = fixture.names(&dst.calls(Method::Push));
    pushed.sort();
    assert_eq!(pushed, ["config", "manifest1"]);
    assert_eq!(
        dst.inner().resolve("m1").await.unwrap().digest(),
        root.digest()
    );

    // A failing map_root names the source.
    let opts = CopyOptions::default()
        .with_map_root(|_, _| Box::pin(async { Err(Error::not_found("no such child")) }));
    let err = expect_err(
        copy(&src, "graph", &dst, "x", &opts).await,
        ErrorKind::NotFound,
        "map_root",
    );
    assert_eq!(err.side(), Some(Side::Source));
}

#[tokio::test]
async fn reference_errors_name_their_side() {
    let (src, _fixture) = seeded().await;
    let dst = MemoryStore::new();
    let opts = CopyOptions::default();
    let err = expect_err(
        copy(&src, "missing", &dst, "", &opts).await,
        ErrorKind::NotFound,
        "unknown source tag",
    );
    assert_eq!(err.side(), Some(Side::Source));
    assert!(err.to_string().contains("resolve"), "{err}");
    expect_err(
        copy(&src, "", &dst, "", &opts).await,
        ErrorKind::MissingReference,
        "empty source reference",
    );
    let err = expect_err(
        copy(&src, "graph", &dst, "not a valid tag!", &opts).await,
        ErrorKind::InvalidReference,
        "invalid destination tag",
    );
    assert_eq!(err.side(), Some(Side::Destination));
    assert!(err.to_string().contains("tag"), "{err}");
    let err = expect_err(
        extended_copy(&src, "missing", &dst, "", &ExtendedCopyOptions::default()).await,
        ErrorKind::NotFound,
        "extended copy of an unknown tag",
    );
    assert_eq!(err.side(), Some(Side::Source));
}

#[tokio::test]
async fn a_body_that_does_not_parse_names_the_source() {
    let src = MemoryStore::new();
    let garbage = Blob::new("application/octet-stream", &b"{not json"[..]);
    garbage.push_to(&src).await.unwrap();
    // The same bytes, described as a manifest.
    let mut as_manifest = garbage.desc.clone();
    as_manifest.set_media_type(store_core::spec::MediaType::ImageManifest);
    let dst = MemoryStore::new();
    let err = expect_err(
        copy_graph(&src, &dst, &as_manifest, &CopyGraphOptions::default()).await,
        ErrorKind::InvalidManifest,
        "an unparsable manifest",
    );
    assert_eq!(err.side(), Some(Side::Source));
    assert!(!dst.exists(&as_manifest).await.unwrap());
}

/// The repair's price on a partial destination, next to oras-go's skip, on fresh
/// destinations: index1's sub-graph (6 nodes) is present; both push the 5 missing nodes.
#[tokio::test]
async fn the_repair_costs_one_fetch_per_present_manifest() {
    let (src, fixture) = seeded().await;
    let mut costs = Vec::new();
    for repair in [true, false] {
        let dst = MemoryStore::new();
        copy_graph(
            &src,
            &dst,
            &fixture.desc("index1"),
            &CopyGraphOptions::default(),
        )
        .await
        .unwrap();
        let (isrc, idst) = (Instrumented::new(&src), Instrumented::new(&dst));
        let graph = CopyGraphOptions {
            repair,
            ..Default::default()
        };
        copy_graph(&isrc, &idst, &fixture.desc("root"), &graph)
            .await
            .unwrap();
        costs.push((
            isrc.counts().fetch,
            idst.counts().exists,
            idst.counts().push,
        ));
    }
    assert_eq!(costs, [(8, 11, 5), (5, 9, 5)]);
}

#[tokio::test]
async fn the_first_error_cancels_operations_still_running() {
    // layer1's fetch never completes; layer3's fails. Without cancellation the copy would wait
    // for layer1 forever.
    let (src, fixture) = seeded().await;
    let src = HangingFetch {
        inner: src,
        hang: fixture.digest("layer1"),
        fail: fixture.digest("layer3"),
    };
    let dst = MemoryStore::new();
    let copied = tokio::time::timeout(
        Duration::from_secs(120),
        copy_graph(
            &src,
            &dst,
            &fixture.desc("root"),
            &CopyGraphOptions::default(),
        ),
    )
    .await
    .expect("the copy must end at the first error");
    let err = expect_err(copied, ErrorKind::Io, "the failing fetch");
    assert_eq!(err.side(), Some(Side::Source));
}

#[tokio::test]
async fn concurrency_zero_means_the_default() {
    let (src, fixture) = seeded().await;
    let dst = MemoryStore::new();
    let graph = CopyGraphOptions {
        concurrency: 0,
        max_metadata_bytes: 0,
        ..Default::default()
    };
    copy_graph(&src, &dst, &fixture.desc("root"), &graph)
        .await
        .unwrap();
    for name in GRAPH {
        assert!(dst.exists(&fixture.desc(name)).await.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn same_bytes_under_two_media_types_are_two_nodes() {
    // A manifest whose layer has the same bytes as another node's config: both are copied,
    // the second push meets AlreadyExists, which is tolerated.
    let src = MemoryStore::new();
    let cfg = config("linux", "amd64", "twice");
    let as_layer = Blob::new("application/vnd.oci.image.layer.v1.tar", cfg.data.clone());
    let manifest = image_manifest(
        &cfg.desc,
        std::slice::from_ref(&as_layer.desc),
        None,
        None,
        &[],
    );
    cfg.push_to(&src).await.unwrap();
    push_bytes(&src, &manifest.desc, manifest.data.clone())
        .await
        .unwrap();
    let dst = MemoryStore::new();
    copy_graph(&src, &dst, &manifest.desc, &CopyGraphOptions::default())
        .await
        .unwrap();
    assert!(dst.exists(&manifest.desc).await.unwrap());
}

/// A source whose fetch of one digest never completes and of another fails.
struct HangingFetch {
    inner: MemoryStore,
    hang: String,
    fail: String,
}

#[async_trait::async_trait]
impl store_core::Fetcher for HangingFetch {
    async fn fetch(
        &self,
        target: &Descriptor,
    ) -> store_core::Result<store_core::content::BoxReader> {
        let digest = target.digest().to_string();
        if digest == self.hang {
            futures::future::pending::<()>().await;
        }
        if digest == self.fail {
            return Err(Error::io("injected", std::io::Error::other("gone")));
        }
        self.inner.fetch(target).await
    }
}

#[async_trait::async_trait]
impl ReadOnlyStorage for HangingFetch {
    async fn exists(&self, target: &Descriptor) -> store_core::Result<bool> {
        self.inner.exists(target).await
    }
}

/// A source that lacks a manifest the destination has (a partial mirror): the repair walk reads
/// that manifest's body from the destination instead of failing, and still completes what is
/// missing below it.
#[tokio::test]
async fn a_present_manifest_the_source_lacks_is_read_from_the_destination() {
    let fixture = CopyFixture::new();
    let src = Instrumented::new(MemoryStore::new());
    for name in GRAPH {
        if name != "manifest2" {
            fixture.get(name).push_to(src.inner()).await.unwrap();
        }
    }
    let dst = Instrumented::new(MemoryStore::new());
    for name in GRAPH {
        fixture.get(name).push_to(dst.inner()).await.unwrap();
    }
    // layer2 (below manifest2 and manifest3) goes missing from the destination.
    store_core::Deleter::delete(dst.inner(), &fixture.desc("layer2"))
        .await
        .unwrap();
    copy_graph(
        &src,
        &dst,
        &fixture.desc("root"),
        &CopyGraphOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(dst.calls(Method::Push), [fixture.digest("layer2")]);
    assert_eq!(
        dst.calls(Method::Fetch),
        [fixture.digest("manifest2")],
        "only the manifest the source lacks is read from the destination"
    );
    assert!(src
        .calls(Method::Fetch)
        .contains(&fixture.digest("manifest2")));
}
