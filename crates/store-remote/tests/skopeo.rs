//! Interoperability with skopeo through the real `docker-registry`: skopeo reads what we
//! pushed, and we read what skopeo pushed, a two-platform index included, digests unchanged.

mod common;

use bytes::Bytes;
use common::*;
use ocistore_test_registry::{require_interop, Auth, Registry as RealRegistry};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use store_core::content::{descriptor_from_bytes, fetch_all, push_bytes, walk};
use store_core::copy::{copy, CopyOptions};
use store_core::spec::{Descriptor, MediaType};
use store_core::{Fetcher, Resolver, Tagger};

/// Whether skopeo is there; without it the test is skipped, or fails under
/// OCISTORE_REQUIRE_INTEROP=1.
fn have_skopeo() -> bool {
    let found = Command::new("skopeo").arg("--version").output().is_ok();
    if !found {
        assert!(
            !require_interop(),
            "skopeo is missing (apt-get install skopeo)"
        );
        eprintln!("skipped: skopeo missing; install with apt-get install skopeo");
    }
    found
}

fn skopeo(args: &[&str]) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--preserve-digests"])
        .args(args)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Pushes a two-platform index (linux/amd64 and linux/arm64) to `target`; returns it.
async fn push_two_platform_index(target: &(impl store_core::Pusher + ?Sized)) -> Descriptor {
    let mut entries = Vec::new();
    for arch in ["amd64", "arm64"] {
        let config = Bytes::from(
            json!({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
                .to_string(),
        );
        let config_desc = descriptor_from_bytes(MediaType::ImageConfig, &config);
        push_bytes(target, &config_desc, config).await.unwrap();
        let layer = Bytes::from(format!("layer for {arch}").into_bytes());
        let layer_desc = descriptor_from_bytes(MediaType::ImageLayer, &layer);
        push_bytes(target, &layer_desc, layer.clone())
            .await
            .unwrap();
        let manifest = Bytes::from(
            json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_desc.digest().to_string(), "size": config_desc.size()},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_desc.digest().to_string(), "size": layer_desc.size()}],
            })
            .to_string(),
        );
        let manifest_desc = descriptor_from_bytes(MediaType::ImageManifest, &manifest);
        push_bytes(target, &manifest_desc, manifest).await.unwrap();
        entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_desc.digest().to_string(),
            "size": manifest_desc.size(),
            "platform": {"architecture": arch, "os": "linux"},
        }));
    }
    let index = Bytes::from(
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries})
            .to_string(),
    );
    let index_desc = descriptor_from_bytes(MediaType::ImageIndex, &index);
    push_bytes(target, &index_desc, index).await.unwrap();
    index_desc
}

/// Every node under `root` as (digest, bytes), sorted.
async fn graph_bytes(store: &(impl Fetcher + ?Sized), root: &Descriptor) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for node in walk(store, root).await.unwrap() {
        out.push((
            node.digest().to_string(),
            fetch_all(store, &node).await.unwrap().to_vec(),
        ));
    }
    out.sort();
    out
}

fn layout_arg(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_what_we_pushed() {
    if !have_skopeo() {
        return;
    }
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "interop/ours");
    let image = push_small_image(&repo, "ours").await;
    repo.tag(&image, "single").await.unwrap();
    let index = push_two_platform_index(&repo).await;
    repo.tag(&index, "multi").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let src = |tag: &str| format!("docker://{}/interop/ours:{tag}", registry.host());
    skopeo(&[
        "--src-tls-verify=false",
        &src("single"),
        &layout_arg(dir.path(), "single"),
    ]);
    skopeo(&[
        "--all",
        "--src-tls-verify=false",
        &src("multi"),
        &layout_arg(dir.path(), "multi"),
    ]);

    let layout = store_fs::ReadOnlyStore::open(dir.path()).await.unwrap();
    assert_eq!(
        layout.resolve("single").await.unwrap().digest(),
        image.digest()
    );
    assert_eq!(
        layout.resolve("multi").await.unwrap().digest(),
        index.digest()
    );
    assert_eq!(
        graph_bytes(&repo, &index).await,
        graph_bytes(&layout, &index).await
    );
    assert_eq!(
        graph_bytes(&repo, &image).await,
        graph_bytes(&layout, &image).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_read_what_skopeo_pushed() {
    if !have_skopeo() {
        return;
    }
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let src_dir = tempfile::tempdir().unwrap();
    let source = store_fs::Store::open(src_dir.path()).await.unwrap();
    let index = push_two_platform_index(&source).await;
    source.tag(&index, "multi").await.unwrap();
    drop(source);
    let dst = format!("docker://{}/interop/theirs:multi", registry.host());
    skopeo(&[
        "--all",
        "--dest-tls-verify=false",
        &layout_arg(src_dir.path(), "multi"),
        &dst,
    ]);

    let client = client_for(&registry);
    let repo = repo(&client, &registry, "interop/theirs");
    let resolved = repo.resolve("multi").await.unwrap();
    assert_eq!(resolved.digest(), index.digest());
    let out_dir = tempfile::tempdir().unwrap();
    let out = store_fs::Store::open(out_dir.path()).await.unwrap();
    let root = copy(&repo, "multi", &out, "", &CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(root.digest(), index.digest());
    let original = store_fs::ReadOnlyStore::open(src_dir.path()).await.unwrap();
    assert_eq!(
        graph_bytes(&original, &index).await,
        graph_bytes(&out, &index).await
    );
}
