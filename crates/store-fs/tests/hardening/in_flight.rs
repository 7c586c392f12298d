//! Item: delete respects content in flight. Image B's layers are pushed (one of them shared with
//! image A, so its push finds it already there), then A is deleted with auto GC, then B's
//! manifest arrives: B's shared layer must still be there, or the manifest push must say it is
//! missing; B is never left tagged with a missing layer without anyone being told.

use crate::common::Image;
use crate::util::{blob_path, pattern};
use std::time::{Duration, SystemTime};
use store_core::content::{fetch_all, push_bytes};
use store_core::{Deleter, ErrorKind, ReadOnlyStorage, Tagger};
use store_fs::{Store, StoreOptions};

#[tokio::test]
async fn deleting_an_image_spares_the_layers_of_an_image_being_pushed() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: auto GC on, gc grace one hour.
    let store = Store::open(dir.path()).await.unwrap();
    let shared_layer = pattern(4096, 7);
    let a = Image::new(1, &shared_layer);
    let b = Image::new(2, &shared_layer);
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();

    // B's blobs, manifest last (as every copy does).
    push_bytes(&store, &b.config.0, b.config.1.clone())
        .await
        .unwrap();
    let again = push_bytes(&store, &b.layer.0, b.layer.1.clone()).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

    store.delete(&a.manifest.0).await.unwrap();

    match push_bytes(&store, &b.manifest.0, b.manifest.1.clone()).await {
        Ok(()) => {
            store.tag(&b.manifest.0, "b").await.unwrap();
            let layer = fetch_all(&store, &b.layer.0).await;
            assert!(
                layer.as_ref().is_ok_and(|bytes| *bytes == b.layer.1),
                "B was pushed and tagged, but the delete of A removed its shared layer: {:?}",
                layer.err()
            );
            let report = store.fsck().await.unwrap();
            assert!(report.is_clean(), "{report:?}");
        }
        Err(e) => assert!(
            e.to_string().contains(&b.layer.0.digest().to_string()),
            "a manifest push refused for a missing layer names it: {e}"
        ),
    }
}

/// A copy asks `exists` and skips what is there: the layer it found is spared just the same, by
/// the delete and by a gc before the manifest arrives.
#[tokio::test]
async fn a_layer_a_copy_found_with_exists_is_spared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let shared_layer = pattern(4096, 8);
    let a = Image::new(1, &shared_layer);
    let b = Image::new(2, &shared_layer);
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();

    // A was pushed long ago: its files are older than the grace period.
    let long_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    for d in [&a.config.0, &a.layer.0, &a.manifest.0] {
        std::fs::File::options()
            .write(true)
            .open(blob_path(dir.path(), d))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    push_bytes(&store, &b.config.0, b.config.1.clone())
        .await
        .unwrap();
    assert!(store.exists(&b.layer.0).await.unwrap());
    store.delete(&a.manifest.0).await.unwrap();
    assert!(
        !store.exists(&a.config.0).await.unwrap(),
        "A's own config is still removed by the cascade"
    );
    // A gc meanwhile keeps it too: the layer's file is old, but this store touched it.
    store.gc().await.unwrap();

    push_bytes(&store, &b.manifest.0, b.manifest.1.clone())
        .await
        .unwrap();
    store.tag(&b.manifest.0, "b").await.unwrap();
    assert_eq!(fetch_all(&store, &b.layer.0).await.unwrap(), b.layer.1);
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// In the usual order (layers, then the manifest) and with nothing pushed since, the cascade
/// removes the deleted image's layers as oras-go's does.
#[tokio::test]
async fn the_layers_of_the_deleted_image_itself_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let a = Image::new(1, &pattern(4096, 9));
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();
    store.delete(&a.manifest.0).await.unwrap();
    for d in [&a.config.0, &a.layer.0, &a.manifest.0] {
        assert!(!store.exists(d).await.unwrap(), "{} removed", d.digest());
    }
}

/// Another process that finds the shared layer already stored refreshes its time, and this
/// process's delete of A then spares it.
#[tokio::test]
async fn a_layer_another_process_pushed_again_is_spared() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let shared_layer = pattern(4096, 10);
    let a = Image::new(1, &shared_layer);
    let b = Image::new(2, &shared_layer);
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();

    // File times have the granularity of the kernel's clock tick: the other process's push
    // comes a few ticks later.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let other = Store::open(dir.path()).await.unwrap();
    push_bytes(&other, &b.config.0, b.config.1.clone())
        .await
        .unwrap();
    let again = push_bytes(&other, &b.layer.0, b.layer.1.clone()).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

    store.delete(&a.manifest.0).await.unwrap();

    push_bytes(&other, &b.manifest.0, b.manifest.1.clone())
        .await
        .unwrap();
    other.tag(&b.manifest.0, "b").await.unwrap();
    assert_eq!(fetch_all(&other, &b.layer.0).await.unwrap(), b.layer.1);
    let report = other.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

/// With `gc_grace` zero nothing is spared (as documented): the shared layer goes with A, and
/// the image pushed meanwhile is left without it, which fsck reports.
#[tokio::test]
async fn with_a_zero_grace_nothing_is_spared() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::default().gc_grace(Duration::ZERO);
    let store = Store::open_with(dir.path(), options).await.unwrap();
    let shared_layer = pattern(4096, 11);
    let a = Image::new(1, &shared_layer);
    let b = Image::new(2, &shared_layer);
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();
    push_bytes(&store, &b.config.0, b.config.1.clone())
        .await
        .unwrap();
    let again = push_bytes(&store, &b.layer.0, b.layer.1.clone()).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
    store.delete(&a.manifest.0).await.unwrap();
    assert!(!store.exists(&b.layer.0).await.unwrap());
    push_bytes(&store, &b.manifest.0, b.manifest.1.clone())
        .await
        .unwrap();
    let report = store.fsck().await.unwrap();
    assert_eq!(report.missing, vec![b.layer.0.digest().to_string()]);
}
