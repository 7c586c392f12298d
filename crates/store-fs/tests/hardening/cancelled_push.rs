//! Item: cancelled pushes leave nothing. A small durable manifest push is dropped at the moment
//! its blob appears under `blobs/` (the future is polled by hand and never again once the file
//! is there): the layout must end up either without the blob, or with it recorded in
//! `index.json`, never with a published manifest nobody indexed.

use crate::common::Image;
use crate::util::{blob_path, pattern, GUARD};
use std::time::{Duration, Instant};
use store_core::content::push_bytes;
use store_core::Pusher;
use store_fs::Store;

/// Whether the `index.json` at `root` has an entry for `digest`.
fn indexed(root: &std::path::Path, digest: &str) -> bool {
    let index = crate::common::index_json(root);
    index["manifests"]
        .as_array()
        .is_some_and(|list| list.iter().any(|e| e["digest"] == digest))
}

#[tokio::test]
async fn a_manifest_push_dropped_after_its_publish_is_recorded_or_undone() {
    let dir = tempfile::tempdir().unwrap();
    // Durable (the default): the publish runs on the blocking pool, so the future is pending
    // while the file appears.
    let store = Store::open(dir.path()).await.unwrap();
    let image = Image::new(1, &pattern(2048, 1));
    for (d, b) in [&image.config, &image.layer] {
        push_bytes(&store, d, b.clone()).await.unwrap();
    }
    let (manifest, body) = image.manifest.clone();
    let path = blob_path(dir.path(), &manifest);
    let digest = manifest.digest().to_string();

    let mut push = Box::pin(store.push(
        &manifest,
        store_core::content::reader_from_bytes(body.clone()),
    ));
    let started = Instant::now();
    loop {
        if path.exists() {
            // Published, and this future will never be polled again.
            drop(push);
            break;
        }
        if futures::poll!(push.as_mut()).is_ready() {
            panic!("the push completed before its file was seen; the test could not cancel it");
        }
        assert!(started.elapsed() < GUARD, "the manifest never appeared");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }

    // The blocking half may still be finishing; whatever the fix (record or undo) it must get
    // there: wait for it, with the guard as the only limit.
    let started = Instant::now();
    loop {
        store.save_index().await.unwrap();
        if !path.exists() {
            break;
        }
        if indexed(dir.path(), &digest) {
            let resolved = store.resolve(&digest).await.unwrap();
            assert_eq!(resolved.media_type(), manifest.media_type());
            break;
        }
        assert!(
            started.elapsed() < GUARD,
            "the cancelled push left {} published but not in index.json",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
