//! The read half of the store-core conformance suite against `ReadOnlyStore`: the seed is written
//! into a layout by `Store`, then opened read-only as that directory and as a tar of it.

use std::path::Path;
use store_core::testkit::Seed;
use store_fs::{ReadOnlyStore, Store};

/// Writes the seed into a new layout at `root` with `Store` and closes it.
async fn write_seed(seed: &Seed, root: &Path) {
    let store = Store::open(root).await.expect("creating the layout");
    seed.push_to(&store).await.expect("seeding the layout");
    store.close().await.expect("closing the layout");
}

/// Writes an uncompressed tar of the layout at `root` to `out` with `tar::Builder` (entries named
/// `blobs/...`; `tests/readonly.rs` covers `./blobs/...` too).
fn write_tar(root: &Path, out: &Path) {
    let file = std::fs::File::create(out).expect("creating the tar");
    let mut builder = tar::Builder::new(file);
    builder.follow_symlinks(false);
    builder.append_dir_all(".", root).expect("writing the tar");
    builder
        .into_inner()
        .expect("finishing the tar")
        .sync_all()
        .expect("syncing the tar");
}

mod directory {
    use super::*;

    store_core::read_only_conformance_tests!(|seed: Seed| async move {
        let dir = tempfile::tempdir().expect("a temp dir");
        write_seed(&seed, dir.path()).await;
        let store = ReadOnlyStore::open(dir.path())
            .await
            .expect("opening the layout read-only");
        (store, dir)
    });
}

mod archive {
    use super::*;

    store_core::read_only_conformance_tests!(|seed: Seed| async move {
        let dir = tempfile::tempdir().expect("a temp dir");
        let layout = dir.path().join("layout");
        write_seed(&seed, &layout).await;
        let tar = dir.path().join("layout.tar");
        write_tar(&layout, &tar);
        // The archive alone must do: the directory it was made from goes away.
        std::fs::remove_dir_all(&layout).expect("removing the layout");
        let store = ReadOnlyStore::open(&tar)
            .await
            .expect("opening the tar read-only");
        (store, dir)
    });
}
