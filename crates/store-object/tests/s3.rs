//! The store on a real S3 server started on 127.0.0.1: SeaweedFS (`weed server -s3`). Skipped when the server program is missing, unless
//! `OCISTORE_REQUIRE_INTEROP=1`.

mod support;

use bytes::Bytes;
use futures::future::join_all;
use oci_spec::image::{Descriptor, MediaType};
use std::sync::Arc;
use store_core::content::{descriptor_from_bytes, push_bytes, reader_from_bytes};
use store_core::testkit::{self, fixtures::GraphFixture};
use store_core::{ErrorKind, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger};
use store_object::object_store::path::Path;
use store_object::object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use store_object::{Store, StoreOptions};
use support::{Kind, S3Server, BUCKET};
use tokio::sync::OnceCell;

/// One SeaweedFS server for the tests of this file that do not kill it; each test works under
/// a prefix of its own.
static SEAWEED: OnceCell<Option<S3Server>> = OnceCell::const_new();

async fn seaweed() -> Option<&'static S3Server> {
    SEAWEED
        .get_or_init(|| S3Server::start(Kind::Seaweed))
        .await
        .as_ref()
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_seaweedfs() {
    let Some(server) = seaweed().await else {
        return;
    };
    let bucket = server.store(BUCKET);
    macro_rules! run {
        ($($check:ident),*) => {$(
            let store = Store::open(Arc::clone(&bucket), unique(stringify!($check)).as_str())
                .await
                .expect("open");
            assert!(store.has_conditional_writes(), "SeaweedFS passes the conditional-write probe");
            testkit::$check(&store, &testkit::Capabilities::default()).await;
        )*};
    }
    run!(
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
        delete_removes_content
    );
}

/// Conditional updates on the server alone: of many puts racing with the same ETag, exactly one
/// may succeed, or a compare-and-swap is not atomic there.
async fn conditional_updates_are_atomic(bucket: Arc<dyn ObjectStore>) {
    let key = Path::from(unique("cas"));
    let first = bucket
        .put(&key, PutPayload::from("0"))
        .await
        .expect("first put");
    let mut version = UpdateVersion::from(first);
    for round in 0..20 {
        let attempts = (0..8).map(|i| {
            let bucket = Arc::clone(&bucket);
            let key = key.clone();
            let opts = PutOptions {
                mode: PutMode::Update(version.clone()),
                ..Default::default()
            };
            async move {
                bucket
                    .put_opts(&key, PutPayload::from(format!("{round}-{i}")), opts)
                    .await
            }
        });
        let results = join_all(attempts).await;
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} of 8 racing conditional updates succeeded: {:?}",
            won.len(),
            results
                .iter()
                .map(|r| r.as_ref().err().map(|e| e.to_string()))
                .collect::<Vec<_>>()
        );
        version = UpdateVersion::from(won[0].clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_conditional_updates_are_atomic() {
    let Some(server) = seaweed().await else {
        return;
    };
    conditional_updates_are_atomic(server.store(BUCKET)).await;
}

/// Four stores (as four machines would) on one prefix, each tagging 200 images, 8 at a time:
/// a store reopened afterwards sees all 800 tags.
async fn four_writers_lose_no_tag(bucket: Arc<dyn ObjectStore>) {
    let prefix = unique("writers");
    let setup = Store::open(Arc::clone(&bucket), prefix.as_str())
        .await
        .expect("open");
    let config = descriptor_from_bytes(MediaType::ImageConfig, b"{}");
    push_bytes(&setup, &config, Bytes::from_static(b"{}"))
        .await
        .expect("config");
    let mut manifests = Vec::new();
    for i in 0..4 {
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[],"annotations":{{"n":"{i}"}}}}"#,
            config.digest()
        );
        let desc = descriptor_from_bytes(MediaType::ImageManifest, body.as_bytes());
        push_bytes(&setup, &desc, Bytes::from(body))
            .await
            .expect("manifest");
        manifests.push(desc);
    }
    setup.close().await.expect("close");
    let writers = (0..4).map(|w| {
        let bucket = Arc::clone(&bucket);
        let prefix = prefix.clone();
        let manifest = manifests[w].clone();
        tokio::spawn(async move {
            let store = Arc::new(
                Store::open(bucket, prefix.as_str())
                    .await
                    .expect("writer open"),
            );
            for chunk in (0..200).collect::<Vec<_>>().chunks(8) {
                let tags = chunk.iter().map(|n| {
                    let store = Arc::clone(&store);
                    let manifest = manifest.clone();
                    async move { store.tag(&manifest, &format!("w{w}-{n:03}")).await }
                });
                for result in join_all(tags).await {
                    result.expect("tag");
                }
            }
            store.index_writes()
        })
    });
    let mut writes = 0;
    for writer in join_all(writers).await {
        writes += writer.expect("writer task");
    }
    let reader = Store::open(bucket, prefix.as_str()).await.expect("reopen");
    let tags = reader.tags(None).await.expect("tags");
    assert_eq!(tags.len(), 800, "tags lost: {} of 800 survive", tags.len());
    for (w, manifest) in manifests.iter().enumerate() {
        let tag = format!("w{w}-199");
        let desc = reader.resolve(&tag).await.expect("resolve");
        assert_eq!(desc.digest(), manifest.digest(), "{tag}");
    }
    // Group commit: 800 tags took fewer writes than tags.
    assert!(writes < 800, "{writes} index writes for 800 tags");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seaweedfs_four_writers_lose_no_tag() {
    let Some(server) = seaweed().await else {
        return;
    };
    four_writers_lose_no_tag(server.store(BUCKET)).await;
}

/// Every blob digest of a layout directory.
fn blob_digests(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for alg in std::fs::read_dir(root.join("blobs")).expect("blobs") {
        let alg = alg.expect("entry");
        for blob in std::fs::read_dir(alg.path()).expect("alg dir") {
            let blob = blob.expect("entry");
            out.push(format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                blob.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_layout_to_bucket_to_layout_keeps_every_digest() {
    let Some(server) = seaweed().await else {
        return;
    };
    let src_dir = tempfile::tempdir().expect("temp dir");
    let src = store_fs::Store::open(src_dir.path()).await.expect("source");
    let graph = GraphFixture::new();
    graph.push_to(&src).await.expect("seeding");
    let roots = ["index-nested", "sbom", "signature", "index-empty"];
    for root in roots {
        src.tag(&graph.get(root).desc, root).await.expect("tag");
    }
    let bucket = Store::open(server.store(BUCKET), unique("copy").as_str())
        .await
        .expect("bucket");
    let dst_dir = tempfile::tempdir().expect("temp dir");
    let dst = store_fs::Store::open(dst_dir.path()).await.expect("dest");
    let opts = store_core::copy::ExtendedCopyOptions::default();
    for root in roots {
        store_core::copy::extended_copy(&src, root, &bucket, "", &opts)
            .await
            .expect("layout -> bucket");
        store_core::copy::extended_copy(&bucket, root, &dst, "", &opts)
            .await
            .expect("bucket -> layout");
        assert_eq!(
            dst.resolve(root).await.expect("resolve").digest(),
            src.resolve(root).await.expect("resolve").digest()
        );
    }
    dst.close().await.expect("close");
    src.close().await.expect("close");
    let (from, to) = (blob_digests(src_dir.path()), blob_digests(dst_dir.path()));
    assert!(!from.is_empty());
    assert_eq!(from, to, "every digest of the source made the round trip");
    let report = bucket.fsck().await.expect("fsck");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.blobs_checked, from.len());
}

/// A reader that hands out `total` bytes of a pattern in 1 MiB pieces, and says (once) when it
/// has handed out `signal_after` bytes.
fn trickle(
    total: usize,
    signal_after: usize,
) -> (
    Descriptor,
    store_core::content::BoxReader,
    tokio::sync::oneshot::Receiver<()>,
) {
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let chunks: Vec<Bytes> = data.chunks(1 << 20).map(Bytes::copy_from_slice).collect();
    let mut sent = 0usize;
    let mut tx = Some(tx);
    let stream = futures::stream::iter(chunks).then(move |chunk| {
        sent += chunk.len();
        if sent >= signal_after {
            if let Some(tx) = tx.take() {
                let _ = tx.send(());
            }
        }
        async move {
            // Slow enough for the kill to land mid-upload.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, std::io::Error>(chunk)
        }
    });
    let reader = tokio_util::io::StreamReader::new(Box::pin(stream));
    (desc, Box::pin(reader), rx)
}

use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_upload_leaves_no_blob_and_the_store_works_after_a_restart() {
    let Some(mut server) = S3Server::start(Kind::Seaweed).await else {
        return;
    };
    let prefix = "killed";
    let store = Store::open(server.store(BUCKET), prefix)
        .await
        .expect("open");
    let (desc, reader, started) = trickle(48 << 20, 24 << 20);
    let push = store.push(&desc, reader);
    let kill = async {
        let _ = started.await;
        server.kill();
    };
    let (result, ()) = tokio::join!(push, kill);
    let err = result.expect_err("a push to a killed server fails");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(
        err.to_string().contains(desc.digest().digest()),
        "the error names the object: {err}"
    );
    // The service gone mid-call: other calls fail, typed, naming the object.
    let other = store
        .exists(&desc)
        .await
        .expect_err("exists on a dead server");
    assert_eq!(other.kind(), ErrorKind::Backend, "{other}");
    drop(store);

    server.spawn().await;
    let store = Store::open(server.store(BUCKET), prefix)
        .await
        .expect("reopen");
    assert!(
        !store.exists(&desc).await.expect("exists"),
        "no visible blob"
    );
    let (desc, reader, _started) = trickle(48 << 20, usize::MAX);
    store.push(&desc, reader).await.expect("push after restart");
    store.tag(&desc, "after-restart").await.expect("tag");
    let report = store.fsck().await.expect("fsck");
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.blobs_checked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_are_a_typed_error_naming_the_object() {
    let Some(server) = seaweed().await else {
        return;
    };
    let bucket = server.store_with_secret("refused", "not-the-secret");
    let err = Store::open(bucket, "p").await.expect_err("wrong secret");
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("p/oci-layout"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_or_prefix_is_not_found_when_creation_is_off() {
    let Some(server) = seaweed().await else {
        return;
    };
    let options = StoreOptions::default().create(false);
    let err = Store::open_with(server.store(&unique("nobucket")), "p", options)
        .await
        .expect_err("missing bucket");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("p/oci-layout"), "{err}");
    let err = Store::open_with(server.store(BUCKET), unique("none").as_str(), options)
        .await
        .expect_err("missing prefix");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_blob_is_visible_only_once_verified() {
    let Some(server) = seaweed().await else {
        return;
    };
    let store = Store::open(server.store(BUCKET), unique("big").as_str())
        .await
        .expect("open");
    let data: Vec<u8> = (0..(40usize << 20)).map(|i| (i % 253) as u8).collect();
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    // The same size, one byte changed at the end: the upload runs to the end, then is aborted.
    let mut wrong = data.clone();
    *wrong.last_mut().expect("data") ^= 1;
    let err = store
        .push(&desc, reader_from_bytes(wrong))
        .await
        .expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert!(!store.exists(&desc).await.expect("exists"));
    store
        .push(&desc, reader_from_bytes(data.clone()))
        .await
        .expect("push");
    let back = store_core::content::fetch_all(&store, &desc)
        .await
        .expect("fetch");
    assert_eq!(back.len(), data.len());
    assert!(back == data);
}
