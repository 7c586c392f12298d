//! Item: errors that changed a thing say so. A tag or untag whose `index.json` write failed
//! returns the error and leaves nothing behind: the in-memory index is rolled back, so the
//! failed change is neither visible nor saved by a later write.
//!
//! The write is made to fail by putting a directory where `index.json.lock` goes: every index
//! write locks first, and the failure leaves `index.json` untouched.

use crate::common::Image;
use crate::util::pattern;
use store_core::{ErrorKind, Tagger, Untagger};
use store_fs::Store;

#[tokio::test]
async fn a_failed_tag_or_untag_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let image = Image::new(1, &pattern(2048, 1));
    image.push(&store).await;
    store.tag(&image.manifest.0, "kept").await.unwrap();
    let lock = dir.path().join(store_fs::LOCK_FILE);

    let _ = std::fs::remove_file(&lock);
    std::fs::create_dir(&lock).unwrap();
    let tagged = store.tag(&image.manifest.0, "failed").await;
    assert!(tagged.is_err(), "the index write cannot succeed");
    let untagged = store.untag("kept").await;
    assert!(untagged.is_err(), "the index write cannot succeed");

    let after_tag = store.resolve("failed").await.map(|_| ());
    assert_eq!(
        after_tag.map_err(|e| e.kind()),
        Err(ErrorKind::NotFound),
        "a tag that returned an error is still applied in memory"
    );
    let after_untag = store.resolve("kept").await;
    assert!(
        after_untag.is_ok(),
        "an untag that returned an error is still applied in memory: {after_untag:?}"
    );

    // Writes work again: nothing of the failed calls is saved later.
    std::fs::remove_dir(&lock).unwrap();
    let other = Image::new(2, &pattern(2048, 2));
    other.push(&store).await;
    store.tag(&other.manifest.0, "later").await.unwrap();
    let tags = crate::common::index_json(dir.path())["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert_eq!(tags, ["kept", "later"], "index.json after a later write");
}
