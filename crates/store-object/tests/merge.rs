//! Two stores on one prefix: each write of `index.json` merges the other's changes three ways,
//! so additions from both sides survive and a removal is not undone by a stale writer.

use std::sync::Arc;
use store_core::testkit::fixtures::GraphFixture;
use store_core::{Resolver, TagLister, Tagger, Untagger};
use store_object::object_store::memory::InMemory;
use store_object::object_store::ObjectStore;
use store_object::Store;

#[tokio::test]
async fn additions_from_both_sides_survive_and_removals_stick() {
    let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let a = Store::open(Arc::clone(&bucket), "p").await.expect("open a");
    let graph = GraphFixture::new();
    graph.push_to(&a).await.expect("push");
    let (m1, m2, m3) = (
        &graph.get("manifest1").desc,
        &graph.get("manifest2").desc,
        &graph.get("manifest3").desc,
    );
    a.tag(m1, "gone").await.expect("tag");
    a.tag(m1, "moved").await.expect("tag");
    // b read the index as it was then.
    let b = Store::open(Arc::clone(&bucket), "p").await.expect("open b");
    a.untag("gone").await.expect("untag");
    a.tag(m2, "moved").await.expect("move");
    a.tag(m1, "from-a").await.expect("tag");
    // b knows nothing of a's last three changes; its write merges them in.
    b.tag(m3, "from-b").await.expect("tag");
    let fresh = Store::open(Arc::clone(&bucket), "p").await.expect("open");
    assert_eq!(
        fresh.tags(None).await.expect("tags"),
        vec![
            "from-a".to_string(),
            "from-b".to_string(),
            "moved".to_string()
        ],
        "a's removal of gone stuck, both additions survived"
    );
    assert_eq!(
        fresh.resolve("moved").await.expect("resolve").digest(),
        m2.digest(),
        "a's move survived b's stale view"
    );
    // b took a's changes into memory as well.
    assert_eq!(b.tags(None).await.expect("tags").len(), 3);
    assert_eq!(
        b.resolve("moved").await.expect("resolve").digest(),
        m2.digest()
    );
}
