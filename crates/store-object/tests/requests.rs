//! How many requests a push makes of the service. A push asks whether the blob is stored before
//! it reads the caller's reader (the contract: stored content is never read again); a push
//! right after `exists` found the blob absent, as a copy makes for every node it transfers, does
//! not ask a second time, nor does a push of bytes held in memory (no reader to protect). The
//! counting wrapper is instrumentation over `object_store`'s own
//! in-memory service (no installable server reports its requests per key).

use async_trait::async_trait;
use futures::stream::BoxStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use store_core::content::{descriptor_from_bytes, reader_from_bytes};
use store_core::testkit::fixtures::{unreadable, GraphFixture};
use store_core::{Deleter, ErrorKind, Pusher, ReadOnlyStorage, Resolver, Tagger};
use store_object::object_store::memory::InMemory;
use store_object::object_store::path::Path;
use store_object::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use store_object::Store;

/// `InMemory`, counting the existence checks (`HEAD`) and the puts of blob objects.
#[derive(Debug, Default)]
struct Counting {
    inner: InMemory,
    blob_heads: AtomicUsize,
    blob_puts: AtomicUsize,
}

impl Counting {
    fn counts(&self) -> (usize, usize) {
        (
            self.blob_heads.load(Ordering::SeqCst),
            self.blob_puts.load(Ordering::SeqCst),
        )
    }
}

fn is_blob(location: &Path) -> bool {
    location.as_ref().contains("/blobs/")
}

impl std::fmt::Display for Counting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting")
    }
}

#[async_trait]
impl ObjectStore for Counting {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> store_object::object_store::Result<PutResult> {
        if is_blob(location) {
            self.blob_puts.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> store_object::object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> store_object::object_store::Result<GetResult> {
        if options.head && is_blob(location) {
            self.blob_heads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, store_object::object_store::Result<Path>>,
    ) -> BoxStream<'static, store_object::object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> BoxStream<'static, store_object::object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> store_object::object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> store_object::object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[tokio::test]
async fn a_push_after_exists_found_the_blob_absent_does_not_ask_again() {
    let service = Arc::new(Counting::default());
    let store = Store::open(service.clone(), "p").await.expect("open");
    let (one, two) = (b"blob one".as_slice(), b"blob two".as_slice());
    let (desc_one, desc_two) = (
        descriptor_from_bytes("application/octet-stream".into(), one),
        descriptor_from_bytes("application/octet-stream".into(), two),
    );

    // A plain push asks first, then puts.
    let before = service.counts();
    store
        .push(&desc_one, reader_from_bytes(bytes::Bytes::from_static(one)))
        .await
        .expect("push");
    assert_eq!(service.counts(), (before.0 + 1, before.1 + 1));

    // exists (one HEAD, absent), then the push: no second HEAD.
    let before = service.counts();
    assert!(!store.exists(&desc_two).await.expect("exists"));
    store
        .push(&desc_two, reader_from_bytes(bytes::Bytes::from_static(two)))
        .await
        .expect("push");
    assert_eq!(service.counts(), (before.0 + 1, before.1 + 1));

    // Stored content pushed again is refused unread, memo or not: the first push used it up.
    let before = service.counts();
    let err = store
        .push(&desc_two, unreadable())
        .await
        .expect_err("stored");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(service.counts(), (before.0 + 1, before.1));
}

#[tokio::test]
async fn content_stored_meanwhile_by_another_writer_is_still_refused() {
    let service = Arc::new(Counting::default());
    let ours = Store::open(service.clone(), "p").await.expect("open ours");
    let theirs = Store::open(service.clone(), "p")
        .await
        .expect("open theirs");
    let graph = GraphFixture::new();
    let manifest = graph.get("manifest1");
    for name in ["config", "layer1"] {
        let blob = graph.get(name);
        store_core::content::push_bytes(&ours, &blob.desc, blob.data.clone())
            .await
            .expect("push a successor");
    }
    // Ours finds the manifest absent; theirs stores it before ours pushes it.
    assert!(!ours.exists(&manifest.desc).await.expect("exists"));
    store_core::content::push_bytes(&theirs, &manifest.desc, manifest.data.clone())
        .await
        .expect("their push");
    let err = store_core::content::push_bytes(&ours, &manifest.desc, manifest.data.clone())
        .await
        .expect_err("stored meanwhile");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    // As for any push of a stored manifest, ours now knows it: its digest resolves and it can be
    // tagged.
    assert_eq!(
        ours.resolve(manifest.desc.digest().as_ref())
            .await
            .expect("resolve")
            .digest(),
        manifest.desc.digest()
    );
    ours.tag(&manifest.desc, "v1").await.expect("tag");
}

#[tokio::test]
async fn a_push_of_bytes_in_memory_is_one_put_and_stored_content_is_refused_by_it() {
    let service = Arc::new(Counting::default());
    let store = Store::open(service.clone(), "p").await.expect("open");
    let data = bytes::Bytes::from_static(b"bytes in memory");
    let desc = descriptor_from_bytes("application/octet-stream".into(), &data);

    // New content: one create-if-absent put, no existence check.
    let before = service.counts();
    store.push_bytes(&desc, data.clone()).await.expect("push");
    assert_eq!(service.counts(), (before.0, before.1 + 1));
    assert!(store.exists(&desc).await.expect("exists"));

    // Stored content: the put is refused, the push says so, the object is as it was.
    let before = service.counts();
    let err = store
        .push_bytes(&desc, data.clone())
        .await
        .expect_err("stored");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(service.counts(), (before.0, before.1 + 1));
    let fetched = store_core::content::fetch_all(&store, &desc)
        .await
        .expect("fetch");
    assert_eq!(fetched, data);

    // Wrong bytes are refused before any request; nothing is stored under the digest.
    let other = descriptor_from_bytes("application/octet-stream".into(), b"other content");
    let before = service.counts();
    let err = store
        .push_bytes(&other, bytes::Bytes::from_static(b"not the content"))
        .await
        .expect_err("mismatch");
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert_eq!(service.counts(), before);
    assert!(!store.exists(&other).await.expect("exists"));

    // A reader is still checked for first: the contract leaves it unread when stored.
    let before = service.counts();
    let err = store.push(&desc, unreadable()).await.expect_err("stored");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    assert_eq!(service.counts(), (before.0 + 1, before.1));
}

/// Pushes `data` (as an octet stream) through `store` and returns its descriptor.
async fn put_plain(store: &Store, data: &'static [u8]) -> oci_spec::image::Descriptor {
    let desc = descriptor_from_bytes("application/octet-stream".into(), data);
    store
        .push_bytes(&desc, bytes::Bytes::from_static(data))
        .await
        .expect("push");
    desc
}

#[tokio::test]
async fn a_tag_right_after_this_store_put_the_blob_asks_nothing_else_it_asks() {
    let service = Arc::new(Counting::default());
    let store = Store::open(service.clone(), "p").await.expect("open");
    let graph = GraphFixture::new();
    for name in ["config", "layer1", "manifest1"] {
        let blob = graph.get(name);
        store
            .push_bytes(&blob.desc, blob.data.clone())
            .await
            .expect("push");
    }
    let manifest = graph.get("manifest1");

    // Put by this store a moment ago: no existence check.
    let before = service.counts();
    store.tag(&manifest.desc, "v1").await.expect("tag");
    assert_eq!(service.counts(), before);
    assert_eq!(
        store.resolve("v1").await.expect("resolve").digest(),
        manifest.desc.digest()
    );

    // Nor does `exists` ask about it (a copy asks about every blob, shared layers too).
    let before = service.counts();
    assert!(store.exists(&manifest.desc).await.expect("exists"));
    assert_eq!(service.counts(), before);

    // A wrong size is not taken on trust: the service is asked, and it says Mismatch.
    let mut wrong = manifest.desc.clone();
    wrong.set_size(manifest.desc.size() + 1);
    let before = service.counts();
    let err = store.tag(&wrong, "wrong").await.expect_err("wrong size");
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert_eq!(service.counts(), (before.0 + 1, before.1));

    // Deleted by this store: forgotten, so a tag asks and finds nothing.
    store.delete(&manifest.desc).await.expect("delete");
    let before = service.counts();
    assert!(!store.exists(&manifest.desc).await.expect("exists"));
    assert_eq!(service.counts(), (before.0 + 1, before.1));
    let before = service.counts();
    let err = store.tag(&manifest.desc, "v2").await.expect_err("deleted");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert_eq!(service.counts(), (before.0 + 1, before.1));

    // Another store did not put it: it asks.
    let blob = put_plain(&store, b"put by the first store").await;
    let theirs = Store::open(service.clone(), "p")
        .await
        .expect("open theirs");
    let before = service.counts();
    theirs.tag(&blob, "theirs").await.expect("their tag");
    assert_eq!(service.counts(), (before.0 + 1, before.1));

    // After a gc of this store nothing is trusted.
    let kept = put_plain(&store, b"kept by a tag").await;
    store.tag(&kept, "kept").await.expect("tag");
    store.gc().await.expect("gc");
    let before = service.counts();
    store.tag(&kept, "kept-again").await.expect("tag after gc");
    assert_eq!(service.counts(), (before.0 + 1, before.1));
}

#[tokio::test]
async fn with_no_grace_period_a_tag_always_asks() {
    let service = Arc::new(Counting::default());
    let options = store_object::StoreOptions::default().gc_grace(std::time::Duration::ZERO);
    let store = Store::open_with(service.clone(), "p", options)
        .await
        .expect("open");
    let blob = put_plain(&store, b"no grace").await;
    let before = service.counts();
    store.tag(&blob, "v1").await.expect("tag");
    assert_eq!(service.counts(), (before.0 + 1, before.1));
}
