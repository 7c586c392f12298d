//! Listing `index.json` entries (`entries()` on both stores), layouts whose entries are all
//! untagged (as `skopeo copy ... oci-archive:FILE` writes them), and opening a file as a store.

mod common;

use autosave::AutoSave;
use common::*;
use oci_spec::image::Descriptor;
use std::path::Path;
use store_core::descriptor::REF_NAME;
use store_core::{ErrorKind, Resolver, TagLister, Tagger};
use store_fs::{ReadOnlyStore, Store, StoreOptions};

fn relaxed() -> StoreOptions {
    StoreOptions::default().durable(false)
}

fn ref_name(desc: &Descriptor) -> Option<&str> {
    desc.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn digests(descs: &[Descriptor]) -> Vec<String> {
    descs.iter().map(|d| d.digest().to_string()).collect()
}

/// The digests and ref.names of `index.json` on disk, in its order.
fn on_disk(root: &Path) -> Vec<(String, Option<String>)> {
    index_json(root)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["digest"].as_str().unwrap().to_string(),
                e["annotations"][REF_NAME].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// Tars the layout directory `dir` into `archive`, entries named `./...` as skopeo names them.
fn tar_layout(dir: &Path, archive: &Path) {
    let mut builder = tar::Builder::new(std::fs::File::create(archive).unwrap());
    builder.append_dir_all(".", dir).unwrap();
    builder.finish().unwrap();
}

#[tokio::test]
async fn entries_list_tagged_and_untagged_in_index_json_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed().autosave(AutoSave::Manual))
        .await
        .unwrap();
    assert!(store.entries().is_empty());
    let (a, b, c) = (
        Image::new(1, b"a"),
        Image::new(2, b"b"),
        Image::new(3, b"c"),
    );
    for image in [&a, &b, &c] {
        image.push(&store).await;
    }
    store.tag(&b.manifest.0, "zeta").await.unwrap();
    store.tag(&b.manifest.0, "alpha").await.unwrap();

    let entries = store.entries();
    // What index.json holds once saved, in its order: tagged by tag, then untagged by digest.
    store.save_index().await.unwrap();
    let disk = on_disk(dir.path());
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.digest().to_string(), ref_name(e).map(str::to_string)))
            .collect::<Vec<_>>(),
        disk
    );
    assert_eq!(
        entries.len(),
        4,
        "two tags of b, untagged a and c: {disk:?}"
    );
    assert_eq!(ref_name(&entries[0]), Some("alpha"));
    assert_eq!(ref_name(&entries[1]), Some("zeta"));
    let mut untagged = vec![
        a.manifest.0.digest().to_string(),
        c.manifest.0.digest().to_string(),
    ];
    untagged.sort();
    assert_eq!(digests(&entries[2..]), untagged);
    assert!(entries[2..].iter().all(|e| ref_name(e).is_none()));
    for entry in &entries {
        assert_eq!(entry.media_type().to_string(), MANIFEST);
    }

    // The read-only store lists what the file says, in the file's order.
    store.close().await.unwrap();
    let read_only = ReadOnlyStore::open(dir.path()).await.unwrap();
    assert_eq!(read_only.entries(), entries);
}

#[tokio::test]
async fn a_layout_of_untagged_entries_says_so_when_a_tag_is_not_found() {
    // A layout as `skopeo copy ... oci-archive:FILE` writes it: entries without ref.name.
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let store = Store::open_with(&layout, relaxed()).await.unwrap();
    let (a, b) = (Image::new(1, b"a"), Image::new(2, b"b"));
    a.push(&store).await;
    b.push(&store).await;
    let err = store.resolve("latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let message = err.to_string();
    assert!(message.contains("latest"), "{message}");
    assert!(
        message.contains("2 index.json entries are all untagged"),
        "{message}"
    );
    assert!(message.contains("entries()"), "{message}");
    store.close().await.unwrap();

    let archive = dir.path().join("image.tar");
    tar_layout(&layout, &archive);
    let read_only = ReadOnlyStore::open(&archive).await.unwrap();
    assert!(read_only.tags(None).await.unwrap().is_empty());
    let entries = read_only.entries();
    assert_eq!(entries.len(), 2);
    assert!(entries.iter().all(|e| ref_name(e).is_none()));
    let mut expected = digests(&[a.manifest.0.clone(), b.manifest.0.clone()]);
    expected.sort();
    let mut listed = digests(&entries);
    listed.sort();
    assert_eq!(listed, expected);
    // Each entry resolves by its digest, as the message says.
    for entry in &entries {
        let resolved = read_only.resolve(entry.digest().as_ref()).await.unwrap();
        assert_eq!(resolved.digest(), entry.digest());
    }
    let err = read_only.resolve("latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("2 index.json entries are all untagged"),
        "{err}"
    );
    assert!(err.to_string().contains("entries()"), "{err}");
}

#[tokio::test]
async fn a_missing_tag_in_a_tagged_or_empty_layout_is_a_plain_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let err = store.resolve("latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.to_string().contains("untagged"), "{err}");
    let image = Image::new(1, b"a");
    image.push(&store).await;
    let untagged = Image::new(2, b"b");
    untagged.push(&store).await;
    store.tag(&image.manifest.0, "v1").await.unwrap();
    let err = store.resolve("latest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(!err.to_string().contains("untagged"), "{err}");
    // A digest that is not there is not a tag: no hint either.
    let absent = desc(MANIFEST, b"absent");
    let err = store.resolve(absent.digest().as_ref()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn opening_a_file_as_a_store_says_it_is_not_a_layout_directory() {
    let dir = tempfile::tempdir().unwrap();
    // A tar of a layout, as a user would try to open it.
    let layout = dir.path().join("layout");
    let store = Store::open_with(&layout, relaxed()).await.unwrap();
    let image = Image::new(1, b"a");
    image.push(&store).await;
    store.close().await.unwrap();
    let archive = dir.path().join("x.tar");
    tar_layout(&layout, &archive);
    let bytes = std::fs::read(&archive).unwrap();
    let before = listing(dir.path());

    let err = Store::open(&archive).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
    let message = err.to_string();
    assert!(message.contains("x.tar"), "{message}");
    assert!(
        message.contains("is a file, not a layout directory"),
        "{message}"
    );
    assert!(message.contains("ReadOnlyStore::open"), "{message}");
    assert!(!message.contains("File exists"), "{message}");
    assert_eq!(std::fs::read(&archive).unwrap(), bytes, "left alone");
    assert_eq!(listing(dir.path()), before, "nothing created beside it");

    // The archive opens read-only, as the message says.
    let read_only = ReadOnlyStore::open(&archive).await.unwrap();
    assert!(read_only.is_archive());
    assert_eq!(
        digests(&read_only.entries()),
        vec![image.manifest.0.digest().to_string()]
    );
}
