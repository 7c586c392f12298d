//! A store of one's own, written and tested the way a crate depending on `ocistore` alone (with
//! the `testkit` feature) would: the traits implemented with `#[ocistore::async_trait]` and the
//! conformance suite generated with the `ocistore::testkit` macros. Nothing here names
//! `ocistore-core` or `async-trait`; if a macro path pointed at them, this would not compile.

use ocistore::content::BoxReader;
use ocistore::memory::MemoryStore;
use ocistore::prelude::*;
use ocistore::spec::Descriptor;
use ocistore::Result;

/// A backend that keeps its content in a `MemoryStore` and forwards every call: the smallest
/// store that is still a real one.
#[derive(Clone, Default)]
struct MyStore {
    inner: MemoryStore,
}

#[ocistore::async_trait]
impl Fetcher for MyStore {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        self.inner.fetch(target).await
    }
}

#[ocistore::async_trait]
impl Pusher for MyStore {
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        self.inner.push(expected, content).await
    }
}

#[ocistore::async_trait]
impl ReadOnlyStorage for MyStore {
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        self.inner.exists(target).await
    }
}

#[ocistore::async_trait]
impl Resolver for MyStore {
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        self.inner.resolve(reference).await
    }
}

#[ocistore::async_trait]
impl Tagger for MyStore {
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        self.inner.tag(desc, reference).await
    }
}

#[ocistore::async_trait]
impl Untagger for MyStore {
    async fn untag(&self, reference: &str) -> Result<()> {
        self.inner.untag(reference).await
    }
}

#[ocistore::async_trait]
impl TagLister for MyStore {
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        self.inner.tags(last).await
    }
}

#[ocistore::async_trait]
impl PredecessorFinder for MyStore {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        self.inner.predecessors(node).await
    }
}

#[ocistore::async_trait]
impl Deleter for MyStore {
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        self.inner.delete(target).await
    }
}

mod read_write {
    use super::MyStore;
    ocistore::testkit::conformance_tests!(|| async { (MyStore::default(), ()) });
}

mod read_only {
    use super::MyStore;
    ocistore::testkit::read_only_conformance_tests!(|seed: ocistore::testkit::Seed| async move {
        let store = MyStore::default();
        seed.push_to(&store).await.expect("seeding the store");
        (store, ())
    });
}

mod copy {
    use super::MyStore;
    use ocistore::testkit::copy_fixtures::CopyFixture;

    async fn source(fixture: CopyFixture) -> (MyStore, ()) {
        let store = MyStore::default();
        fixture.push_to(&store).await.expect("seeding the source");
        (store, ())
    }

    async fn destination() -> (MyStore, ()) {
        (MyStore::default(), ())
    }

    ocistore::testkit::copy_tests!(source, destination);
}
