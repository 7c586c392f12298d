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
