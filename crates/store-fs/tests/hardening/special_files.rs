//! Item: no hang on special files. A blob, manifest or `index.json` that is a FIFO is refused
//! with `InvalidLayout` (it is never opened for a blocking read, and never on the runtime
//! thread); fsck reports a blob that is not a regular file instead of aborting; a push onto such
//! a path says what is there.

use crate::common::{desc, Image, LAYER};
use crate::util::{assert_refused, blob_path, guarded, make_fifo, pattern, unjam_fifo};
use std::path::{Path, PathBuf};
use store_core::content::push_bytes;
use store_core::{ErrorKind, Fetcher, ReadOnlyStorage, Tagger};
use store_fs::{ReadOnlyStore, Store};

/// A layout at `root` with one tagged image whose layer has `layer_len` bytes; closed.
fn seeded_layout(root: &Path, layer_len: usize) -> Image {
    let root = root.to_path_buf();
    crate::util::current_thread().block_on(async move {
        let store = Store::open(&root).await.unwrap();
        let image = Image::new(1, &pattern(layer_len, 1));
        image.push(&store).await;
        store.tag(&image.manifest.0, "v1").await.unwrap();
        store.close().await.unwrap();
        image
    })
}

#[test]
fn fetch_of_a_fifo_blob_is_refused_on_a_current_thread_runtime() {
    // 1 KiB is read on the runtime thread today; 1 MiB on the blocking pool.
    for len in [1024, 1 << 20] {
        let dir = tempfile::tempdir().unwrap();
        let image = seeded_layout(dir.path(), len);
        let fifo = blob_path(dir.path(), &image.layer.0);
        make_fifo(&fifo);
        let root = dir.path().to_path_buf();
        let layer = image.layer.0.clone();
        let what = format!("fetch of a {len}-byte blob that is a FIFO");
        let label = what.clone();
        guarded(&what, || unjam_fifo(&fifo), async move {
            let store = Store::open(&root).await.unwrap();
            assert!(!store.exists(&layer).await.unwrap(), "a FIFO is not a blob");
            let fetched = store.fetch(&layer).await;
            assert_refused(
                fetched.map(|_| ()),
                &layer.digest().to_string()[7..],
                &label,
            );
        });
    }
}

/// Runs fsck on a layout whose layer blob was replaced by `plant`, and checks that it reports
/// the layer instead of failing or hanging.
fn fsck_reports_planted(plant: impl FnOnce(&Path), what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let image = seeded_layout(dir.path(), 1024);
    let path = blob_path(dir.path(), &image.layer.0);
    std::fs::remove_file(&path).unwrap();
    plant(&path);
    let root = dir.path().to_path_buf();
    let hex = image.layer.0.digest().to_string()[7..].to_string();
    let label = what.to_string();
    guarded(what, || unjam_fifo(&path), async move {
        let store = Store::open(&root).await.unwrap();
        let report = match store.fsck().await {
            Ok(report) => report,
            Err(e) => panic!("{label}: fsck failed instead of reporting: {e}"),
        };
        assert!(!report.is_clean(), "{label}: {report:?}");
        assert!(
            format!("{report:?}").contains(&hex),
            "{label}: the report names the blob: {report:?}"
        );
    });
}

#[test]
fn fsck_reports_a_fifo_blob() {
    fsck_reports_planted(make_fifo, "fsck of a layout whose layer is a FIFO");
}

#[test]
fn fsck_reports_a_directory_blob() {
    fsck_reports_planted(
        |path| std::fs::create_dir(path).unwrap(),
        "fsck of a layout whose layer is a directory",
    );
}

#[test]
fn opening_with_a_fifo_index_json_is_refused() {
    for read_only in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        seeded_layout(dir.path(), 1024);
        let index: PathBuf = dir.path().join("index.json");
        make_fifo(&index);
        let root = dir.path().to_path_buf();
        let what = format!("opening (read-only: {read_only}) with index.json a FIFO");
        let label = what.clone();
        guarded(&what, || unjam_fifo(&index), async move {
            let opened = if read_only {
                ReadOnlyStore::open(&root).await.map(|_| ())
            } else {
                Store::open(&root).await.map(|_| ())
            };
            assert_refused(opened, "index.json", &label);
        });
    }
}

#[test]
fn opening_with_a_fifo_manifest_does_not_hang() {
    for read_only in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let image = seeded_layout(dir.path(), 1024);
        let manifest = blob_path(dir.path(), &image.manifest.0);
        make_fifo(&manifest);
        let root = dir.path().to_path_buf();
        let hex = image.manifest.0.digest().to_string()[7..].to_string();
        let what = format!("opening (read-only: {read_only}) with the tagged manifest a FIFO");
        let label = what.clone();
        guarded(&what, || unjam_fifo(&manifest), async move {
            let opened = if read_only {
                ReadOnlyStore::open(&root).await.map(|_| ())
            } else {
                Store::open(&root).await.map(|_| ())
            };
            // Tolerated like a missing manifest, or refused naming it: either, but at once.
            if let Err(e) = opened {
                assert_refused::<()>(Err(e), &hex, &label);
            }
        });
    }
}

#[tokio::test]
async fn a_push_onto_a_directory_says_what_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let body = pattern(4096, 3);
    let d = desc(LAYER, &body);
    let path = blob_path(dir.path(), &d);
    std::fs::create_dir_all(&path).unwrap();
    assert!(!store.exists(&d).await.unwrap());
    let pushed = push_bytes(&store, &d, body).await;
    let err = pushed.expect_err("a push onto a directory cannot succeed");
    assert_ne!(
        err.kind(),
        ErrorKind::AlreadyExists,
        "AlreadyExists while exists() says false: {err}"
    );
    assert_refused::<()>(
        Err(err),
        &path.display().to_string(),
        "a push onto a directory",
    );
}
