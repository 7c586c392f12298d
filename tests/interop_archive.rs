//! Archives with the real skopeo (1.9.3 in Debian bookworm): `skopeo copy oci-archive:OURS:TAG
//! oci:DIR` and `skopeo inspect oci-archive:OURS:TAG` read what `ocistore::archive::export`
//! writes, and `ocistore::archive::import` (and the read-only store over a tar, which shares
//! its entry rules) reads what `skopeo copy oci:SRC:TAG oci-archive:FILE:TAG` writes, through
//! a pipe from another process.

mod interop;

use interop::*;
use ocistore::archive::{export, import, ExportOptions, ImportOptions};
use ocistore::content::{fetch_all, walk};
use ocistore::fs::ReadOnlyStore;
use ocistore::{Resolver, TagLister};
use serde_json::Value;
use std::path::Path;

const TOOLS: &[&str] = &["skopeo", "cat"];

/// The tags of our layout that skopeo can read and write, with whether they are an index.
fn skopeo_tags(ours: &Ours) -> Vec<(&'static str, Kind)> {
    ours.tags
        .iter()
        .filter(|tag| tag.kind != Kind::Sha512Image)
        .map(|tag| (tag.name, tag.kind))
        .collect()
}

fn digest_of_entry(root: &Path, tag: &str) -> String {
    let entry = entry_of(root, tag).unwrap_or_else(|| panic!("{tag} missing in {root:?}"));
    entry["digest"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_our_archives() {
    if !have(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ours");
    let store = open_store(&root).await;
    let mut ours = Ours::build();
    ours.write(&store).await;
    let tags = skopeo_tags(&ours);
    assert!(tags.len() >= 3, "{tags:?}");
    let names: Vec<&str> = tags.iter().map(|(name, _)| *name).collect();
    let archive = tmp.path().join("ours.tar");
    let file = tokio::fs::File::create(&archive).await.unwrap();
    export(
        &store,
        &names,
        file,
        &ExportOptions::default().referrers(true),
    )
    .await
    .unwrap();

    let out = tmp.path().join("copied");
    for (name, kind) in &tags {
        let expected = store.resolve(name).await.unwrap().digest().to_string();
        let from = format!("oci-archive:{}:{name}", archive.display());
        let to = format!("oci:{}:{name}", out.display());
        if *kind == Kind::Index {
            skopeo(&[&"copy", &"--all", &"--preserve-digests", &from, &to]);
        } else {
            skopeo(&[&"copy", &"--preserve-digests", &from, &to]);
        }
        // skopeo inspects images only ("unsupported image-specific operation on artifact").
        if *kind == Kind::Image {
            let inspected: Value = serde_json::from_slice(&skopeo(&[&"inspect", &from])).unwrap();
            assert_eq!(
                inspected["Digest"].as_str(),
                Some(expected.as_str()),
                "{name}"
            );
        }
        assert_eq!(digest_of_entry(&out, name), expected, "{name}");
    }
    // A sha512 image: its blob names need pax records, which skopeo (Go's archive/tar) reads;
    // skopeo cannot write sha512, so it only prints the manifest.
    let sha512 = ours
        .tags
        .iter()
        .find(|tag| tag.kind == Kind::Sha512Image)
        .map(|tag| tag.name)
        .unwrap();
    let archive512 = tmp.path().join("sha512.tar");
    let file = tokio::fs::File::create(&archive512).await.unwrap();
    export(&store, [sha512], file, &ExportOptions::default())
        .await
        .unwrap();
    let from = format!("oci-archive:{}:{sha512}", archive512.display());
    let raw = skopeo(&[&"inspect", &"--raw", &from]);
    let desc = store.resolve(sha512).await.unwrap();
    assert_eq!(raw, fetch_all(&store, &desc).await.unwrap().to_vec());
    // The manifest itself is a sha512 blob: skopeo found it under its pax name. (Its parsed
    // `inspect` checks the config with sha256 whatever the digest says, and fails.)
    assert!(desc.digest().to_string().starts_with("sha512:"), "{desc:?}");

    // Every blob skopeo copied out of our archive verifies in a layout store of ours.
    let copied = open_store(&out).await;
    let report = copied.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");

    // The read-only store over a tar accepts it under the same entry rules.
    let readonly = ReadOnlyStore::open(&archive).await.unwrap();
    for (name, _) in &tags {
        let desc = readonly.resolve(name).await.unwrap();
        assert_eq!(desc.digest(), store.resolve(name).await.unwrap().digest());
        for node in walk(&readonly, &desc).await.unwrap() {
            fetch_all(&readonly, &node).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_import_what_skopeo_writes_from_a_pipe() {
    if !have(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ours");
    let store = open_store(&root).await;
    let mut ours = Ours::build();
    ours.write(&store).await;
    for (name, kind) in skopeo_tags(&ours) {
        let archive = tmp.path().join(format!("{name}.tar"));
        let from = format!("oci:{}:{name}", root.display());
        let to = format!("oci-archive:{}:{name}", archive.display());
        if kind == Kind::Index {
            skopeo(&[&"copy", &"--all", &"--preserve-digests", &from, &to]);
        } else {
            skopeo(&[&"copy", &"--preserve-digests", &from, &to]);
        }
        let expected = digest_of_entry(&root, name);

        let dst_root = tmp.path().join(format!("imported-{name}"));
        let dst = open_store(&dst_root).await;
        let mut child = tokio::process::Command::new("cat")
            .arg(&archive)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let imported = import(stdout, &dst, &ImportOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(child.wait().await.unwrap().success());
        assert_eq!(imported.len(), 1, "{imported:?}");
        assert_eq!(imported[0].name.as_deref(), Some(name));
        assert_eq!(imported[0].descriptor.digest().to_string(), expected);
        assert_eq!(dst.tags(None).await.unwrap(), vec![name.to_string()]);
        let report = dst.fsck().await.unwrap();
        if kind == Kind::Artifact {
            // skopeo copies a referrer without its subject; the import accepts that (a
            // registry would too), and fsck reports the subject, only it, as missing.
            let body = std::fs::read(blob_path(&root, &expected)).unwrap();
            let manifest: Value = serde_json::from_slice(&body).unwrap();
            let subject = manifest["subject"]["digest"].as_str().unwrap().to_string();
            assert_eq!(report.missing, vec![subject], "{name}: {report:?}");
        } else {
            assert!(report.is_clean(), "{name}: {report:?}");
        }
        assert!(report.orphaned.is_empty(), "{name}: {report:?}");

        // The read-only store over a tar reads skopeo's archive under the same rules.
        let readonly = ReadOnlyStore::open(&archive).await.unwrap();
        assert_eq!(
            readonly.resolve(name).await.unwrap().digest().to_string(),
            expected
        );
    }
}
