//! A copy between two layout stores on one file system shares blob files instead of streaming
//! their bytes: a reflink where the file system has them, a hard link only when the caller opts
//! in, streaming otherwise, each said in the copy's report; the source's bytes are verified
//! unless the caller trusts them.
//!
//! The tests run in the temp directory, whatever its file system: where it has no reflinks
//! they check the fallbacks. Set `OCISTORE_REFLINK_DIR` to a directory on a file system with
//! reflinks (XFS made with `-m reflink=1`, Btrfs) to check the reflinks themselves there.

mod common;

use common::{listing, Image};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use store_core::content::fetch_all;
use store_core::copy::{copy, CopyCounts, CopyOptions, CopyReport, FileSharing};
use store_core::{ErrorKind, Side, Tagger};
use store_fs::Store;

/// A layer over the 256 KiB under which blobs are written rather than shared.
fn big_layer() -> Vec<u8> {
    (0..(1u32 << 20) + 17)
        .map(|i| (i * 31 % 251) as u8)
        .collect()
}

/// The directories the tests run in: the temp directory, and `OCISTORE_REFLINK_DIR` if set.
fn places() -> Vec<(tempfile::TempDir, bool)> {
    let mut out = vec![(tempfile::tempdir().unwrap(), false)];
    if let Some(dir) = std::env::var_os("OCISTORE_REFLINK_DIR") {
        out.push((tempfile::tempdir_in(PathBuf::from(dir)).unwrap(), true));
    }
    out
}

/// A source layout holding `image`, tagged `v1`.
async fn source(dir: &Path, image: &Image) -> Store {
    let store = Store::open(dir.join("src")).await.unwrap();
    image.push(&store).await;
    store.tag(&image.manifest.0, "v1").await.unwrap();
    store
}

fn blob_path(root: &Path, image: &Image) -> PathBuf {
    let digest = image.layer.0.digest().to_string();
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join("blobs").join(alg).join(hex)
}

async fn copy_with(src: &Store, dst: &Store, sharing: FileSharing, trusted: bool) -> CopyCounts {
    let report = CopyReport::new();
    let mut opts = CopyOptions::default();
    opts.graph = opts
        .graph
        .with_file_sharing(sharing)
        .trusting_source_files(trusted)
        .with_report(Arc::clone(&report));
    copy(src, "v1", dst, "v1", &opts).await.unwrap();
    report.counts()
}

#[tokio::test]
async fn the_default_reflinks_where_it_can_and_otherwise_streams_saying_why() {
    for (dir, reflinks) in places() {
        let image = Image::new(1, &big_layer());
        let src = source(dir.path(), &image).await;
        let dst = Store::open(dir.path().join("dst")).await.unwrap();
        let counts = copy_with(&src, &dst, FileSharing::default(), false).await;

        // The config and the manifest are always written; the layer shared or streamed.
        assert_eq!(counts.linked, 0, "a hard link only when asked for");
        if reflinks {
            assert_eq!(counts.cloned, 1, "{counts:?}");
            assert_eq!(counts.bytes_shared, image.layer.0.size());
        } else {
            assert_eq!(counts.cloned + counts.streamed, 3, "{counts:?}");
        }
        if counts.cloned == 0 {
            let why = counts.why_streamed.clone().unwrap_or_default();
            assert!(why.contains("reflink"), "{counts:?}");
        }
        let (from, to) = (blob_path(src.root(), &image), blob_path(dst.root(), &image));
        assert_ne!(
            std::fs::metadata(&from).unwrap().ino(),
            std::fs::metadata(&to).unwrap().ino(),
            "a reflink or a copy is a file of its own"
        );
        let fetched = fetch_all(&dst, &image.layer.0).await.unwrap();
        assert_eq!(fetched, image.layer.1);
        assert!(dst.fsck().await.unwrap().is_clean());
        assert!(listing(&dst.root().join("ingest")).is_empty());
    }
}

#[tokio::test]
async fn a_hard_link_is_made_only_when_allowed_and_streaming_when_asked() {
    for (dir, reflinks) in places() {
        let image = Image::new(2, &big_layer());
        let src = source(dir.path(), &image).await;

        let linked = Store::open(dir.path().join("linked")).await.unwrap();
        let counts = copy_with(&src, &linked, FileSharing::ReflinkOrHardLink, false).await;
        assert_eq!(counts.cloned + counts.linked, 1, "{counts:?}");
        assert_eq!(counts.streamed, 2, "config and manifest: {counts:?}");
        let same_inode = std::fs::metadata(blob_path(src.root(), &image))
            .unwrap()
            .ino()
            == std::fs::metadata(blob_path(linked.root(), &image))
                .unwrap()
                .ino();
        assert_eq!(same_inode, counts.linked == 1);
        if reflinks {
            assert_eq!(counts.cloned, 1, "a reflink first where there are reflinks");
        }
        assert_eq!(
            fetch_all(&linked, &image.layer.0).await.unwrap(),
            image.layer.1
        );
        assert!(linked.fsck().await.unwrap().is_clean());

        let streamed = Store::open(dir.path().join("streamed")).await.unwrap();
        let counts = copy_with(&src, &streamed, FileSharing::Stream, false).await;
        assert_eq!((counts.cloned, counts.linked, counts.streamed), (0, 0, 3));
        assert_eq!(counts.why_streamed, None, "nothing was offered for sharing");
        assert_eq!(
            fetch_all(&streamed, &image.layer.0).await.unwrap(),
            image.layer.1
        );
    }
}

#[tokio::test]
async fn a_corrupt_source_file_is_refused_unless_trusted_and_leaves_nothing() {
    for (dir, _) in places() {
        let image = Image::new(3, &big_layer());
        let src = source(dir.path(), &image).await;
        // Same size, other bytes: only hashing tells.
        let path = blob_path(src.root(), &image);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[1000] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();

        for sharing in [FileSharing::Reflink, FileSharing::ReflinkOrHardLink] {
            let dst = Store::open(dir.path().join(format!("dst-{sharing:?}")))
                .await
                .unwrap();
            let mut opts = CopyOptions::default();
            opts.graph = opts.graph.with_file_sharing(sharing);
            let err = copy(&src, "v1", &dst, "v1", &opts).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
            assert_eq!(err.side(), Some(Side::Source), "{err}");
            assert!(err.to_string().contains(image.layer.0.digest().as_ref()));
            assert!(!blob_path(dst.root(), &image).exists(), "nothing visible");
            assert!(listing(&dst.root().join("ingest")).is_empty());
            assert!(dst.resolve("v1").await.is_err(), "no tag");
        }

        // Trusted, the file is shared without being read: the caller's risk, which fsck of
        // the destination then shows.
        let trusting = Store::open(dir.path().join("trusting")).await.unwrap();
        let counts = copy_with(&src, &trusting, FileSharing::ReflinkOrHardLink, true).await;
        assert_eq!(counts.cloned + counts.linked, 1, "{counts:?}");
        assert!(!trusting.fsck().await.unwrap().is_clean());
    }
}
