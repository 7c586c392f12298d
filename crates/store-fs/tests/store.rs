//! The layout Store: layout files, fixtures from other tools, resolve semantics, index.json,
//! delete with auto GC, gc, fsck, the blob writer, and bad input.

mod common;

use common::*;
use oci_spec::image::{Descriptor, MediaType};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
use store_core::content::{descriptor_from_bytes, fetch_all, push_bytes, reader_from_bytes};
use store_core::descriptor::REF_NAME;
use store_core::spec::Digest;
use store_core::{
    Deleter, ErrorKind, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, TagLister, Tagger,
    Untagger,
};
use store_fs::{Store, StoreOptions};
use tokio::io::AsyncWriteExt;

fn relaxed() -> StoreOptions {
    StoreOptions::default()
        .durable(false)
        .gc_grace(Duration::ZERO)
}

async fn open_copy_of(fixture: &str) -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(&fixtures().join(fixture), dir.path());
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    (store, dir)
}

fn blob_files(root: &Path) -> Vec<String> {
    listing(root)
        .into_iter()
        .filter(|p| p.starts_with("blobs/"))
        .collect()
}

// ---------------------------------------------------------------- layout files

#[tokio::test]
async fn a_missing_root_is_created_with_layout_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a/b/layout");
    let store = Store::open(&root).await.unwrap();
    assert_eq!(store.root(), root.as_path());
    assert_eq!(
        std::fs::read_to_string(root.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion":"1.0.0"}"#
    );
    let index = index_json(&root);
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], INDEX);
    assert_eq!(index["manifests"], serde_json::json!([]));
    assert!(root.join("blobs").is_dir());
}

#[tokio::test]
async fn a_relative_root_is_made_absolute() {
    let dir = tempfile::tempdir_in(".").unwrap();
    let name = dir.path().file_name().unwrap().to_owned();
    let store = Store::open(Path::new(&name)).await.unwrap();
    assert!(store.root().is_absolute());
    assert_eq!(
        store.root().canonicalize().unwrap(),
        dir.path().canonicalize().unwrap()
    );
}

#[tokio::test]
async fn bad_layout_files_are_refused_and_left_alone() {
    let cases: [(&str, &[u8], &[u8], ErrorKind); 4] = [
        (
            "version",
            br#"{"imageLayoutVersion":"2.0.0"}"#,
            br#"{"schemaVersion":2,"manifests":[]}"#,
            ErrorKind::UnsupportedVersion,
        ),
        (
            "layout-not-json",
            b"nope",
            br#"{"schemaVersion":2,"manifests":[]}"#,
            ErrorKind::InvalidLayout,
        ),
        (
            "index-empty",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            b"",
            ErrorKind::InvalidLayout,
        ),
        (
            "index-not-json",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            b"{\"manifests\":[",
            ErrorKind::InvalidLayout,
        ),
    ];
    for (name, layout, index, kind) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oci-layout"), layout).unwrap();
        std::fs::write(dir.path().join("index.json"), index).unwrap();
        let err = Store::open(dir.path()).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{name}: {err}");
        let text = err.to_string();
        assert!(
            text.contains(&dir.path().display().to_string()),
            "{name}: {text}"
        );
        assert_eq!(std::fs::read(dir.path().join("index.json")).unwrap(), index);
        assert_eq!(
            std::fs::read(dir.path().join("oci-layout")).unwrap(),
            layout
        );
    }
}

// ---------------------------------------------------------------- fixtures

const UMOCI_V1: &str = "sha256:e907c39a08ff3c506b7363ea6375b5beb1d231e666e21bd63c6162885cee1d3e";
const UMOCI_V2: &str = "sha256:3050746ba3dad1476210bac98b3bcf1048211fb00c9d01122b6f780a3e310626";

async fn every_blob_verifies(store: &Store, root: &Path) {
    for rel in blob_files(root) {
        let mut parts = rel.split('/').skip(1);
        let (alg, hex) = (parts.next().unwrap(), parts.next().unwrap());
        let digest = format!("{alg}:{hex}");
        let resolved = store.resolve(&digest).await.unwrap();
        let bytes = fetch_all(store, &resolved).await.unwrap();
        assert_eq!(bytes.len() as u64, resolved.size(), "{digest}");
    }
}

#[tokio::test]
async fn layouts_written_by_other_tools_open() {
    let (store, dir) = open_copy_of("umoci").await;
    assert_eq!(
        store.resolve("v1").await.unwrap().digest().as_ref(),
        UMOCI_V1
    );
    assert_eq!(
        store.resolve("v1-alias").await.unwrap().digest().as_ref(),
        UMOCI_V1
    );
    assert_eq!(
        store.resolve("v2").await.unwrap().digest().as_ref(),
        UMOCI_V2
    );
    assert_eq!(store.tags(None).await.unwrap(), ["v1", "v1-alias", "v2"]);
    every_blob_verifies(&store, dir.path()).await;
    // The layer shared by v1 and v2 lists both manifests.
    let v1 = store.resolve("v1").await.unwrap();
    let manifest = fetch_all(&store, &v1).await.unwrap();
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let shared_layer = parsed["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| serde_json::from_value::<Descriptor>(l.clone()).unwrap())
        .find(|l| {
            let v2 = std::fs::read(dir.path().join("blobs/sha256").join(&UMOCI_V2[7..])).unwrap();
            String::from_utf8_lossy(&v2).contains(l.digest().as_ref())
        })
        .expect("a layer shared by v1 and v2");
    let mut preds: Vec<String> = store
        .predecessors(&shared_layer)
        .await
        .unwrap()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    preds.sort();
    assert_eq!(preds, [UMOCI_V2, UMOCI_V1]);

    for (fixture, tags) in [
        ("handmade", vec!["amd64", "multi", "nested"]),
        (
            "handmade-exotic",
            vec!["custom", "docker-list", "sha512", "windows"],
        ),
        ("edge/dup-tag", vec!["multi"]),
        ("edge/skopeo-index-only", vec!["multi"]),
    ] {
        let (store, dir) = open_copy_of(fixture).await;
        let listed = store.tags(None).await.unwrap();
        for tag in tags {
            assert!(
                listed.contains(&tag.to_string()),
                "{fixture}: {tag} in {listed:?}"
            );
            let d = store.resolve(tag).await.unwrap();
            fetch_all(&store, &d).await.unwrap();
        }
        every_blob_verifies(&store, dir.path()).await;
    }
    let (store, _dir) = open_copy_of("edge/dup-tag").await;
    assert_eq!(
        store.resolve("multi").await.unwrap().digest().as_ref(),
        "sha256:cf485475385ecd768f5f7abe0c7321a05e96c14a63530a8eb91203b7718ebb0d",
        "the later duplicate wins"
    );
    for empty in ["edge/empty", "edge/null-manifests", "edge/umoci-init"] {
        let (store, _dir) = open_copy_of(empty).await;
        assert!(store.tags(None).await.unwrap().is_empty(), "{empty}");
    }
}

#[tokio::test]
async fn a_save_keeps_foreign_fields_and_os_version() {
    let (store, dir) = open_copy_of("handmade-exotic").await;
    let before = index_json(dir.path());
    let custom = store.resolve("custom").await.unwrap();
    store.tag(&custom, "added").await.unwrap();
    let after = index_json(dir.path());
    for (key, value) in before.as_object().unwrap() {
        if key != "manifests" {
            assert_eq!(&after[key], value, "top-level {key}");
        }
    }
    // Every entry that was there is still there, field for field.
    let entries = after["manifests"].as_array().unwrap();
    for old in before["manifests"].as_array().unwrap() {
        assert!(entries.contains(old), "lost or changed: {old}");
    }
    let windows = entries
        .iter()
        .find(|e| e["annotations"][REF_NAME] == "windows")
        .unwrap();
    let text = windows.to_string();
    assert!(!text.contains("os_version"), "{text}");
    // Order: tagged entries by tag, then untagged by digest.
    let names: Vec<String> = entries
        .iter()
        .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_string))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert!(names.contains(&"added".to_string()));
}

#[tokio::test]
async fn index_json_is_deterministic_and_keeps_containerd_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let images: Vec<Image> = (0..5).map(|n| Image::new(n, &[n as u8; 10])).collect();
    for image in &images {
        image.push(&store).await;
    }
    let mut named = images[3].manifest.0.clone();
    named.set_annotations(Some(
        [(
            "io.containerd.image.name".to_string(),
            "docker.io/x/y:1".to_string(),
        )]
        .into(),
    ));
    for (i, tag) in ["zeta", "alpha", "mid"].iter().enumerate() {
        store.tag(&images[i].manifest.0, tag).await.unwrap();
    }
    store.tag(&named, "named").await.unwrap();
    let first = std::fs::read(dir.path().join("index.json")).unwrap();
    store.close().await.unwrap();
    let reopened = Store::open_with(dir.path(), relaxed()).await.unwrap();
    reopened.save_index().await.unwrap();
    let desc = reopened
        .resolve(images[4].manifest.0.digest().as_ref())
        .await
        .unwrap();
    reopened.tag(&desc, "tmp").await.unwrap();
    reopened.untag("tmp").await.unwrap();
    let second = std::fs::read(dir.path().join("index.json")).unwrap();
    assert_eq!(first, second, "same state, same bytes");
    let index = index_json(dir.path());
    let refs: Vec<serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["annotations"][REF_NAME].clone())
        .collect();
    assert_eq!(refs[..4], ["alpha", "mid", "named", "zeta"]);
    assert!(refs[4..].iter().all(|r| r.is_null()), "{refs:?}");
    let untagged: Vec<&str> = index["manifests"].as_array().unwrap()[4..]
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    let mut sorted = untagged.clone();
    sorted.sort();
    assert_eq!(untagged, sorted);
    assert_eq!(untagged.len(), 1, "only image 4 is untagged");
    let named_entry = &index["manifests"][2];
    assert_eq!(
        named_entry["annotations"]["io.containerd.image.name"],
        "docker.io/x/y:1"
    );
}

// ---------------------------------------------------------------- push, fetch, resolve

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_blobs_stream_and_verify_on_the_way_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let data: Vec<u8> = (0..(5u32 << 20)).map(|i| (i % 251) as u8).collect();
    let d = descriptor_from_bytes(MediaType::ImageLayer, &data);
    push_bytes(&store, &d, data.clone()).await.unwrap();
    assert_eq!(fetch_all(&store, &d).await.unwrap(), data);
    assert!(listing(&dir.path().join("ingest")).is_empty());

    // Corrupt the file on disk, same size: the read ends in Mismatch.
    let path = dir
        .path()
        .join("blobs/sha256")
        .join(&d.digest().as_ref()[7..]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4 << 20] ^= 0xff;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let err = fetch_all(&store, &d).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch);
    // A reader that stops early never sees unverified bytes as verified: the error comes at EOF.
    let mut reader = store.fetch(&d).await.unwrap();
    let mut sink = Vec::new();
    let err = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut sink)
        .await
        .unwrap_err();
    assert_eq!(
        store_core::error_from_io(err, "x").kind(),
        ErrorKind::Mismatch
    );
    // Truncated on disk: Mismatch at once.
    std::fs::write(&path, &bytes[..100]).unwrap();
    assert_eq!(
        fetch_all(&store, &d).await.unwrap_err().kind(),
        ErrorKind::Mismatch
    );
}

#[tokio::test]
async fn resolve_tag_digest_and_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let image = Image::new(1, b"layer");
    image.push(&store).await;
    let mut annotated = image.manifest.0.clone();
    annotated.set_annotations(Some([("k".to_string(), "v".to_string())].into()));
    store.tag(&annotated, "v1").await.unwrap();
    assert_eq!(store.resolve("v1").await.unwrap(), annotated);
    let by_digest = store
        .resolve(image.manifest.0.digest().as_ref())
        .await
        .unwrap();
    assert_eq!(by_digest, image.manifest.0);
    assert!(by_digest.annotations().is_none());
    let layer = store
        .resolve(image.layer.0.digest().as_ref())
        .await
        .unwrap();
    assert_eq!(layer.media_type().to_string(), "application/octet-stream");
    assert_eq!(layer.size(), image.layer.0.size());
    assert_eq!(layer.digest(), image.layer.0.digest());
    // After a reopen the tag still resolves, with its ref.name annotation as written.
    store.close().await.unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let again = store.resolve("v1").await.unwrap();
    assert_eq!(again.digest(), annotated.digest());
    assert_eq!(again.annotations().as_ref().unwrap()["k"], "v");
    assert_eq!(again.annotations().as_ref().unwrap()[REF_NAME], "v1");
    for missing in [
        "v2",
        "sha256:0000000000000000000000000000000000000000000000000000000000000000",
        "not a ref",
    ] {
        assert_eq!(
            store.resolve(missing).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(
        store.resolve("").await.unwrap_err().kind(),
        ErrorKind::MissingReference
    );
}

#[tokio::test]
async fn tags_and_untag_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let (a, b) = (Image::new(1, b"a"), Image::new(2, b"b"));
    a.push(&store).await;
    b.push(&store).await;
    for tag in ["v1", "v2", "latest"] {
        store.tag(&a.manifest.0, tag).await.unwrap();
    }
    store.tag(&b.manifest.0, "latest").await.unwrap();
    store.untag("v2").await.unwrap();
    assert_eq!(store.tags(None).await.unwrap(), ["latest", "v1"]);
    assert_eq!(store.tags(Some("latest")).await.unwrap(), ["v1"]);
    store.close().await.unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    assert_eq!(store.tags(None).await.unwrap(), ["latest", "v1"]);
    assert_eq!(
        store.resolve("latest").await.unwrap().digest(),
        b.manifest.0.digest()
    );
    assert_eq!(
        store.untag("v2").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.untag("").await.unwrap_err().kind(),
        ErrorKind::MissingReference
    );
    assert_eq!(
        store
            .untag(a.manifest.0.digest().as_ref())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidReference
    );
}

// ---------------------------------------------------------------- delete

#[tokio::test]
async fn delete_cascades_without_oras_go_bugs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let shared_layer = b"shared layer".to_vec();
    let (a, b) = (Image::new(1, &shared_layer), Image::new(2, &shared_layer));
    a.push(&store).await;
    b.push(&store).await;
    // Referrers of a: a signature `n`, and an index `d` that lists n and has a as subject:
    // oras-go enqueues n twice and fails half-way.
    let sig_blob = desc(LAYER, b"signature");
    push_bytes(&store, &sig_blob, &b"signature"[..])
        .await
        .unwrap();
    push_bytes(
        &store,
        &desc("application/vnd.oci.empty.v1+json", b"{}"),
        &b"{}"[..],
    )
    .await
    .unwrap();
    let (n, n_body) = referrer_of(&a.manifest.0, &sig_blob);
    push_bytes(&store, &n, n_body).await.unwrap();
    let (d, d_body) = index_of(&[&n], Some(&a.manifest.0));
    push_bytes(&store, &d, d_body).await.unwrap();
    store.tag(&a.manifest.0, "a").await.unwrap();
    store.tag(&a.manifest.0, "a2").await.unwrap();
    store.tag(&b.manifest.0, "b").await.unwrap();

    store.delete(&a.manifest.0).await.unwrap();
    for gone in [&a.manifest.0, &a.config.0, &n, &d, &sig_blob] {
        assert!(
            !store.exists(gone).await.unwrap(),
            "{} should be gone",
            gone.digest()
        );
    }
    for kept in [&b.manifest.0, &b.config.0, &a.layer.0] {
        assert!(
            store.exists(kept).await.unwrap(),
            "{} should stay",
            kept.digest()
        );
    }
    assert_eq!(store.tags(None).await.unwrap(), ["b"]);
    let index = index_json(dir.path());
    let text = index.to_string();
    for gone in [&a.manifest.0, &n, &d] {
        assert!(
            !text.contains(gone.digest().as_ref()),
            "index.json still names {}",
            gone.digest()
        );
    }
    assert!(store.fsck().await.unwrap().is_clean());
    assert_eq!(
        store.delete(&a.manifest.0).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // Deleting b now also takes the shared layer.
    store.delete(&b.manifest.0).await.unwrap();
    assert!(!store.exists(&a.layer.0).await.unwrap());
    assert!(store.tags(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_spares_tagged_children_and_follows_retags() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let (a, b) = (Image::new(1, b"x"), Image::new(2, b"y"));
    a.push(&store).await;
    b.push(&store).await;
    let (index, body) = index_of(&[&a.manifest.0, &b.manifest.0], None);
    push_bytes(&store, &index, body).await.unwrap();
    store.tag(&index, "all").await.unwrap();
    // a was tagged, then the tag moved away: a must count as untagged (oras-go keeps it).
    store.tag(&a.manifest.0, "moving").await.unwrap();
    store.tag(&b.manifest.0, "moving").await.unwrap();
    store.delete(&index).await.unwrap();
    assert!(
        !store.exists(&a.manifest.0).await.unwrap(),
        "a lost its tag: garbage"
    );
    assert!(
        store.exists(&b.manifest.0).await.unwrap(),
        "b is tagged: kept"
    );
    assert!(store.exists(&b.layer.0).await.unwrap());
    assert_eq!(store.tags(None).await.unwrap(), ["moving"]);
}

/// Found by the model-based test (tests/model.rs of the facade): blobs pushed before a reopen
/// that no `index.json` entry reached are not in the reopened store's graph, and the cascade
/// used to skip them, leaving them unreferenced after their only manifest was deleted.
#[tokio::test]
async fn delete_cascades_to_blobs_pushed_before_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let a = Image::new(1, b"x");
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    for (d, b) in [&a.config, &a.layer] {
        push_bytes(&store, d, b.clone()).await.unwrap();
    }
    store.close().await.unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    push_bytes(&store, &a.manifest.0, a.manifest.1.clone())
        .await
        .unwrap();
    store.delete(&a.manifest.0).await.unwrap();
    for (d, _) in [&a.config, &a.layer, &a.manifest] {
        assert!(!store.exists(d).await.unwrap(), "{} is left", d.digest());
    }
    assert!(store.fsck().await.unwrap().orphaned.is_empty());
}

#[tokio::test]
async fn delete_without_auto_gc_removes_only_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed().auto_gc(false))
        .await
        .unwrap();
    let a = Image::new(1, b"x");
    a.push(&store).await;
    store.tag(&a.manifest.0, "a").await.unwrap();
    store.delete(&a.manifest.0).await.unwrap();
    assert!(!store.exists(&a.manifest.0).await.unwrap());
    assert!(store.exists(&a.config.0).await.unwrap());
    assert!(store.exists(&a.layer.0).await.unwrap());
    assert!(store.tags(None).await.unwrap().is_empty());
    assert!(!index_json(dir.path())
        .to_string()
        .contains(a.manifest.0.digest().as_ref()));
}

// ---------------------------------------------------------------- gc

#[tokio::test]
async fn gc_keeps_what_tags_and_referrer_chains_reach() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let (kept, dropped) = (Image::new(1, b"kept"), Image::new(2, b"dropped"));
    kept.push(&store).await;
    dropped.push(&store).await;
    store.tag(&kept.manifest.0, "keep").await.unwrap();
    let empty = desc("application/vnd.oci.empty.v1+json", b"{}");
    push_bytes(&store, &empty, &b"{}"[..]).await.unwrap();
    // A chain of referrers: sig -> kept, sig-of-sig -> sig; and an orphan referrer of `dropped`.
    let blob1 = desc(LAYER, b"sig1");
    let blob2 = desc(LAYER, b"sig2");
    let blob3 = desc(LAYER, b"sig3");
    for (d, b) in [(&blob1, &b"sig1"[..]), (&blob2, b"sig2"), (&blob3, b"sig3")] {
        push_bytes(&store, d, b).await.unwrap();
    }
    let (sig, sig_body) = referrer_of(&kept.manifest.0, &blob1);
    let (sig2, sig2_body) = referrer_of(&sig, &blob2);
    let (orphan, orphan_body) = referrer_of(&dropped.manifest.0, &blob3);
    for (d, b) in [(&sig, sig_body), (&sig2, sig2_body), (&orphan, orphan_body)] {
        push_bytes(&store, d, b).await.unwrap();
    }
    // An unreferenced blob pushed behind the store's back, a stale temp file, unrelated files.
    let stray = b"stray".to_vec();
    let stray_desc = desc(LAYER, &stray);
    std::fs::write(
        dir.path()
            .join("blobs/sha256")
            .join(&stray_desc.digest().as_ref()[7..]),
        &stray,
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("ingest")).unwrap();
    std::fs::write(dir.path().join("ingest/push-stale"), b"partial").unwrap();
    std::fs::write(dir.path().join(".index.json.tmp-1-2-3"), b"{\"torn").unwrap();
    std::fs::write(dir.path().join("blobs/sha256/README"), b"not a blob").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"mine").unwrap();

    let report = store.gc().await.unwrap();
    for d in [
        &kept.manifest.0,
        &kept.config.0,
        &kept.layer.0,
        &sig,
        &sig2,
        &blob1,
        &blob2,
        &empty,
    ] {
        assert!(store.exists(d).await.unwrap(), "{} kept", d.digest());
    }
    for d in [
        &dropped.manifest.0,
        &dropped.config.0,
        &dropped.layer.0,
        &orphan,
        &blob3,
        &stray_desc,
    ] {
        assert!(!store.exists(d).await.unwrap(), "{} removed", d.digest());
    }
    assert_eq!(report.blobs_removed, 6);
    let expected_bytes: u64 = [
        &dropped.manifest.0,
        &dropped.config.0,
        &dropped.layer.0,
        &orphan,
        &blob3,
        &stray_desc,
    ]
    .iter()
    .map(|d| d.size())
    .sum();
    assert_eq!(report.bytes_removed, expected_bytes);
    assert_eq!(report.temp_files_removed, 2);
    assert!(!dir.path().join(".index.json.tmp-1-2-3").exists());
    assert!(dir.path().join("blobs/sha256/README").exists());
    assert!(dir.path().join("notes.txt").exists());
    // The pruned index was saved: the dropped manifest's untagged entry is gone from disk.
    let text = index_json(dir.path()).to_string();
    assert!(!text.contains(dropped.manifest.0.digest().as_ref()));
    assert!(
        text.contains(sig2.digest().as_ref()),
        "referrer entries stay discoverable"
    );
    assert!(store.fsck().await.unwrap().is_clean());
    // Twice is a no-op.
    assert_eq!(store.gc().await.unwrap().blobs_removed, 0);
}

#[tokio::test]
async fn gc_terminates_when_an_untagged_referrer_points_at_unreachable_content() {
    // oras-go#1294: untagging a signed manifest made oras-go's GC spin forever.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let image = Image::new(1, b"x");
    image.push(&store).await;
    let blob = desc(LAYER, b"sig");
    push_bytes(&store, &blob, &b"sig"[..]).await.unwrap();
    push_bytes(
        &store,
        &desc("application/vnd.oci.empty.v1+json", b"{}"),
        &b"{}"[..],
    )
    .await
    .unwrap();
    let (sig, body) = referrer_of(&image.manifest.0, &blob);
    push_bytes(&store, &sig, body).await.unwrap();
    let (sig2, body2) = referrer_of(&sig, &blob);
    push_bytes(&store, &sig2, body2).await.unwrap();
    store.tag(&image.manifest.0, "v1").await.unwrap();
    store.untag("v1").await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(60), store.gc())
        .await
        .expect("gc terminates")
        .unwrap();
    assert_eq!(report.blobs_removed, 7);
    assert!(blob_files(dir.path()).is_empty());
}

#[tokio::test]
async fn gc_spares_young_files_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(
        dir.path(),
        StoreOptions::default()
            .durable(false)
            .gc_grace(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    let image = Image::new(1, b"untagged");
    image.push(&store).await;
    std::fs::create_dir_all(dir.path().join("ingest")).unwrap();
    std::fs::write(dir.path().join("ingest/push-inflight"), b"partial").unwrap();
    let report = store.gc().await.unwrap();
    assert_eq!(report.blobs_removed, 0);
    assert_eq!(report.temp_files_removed, 0);
    assert!(store.exists(&image.layer.0).await.unwrap());
    assert!(dir.path().join("ingest/push-inflight").exists());
}

#[tokio::test]
async fn gc_on_a_layout_whose_tags_were_all_removed() {
    let (store, dir) = open_copy_of("edge/umoci-rm-all").await;
    assert_eq!(blob_files(dir.path()).len(), 7);
    let report = store.gc().await.unwrap();
    assert_eq!(report.blobs_removed, 7);
    assert!(blob_files(dir.path()).is_empty());
}

#[tokio::test]
async fn gc_dry_run_counts_what_gc_removes_and_changes_nothing() {
    let (store, dir) = open_copy_of("edge/umoci-rm-all").await;
    let before = listing(dir.path());
    let index_before = std::fs::read(dir.path().join("index.json")).unwrap();
    let would = store.gc_dry_run().await.unwrap();
    assert_eq!(would.blobs_removed, 7);
    assert!(would.bytes_removed > 0);
    // The index lock file is created for the run, as by any index read under the lock.
    let mut after = listing(dir.path());
    after.remove(store_fs::LOCK_FILE);
    assert_eq!(after, before);
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        index_before
    );
    let report = store.gc().await.unwrap();
    assert_eq!(report, would);
    assert!(blob_files(dir.path()).is_empty());
}

// ---------------------------------------------------------------- fsck

#[tokio::test]
async fn fsck_reports_and_never_modifies() {
    let (store, dir) = open_copy_of("handmade").await;
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.blobs_checked > 10);

    let amd64 = store.resolve("amd64").await.unwrap();
    let body: serde_json::Value =
        serde_json::from_slice(&fetch_all(&store, &amd64).await.unwrap()).unwrap();
    let layer = body["layers"][0]["digest"].as_str().unwrap().to_string();
    let config = body["config"]["digest"].as_str().unwrap().to_string();
    let layer_path = dir.path().join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&layer_path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&layer_path, &bytes).unwrap();
    std::fs::remove_file(dir.path().join("blobs/sha256").join(&config[7..])).unwrap();
    let before = listing(dir.path());
    let index_before = std::fs::read(dir.path().join("index.json")).unwrap();
    let report = store.fsck().await.unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.corrupt, [layer]);
    assert_eq!(report.missing, [config]);
    assert_eq!(listing(dir.path()), before);
    assert_eq!(
        std::fs::read(dir.path().join("index.json")).unwrap(),
        index_before
    );

    let (store, _dir) = open_copy_of("edge/skopeo-index-only").await;
    let report = store.fsck().await.unwrap();
    assert!(
        !report.missing.is_empty(),
        "the index's children are not in the layout"
    );
}

// ---------------------------------------------------------------- blob writer

#[tokio::test]
async fn blob_writer_commits_under_the_computed_digest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let mut writer = store.blob_writer(MediaType::ImageLayerGzip).await.unwrap();
    let mut expected = Vec::new();
    for i in 0..300u32 {
        let chunk = vec![(i % 256) as u8; 1000];
        writer.write_all(&chunk).await.unwrap();
        expected.extend_from_slice(&chunk);
    }
    let d = writer.commit().await.unwrap();
    assert_eq!(
        d,
        descriptor_from_bytes(MediaType::ImageLayerGzip, &expected)
    );
    assert_eq!(fetch_all(&store, &d).await.unwrap(), expected);
    assert!(listing(&dir.path().join("ingest")).is_empty());

    let mut dropped = store.blob_writer(MediaType::ImageLayer).await.unwrap();
    dropped.write_all(b"never committed").await.unwrap();
    drop(dropped);
    assert!(listing(&dir.path().join("ingest")).is_empty());
    assert_eq!(blob_files(dir.path()).len(), 1);
}

// ---------------------------------------------------------------- bad input

#[tokio::test]
async fn bad_digests_and_references_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let hex = "a".repeat(64);
    for digest in [
        format!("sha1:{}", "a".repeat(40)),
        format!("md5:{}", "a".repeat(32)),
        format!("foo:{hex}"),
        format!("sha256+b64u:{hex}"),
    ] {
        let d = Descriptor::new(MediaType::ImageLayer, 1, Digest::from_str(&digest).unwrap());
        assert_eq!(
            store.fetch(&d).await.map(|_| ()).unwrap_err().kind(),
            ErrorKind::InvalidDigest
        );
        assert_eq!(
            store.exists(&d).await.unwrap_err().kind(),
            ErrorKind::InvalidDigest
        );
        assert_eq!(
            store
                .push(&d, reader_from_bytes(&b"x"[..]))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidDigest
        );
        assert_eq!(
            store.tag(&d, "t").await.unwrap_err().kind(),
            ErrorKind::InvalidDigest
        );
        assert_eq!(
            store.delete(&d).await.unwrap_err().kind(),
            ErrorKind::InvalidDigest
        );
    }
    // Strings that would name paths outside blobs/ if they were trusted.
    for reference in [
        "sha256:../../../../etc/passwd".to_string(),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256/{hex}"),
        "../oci-layout".to_string(),
    ] {
        assert_eq!(
            store.resolve(&reference).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store.untag(&reference).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    let image = Image::new(1, b"x");
    image.push(&store).await;
    for bad_tag in ["../x", "a b", "-lead", "trail-", "x//y", "tag\n"] {
        let err = store.tag(&image.manifest.0, bad_tag).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidReference, "{bad_tag:?}");
    }
    let other = Image::new(2, b"y");
    let err = store
        .tag(&image.manifest.0, other.manifest.0.digest().as_ref())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidReference);
    assert_eq!(
        store.tag(&other.manifest.0, "v1").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        store.tag(&image.manifest.0, "").await.unwrap_err().kind(),
        ErrorKind::MissingReference
    );
    let mut absurd = image.manifest.0.clone();
    absurd.set_size(1 << 62);
    assert_eq!(
        store.tag(&absurd, "v1").await.unwrap_err().kind(),
        ErrorKind::SizeExceedsLimit
    );
    assert!(store.tags(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn symlinks_in_blobs_are_never_followed_out_of_the_layout() {
    let outside = tempfile::tempdir().unwrap();
    let secret = b"outside the layout".to_vec();
    let secret_path = outside.path().join("secret");
    std::fs::write(&secret_path, &secret).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), relaxed()).await.unwrap();
    let d = desc(LAYER, &secret);
    std::fs::create_dir_all(dir.path().join("blobs/sha256")).unwrap();
    let link = dir
        .path()
        .join("blobs/sha256")
        .join(&d.digest().as_ref()[7..]);
    std::os::unix::fs::symlink(&secret_path, &link).unwrap();
    assert_eq!(
        store.fetch(&d).await.map(|_| ()).unwrap_err().kind(),
        ErrorKind::InvalidLayout
    );
    assert!(!store.exists(&d).await.unwrap());
    assert_eq!(
        store.resolve(d.digest().as_ref()).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let report = store.fsck().await.unwrap();
    assert_eq!(report.corrupt, [d.digest().to_string()]);
    store.gc().await.unwrap();
    assert!(
        secret_path.exists(),
        "gc removed the link, never its target"
    );
    assert_eq!(std::fs::read(&secret_path).unwrap(), secret);
    assert!(
        std::fs::symlink_metadata(&link).is_err(),
        "the unreferenced link is gone"
    );

    // A symlinked blobs directory is refused at open.
    let dir2 = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir2.path().join("blobs")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir2.path().join("blobs/sha256")).unwrap();
    assert_eq!(
        Store::open(dir2.path()).await.unwrap_err().kind(),
        ErrorKind::InvalidLayout
    );
}
