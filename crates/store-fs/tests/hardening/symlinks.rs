//! Item: nothing outside the layout is ever touched. A directory or file of the layout that is a
//! symbolic link (`ingest/`, `blobs/<alg>/`, `index.json.lock`, `index.json`, `oci-layout`) is
//! refused with `InvalidLayout` naming it; nothing is created, written or removed through it.

use crate::common::{desc, Image, LAYER};
use crate::util::{assert_refused, entries, pattern};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::{Duration, SystemTime};
use store_core::content::push_bytes;
use store_core::Tagger;
use store_fs::{Store, StoreOptions};

/// Creates a layout at `root` with one tagged image, and closes it.
async fn seeded_layout(root: &Path) -> Image {
    let store = Store::open(root).await.unwrap();
    let image = Image::new(1, &pattern(2048, 1));
    image.push(&store).await;
    store.tag(&image.manifest.0, "v1").await.unwrap();
    store.close().await.unwrap();
    image
}

/// Opens `root`; `None` when the open is refused with `InvalidLayout` naming `name` (which the
/// fix may choose instead of refusing at first use).
async fn open_or_refused(root: &Path, options: StoreOptions, name: &str) -> Option<Store> {
    match Store::open_with(root, options).await {
        Ok(store) => Some(store),
        Err(e) => {
            assert_refused::<()>(Err(e), name, "opening the layout");
            None
        }
    }
}

#[tokio::test]
async fn pushes_never_stage_through_a_symlinked_ingest() {
    let layout = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    seeded_layout(layout.path()).await;
    let _ = std::fs::remove_dir_all(layout.path().join("ingest"));
    symlink(outside.path(), layout.path().join("ingest")).unwrap();

    if let Some(store) = open_or_refused(layout.path(), StoreOptions::default(), "ingest").await {
        // Streamed (above the in-memory limit) and in-memory pushes both stage in ingest/.
        for (n, len) in [(10, 1 << 20), (11, 4096)] {
            let body = pattern(len, n);
            let d = desc(LAYER, &body);
            let pushed = push_bytes(&store, &d, body).await;
            assert_refused(pushed, "ingest", &format!("a push of {len} bytes"));
        }
    }
    assert_eq!(
        entries(outside.path()),
        Vec::<String>::new(),
        "files were staged outside the layout"
    );
}

#[tokio::test]
async fn gc_never_sweeps_through_a_symlinked_ingest() {
    let layout = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    seeded_layout(layout.path()).await;
    let victim = outside.path().join("precious.txt");
    std::fs::write(&victim, b"not the store's").unwrap();
    // Old enough for any grace period.
    std::fs::File::options()
        .write(true)
        .open(&victim)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(30 * 24 * 3600))
        .unwrap();
    let _ = std::fs::remove_dir_all(layout.path().join("ingest"));
    symlink(outside.path(), layout.path().join("ingest")).unwrap();

    let options = StoreOptions::default().gc_grace(Duration::ZERO);
    if let Some(store) = open_or_refused(layout.path(), options, "ingest").await {
        let swept = store.gc().await;
        if let Err(e) = swept {
            assert_refused::<()>(Err(e), "ingest", "gc");
        }
    }
    assert!(
        victim.exists(),
        "gc removed a file outside the layout through ingest/"
    );
}

#[tokio::test]
async fn pushes_never_publish_through_a_blob_directory_swapped_for_a_symlink() {
    let layout = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    seeded_layout(layout.path()).await;
    let store = Store::open(layout.path()).await.unwrap();
    // Swapped after the open checked it.
    let alg_dir = layout.path().join("blobs/sha256");
    std::fs::rename(&alg_dir, layout.path().join("moved-away")).unwrap();
    symlink(outside.path(), &alg_dir).unwrap();

    for (n, len) in [(20, 1 << 20), (21, 4096)] {
        let body = pattern(len, n);
        let d = desc(LAYER, &body);
        // Refused naming the directory, or published elsewhere inside the layout (a directory
        // handle taken before the swap): either way not outside.
        if let Err(e) = push_bytes(&store, &d, body).await {
            assert_refused::<()>(Err(e), "blobs/sha256", &format!("a push of {len} bytes"));
        }
    }
    assert_eq!(
        entries(outside.path()),
        Vec::<String>::new(),
        "blobs were published outside the layout"
    );
}

#[tokio::test]
async fn a_symlinked_lock_file_is_never_followed() {
    let layout = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let image = seeded_layout(layout.path()).await;
    let lock = layout.path().join(store_fs::LOCK_FILE);
    let _ = std::fs::remove_file(&lock);
    let victim = outside.path().join("victim");
    symlink(&victim, &lock).unwrap();

    if let Some(store) =
        open_or_refused(layout.path(), StoreOptions::default(), "index.json.lock").await
    {
        // Every index write locks.
        let tagged = store.tag(&image.manifest.0, "v2").await;
        assert_refused(tagged, "index.json.lock", "a tag (an index write)");
    }
    assert!(
        !victim.exists(),
        "the lock file's symlink was followed and its target created"
    );
}

#[tokio::test]
async fn symlinked_layout_files_are_refused_at_open() {
    for name in ["index.json", "oci-layout"] {
        let layout = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        seeded_layout(layout.path()).await;
        let target = outside.path().join(name);
        std::fs::rename(layout.path().join(name), &target).unwrap();
        symlink(&target, layout.path().join(name)).unwrap();
        let opened = Store::open(layout.path()).await;
        assert_refused(
            opened.map(|_| ()),
            name,
            &format!("opening with {name} a symlink"),
        );
    }
}
