//! The store-core conformance suite, run against the layout Store in a temp dir, with fsync on
//! (the default) and off.

mod durable {
    use store_fs::{Store, StoreOptions};

    store_core::conformance_tests!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_with(dir.path(), StoreOptions::default())
            .await
            .expect("open");
        (store, dir)
    });
}

mod relaxed {
    use store_fs::{Store, StoreOptions};

    store_core::conformance_tests!(|| async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_with(dir.path(), StoreOptions::default().durable(false))
            .await
            .expect("open");
        (store, dir)
    });
}

/// The read half, on a Store seeded through its own API and reopened from disk.
mod reopened {
    use store_core::testkit::Seed;
    use store_fs::{Store, StoreOptions};

    store_core::read_only_conformance_tests!(|seed: Seed| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = StoreOptions::default().durable(false);
        let store = Store::open_with(dir.path(), options).await.expect("open");
        if let Err(err) = seed.push_to(&store).await {
            panic!("seeding failed: {err}");
        }
        store.close().await.expect("close");
        let store = Store::open_with(dir.path(), options).await.expect("reopen");
        (store, dir)
    });
}
