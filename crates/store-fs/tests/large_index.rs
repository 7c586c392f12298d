//! An `index.json` past the size written inline (64 KiB) is written from the caller's task on a
//! multi-threaded runtime and through the blocking pool on a current-thread one: both save
//! every tag, in order, and leave no temp file.

mod common;

use common::{index_json, listing, Image};
use store_core::{TagLister, Tagger};
use store_fs::Store;

async fn tag_many(dir: &std::path::Path) {
    let store = Store::open(dir).await.unwrap();
    let image = Image::new(7, b"layer");
    image.push(&store).await;
    let manifest = &image.manifest.0;
    let tags: Vec<String> = (0..500)
        .map(|i| format!("a-rather-long-tag-name-to-grow-the-index-{i:04}"))
        .collect();
    for tag in &tags {
        store.tag(manifest, tag).await.unwrap();
    }
    let size = std::fs::metadata(dir.join("index.json")).unwrap().len();
    assert!(size > 64 << 10, "index.json has {size} bytes only");
    store.close().await.unwrap();
    let names = listing(dir);
    assert!(
        names.iter().all(|n| !n.contains(".tmp-")),
        "temp files left: {names:?}"
    );
    let entries = index_json(dir)["manifests"].as_array().unwrap().len();
    assert_eq!(entries, tags.len());
    let reopened = Store::open(dir).await.unwrap();
    assert_eq!(reopened.tags(None).await.unwrap(), tags);
    assert_eq!(
        reopened.resolve(&tags[499]).await.unwrap().digest(),
        manifest.digest()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_index_is_saved_on_a_multi_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    tag_many(dir.path()).await;
}

#[tokio::test]
async fn a_large_index_is_saved_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    tag_many(dir.path()).await;
}
