//! The conformance suite against `MemoryStore`: the read-write checks on a fresh store, and the
//! read-only checks on a store seeded by push and tag.

#![cfg(feature = "testkit")]

use store_core::memory::MemoryStore;
use store_core::testkit::Seed;

store_core::conformance_tests!(|| async { (MemoryStore::new(), ()) });

store_core::read_only_conformance_tests!(|seed: Seed| async move {
    let store = MemoryStore::new();
    if let Err(err) = seed.push_to(&store).await {
        panic!("seeding the MemoryStore failed: {err}");
    }
    (store, ())
});
