//! Item: delete under `Manual`/`Debounce` keeps the layout consistent. Right after a delete
//! returns, before any save the policy would make, the layout on disk (what a process that
//! crashed now would leave) must not name content whose files are gone.

use crate::common::Image;
use crate::util::pattern;
use autosave::AutoSave;
use std::time::Duration;
use store_core::content::fetch_all;
use store_core::{Deleter, ErrorKind, Resolver, Tagger};
use store_fs::{ReadOnlyStore, Store, StoreOptions};

#[tokio::test]
async fn after_a_deferred_delete_the_layout_on_disk_names_no_missing_blob() {
    for (auto_gc, policy) in [
        (true, AutoSave::Manual),
        (true, AutoSave::Debounce(Duration::from_secs(3600))),
        (false, AutoSave::Manual),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions::default().autosave(policy).auto_gc(auto_gc);
        let store = Store::open_with(dir.path(), options).await.unwrap();
        let image = Image::new(1, &pattern(2048, 1));
        image.push(&store).await;
        store.tag(&image.manifest.0, "v1").await.unwrap();
        store.save_index().await.unwrap();

        store.delete(&image.manifest.0).await.unwrap();

        // What another process (or this one after a crash) sees now.
        let what = format!("{policy:?}, auto GC {auto_gc}");
        let on_disk = ReadOnlyStore::open(dir.path()).await.unwrap();
        match on_disk.resolve("v1").await {
            Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{what}: {e}"),
            Ok(tagged) => {
                let manifest = fetch_all(&on_disk, &tagged).await;
                assert!(
                    manifest.is_ok(),
                    "{what}: index.json still tags v1 but its manifest is gone: {manifest:?}"
                );
            }
        }
        let report = on_disk_fsck(dir.path()).await;
        assert!(report.missing.is_empty(), "{what}: {report:?}");
        store.close().await.unwrap();
    }
}

/// Another process that loaded the deleted image's tag before the delete, and writes
/// `index.json` after it, does not bring the deleted manifest back as an untagged entry.
#[tokio::test]
async fn another_process_writing_after_a_delete_does_not_bring_the_manifest_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let a = Image::new(1, &pattern(2048, 2));
    let b = Image::new(2, &pattern(2048, 3));
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();
    let other = Store::open(dir.path()).await.unwrap();

    store.delete(&a.manifest.0).await.unwrap();
    b.push(&other).await;
    other.tag(&b.manifest.0, "b").await.unwrap();

    let listed: Vec<String> = other
        .entries()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    assert_eq!(listed, vec![b.manifest.0.digest().to_string()]);
    let report = on_disk_fsck(dir.path()).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        ReadOnlyStore::open(dir.path())
            .await
            .unwrap()
            .entries()
            .len(),
        1,
        "index.json names B only"
    );
}

/// fsck of the layout as it is on disk, by a second store (opening with autosave off so that it
/// writes nothing).
async fn on_disk_fsck(root: &std::path::Path) -> store_fs::FsckReport {
    let options = StoreOptions::default().autosave(AutoSave::Manual);
    let second = Store::open_with(root, options).await.unwrap();
    let report = second.fsck().await.unwrap();
    // Dropped without close: nothing changed, so its best-effort flush writes nothing.
    std::mem::drop(second);
    report
}
