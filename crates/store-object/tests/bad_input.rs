//! Bad input and the layout's shape, on object_store's in-memory backend: malformed
//! `index.json` / `oci-layout`, a blob whose bytes do not match its key, a service without
//! conditional writes, a cancelled push, gc's grace period, and a prefix synced to disk opening
//! as a layout directory.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use oci_spec::image::MediaType;
use std::sync::Arc;
use std::time::Duration;
use store_core::content::{descriptor_from_bytes, fetch_all, push_bytes};
use store_core::testkit::fixtures::GraphFixture;
use store_core::{
    ErrorKind, Fetcher, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger, Untagger,
};
use store_object::object_store::memory::InMemory;
use store_object::object_store::path::Path;
use store_object::object_store::{
    self, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use store_object::{Store, StoreOptions};

fn bucket() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

async fn put(bucket: &Arc<dyn ObjectStore>, key: &str, body: &'static [u8]) {
    bucket
        .put(&Path::from(key), PutPayload::from_static(body))
        .await
        .expect("put");
}

#[tokio::test]
async fn a_malformed_index_json_is_invalid_layout_naming_the_object() {
    for body in [&b""[..], b"not json", b"[]", br#"{"manifests":{}}"#] {
        let bucket = bucket();
        put(
            &bucket,
            "p/oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .await;
        put(&bucket, "p/index.json", body).await;
        let err = Store::open(Arc::clone(&bucket), "p")
            .await
            .expect_err("bad index.json");
        assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
        assert!(err.to_string().contains("p/index.json"), "{err}");
        // Nothing was rewritten.
        let kept = bucket.get(&Path::from("p/index.json")).await.expect("get");
        assert_eq!(kept.bytes().await.expect("bytes").as_ref(), body);
    }
}

#[tokio::test]
async fn a_malformed_or_unsupported_oci_layout_is_refused_naming_the_object() {
    for (body, kind) in [
        (&b"{"[..], ErrorKind::InvalidLayout),
        (b"{}", ErrorKind::InvalidLayout),
        (
            br#"{"imageLayoutVersion":"9.9.9"}"#,
            ErrorKind::UnsupportedVersion,
        ),
    ] {
        let bucket = bucket();
        put(&bucket, "p/oci-layout", body).await;
        let err = Store::open(Arc::clone(&bucket), "p")
            .await
            .expect_err("bad oci-layout");
        assert_eq!(err.kind(), kind, "{err}");
        assert!(err.to_string().contains("p/oci-layout"), "{err}");
        let listed: Vec<ObjectMeta> = bucket.list(None).try_collect().await.expect("list");
        assert_eq!(listed.len(), 1, "nothing else was written: {listed:?}");
    }
}

#[tokio::test]
async fn a_missing_prefix_is_not_found_when_creation_is_off() {
    let bucket = bucket();
    let options = StoreOptions::default().create(false);
    let err = Store::open_with(Arc::clone(&bucket), "nowhere", options)
        .await
        .expect_err("missing prefix");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("nowhere/oci-layout"), "{err}");
    let listed: Vec<ObjectMeta> = bucket.list(None).try_collect().await.expect("list");
    assert!(listed.is_empty());
}

#[tokio::test]
async fn a_blob_whose_bytes_do_not_match_its_key_fails_to_read_and_fsck_says_so() {
    let bucket = bucket();
    let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    let data = b"the right bytes";
    let desc = descriptor_from_bytes(MediaType::ImageLayer, data);
    push_bytes(&store, &desc, &data[..]).await.expect("push");
    let key = format!("p/blobs/sha256/{}", desc.digest().digest());
    // Same size, other bytes.
    put(&bucket, &key, b"the wrong bytes").await;
    let err = fetch_all(&store, &desc).await.expect_err("corrupt");
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert!(err.to_string().contains(desc.digest().digest()), "{err}");
    // Another size: refused at once, naming the object.
    put(&bucket, &key, b"short").await;
    let err = store.fetch(&desc).await.map(|_| ()).expect_err("short");
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert!(err.to_string().contains(&key), "{err}");
    put(&bucket, &key, b"the wrong bytes").await;
    let report = store.fsck().await.expect("fsck");
    assert_eq!(report.corrupt, vec![desc.digest().to_string()]);
    assert!(!report.is_clean());
}

#[tokio::test]
async fn another_writers_malformed_index_json_fails_the_save_and_is_not_overwritten() {
    let bucket = bucket();
    let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    let graph = GraphFixture::new();
    graph.push_to(&store).await.expect("push");
    put(&bucket, "p/index.json", b"{broken").await;
    let err = store
        .tag(&graph.get("manifest1").desc, "v1")
        .await
        .expect_err("save over a broken index.json");
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
    assert!(err.to_string().contains("p/index.json"), "{err}");
    let kept = bucket.get(&Path::from("p/index.json")).await.expect("get");
    assert_eq!(kept.bytes().await.expect("bytes").as_ref(), b"{broken");
    // The failed tag changed nothing, in memory either.
    let err = store.resolve("v1").await.expect_err("v1 was not tagged");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(store.tags(None).await.expect("tags").is_empty());
}

#[tokio::test]
async fn an_untag_whose_save_fails_changes_nothing() {
    let bucket = bucket();
    let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    let graph = GraphFixture::new();
    graph.push_to(&store).await.expect("push");
    let manifest = graph.get("manifest1").desc.clone();
    store.tag(&manifest, "v1").await.expect("tag");
    put(&bucket, "p/index.json", b"{broken").await;
    let err = store
        .untag("v1")
        .await
        .expect_err("save over a broken index.json");
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
    assert_eq!(
        store.resolve("v1").await.expect("v1 still tagged").digest(),
        manifest.digest()
    );
    assert_eq!(
        store.tags(None).await.expect("tags"),
        vec!["v1".to_string()]
    );
}

/// A service that ignores the conditions of its puts (overwrites always), as some S3 clones do.
#[derive(Debug)]
struct NoConditions(InMemory);

impl std::fmt::Display for NoConditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoConditions")
    }
}

#[async_trait]
impl ObjectStore for NoConditions {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        mut opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        opts.mode = PutMode::Overwrite;
        self.0.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.0.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn a_service_without_conditional_writes_is_refused_unless_last_writer_wins() {
    let service: Arc<dyn ObjectStore> = Arc::new(NoConditions(InMemory::new()));
    let err = Store::open(Arc::clone(&service), "p")
        .await
        .expect_err("no conditional writes");
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("last_writer_wins"), "{err}");
    let options = StoreOptions::default().last_writer_wins(true);
    let store = Store::open_with(Arc::clone(&service), "p", options)
        .await
        .expect("opted in");
    assert!(!store.has_conditional_writes());
    let graph = GraphFixture::new();
    graph.push_to(&store).await.expect("push");
    store
        .tag(&graph.get("manifest1").desc, "v1")
        .await
        .expect("tag");
    let again = Store::open_with(service, "p", options)
        .await
        .expect("reopen");
    assert_eq!(
        again.tags(None).await.expect("tags"),
        vec!["v1".to_string()]
    );
    // On the real thing, opening leaves no probe object behind.
    let bucket = bucket();
    Store::open(Arc::clone(&bucket), "q").await.expect("open");
    let listed: Vec<ObjectMeta> = bucket.list(None).try_collect().await.expect("list");
    let keys: Vec<String> = listed.iter().map(|m| m.location.to_string()).collect();
    assert_eq!(keys, vec!["q/index.json", "q/oci-layout"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_push_leaves_no_visible_object() {
    let bucket = bucket();
    let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    let data: Vec<u8> = (0..(24usize << 20)).map(|i| (i % 249) as u8).collect();
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    // Hands out the first 20 MiB, then never ends.
    let head = Bytes::copy_from_slice(&data[..20 << 20]);
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(head)])
        .chain(futures::stream::pending());
    let reader = Box::pin(tokio_util::io::StreamReader::new(stream));
    let push = tokio::time::timeout(Duration::from_millis(500), store.push(&desc, reader)).await;
    assert!(push.is_err(), "the push was still running when dropped");
    assert!(!store.exists(&desc).await.expect("exists"));
    let listed: Vec<ObjectMeta> = bucket
        .list(Some(&Path::from("p/blobs")))
        .try_collect()
        .await
        .expect("list");
    assert!(listed.is_empty(), "{listed:?}");
    // The same push, whole, then works.
    push_bytes(&store, &desc, data).await.expect("push");
    assert!(store.exists(&desc).await.expect("exists"));
}

#[tokio::test]
async fn gc_removes_unreferenced_blobs_past_the_grace_period_only() {
    let bucket = bucket();
    let graph = GraphFixture::new();
    let stray = descriptor_from_bytes(MediaType::ImageLayer, b"stray");
    {
        let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
        graph.push_to(&store).await.expect("push");
        store
            .tag(&graph.get("index-nested").desc, "root")
            .await
            .expect("tag");
        push_bytes(&store, &stray, &b"stray"[..])
            .await
            .expect("stray");
        let report = store.gc().await.expect("gc");
        assert_eq!(report.blobs_removed, 0, "young objects are spared");
    }
    let options = StoreOptions::default().gc_grace(Duration::ZERO);
    let store = Store::open_with(Arc::clone(&bucket), "p", options)
        .await
        .expect("open");
    let report = store.gc().await.expect("gc");
    assert!(report.blobs_removed >= 1, "{report:?}");
    assert!(!store.exists(&stray).await.expect("exists"));
    let root = store.resolve("root").await.expect("resolve");
    assert_eq!(root.digest(), graph.get("index-nested").desc.digest());
    let check = store.fsck().await.expect("fsck");
    assert!(check.is_clean(), "{check:?}");
    assert!(check.orphaned.is_empty(), "{check:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_synced_to_disk_opens_as_a_layout_directory() {
    let bucket = bucket();
    let store = Store::open(Arc::clone(&bucket), "layouts/a")
        .await
        .expect("open");
    let graph = GraphFixture::new();
    graph.push_to(&store).await.expect("push");
    for name in ["index-nested", "sbom"] {
        store.tag(&graph.get(name).desc, name).await.expect("tag");
    }
    store.close().await.expect("close");
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = Path::from("layouts/a");
    let listed: Vec<ObjectMeta> = bucket
        .list(Some(&prefix))
        .try_collect()
        .await
        .expect("list");
    for meta in listed {
        let relative: Vec<String> = meta
            .location
            .prefix_match(&prefix)
            .expect("under the prefix")
            .map(|part| part.as_ref().to_string())
            .collect();
        let path = relative
            .iter()
            .fold(dir.path().to_path_buf(), |p, c| p.join(c));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let bytes = bucket
            .get(&meta.location)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        std::fs::write(&path, &bytes).expect("write");
    }
    let disk = store_fs::ReadOnlyStore::open(dir.path())
        .await
        .expect("open on disk");
    assert_eq!(
        disk.tags(None).await.expect("tags"),
        vec!["index-nested".to_string(), "sbom".to_string()]
    );
    for (_, blob) in graph.nodes() {
        let back = fetch_all(&disk, &blob.desc).await.expect("fetch from disk");
        assert_eq!(back, blob.data);
    }
    let rw = store_fs::Store::open(dir.path())
        .await
        .expect("open read-write");
    let report = rw.fsck().await.expect("fsck");
    assert!(report.is_clean(), "{report:?}");
    assert!(report.warnings.is_empty(), "{report:?}");
}
