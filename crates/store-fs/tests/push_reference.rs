//! A manifest pushed with its reference (`ReferencePusher`) is one change: under
//! `AutoSave::Always` one `index.json` write where a push and a tag make two; `copy` pushes the
//! root that way into a layout store. Bad references fail before anything is stored.

mod common;

use common::{index_json, listing, Image};
use store_core::content::reader_from_bytes;
use store_core::copy::{copy, CopyOptions};
use store_core::{ErrorKind, Pusher, ReferencePusher, TagLister, Tagger};
use store_fs::Store;

#[tokio::test]
async fn a_manifest_and_its_tag_are_saved_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let image = Image::new(1, b"layer one");
    for (desc, bytes) in [&image.config, &image.layer] {
        store
            .push(desc, reader_from_bytes(bytes.clone()))
            .await
            .unwrap();
    }
    let before = store.index_writes();
    let (manifest, body) = &image.manifest;
    store
        .as_reference_pusher()
        .expect("a layout store pushes with references")
        .push_reference(manifest, reader_from_bytes(body.clone()), "v1")
        .await
        .unwrap();
    assert_eq!(store.index_writes(), before + 1);
    assert_eq!(
        store.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    let entries = index_json(dir.path())["manifests"].clone();
    assert_eq!(entries.as_array().unwrap().len(), 1, "{entries}");
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );

    // Stored content is tagged, not refused.
    store
        .push_reference(manifest, reader_from_bytes(body.clone()), "v2")
        .await
        .unwrap();
    assert_eq!(
        store.resolve("v2").await.unwrap().digest(),
        manifest.digest()
    );
    store.close().await.unwrap();
    let reopened = Store::open(dir.path()).await.unwrap();
    for tag in ["v1", "v2"] {
        assert_eq!(
            reopened.resolve(tag).await.unwrap().digest(),
            manifest.digest()
        );
    }
}

#[tokio::test]
async fn a_bad_reference_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let image = Image::new(2, b"layer two");
    let (manifest, body) = &image.manifest;
    let before = listing(dir.path());
    for (reference, kind) in [
        ("", ErrorKind::MissingReference),
        ("not a tag!", ErrorKind::InvalidReference),
        (
            "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            ErrorKind::InvalidReference,
        ),
    ] {
        let err = store
            .push_reference(manifest, reader_from_bytes(body.clone()), reference)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), kind, "{reference:?}: {err}");
    }
    assert_eq!(listing(dir.path()), before, "nothing stored");
    assert_eq!(store.index_writes(), 0);
}

#[tokio::test]
async fn a_copy_into_a_layout_writes_its_index_once() {
    let dir = tempfile::tempdir().unwrap();
    let src = Store::open(dir.path().join("src")).await.unwrap();
    let image = Image::new(3, b"layer three");
    image.push(&src).await;
    src.tag(&image.manifest.0, "v1").await.unwrap();
    let dst = Store::open(dir.path().join("dst")).await.unwrap();
    copy(&src, "v1", &dst, "copied", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(dst.index_writes(), 1);
    assert_eq!(
        dst.resolve("copied").await.unwrap().digest(),
        image.manifest.0.digest()
    );
    // Copied again under another name: the root is there, so it is only tagged.
    copy(&src, "v1", &dst, "again", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        dst.resolve("again").await.unwrap().digest(),
        image.manifest.0.digest()
    );
    dst.close().await.unwrap();
    let reopened = Store::open(dir.path().join("dst")).await.unwrap();
    assert_eq!(reopened.tags(None).await.unwrap(), ["again", "copied"]);
}

#[tokio::test]
async fn a_blob_pushed_with_a_reference_is_tagged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let image = Image::new(4, b"a layer tagged on its own");
    let (layer, bytes) = &image.layer;
    store
        .push_reference(layer, reader_from_bytes(bytes.clone()), "layer")
        .await
        .unwrap();
    assert_eq!(
        store.resolve("layer").await.unwrap().digest(),
        layer.digest()
    );
    assert_eq!(store.tags(None).await.unwrap(), ["layer"]);
}
