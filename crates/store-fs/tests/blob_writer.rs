//! `BlobWriter::commit` goes through the push path: a committed manifest is parsed, indexed into
//! the graph, recorded in `index.json` under every autosave policy, bounded by
//! `MAX_MANIFEST_SIZE`, and published and recorded as one unit under the store's gate, durable
//! or not.

mod common;

use autosave::AutoSave;
use common::*;
use futures::FutureExt;
use oci_spec::image::{Descriptor, MediaType};
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::time::Duration;
use store_core::content::descriptor_from_bytes;
use store_core::descriptor::MAX_MANIFEST_SIZE;
use store_core::{Deleter, ErrorKind, PredecessorFinder, Resolver};
use store_fs::{Store, StoreOptions, LOCK_FILE};
use tokio::io::AsyncWriteExt;

fn options(durable: bool, policy: AutoSave) -> StoreOptions {
    StoreOptions::default().durable(durable).autosave(policy)
}

/// The digests `index.json` on disk lists.
fn listed_on_disk(root: &Path) -> Vec<String> {
    index_json(root)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Writes `body` through a blob writer of `media_type` and commits it.
async fn commit(store: &Store, media_type: &str, body: &[u8]) -> store_core::Result<Descriptor> {
    let mut writer = store
        .blob_writer(MediaType::from(media_type))
        .await
        .unwrap();
    // In two writes, as a producer would.
    let half = body.len() / 2;
    writer.write_all(&body[..half]).await.unwrap();
    writer.write_all(&body[half..]).await.unwrap();
    writer.commit().await
}

/// Pushes the image's config and layer, then commits its manifest through a blob writer.
async fn commit_image(store: &Store, image: &Image) -> Descriptor {
    for (desc, bytes) in [&image.config, &image.layer] {
        store_core::content::push_bytes(store, desc, bytes.clone())
            .await
            .unwrap();
    }
    let committed = commit(store, MANIFEST, &image.manifest.1).await.unwrap();
    assert_eq!(committed, image.manifest.0);
    committed
}

/// After a reopen, the committed manifest resolves, is an `index.json` entry, and is the
/// predecessor of its config and layer.
async fn assert_recorded_after_reopen(root: &Path, image: &Image, durable: bool) {
    let store = Store::open_with(root, options(durable, AutoSave::Manual))
        .await
        .unwrap();
    let manifest = &image.manifest.0;
    let resolved = store.resolve(manifest.digest().as_ref()).await.unwrap();
    assert_eq!(resolved.digest(), manifest.digest());
    assert_eq!(resolved.media_type(), manifest.media_type());
    assert!(store
        .entries()
        .iter()
        .any(|entry| entry.digest() == manifest.digest()));
    for child in [&image.config.0, &image.layer.0] {
        let predecessors = store.predecessors(child).await.unwrap();
        assert_eq!(
            predecessors
                .iter()
                .map(|p| p.digest().to_string())
                .collect::<Vec<_>>(),
            vec![manifest.digest().to_string()],
            "predecessors of {} after a reopen",
            child.digest()
        );
    }
}

#[tokio::test]
async fn a_committed_manifest_is_recorded_under_every_policy() {
    for durable in [true, false] {
        // Always: in index.json when commit returns.
        let dir = tempfile::tempdir().unwrap();
        let image = Image::new(1, b"layer under always");
        let store = Store::open_with(dir.path(), options(durable, AutoSave::Always))
            .await
            .unwrap();
        let committed = commit_image(&store, &image).await;
        assert!(listed_on_disk(dir.path()).contains(&committed.digest().to_string()));
        // Committing the same bytes again is not an error and records nothing new.
        let again = commit(&store, MANIFEST, &image.manifest.1).await.unwrap();
        assert_eq!(again, committed);
        assert_eq!(listed_on_disk(dir.path()).len(), 1);
        store.close().await.unwrap();
        assert_recorded_after_reopen(dir.path(), &image, durable).await;

        // Manual: pending until save_index.
        let dir = tempfile::tempdir().unwrap();
        let image = Image::new(2, b"layer under manual");
        let store = Store::open_with(dir.path(), options(durable, AutoSave::Manual))
            .await
            .unwrap();
        let committed = commit_image(&store, &image).await;
        assert!(
            listed_on_disk(dir.path()).is_empty(),
            "Manual writes nothing"
        );
        store.save_index().await.unwrap();
        assert_eq!(
            listed_on_disk(dir.path()),
            vec![committed.digest().to_string()]
        );
        store.close().await.unwrap();
        assert_recorded_after_reopen(dir.path(), &image, durable).await;

        // Debounce: written by the debounce or at the latest by close.
        let dir = tempfile::tempdir().unwrap();
        let image = Image::new(3, b"layer under debounce");
        let store = Store::open_with(
            dir.path(),
            options(durable, AutoSave::Debounce(Duration::from_secs(3600))),
        )
        .await
        .unwrap();
        let committed = commit_image(&store, &image).await;
        store.close().await.unwrap();
        assert_eq!(
            listed_on_disk(dir.path()),
            vec![committed.digest().to_string()]
        );
        assert_recorded_after_reopen(dir.path(), &image, durable).await;
    }
}

#[tokio::test]
async fn a_manifest_over_the_limit_is_refused_and_leaves_nothing() {
    for durable in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(dir.path(), options(durable, AutoSave::Always))
            .await
            .unwrap();
        let before = listing(dir.path());
        let index_before = std::fs::read(dir.path().join("index.json")).unwrap();
        // Valid JSON padded with spaces past the limit: the size alone refuses it.
        let mut body = br#"{"schemaVersion":2,"manifests":[]"#.to_vec();
        body.resize(MAX_MANIFEST_SIZE as usize, b' ');
        body.push(b'}');
        let err = commit(&store, INDEX, &body).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
        assert!(
            err.to_string().contains(&MAX_MANIFEST_SIZE.to_string()),
            "{err}"
        );
        let refused = descriptor_from_bytes(MediaType::ImageIndex, &body);
        assert!(!err.to_string().contains("not found"), "{err}");
        assert_eq!(
            store
                .resolve(refused.digest().as_ref())
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::NotFound
        );
        assert!(store.entries().is_empty());
        assert_eq!(
            listing(dir.path()),
            before,
            "no blob, no staging file left behind"
        );
        assert_eq!(
            std::fs::read(dir.path().join("index.json")).unwrap(),
            index_before
        );

        // At the limit exactly it is a manifest like any other.
        let mut body = br#"{"schemaVersion":2,"manifests":[]"#.to_vec();
        body.resize(MAX_MANIFEST_SIZE as usize - 1, b' ');
        body.push(b'}');
        let accepted = commit(&store, INDEX, &body).await.unwrap();
        assert_eq!(accepted.size(), MAX_MANIFEST_SIZE);
        assert_eq!(
            listed_on_disk(dir.path()),
            vec![accepted.digest().to_string()]
        );

        // A manifest media type whose body does not parse is refused too, leaving nothing.
        let before = listing(dir.path());
        let err = commit(&store, MANIFEST, b"{not json").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidManifest, "{err}");
        assert_eq!(listing(dir.path()), before);
    }
}

/// Holds the exclusive lock on `index.json.lock`, as another process's index write would.
fn hold_index_lock(root: &Path) -> File {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(root.join(LOCK_FILE))
        .unwrap();
    file.lock().unwrap();
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_publishes_and_records_as_one_unit_and_saves_without_the_gate() {
    for durable in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(
            Store::open_with(dir.path(), options(durable, AutoSave::Always))
                .await
                .unwrap(),
        );
        let image = Image::new(4, b"layer committed under the gate");
        for (desc, bytes) in [&image.config, &image.layer] {
            store_core::content::push_bytes(&*store, desc, bytes.clone())
                .await
                .unwrap();
        }
        let manifest = image.manifest.0.clone();
        // With the index lock held here, the commit publishes the manifest, records it in
        // memory (one unit, under the gate), and then waits for its index.json write, without
        // the gate: a delete or gc meanwhile sees the record, and saves it with its own write.
        let lock = hold_index_lock(dir.path());
        let committing = {
            let store = std::sync::Arc::clone(&store);
            let body = image.manifest.1.clone();
            tokio::spawn(async move { commit(&store, MANIFEST, &body).await })
        };
        // Wait until it is published and recorded in memory (an index.json entry to be).
        while !store
            .entries()
            .iter()
            .any(|entry| entry.digest() == manifest.digest())
        {
            tokio::task::yield_now().await;
        }
        assert!(
            !committing.is_finished(),
            "the save waits for the index lock"
        );
        assert!(dir
            .path()
            .join("blobs/sha256")
            .join(manifest.digest().digest())
            .is_file());

        // Delete and gc take the gate exclusively. A delete of something absent needs nothing
        // but the gate (it fails at once with NotFound once it has it), so a first poll that
        // completes tells that the gate is free. The publish step releases it just after the
        // record shows; the commit then waits for its save (the lock held here) without it.
        let absent = descriptor_from_bytes(MediaType::ImageLayer, b"never stored");
        let started = std::time::Instant::now();
        let deleted = loop {
            if let Some(deleted) = store.delete(&absent).now_or_never() {
                break deleted;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "a commit waiting for its save keeps the gate"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        };
        assert_eq!(deleted.unwrap_err().kind(), ErrorKind::NotFound);
        assert!(
            !committing.is_finished(),
            "still waiting for the index lock"
        );

        drop(lock);
        let committed = committing.await.unwrap().unwrap();
        assert_eq!(committed, manifest);
        assert!(listed_on_disk(dir.path()).contains(&manifest.digest().to_string()));
        // The gate is free again.
        assert_eq!(
            store.delete(&absent).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        store.gc().await.unwrap();
        assert!(
            store.resolve(manifest.digest().as_ref()).await.is_ok(),
            "a freshly committed manifest is within the grace period"
        );
    }
}

#[tokio::test]
async fn a_commit_and_a_push_of_the_same_image_leave_the_same_layout() {
    for durable in [true, false] {
        let image = Image::new(5, b"layer pushed or committed");
        let (pushed, committed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let by_push = Store::open_with(pushed.path(), options(durable, AutoSave::Always))
            .await
            .unwrap();
        image.push(&by_push).await;
        let by_commit = Store::open_with(committed.path(), options(durable, AutoSave::Always))
            .await
            .unwrap();
        commit_image(&by_commit, &image).await;
        assert_eq!(
            std::fs::read(pushed.path().join("index.json")).unwrap(),
            std::fs::read(committed.path().join("index.json")).unwrap()
        );
        assert_eq!(by_push.entries(), by_commit.entries());
        for child in [&image.config.0, &image.layer.0] {
            assert_eq!(
                by_push.predecessors(child).await.unwrap(),
                by_commit.predecessors(child).await.unwrap()
            );
        }
        let files = |root: &Path| {
            listing(root)
                .into_iter()
                .filter(|p| p.starts_with("blobs/") || p.starts_with("ingest/"))
                .collect::<Vec<_>>()
        };
        assert_eq!(files(pushed.path()), files(committed.path()));
    }
}
