//! Every bad archive fails with a typed error naming the entry, creates no tag, and leaves a
//! layout store with nothing but whole, unreferenced blobs that gc removes.

mod common;

use common::*;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use store_archive::{export, import, ExportOptions, ImportOptions};
use store_core::{Error, ErrorKind, TagLister};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

const LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Imports `archive` into a fresh layout store and checks the aftermath: no tag, a clean
/// fsck whose only findings are orphans, and nothing left after gc.
async fn refused(archive: Vec<u8>, options: &ImportOptions) -> Error {
    let dir = tempfile::tempdir().unwrap();
    let store = layout(dir.path()).await;
    let err = import(std::io::Cursor::new(archive), &store, options)
        .await
        .unwrap_err();
    assert!(
        store.tags(None).await.unwrap().is_empty(),
        "{err}: a tag was created"
    );
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{err}: {report:?}");
    assert!(store.entries().is_empty(), "{err}: index.json has entries");
    store.gc().await.unwrap();
    let after = store.fsck().await.unwrap();
    assert!(
        after.orphaned.is_empty(),
        "{err}: gc left {:?}",
        after.orphaned
    );
    err
}

fn assert_names(err: &Error, kind: ErrorKind, mention: &str) {
    assert_eq!(err.kind(), kind, "{err}");
    assert!(
        err.to_string().contains(mention),
        "{err} does not name {mention}"
    );
}

/// A valid archive of `sample`, its big layer `big` bytes.
async fn good(big: usize) -> Vec<u8> {
    let (src, _) = sample(big).await;
    let mut out = Vec::new();
    export(
        &src,
        TAGS,
        &mut out,
        &ExportOptions::default().referrers(true),
    )
    .await
    .unwrap();
    out
}

#[tokio::test]
async fn a_truncated_archive_is_refused_naming_the_entry() {
    let whole = good(6 << 20).await;
    // Cut inside the big layer (streamed), inside a header, and before the end marker.
    let big_entry = {
        let mut archive = tar::Archive::new(&whole[..]);
        let mut found = None;
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            if entry.size() > 1 << 20 {
                found = Some((
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    entry.raw_file_position(),
                ));
            }
        }
        found.unwrap()
    };
    let cut = (big_entry.1 + (3 << 20)) as usize;
    let err = refused(whole[..cut].to_vec(), &ImportOptions::default()).await;
    assert_names(&err, ErrorKind::InvalidLayout, &big_entry.0);
    assert!(err.to_string().contains("truncated"), "{err}");

    for cut in [whole.len() - 1024, whole.len() - 1024 - 512 - 100, 1000] {
        let err = refused(whole[..cut].to_vec(), &ImportOptions::default()).await;
        assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}

#[tokio::test]
async fn escaping_names_links_and_devices_are_refused() {
    let (name, _) = blob_name(b"x");
    let cases: Vec<(&str, u8, String)> = vec![
        ("../evil", b'0', "../evil".into()),
        ("./blobs/../../evil", b'0', "./blobs/../../evil".into()),
        ("/etc/evil", b'0', "/etc/evil".into()),
        (name.as_str(), b'2', "symbolic link".into()),
        (name.as_str(), b'1', "hard link".into()),
        (name.as_str(), b'3', "device".into()),
        (name.as_str(), b'4', "device".into()),
        ("blobs/sha256/xyz", b'0', "blobs/sha256/xyz".into()),
        ("blobs/md5/abc", b'0', "blobs/md5/abc".into()),
        ("./blobs/sha256/", b'0', "blobs/sha256/".into()),
        ("blobs/tmp/", b'5', "blobs/tmp/".into()),
    ];
    for (entry, flag, mention) in cases {
        let data: &[u8] = if flag == b'0' { b"x" } else { b"" };
        let archive = RawTar::default()
            .entry("oci-layout", b'0', LAYOUT)
            .entry(entry, flag, data)
            .entry("index.json", b'0', br#"{"schemaVersion":2,"manifests":[]}"#)
            .end();
        let err = refused(archive, &ImportOptions::default()).await;
        assert_names(&err, ErrorKind::InvalidLayout, &mention);
        assert!(
            err.to_string().contains(entry),
            "{err} does not name {entry}"
        );
    }
}

#[tokio::test]
async fn two_index_files_are_refused() {
    let index = br#"{"schemaVersion":2,"manifests":[]}"#;
    let archive = RawTar::default()
        .entry("index.json", b'0', index)
        .entry("./index.json", b'0', index)
        .end();
    let err = refused(archive, &ImportOptions::default()).await;
    assert_names(&err, ErrorKind::InvalidLayout, "a second index.json");
}

#[tokio::test]
async fn a_blob_that_does_not_match_its_name_is_refused() {
    for size in [10usize, 5 << 20] {
        let real = vec![7u8; size];
        let (name, digest) = blob_name(&real);
        let mut forged = real.clone();
        forged[size / 2] ^= 1;
        let (ok_name, _) = blob_name(b"fine");
        let archive = RawTar::default()
            .entry(&ok_name, b'0', b"fine")
            .entry(&name, b'0', &forged)
            .entry("index.json", b'0', br#"{"schemaVersion":2,"manifests":[]}"#)
            .end();
        let err = refused(archive, &ImportOptions::default()).await;
        assert_names(&err, ErrorKind::Mismatch, &digest);
        assert!(err.to_string().contains(&name), "{err}");
    }
}

#[tokio::test]
async fn an_index_naming_a_missing_blob_is_refused_before_any_tag() {
    let whole = good(1000).await;
    // Rebuild the archive without one layer of the two-platform index.
    let mut archive = tar::Archive::new(&whole[..]);
    let mut raw = RawTar::default();
    let mut dropped = None;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if dropped.is_none() && data == b"arm64 layer" {
            dropped = Some(name);
            continue;
        }
        let flag = if entry.header().entry_type().is_dir() {
            b'5'
        } else {
            b'0'
        };
        raw.entry(&name, flag, &data);
    }
    let dropped = dropped.unwrap();
    let err = refused(raw.end(), &ImportOptions::default()).await;
    assert_names(&err, ErrorKind::InvalidLayout, "index.json");
    let hex = dropped.rsplit('/').next().unwrap();
    assert!(err.to_string().contains(hex), "{err} does not name {hex}");
}

/// Counts the compressed bytes an import reads.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        result
    }
}

async fn gzip(parts: &[&[u8]], zeros: usize) -> Vec<u8> {
    let mut encoder = async_compression::tokio::write::GzipEncoder::new(Vec::new());
    for part in parts {
        encoder.write_all(part).await.unwrap();
    }
    let chunk = vec![0u8; 1 << 20];
    for _ in 0..zeros / chunk.len() {
        encoder.write_all(&chunk).await.unwrap();
    }
    encoder.shutdown().await.unwrap();
    encoder.into_inner()
}

#[tokio::test]
async fn a_gzip_bomb_is_bounded_by_the_declared_sizes() {
    // An entry declaring 1 TiB of zeros: refused from its header, before anything is read.
    let (name, _) = blob_name(b"whatever");
    let mut header = RawTar::default();
    header.entry_declaring(&name, b'0', b"", 1 << 40);
    let bomb = gzip(&[&header.bytes], 16 << 20).await;
    let options = ImportOptions::default().max_total_size(1 << 30);
    let err = refused(bomb.clone(), &options).await;
    assert_names(&err, ErrorKind::SizeExceedsLimit, &name);
    let options = ImportOptions::default().max_blob_size(1 << 30);
    let err = refused(bomb, &options).await;
    assert_names(&err, ErrorKind::SizeExceedsLimit, &name);

    // Zeros after the end-of-archive marker are never decompressed: 1 GiB of them, as 1,024
    // concatenated gzip members of 1 MiB each (gzip allows members one after another).
    let archive = good(1000).await;
    let mut bomb = gzip(&[&archive], 0).await;
    let zeros = gzip(&[], 1 << 20).await;
    for _ in 0..1024 {
        bomb.extend_from_slice(&zeros);
    }
    let read = Arc::new(AtomicU64::new(0));
    let reader = Counting {
        inner: std::io::Cursor::new(bomb.clone()),
        read: Arc::clone(&read),
    };
    let dst = store_core::memory::MemoryStore::new();
    import(reader, &dst, &ImportOptions::default())
        .await
        .unwrap();
    let consumed = read.load(Ordering::Relaxed);
    assert!(
        consumed < bomb.len() as u64 / 2,
        "read {consumed} of {} compressed bytes",
        bomb.len()
    );
}

#[tokio::test]
async fn a_bad_oci_layout_or_index_is_refused() {
    let err = refused(
        RawTar::default()
            .entry("oci-layout", b'0', br#"{"imageLayoutVersion":"2.0.0"}"#)
            .end(),
        &ImportOptions::default(),
    )
    .await;
    assert_names(&err, ErrorKind::UnsupportedVersion, "oci-layout");
    let err = refused(
        RawTar::default().entry("oci-layout", b'0', LAYOUT).end(),
        &ImportOptions::default(),
    )
    .await;
    assert_names(&err, ErrorKind::InvalidLayout, "index.json");
    let err = refused(
        RawTar::default()
            .entry("index.json", b'0', b"{\"manifests\": 7}")
            .end(),
        &ImportOptions::default(),
    )
    .await;
    assert_names(&err, ErrorKind::InvalidLayout, "index.json");
    let err = refused(
        b"definitely not a tar archive".repeat(40),
        &ImportOptions::default(),
    )
    .await;
    assert_eq!(err.kind(), ErrorKind::InvalidLayout, "{err}");
}

/// Found by the `archive_import` fuzz target (fuzz/artifacts/archive_import/): a digest that
/// `index.json` lists twice, the second time with a size its archive entry contradicts, was
/// walked once, so the first entry got its tag before the second failed to.
#[tokio::test]
async fn an_index_listing_a_digest_twice_with_another_size_is_refused_before_any_tag() {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let (config_name, config_digest) = blob_name(config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let (manifest_name, manifest_digest) = blob_name(manifest.as_bytes());
    let entry = |size: usize, tag: &str| {
        format!(
            r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{size},"annotations":{{"org.opencontainers.image.ref.name":"{tag}"}}}}"#
        )
    };
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{},{}]}}"#,
        entry(manifest.len(), "first"),
        entry(manifest.len() + 16, "second")
    );
    let archive = RawTar::default()
        .entry("oci-layout", b'0', LAYOUT)
        .entry(&config_name, b'0', config)
        .entry(&manifest_name, b'0', manifest.as_bytes())
        .entry("index.json", b'0', index.as_bytes())
        .end();
    let err = refused(archive, &ImportOptions::default()).await;
    assert_names(&err, ErrorKind::Mismatch, "index.json entry 1");
}
