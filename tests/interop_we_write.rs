//! We write, they read: a layout written by our `Store` is read by oci-image-tool, skopeo and
//! umoci, each for the tags whose media type it supports (see `Kind` in `interop/mod.rs`):
//! - `oci-image-tool validate --type image` accepts a one-entry copy of the layout per tag;
//! - `skopeo inspect --raw oci:DIR:TAG` prints exactly our manifest bytes;
//! - `skopeo copy --preserve-digests oci:DIR:TAG oci:OTHER:TAG` succeeds and keeps every digest
//!   (`--all` for the index);
//! - `umoci unpack` yields exactly the files and links our tar+gzip layers hold.
//!
//! Once for a fresh layout, once after a tag was moved, a manifest deleted with auto GC and `gc()`
//! run, and once for the layout the object store keeps under a bucket prefix, synced to disk.

mod interop;

use interop::*;
use ocistore::fs::ReadOnlyStore;
use ocistore::object::object_store::memory::InMemory;
use ocistore::object::object_store::path::Path as ObjectPath;
use ocistore::object::object_store::{ObjectStore, ObjectStoreExt};
use ocistore::Resolver;
use std::path::Path;

const TOOLS: &[&str] = &["skopeo", "umoci", "oci-image-tool"];

/// Runs every tool that supports it on every tag of the layout at `root`; `work` is scratch space.
async fn tools_read(root: &Path, tags: &[Tag], work: &Path) {
    let index_before = std::fs::read(root.join("index.json")).unwrap();
    let other = work.join("skopeo-copy");
    let mut copied = Vec::new();
    for tag in tags {
        let digest = tag.desc.digest().to_string();
        let manifest = std::fs::read(blob_path(root, &digest)).unwrap();
        let entry = entry_of(root, tag.name).unwrap();
        assert_eq!(
            entry["digest"],
            digest.as_str(),
            "index.json entry of {}",
            tag.name
        );
        if let Some(annotations) = tag.desc.annotations() {
            for (key, value) in annotations {
                assert_eq!(entry["annotations"][key], value.as_str(), "{}", tag.name);
            }
        }

        if tag.kind.oci_image_tool() {
            let single = work.join(format!("oit-{}", tag.name));
            one_entry_copy(root, tag.name, &single);
            let out = ok(
                "oci-image-tool",
                &[&"validate", &"--type", &"image", &single],
            );
            let out = String::from_utf8_lossy(&out);
            assert!(out.contains("Validation succeeded"), "{}: {out}", tag.name);
        }

        if tag.kind.skopeo_inspect() {
            let raw = skopeo(&[
                &"inspect",
                &"--raw",
                &format!("oci:{}:{}", root.display(), tag.name),
            ]);
            assert_eq!(
                raw, manifest,
                "skopeo inspect --raw of {} is not our manifest",
                tag.name
            );
        }

        if tag.kind.skopeo_copy() {
            let src = format!("oci:{}:{}", root.display(), tag.name);
            let dst = format!("oci:{}:{}", other.display(), tag.name);
            if tag.kind == Kind::Index {
                skopeo(&[
                    &"copy",
                    &"--quiet",
                    &"--preserve-digests",
                    &"--all",
                    &src,
                    &dst,
                ]);
            } else {
                skopeo(&[&"copy", &"--quiet", &"--preserve-digests", &src, &dst]);
            }
            let entry = entry_of(&other, tag.name).unwrap();
            assert_eq!(
                entry["digest"],
                digest.as_str(),
                "skopeo copy of {}",
                tag.name
            );
            let ours = reachable(root, &digest);
            assert_eq!(
                reachable(&other, &digest),
                ours,
                "skopeo copy of {} kept every digest",
                tag.name
            );
            for blob in &ours {
                assert_eq!(
                    std::fs::read(blob_path(&other, blob)).unwrap(),
                    std::fs::read(blob_path(root, blob)).unwrap(),
                    "{blob} of {}",
                    tag.name
                );
            }
            copied.push(tag);
        }

        if tag.kind.umoci() {
            let bundle = work.join(format!("bundle-{}", tag.name));
            let image = format!("{}:{}", root.display(), tag.name);
            let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"unpack"];
            let extra = umoci_unpack_args();
            for flag in &extra {
                args.push(flag);
            }
            args.extend([&"--image" as &dyn AsRef<_>, &image, &bundle]);
            ok("umoci", &args);
            assert_eq!(
                actual_tree(&bundle.join("rootfs")),
                tag.files,
                "umoci unpack of {}",
                tag.name
            );
        }
    }

    // What skopeo wrote, we read: every copied tag resolves to our digest, every node verifies.
    // (Our graph also follows `subject`: the subjects were copied under their own tags first.)
    let copy = ReadOnlyStore::open(&other).await.unwrap();
    let source = ReadOnlyStore::open(root).await.unwrap();
    for tag in copied {
        let resolved = copy.resolve(tag.name).await.unwrap();
        assert_eq!(resolved.digest(), tag.desc.digest(), "{}", tag.name);
        let fetched = fetch_graph(&copy, &resolved, &Default::default()).await;
        assert!(fetched.is_superset(&reachable(root, tag.desc.digest().as_ref())));
        assert_eq!(
            fetched,
            fetch_graph(&source, &resolved, &Default::default()).await
        );
    }
    // Reading never wrote into our layout.
    assert_eq!(
        std::fs::read(root.join("index.json")).unwrap(),
        index_before
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_read_a_fresh_layout_we_wrote() {
    if !have(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ours");
    let store = open_store(&root).await;
    let mut ours = Ours::build();
    ours.write(&store).await;
    let report = store.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty(),
        "{report:?}"
    );

    tools_read(&root, &ours.tags, tmp.path()).await;

    // umoci lists exactly our tags (it ignores nothing it should see).
    let listed = String::from_utf8(ok("umoci", &[&"ls", &"--layout", &root])).unwrap();
    let listed: std::collections::BTreeSet<String> = listed.lines().map(str::to_string).collect();
    assert_eq!(listed, tags_of(&root));
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    store.close().await.unwrap();
}

/// Copies every object under `prefix` of `bucket` to the same relative path under `dir`, as
/// `aws s3 sync` or `rclone copy` would.
async fn sync_to_disk(bucket: &std::sync::Arc<dyn ObjectStore>, prefix: &str, dir: &Path) -> usize {
    use futures::TryStreamExt;
    let prefix = ObjectPath::from(prefix);
    let listed: Vec<_> = bucket.list(Some(&prefix)).try_collect().await.unwrap();
    for meta in &listed {
        let path = meta
            .location
            .prefix_match(&prefix)
            .unwrap()
            .fold(dir.to_path_buf(), |path, part| path.join(part.as_ref()));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let bytes = bucket
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        std::fs::write(&path, &bytes).unwrap();
    }
    listed.len()
}

/// The object store keeps a real layout under its prefix: synced to disk, the tools read it as
/// they read a layout our `Store` wrote, and our `Store` opens it fsck-clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_read_a_bucket_prefix_synced_to_disk() {
    if !have(TOOLS) {
        return;
    }
    let bucket: std::sync::Arc<dyn ObjectStore> = std::sync::Arc::new(InMemory::new());
    let store = ocistore::object::Store::open(bucket.clone(), "layouts/ours")
        .await
        .unwrap();
    let mut ours = Ours::build();
    ours.write(&store).await;
    store.close().await.unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("synced");
    let objects = sync_to_disk(&bucket, "layouts/ours", &root).await;
    assert!(objects > ours.tags.len() + 2, "{objects} objects synced");
    assert!(root.join("oci-layout").is_file() && root.join("index.json").is_file());

    tools_read(&root, &ours.tags, tmp.path()).await;
    let listed = String::from_utf8(ok("umoci", &[&"ls", &"--layout", &root])).unwrap();
    let listed: std::collections::BTreeSet<String> = listed.lines().map(str::to_string).collect();
    assert_eq!(listed, tags_of(&root));

    let disk = open_store(&root).await;
    let report = disk.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    for tag in &ours.tags {
        assert_eq!(
            disk.resolve(tag.name).await.unwrap().digest(),
            tag.desc.digest(),
            "{}",
            tag.name
        );
    }
    disk.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_read_our_layout_after_a_moved_tag_a_delete_and_gc() {
    if !have(TOOLS) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("ours");
    let store = open_store(&root).await;
    let mut ours = Ours::build();
    ours.write(&store).await;
    ours.mutate(&store).await;
    let report = store.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty(),
        "{report:?}"
    );
    assert!(entry_of(&root, "app-sig").is_none());

    tools_read(&root, &ours.tags, tmp.path()).await;

    // The deleted referrer is gone for the tools too, and so is the old app manifest.
    let gone = fails(
        "skopeo",
        &[
            &"inspect",
            &"--raw",
            &format!("oci:{}:app-sig", root.display()),
        ],
    );
    assert!(gone.contains("app-sig"), "{gone}");
    assert!(!blob_path(&root, ours.app.manifest.desc.digest().as_ref()).exists());
    store.close().await.unwrap();
}
