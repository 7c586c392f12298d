//! The autosave policies on the object store: when `index.json` is written in the bucket.

use std::sync::Arc;
use std::time::Duration;
use store_core::testkit::fixtures::GraphFixture;
use store_core::{TagLister, Tagger};
use store_object::object_store::memory::InMemory;
use store_object::object_store::ObjectStore;
use store_object::{Store, StoreOptions};

/// The tags another store sees when it opens the bucket now.
async fn tags_seen(bucket: &Arc<dyn ObjectStore>) -> Vec<String> {
    let other = Store::open(Arc::clone(bucket), "p").await.expect("open");
    other.tags(None).await.expect("tags")
}

async fn seeded(options: StoreOptions) -> (Arc<dyn ObjectStore>, Store, GraphFixture) {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store = Store::open_with(Arc::clone(&bucket), "p", options)
        .await
        .expect("open");
    let graph = GraphFixture::new();
    graph.push_to(&store).await.expect("push");
    store.save_index().await.expect("save");
    (bucket, store, graph)
}

#[tokio::test]
async fn manual_writes_only_on_save_or_close() {
    let options = StoreOptions::default().autosave(autosave::AutoSave::Manual);
    let (bucket, store, graph) = seeded(options).await;
    let writes = store.index_writes();
    store
        .tag(&graph.get("manifest1").desc, "v1")
        .await
        .expect("tag");
    assert_eq!(store.index_writes(), writes);
    assert!(tags_seen(&bucket).await.is_empty());
    store.save_index().await.expect("save");
    assert_eq!(tags_seen(&bucket).await, vec!["v1".to_string()]);
    store
        .tag(&graph.get("manifest2").desc, "v2")
        .await
        .expect("tag");
    store.close().await.expect("close");
    assert_eq!(
        tags_seen(&bucket).await,
        vec!["v1".to_string(), "v2".to_string()]
    );
}

#[tokio::test]
async fn debounce_writes_once_after_the_window() {
    let options =
        StoreOptions::default().autosave(autosave::AutoSave::Debounce(Duration::from_millis(200)));
    let (bucket, store, graph) = seeded(options).await;
    let writes = store.index_writes();
    for (i, name) in ["manifest1", "manifest2", "manifest3"].iter().enumerate() {
        store
            .tag(&graph.get(name).desc, &format!("v{i}"))
            .await
            .expect("tag");
    }
    assert!(tags_seen(&bucket).await.is_empty(), "nothing written yet");
    tokio::time::sleep(Duration::from_millis(2000)).await;
    assert_eq!(tags_seen(&bucket).await.len(), 3);
    assert_eq!(
        store.index_writes(),
        writes + 1,
        "one write for the three tags"
    );
}

#[tokio::test]
async fn always_writes_before_the_tag_returns() {
    let (bucket, store, graph) = seeded(StoreOptions::default()).await;
    store
        .tag(&graph.get("manifest1").desc, "v1")
        .await
        .expect("tag");
    assert_eq!(tags_seen(&bucket).await, vec!["v1".to_string()]);
}

/// Found by the model-based test (tests/model.rs of the facade): blobs pushed before a reopen
/// that no `index.json` entry reached are not in the reopened store's graph, and the delete
/// cascade used to skip them, leaving them unreferenced after their only manifest went.
#[tokio::test]
async fn delete_cascades_to_blobs_pushed_before_a_reopen() {
    use store_core::content::push_bytes;
    use store_core::{Deleter, ReadOnlyStorage};
    let options = StoreOptions::default().gc_grace(Duration::ZERO);
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let graph = GraphFixture::new();
    let manifest = graph.get("manifest3");
    let blobs = [
        graph.get("config"),
        graph.get("layer2"),
        graph.get("layer3"),
    ];
    let store = Store::open_with(Arc::clone(&bucket), "p", options)
        .await
        .expect("open");
    for blob in blobs {
        push_bytes(&store, &blob.desc, blob.data.clone())
            .await
            .expect("push");
    }
    store.close().await.expect("close");
    let store = Store::open_with(Arc::clone(&bucket), "p", options)
        .await
        .expect("reopen");
    push_bytes(&store, &manifest.desc, manifest.data.clone())
        .await
        .expect("push");
    store.delete(&manifest.desc).await.expect("delete");
    for blob in blobs {
        let left = store.exists(&blob.desc).await.expect("exists");
        assert!(!left, "{} is left", blob.desc.digest());
    }
    assert!(store.fsck().await.expect("fsck").orphaned.is_empty());
}

/// Found by the model-based test (tests/model.rs of the facade): under `Manual` (and
/// `Debounce`) a delete only recorded its change and removed the objects, so the saved
/// `index.json` went on naming the deleted manifest.
#[tokio::test]
async fn delete_saves_the_index_before_removing_under_every_policy() {
    use store_core::{Deleter, Resolver};
    for policy in [
        autosave::AutoSave::Manual,
        autosave::AutoSave::Debounce(Duration::from_secs(3600)),
    ] {
        let options = StoreOptions::default().autosave(policy);
        let (bucket, store, graph) = seeded(options).await;
        // A referrer: no index lists it, so nothing is left naming it.
        let manifest = graph.get("signature");
        store.delete(&manifest.desc).await.expect("delete");
        // Another store reads the bucket while this one is still open and has not been saved
        // since: what it sees is what a crash now would leave.
        let other = Store::open(Arc::clone(&bucket), "p").await.expect("open");
        let digest = manifest.desc.digest().to_string();
        let resolved = other.resolve(&digest).await;
        assert!(resolved.is_err(), "{policy:?}: {resolved:?}");
        let report = other.fsck().await.expect("fsck");
        assert!(report.is_clean(), "{policy:?}: {report:?}");
        store.close().await.expect("close");
    }
}

/// `copy` pushes its root with its tag (`ReferencePusher`): one `index.json` write per copy
/// into the bucket where a push and a tag made two.
#[tokio::test]
async fn a_copy_into_the_bucket_writes_its_index_once() {
    let source = store_core::memory::MemoryStore::new();
    let graph = GraphFixture::new();
    graph.push_to(&source).await.expect("push");
    source
        .tag(&graph.get("manifest1").desc, "v1")
        .await
        .expect("tag");
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    let before = store.index_writes();
    store_core::copy::copy(
        &source,
        "v1",
        &store,
        "copied",
        &store_core::copy::CopyOptions::default(),
    )
    .await
    .expect("copy");
    assert_eq!(store.index_writes(), before + 1);
    assert_eq!(tags_seen(&bucket).await, vec!["copied".to_string()]);
}
