//! Item: fsck beside deletes. fsck is documented to run beside other operations: a blob a
//! concurrent delete removes is not an error, and the report is a consistent view (nothing
//! missing, corrupt or mis-sized in a layout that only ever loses whole images).
//!
//! Whether a given fsck overlaps a given unlink is up to the scheduler; the test runs many
//! rounds so that today's failure shows at once, and can only pass once fsck is fixed.

use crate::common::Image;
use crate::util::pattern;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use store_core::{Deleter, Tagger};
use store_fs::Store;

const ROUNDS: u64 = 4;
const IMAGES: u64 = 24;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_beside_deletes_reports_a_consistent_view() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path()).await.unwrap());
    let mut failures = Vec::new();
    let mut runs = 0;
    for round in 0..ROUNDS {
        let images: Vec<Image> = (0..IMAGES)
            .map(|i| {
                let n = round * IMAGES + i;
                Image::new(n as u32, &pattern(2048 + n as usize, n))
            })
            .collect();
        for (i, image) in images.iter().enumerate() {
            image.push(&*store).await;
            store
                .tag(&image.manifest.0, &format!("r{round}-{i}"))
                .await
                .unwrap();
        }
        let deleting = Arc::new(AtomicBool::new(true));
        let checker = tokio::spawn({
            let store = Arc::clone(&store);
            let deleting = Arc::clone(&deleting);
            async move {
                let mut outcomes = Vec::new();
                loop {
                    outcomes.push(store.fsck().await);
                    if !deleting.load(Ordering::SeqCst) {
                        return outcomes;
                    }
                }
            }
        });
        for image in &images {
            store.delete(&image.manifest.0).await.unwrap();
        }
        deleting.store(false, Ordering::SeqCst);
        for outcome in checker.await.unwrap() {
            runs += 1;
            match outcome {
                Ok(report) if report.is_clean() => {}
                Ok(report) => failures.push(format!("round {round}: unclean: {report:?}")),
                Err(e) => failures.push(format!("round {round}: {:?}: {e}", e.kind())),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {runs} fscks beside deletes failed; first: {}",
        failures.len(),
        failures[0]
    );
}
