//! Item: one slow client cannot stall the store. A push whose reader stalls must not keep
//! `gc()` waiting, nor, through a waiting `gc()`, every other call. The reader stalls until the
//! test releases it (a channel), so nothing here depends on timing; the timeouts are guards.

use crate::common::{desc, LAYER};
use crate::util::{current_thread, pattern, StallingReader, GUARD};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use store_core::content::{fetch_all, push_bytes};
use store_core::{Pusher, ReadOnlyStorage};
use store_fs::Store;
use tokio::time::timeout;

/// A stalled push of `len` bytes, then `exists()` and `gc()` beside it; then the push goes on.
async fn stalled_push_delays_nothing(len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).await.unwrap());
    let other = pattern(1000, 1);
    let other_desc = desc(LAYER, &other);
    push_bytes(&*store, &other_desc, other).await.unwrap();

    let body = pattern(len, 2);
    let body_desc = desc(LAYER, &body);
    let (reader, release, stalled) = StallingReader::new(body.clone());
    let push = tokio::spawn({
        let store = Arc::clone(&store);
        let body_desc = body_desc.clone();
        async move { store.push(&body_desc, Box::pin(reader)).await }
    });
    timeout(GUARD, async {
        while !stalled.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the push reads its content");

    let gc = tokio::spawn({
        let store = Arc::clone(&store);
        async move { store.gc().await }
    });
    // On this single-threaded runtime, these yields let gc reach the gate (and queue on it, if
    // the push holds it) before exists() asks.
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    let exists = timeout(GUARD, store.exists(&other_desc))
        .await
        .unwrap_or_else(|_| panic!("exists() waited behind a stalled {len}-byte push"));
    assert!(exists.unwrap());
    let report = timeout(GUARD, gc)
        .await
        .unwrap_or_else(|_| panic!("gc() waited behind a stalled {len}-byte push"))
        .unwrap()
        .unwrap();
    assert_eq!(report.blobs_removed, 0, "gc is within the grace period");

    release.send(()).unwrap();
    timeout(GUARD, push)
        .await
        .expect("the released push finishes")
        .unwrap()
        .unwrap();
    assert_eq!(fetch_all(&*store, &body_desc).await.unwrap(), body);
}

#[test]
fn a_stalled_push_delays_neither_gc_nor_other_calls() {
    // Streamed (above the 256 KiB in-memory limit) and in-memory pushes.
    for len in [1 << 20, 4096] {
        current_thread().block_on(stalled_push_delays_nothing(len));
    }
}

/// Pushes stream without the gate gc holds, so gc runs beside them: even with no grace period
/// it must not sweep the staging file of a push (or a blob writer) of this store in flight.
#[tokio::test]
async fn gc_without_grace_spares_the_staging_files_of_pushes_in_flight() {
    use store_core::Fetcher;
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let options = store_fs::StoreOptions::default().gc_grace(std::time::Duration::ZERO);
    let store = Arc::new(Store::open_with(dir.path(), options).await.unwrap());
    let body = pattern(1 << 20, 3);
    let body_desc = desc(LAYER, &body);
    let (reader, release, stalled) = StallingReader::new(body.clone());
    let push = tokio::spawn({
        let store = Arc::clone(&store);
        let body_desc = body_desc.clone();
        async move { store.push(&body_desc, Box::pin(reader)).await }
    });
    timeout(GUARD, async {
        while !stalled.load(Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the push reads its content");
    let mut writer = store.blob_writer(LAYER.into()).await.unwrap();
    writer.write_all(b"written before gc").await.unwrap();

    let staged = crate::util::entries(&dir.path().join("ingest"));
    assert_eq!(staged.len(), 2, "a push and a writer stage: {staged:?}");
    let report = timeout(GUARD, store.gc()).await.unwrap().unwrap();
    assert_eq!(report.temp_files_removed, 0, "{report:?}");
    assert_eq!(crate::util::entries(&dir.path().join("ingest")), staged);

    release.send(()).unwrap();
    timeout(GUARD, push).await.unwrap().unwrap().unwrap();
    assert_eq!(fetch_all(&*store, &body_desc).await.unwrap(), body);
    let committed = writer.commit().await.unwrap();
    let mut fetched = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut store.fetch(&committed).await.unwrap(), &mut fetched)
        .await
        .unwrap();
    assert_eq!(fetched, b"written before gc");
    assert!(crate::util::entries(&dir.path().join("ingest")).is_empty());
}
