//! Opening a layout reads every manifest to index the graph; that is no use of the content, so it
//! leaves the files' access times alone (a cache pruner going by them would otherwise see every
//! manifest as used at each open). A caller's fetch is a use, recorded as the system records it.

mod common;

use common::Image;
use std::fs::{File, FileTimes};
use std::path::Path;
use std::time::{Duration, SystemTime};
use store_core::content::reader_from_bytes;
use store_core::{Fetcher, PredecessorFinder, Pusher, Tagger};
use store_fs::Store;
use tokio::io::AsyncReadExt;

/// The access time of `path`.
fn accessed(path: &Path) -> SystemTime {
    std::fs::metadata(path).unwrap().accessed().unwrap()
}

/// Sets the access time of `path` to two days ago: old enough that `relatime` records the next
/// read.
fn age(path: &Path) -> SystemTime {
    let old = SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    let file = File::options().write(true).open(path).unwrap();
    file.set_times(FileTimes::new().set_accessed(old)).unwrap();
    accessed(path)
}

#[tokio::test]
async fn opening_leaves_access_times_alone_and_a_fetch_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // Whether this file system records access times at all (`noatime` mounts do not): a plain
    // read of an aged file tells.
    let probe = dir.path().join("probe");
    std::fs::write(&probe, b"probe").unwrap();
    let aged = age(&probe);
    std::fs::read(&probe).unwrap();
    let records_atime = accessed(&probe) != aged;

    let image = Image::new(1, b"layer one");
    let store = Store::open(dir.path()).await.unwrap();
    for (desc, bytes) in [&image.config, &image.layer, &image.manifest] {
        store
            .push(desc, reader_from_bytes(bytes.clone()))
            .await
            .unwrap();
    }
    store.tag(&image.manifest.0, "v1").await.unwrap();
    store.close().await.unwrap();

    let manifest = &image.manifest.0;
    let path = dir
        .path()
        .join("blobs/sha256")
        .join(manifest.digest().digest());
    let before = age(&path);
    let store = Store::open(dir.path()).await.unwrap();
    assert!(
        !store
            .predecessors(&image.config.0)
            .await
            .unwrap()
            .is_empty(),
        "the open read the manifest to index it"
    );
    assert_eq!(accessed(&path), before, "indexing at open left the atime");

    let mut body = Vec::new();
    store
        .fetch(manifest)
        .await
        .unwrap()
        .read_to_end(&mut body)
        .await
        .unwrap();
    assert_eq!(body, image.manifest.1.to_vec());
    if records_atime {
        assert_ne!(accessed(&path), before, "a caller's fetch is recorded");
    } else {
        eprintln!("this file system records no access times: only the open was checked");
    }
    store.close().await.unwrap();
}
