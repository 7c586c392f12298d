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
#[ignore = "hardening: fails until streaming a push no longer holds the gate"]
fn a_stalled_push_delays_neither_gc_nor_other_calls() {
    // Streamed (above the 256 KiB in-memory limit) and in-memory pushes.
    for len in [1 << 20, 4096] {
        current_thread().block_on(stalled_push_delays_nothing(len));
    }
}
