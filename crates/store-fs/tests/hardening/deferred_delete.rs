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

/// Names the layout the crash child works on; unset, [`crash_child`] does nothing.
const CRASH_CHILD_ENV: &str = "OCISTORE_DEFERRED_DELETE_CHILD";
/// Rounds of [`killed_while_deleting_under_manual_the_layout_names_no_missing_blob`].
const CRASH_ROUNDS: u64 = 12;

/// The crash child: under `Manual`, pushes and tags an image, saves, deletes the previous one,
/// and so on until killed. Between a delete and the next save lies a whole push.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CRASH_CHILD_ENV) else {
        return;
    };
    crate::util::current_thread().block_on(async move {
        let options = StoreOptions::default().autosave(AutoSave::Manual);
        let store = Store::open_with(&dir, options).await.expect("open");
        let mut previous: Option<Image> = None;
        for n in 0.. {
            let image = Image::new(n, &pattern(2048, u64::from(n) + 100));
            image.push(&store).await;
            store
                .tag(&image.manifest.0, &format!("t{n}"))
                .await
                .expect("tag");
            store.save_index().await.expect("save");
            if let Some(old) = previous.take() {
                store.delete(&old.manifest.0).await.expect("delete");
            }
            previous = Some(image);
        }
    });
}

/// A process deleting under `Manual` and killed at any moment leaves a layout whose
/// `index.json` names no missing blob.
#[test]
fn killed_while_deleting_under_manual_the_layout_names_no_missing_blob() {
    use std::os::unix::process::ExitStatusExt;
    for round in 0..CRASH_ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "deferred_delete::crash_child",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD_ENV, dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Spread over the first images: from 30 to about 250 ms.
        std::thread::sleep(Duration::from_millis(30 + round * 19));
        let _ = child.kill();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "round {round}: {status}"
        );
        let report = crate::util::current_thread().block_on(on_disk_fsck(dir.path()));
        assert!(
            report.missing.is_empty() && report.corrupt.is_empty(),
            "round {round}: {report:?}"
        );
    }
}
