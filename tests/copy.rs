//! Copy between stores of every kind: memory → fs, fs → memory, fs → fs, and a tar archive
//! opened with `ReadOnlyStore` → fs. Each pair runs the copy checks of
//! `store_core::testkit::copy_suite` (costs counted per method on instrumented targets, repair
//! of an incomplete destination, platform selection, extended copy with depth and artifact-type
//! filter, concurrency 1 to 5 on shared successors, an error injected on each side).
//!
//! The fs destinations are opened with `auto_gc(false)` so that deleting one layer (the repair
//! check) removes that layer only, and `durable(false)` to keep the tests fast.

use ocistore::fs::{ReadOnlyStore, Store, StoreOptions};
use ocistore::memory::MemoryStore;
use std::path::{Path, PathBuf};
use store_core::testkit::copy_fixtures::CopyFixture;
use tempfile::TempDir;

fn options() -> StoreOptions {
    StoreOptions::default().auto_gc(false).durable(false)
}

async fn memory_source(fixture: CopyFixture) -> (MemoryStore, ()) {
    let store = MemoryStore::new();
    fixture.push_to(&store).await.expect("seeding the source");
    (store, ())
}

/// A layout written by `Store` holding the whole fixture, tags included, and closed.
async fn layout_with(fixture: &CopyFixture) -> (TempDir, PathBuf) {
    let dir = TempDir::new().expect("tempdir");
    let root = dir.path().join("layout");
    let store = Store::open_with(&root, options()).await.expect("open");
    fixture.push_to(&store).await.expect("seeding the source");
    store.close().await.expect("close");
    (dir, root)
}

async fn fs_source(fixture: CopyFixture) -> (Store, TempDir) {
    let (dir, root) = layout_with(&fixture).await;
    let store = Store::open_with(&root, options()).await.expect("reopen");
    (store, dir)
}

/// Writes an uncompressed tar of the layout at `root` (entries named `./oci-layout`, ...).
fn tar_of(root: &Path, archive: &Path) {
    let file = std::fs::File::create(archive).expect("create the archive");
    let mut builder = tar::Builder::new(file);
    builder
        .append_dir_all(".", root)
        .expect("archive the layout");
    builder.into_inner().expect("finish the archive");
}

async fn tar_source(fixture: CopyFixture) -> (ReadOnlyStore, TempDir) {
    let (dir, root) = layout_with(&fixture).await;
    let archive = dir.path().join("layout.tar");
    tar_of(&root, &archive);
    std::fs::remove_dir_all(&root).expect("only the archive remains");
    let store = ReadOnlyStore::open(&archive).await.expect("open the tar");
    assert!(store.is_archive());
    (store, dir)
}

async fn memory_destination() -> (MemoryStore, ()) {
    (MemoryStore::new(), ())
}

async fn fs_destination() -> (Store, TempDir) {
    let dir = TempDir::new().expect("tempdir");
    let store = Store::open_with(dir.path().join("dst"), options())
        .await
        .expect("open the destination");
    (store, dir)
}

mod memory_to_fs {
    use super::*;
    store_core::copy_tests!(memory_source, fs_destination);
}

mod fs_to_memory {
    use super::*;
    store_core::copy_tests!(fs_source, memory_destination);
}

mod fs_to_fs {
    use super::*;
    store_core::copy_tests!(fs_source, fs_destination);
}

mod tar_to_fs {
    use super::*;
    store_core::copy_tests!(tar_source, fs_destination);
}

/// What a copy wrote is a valid layout: reopened, the tag resolves and fsck is clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copied_layout_reopens_clean() {
    let fixture = CopyFixture::new();
    let (src, _guard) = tar_source(fixture.clone()).await;
    let dir = TempDir::new().expect("tempdir");
    let root = dir.path().join("dst");
    let dst = Store::open(&root).await.expect("open");
    let copied = ocistore::copy::copy(&src, "graph", &dst, "v1", &Default::default())
        .await
        .expect("copy");
    dst.close().await.expect("close");
    let reopened = ReadOnlyStore::open(&root).await.expect("reopen");
    use ocistore::Resolver;
    assert_eq!(
        reopened.resolve("v1").await.expect("resolve").digest(),
        copied.digest()
    );
    let store = Store::open(&root).await.expect("open again");
    let report = store.fsck().await.expect("fsck");
    assert!(report.is_clean(), "{report:?}");
}
