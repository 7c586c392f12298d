//! The store-core conformance suite against the object store layout on object_store's
//! in-memory backend, under a prefix and at the bucket's root.

mod prefixed {
    use std::sync::Arc;
    use store_object::object_store::memory::InMemory;
    use store_object::Store;

    store_core::conformance_tests!(|| async {
        let store = Store::open(Arc::new(InMemory::new()), "layouts/one")
            .await
            .expect("open");
        (store, ())
    });
}

mod root {
    use std::sync::Arc;
    use store_object::object_store::memory::InMemory;
    use store_object::Store;

    store_core::conformance_tests!(|| async {
        let store = Store::open(Arc::new(InMemory::new()), "")
            .await
            .expect("open");
        (store, ())
    });
}

/// The read half, on a store seeded through its own API and reopened from the bucket.
mod reopened {
    use std::sync::Arc;
    use store_core::testkit::Seed;
    use store_object::object_store::memory::InMemory;
    use store_object::object_store::ObjectStore;
    use store_object::Store;

    store_core::read_only_conformance_tests!(|seed: Seed| async move {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let store = Store::open(Arc::clone(&bucket), "p").await.expect("open");
        if let Err(err) = seed.push_to(&store).await {
            panic!("seeding failed: {err}");
        }
        store.close().await.expect("close");
        let store = Store::open(bucket, "p").await.expect("reopen");
        (store, ())
    });
}
