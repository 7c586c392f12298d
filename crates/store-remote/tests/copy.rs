//! The copy checks of `store_core::testkit::copy_suite` with a registry on either side: a
//! MemoryStore copied into a repository of `docker-registry` (distribution 2.8), and a
//! repository copied into a layout `Store`. Each check runs on a registry of its own; where
//! docker-registry is not installed (and `OCISTORE_REQUIRE_INTEROP` is not `1`), on the test
//! double instead, after saying so. The registry's capabilities (`common::distribution`) say
//! where it differs from a layout, and the checks assert what it does there.

mod common;

use store_core::memory::MemoryStore;
use store_core::testkit::copy_fixtures::CopyFixture;
use store_core::testkit::copy_suite::CopyCapabilities;
use store_core::testkit::Capabilities;
use store_fs::{Store, StoreOptions};
use store_remote::Repository;
use tempfile::TempDir;

async fn memory_source(fixture: CopyFixture) -> (MemoryStore, ()) {
    let store = MemoryStore::new();
    fixture.push_to(&store).await.expect("seeding the source");
    (store, ())
}

async fn registry_source(fixture: CopyFixture) -> (Repository, common::Guard) {
    let (repo, guard) = common::registry_or_double("copy/source");
    fixture.push_to(&repo).await.expect("seeding the registry");
    (repo, guard)
}

async fn registry_destination() -> (Repository, common::Guard) {
    common::registry_or_double("copy/destination")
}

/// A layout that deletes only what it is asked to (no automatic garbage collection).
async fn layout_destination() -> (Store, TempDir) {
    let dir = TempDir::new().expect("tempdir");
    let options = StoreOptions::default().auto_gc(false).durable(false);
    let store = Store::open_with(dir.path().join("dst"), options)
        .await
        .expect("open the destination");
    (store, dir)
}

mod memory_to_registry {
    use super::*;
    store_core::copy_tests!(
        memory_source,
        registry_destination,
        capabilities = CopyCapabilities {
            source: Capabilities::default(),
            destination: common::registry_capabilities(),
        }
    );
}

mod registry_to_layout {
    use super::*;
    store_core::copy_tests!(
        registry_source,
        layout_destination,
        capabilities = CopyCapabilities {
            source: common::registry_capabilities(),
            destination: Capabilities::default(),
        }
    );
}
