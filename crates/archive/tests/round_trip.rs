//! Export then import then export: byte-identical archives, fixed tar metadata, exactly the
//! reachable blobs, a two-platform index and a referrer surviving; compressed input and a pipe
//! from another process; blobs already present skipped; names as containerd gives them.

mod common;

use common::*;
use std::io::Read;
use store_archive::{export, import, ExportOptions, ImportOptions};
use store_core::content::{self, Bytes};
use store_core::descriptor::REF_NAME;
use store_core::memory::MemoryStore;
use store_core::testkit::instrumented::{Instrumented, Method};
use store_core::{ReadOnlyStorage, Resolver, TagLister};
use tokio::io::AsyncWriteExt;

async fn archive_of(
    src: &(impl store_core::ReadOnlyGraphTarget + ?Sized),
    referrers: bool,
) -> Vec<u8> {
    let mut out = Vec::new();
    export(
        src,
        TAGS,
        &mut out,
        &ExportOptions::default().referrers(referrers),
    )
    .await
    .unwrap();
    out
}

#[tokio::test]
async fn export_import_export_is_byte_identical_and_keeps_index_and_referrer() {
    let (src, image) = sample(300_000).await;
    let first = archive_of(&src, true).await;
    assert_eq!(
        first,
        archive_of(&src, true).await,
        "export is not deterministic"
    );

    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path()).await;
    let imported = import(
        std::io::Cursor::new(first.clone()),
        &store,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let names: Vec<Option<&str>> = imported.iter().map(|i| i.name.as_deref()).collect();
    assert_eq!(names, vec![Some(TAGS[0]), Some(TAGS[1]), None]);
    assert_eq!(store.tags(None).await.unwrap(), vec!["app:v1", "multi"]);
    let referrers = content::referrers(&store, &image, None).await.unwrap();
    assert_eq!(referrers.len(), 1, "the referrer did not survive");
    let multi = store.resolve("multi").await.unwrap();
    assert_eq!(content::walk(&store, &multi).await.unwrap().len(), 7);
    assert!(store.fsck().await.unwrap().is_clean());

    let second = archive_of(&store, true).await;
    assert_eq!(first, second, "the round trip changed the archive");

    // Same through a memory store.
    let memory = MemoryStore::new();
    import(
        std::io::Cursor::new(first.clone()),
        &memory,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(first, archive_of(&memory, true).await);
}

#[tokio::test]
async fn the_archive_has_fixed_metadata_and_exactly_the_reachable_blobs() {
    let (src, _) = sample(1000).await;
    // Something unreachable from the chosen tags stays out.
    content::push_bytes(
        &src,
        &content::descriptor_from_bytes(oci_spec::image::MediaType::ImageLayer, b"stray"),
        Bytes::from_static(b"stray"),
    )
    .await
    .unwrap();
    let bytes = archive_of(&src, false).await;
    let mut reachable = std::collections::BTreeSet::new();
    for tag in TAGS {
        let root = src.resolve(tag).await.unwrap();
        for node in content::walk(&src, &root).await.unwrap() {
            reachable.insert(node.digest().to_string().replace(':', "/"));
        }
    }
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        assert_eq!(header.mtime().unwrap(), 0);
        assert_eq!(header.uid().unwrap(), 0);
        assert_eq!(header.gid().unwrap(), 0);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        if header.entry_type().is_dir() {
            assert_eq!(header.mode().unwrap(), 0o755);
        } else {
            assert_eq!(header.mode().unwrap(), 0o644);
        }
        if name == "index.json" {
            let mut body = String::new();
            entry.read_to_string(&mut body).unwrap();
            assert!(
                body.contains(&format!(r#""{REF_NAME}":"app:v1""#)),
                "{body}"
            );
            // Annotation keys are sorted, so the bytes never depend on a hash map's order.
            let value: serde_json::Value = serde_json::from_str(&body).unwrap();
            let annotations = value["manifests"][0]["annotations"].as_object().unwrap();
            let keys: Vec<&String> = annotations.keys().collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted);
        }
        names.push(name);
    }
    let blobs: Vec<String> = names
        .iter()
        .filter_map(|n| n.strip_prefix("blobs/"))
        .filter(|n| n.contains('/') && !n.ends_with('/'))
        .map(str::to_string)
        .collect();
    let mut sorted = blobs.clone();
    sorted.sort();
    assert_eq!(blobs, sorted, "blobs are not in digest order");
    assert_eq!(
        blobs.into_iter().collect::<std::collections::BTreeSet<_>>(),
        reachable
    );
    assert_eq!(&names[..3], &["oci-layout", "index.json", "blobs/"]);
}

#[tokio::test]
async fn compressed_archives_and_a_pipe_from_a_process_import() {
    let (src, _) = sample(5 << 20).await;
    let plain = archive_of(&src, true).await;
    let mut gzip = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    gzip.write_all(&plain).await.unwrap();
    gzip.shutdown().await.unwrap();
    let mut zstd = async_compression::tokio::write::ZstdEncoder::new(Vec::new());
    zstd.write_all(&plain).await.unwrap();
    zstd.shutdown().await.unwrap();
    for (label, bytes) in [("gzip", gzip.into_inner()), ("zstd", zstd.into_inner())] {
        let dst = MemoryStore::new();
        import(std::io::Cursor::new(bytes), &dst, &ImportOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{label}: {e}"));
        assert_eq!(archive_of(&dst, true).await, plain, "{label}");
    }

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("archive.tar");
    std::fs::write(&file, &plain).unwrap();
    let mut child = tokio::process::Command::new("cat")
        .arg(&file)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let dst = MemoryStore::new();
    import(stdout, &dst, &ImportOptions::default())
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    assert_eq!(archive_of(&dst, true).await, plain);
}

#[tokio::test]
async fn blobs_already_present_are_not_pushed_again() {
    let (src, _) = sample(5 << 20).await;
    let plain = archive_of(&src, true).await;
    let dst = Instrumented::new(MemoryStore::new());
    import(
        std::io::Cursor::new(plain.clone()),
        &dst,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    let first = dst.counts().push;
    assert!(first > 0);
    dst.reset();
    import(std::io::Cursor::new(plain), &dst, &ImportOptions::default())
        .await
        .unwrap();
    assert_eq!(dst.counts().push, 0, "{:?}", dst.calls(Method::Push));
    assert_eq!(dst.counts().tag, 2);
}

#[tokio::test]
async fn names_follow_containerd_then_the_caller() {
    let payload = b"layer";
    let (layer_name, layer_digest) = blob_name(payload);
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let (config_name, config_digest) = blob_name(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        payload.len()
    );
    let (manifest_name, manifest_digest) = blob_name(manifest.as_bytes());
    let entry = |annotations: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{{annotations}}}}}"#,
            manifest.len()
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
        entry(
            r#""org.opencontainers.image.ref.name":"1.0","io.containerd.image.name":"docker.io/library/app:1.0""#
        ),
        entry(r#""org.opencontainers.image.ref.name":"plain""#)
    );
    let archive = RawTar::default()
        // index.json first, blobs after: accepted anywhere.
        .entry("./index.json", b'0', index.as_bytes())
        .entry(&manifest_name, b'0', manifest.as_bytes())
        .entry("./blobs/", b'5', b"")
        .entry(&config_name, b'0', config)
        .entry(&layer_name, b'0', payload)
        .entry("oci-layout", b'0', br#"{"imageLayoutVersion":"1.0.0"}"#)
        // Beside the layout: skipped unread.
        .entry("manifest.json", b'0', b"[]")
        .entry("./ingest/", b'5', b"")
        .entry("ingest/push-123", b'0', b"half a blob")
        .end();
    let dst = MemoryStore::new();
    let imported = import(
        std::io::Cursor::new(archive.clone()),
        &dst,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        imported[0].name.as_deref(),
        Some("docker.io/library/app:1.0")
    );
    assert_eq!(imported[1].name.as_deref(), Some("plain"));
    assert!(dst
        .exists(&dst.resolve("plain").await.unwrap())
        .await
        .unwrap());

    let mapped = MemoryStore::new();
    let options =
        ImportOptions::default().name_mapping(|_, default| default.map(|n| format!("mirror/{n}")));
    let imported = import(std::io::Cursor::new(archive), &mapped, &options)
        .await
        .unwrap();
    assert_eq!(imported[1].name.as_deref(), Some("mirror/plain"));
    assert_eq!(
        mapped.tags(None).await.unwrap(),
        vec!["mirror/docker.io/library/app:1.0", "mirror/plain"]
    );
}

#[tokio::test]
async fn sha512_blobs_go_through_pax_names() {
    use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
    use store_core::digest::{digest_of, Algorithm};
    use store_core::{Pusher, Tagger};
    let src = MemoryStore::new();
    let layer_bytes = b"a sha512 layer".to_vec();
    let layer = Descriptor::new(
        MediaType::ImageLayer,
        layer_bytes.len() as u64,
        digest_of(Algorithm::Sha512, &layer_bytes),
    );
    src.push(&layer, content::reader_from_bytes(layer_bytes))
        .await
        .unwrap();
    let (config, config_bytes) = content::empty_json();
    content::push_bytes(&src, &config, config_bytes)
        .await
        .unwrap();
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer.clone()])
        .build()
        .unwrap();
    let body = serde_json::to_vec(&manifest).unwrap();
    let desc = content::descriptor_from_bytes(MediaType::ImageManifest, &body);
    src.push(&desc, content::reader_from_bytes(body))
        .await
        .unwrap();
    src.tag(&desc, "sha512").await.unwrap();

    let mut archive = Vec::new();
    export(&src, ["sha512"], &mut archive, &ExportOptions::default())
        .await
        .unwrap();
    let hex = layer.digest().to_string()["sha512:".len()..].to_string();
    let names: Vec<String> = tar::Archive::new(&archive[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(names.contains(&format!("blobs/sha512/{hex}")), "{names:?}");

    let dst = MemoryStore::new();
    import(
        std::io::Cursor::new(archive.clone()),
        &dst,
        &ImportOptions::default(),
    )
    .await
    .unwrap();
    assert!(dst.exists(&layer).await.unwrap());
    let mut again = Vec::new();
    export(&dst, ["sha512"], &mut again, &ExportOptions::default())
        .await
        .unwrap();
    assert_eq!(again, archive);
}

#[tokio::test]
async fn gnu_tar_and_pax_archives_of_an_extracted_layout_import() {
    let (src, _) = sample(1000).await;
    let ours = archive_of(&src, true).await;
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    tar::Archive::new(&ours[..]).unpack(&layout).unwrap();
    for format in ["gnu", "posix", "ustar"] {
        let file = dir.path().join(format!("{format}.tar.gz"));
        let status = std::process::Command::new("tar")
            .arg(format!("--format={format}"))
            .arg("-C")
            .arg(&layout)
            .arg("-czf")
            .arg(&file)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success(), "tar --format={format}");
        let dst = MemoryStore::new();
        let bytes = std::fs::read(&file).unwrap();
        import(std::io::Cursor::new(bytes), &dst, &ImportOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        assert_eq!(archive_of(&dst, true).await, ours, "{format}");
    }
}
