//! Item: delete respects content in flight. Image B's layers are pushed (one of them shared with
//! image A, so its push finds it already there), then A is deleted with auto GC, then B's
//! manifest arrives: B's shared layer must still be there, or the manifest push must say it is
//! missing; B is never left tagged with a missing layer without anyone being told.

use crate::common::Image;
use crate::util::pattern;
use store_core::content::{fetch_all, push_bytes};
use store_core::{Deleter, ErrorKind, Tagger};
use store_fs::Store;

#[tokio::test]
async fn deleting_an_image_spares_the_layers_of_an_image_being_pushed() {
    let dir = tempfile::tempdir().unwrap();
    // Defaults: auto GC on, gc grace one hour.
    let store = Store::open(dir.path()).await.unwrap();
    let shared_layer = pattern(4096, 7);
    let a = Image::new(1, &shared_layer);
    let b = Image::new(2, &shared_layer);
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();

    // B's blobs, manifest last (as every copy does).
    push_bytes(&store, &b.config.0, b.config.1.clone())
        .await
        .unwrap();
    let again = push_bytes(&store, &b.layer.0, b.layer.1.clone()).await;
    assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);

    store.delete(&a.manifest.0).await.unwrap();

    match push_bytes(&store, &b.manifest.0, b.manifest.1.clone()).await {
        Ok(()) => {
            store.tag(&b.manifest.0, "b").await.unwrap();
            let layer = fetch_all(&store, &b.layer.0).await;
            assert!(
                layer.as_ref().is_ok_and(|bytes| *bytes == b.layer.1),
                "B was pushed and tagged, but the delete of A removed its shared layer: {:?}",
                layer.err()
            );
            let report = store.fsck().await.unwrap();
            assert!(report.is_clean(), "{report:?}");
        }
        Err(e) => assert!(
            e.to_string().contains(&b.layer.0.digest().to_string()),
            "a manifest push refused for a missing layer names it: {e}"
        ),
    }
}
