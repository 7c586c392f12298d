//! Faults during a push: a disk that fills up, a push
//! future dropped midway, content that does not match, concurrent pushers of one digest, absurd
//! sizes and manifests that do not parse. Every failure is a typed error and leaves nothing under
//! `blobs/` or in `ingest/`; the store keeps working afterwards.

mod common;

use bytes::Bytes;
use common::{desc, listing, Image, CONFIG, INDEX, LAYER, MANIFEST};
use oci_spec::image::{Descriptor, MediaType};
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use store_core::content::{fetch_all, push_bytes, BoxReader};
use store_core::{
    Deleter, ErrorKind, Fetcher, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger,
};
use store_fs::{Store, StoreOptions};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{oneshot, Barrier};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// `len` bytes that differ with `seed` (cheap, not constant, so that no two blobs share a digest).
fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn blob_path(root: &Path, d: &Descriptor) -> PathBuf {
    let digest = d.digest().to_string();
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join("blobs").join(alg).join(hex)
}

/// Files in `ingest/` (none when it does not exist).
fn ingest_files(root: &Path) -> Vec<String> {
    listing(&root.join("ingest")).into_iter().collect()
}

/// Asserts that nothing of `d` was stored and nothing was left in `ingest/`.
async fn assert_nothing_left(store: &Store, d: &Descriptor, what: &str) {
    let root = store.root();
    assert!(
        !blob_path(root, d).exists(),
        "{what}: a blob file was left at {}",
        blob_path(root, d).display()
    );
    assert_eq!(ingest_files(root), Vec::<String>::new(), "{what}: ingest/");
    assert!(!store.exists(d).await.unwrap(), "{what}: exists");
}

async fn open(dir: &Path) -> Store {
    Store::open(dir).await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// a. A disk that fills up mid-push (a child process with RLIMIT_FSIZE).

const FSIZE_ENV: &str = "OCISTORE_FSIZE_CHILD";
const FSIZE_DONE: &str = "FSIZE-CHILD-DONE";

/// Sets the soft `RLIMIT_FSIZE` of this whole process: writes past `bytes` in any regular file
/// fail with EFBIG (SIGXFSZ is ignored), as on a full disk.
fn limit_file_size(bytes: libc::rlim_t) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a valid struct; only the child process calls this.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut limit), 0);
        limit.rlim_cur = bytes.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
}

/// The OS error code at the bottom of `err`, if any.
fn os_error(err: &store_core::Error) -> Option<i32> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(code) = io.raw_os_error() {
                return Some(code);
            }
        }
        source = e.source();
    }
    None
}

async fn disk_full_scenario(dir: PathBuf) {
    let store = open(&dir).await;
    let root = store.root().to_path_buf();
    let before = pattern(1000, 1);
    let before_desc = desc(LAYER, &before);
    push_bytes(&store, &before_desc, before.clone())
        .await
        .unwrap();

    // SAFETY: ignoring a signal; only the child process does this.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    limit_file_size(1 << 20);

    // Streaming path: 4 MiB into a "disk" that holds 1 MiB per file.
    let big = pattern(4 << 20, 2);
    let big_desc = desc(LAYER, &big);
    let err = push_bytes(&store, &big_desc, big.clone())
        .await
        .expect_err("a 4 MiB push past the file-size limit");
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().contains(&root.display().to_string()),
        "the error names the path: {err}"
    );
    assert_eq!(os_error(&err), Some(libc::EFBIG), "{err}");
    assert_nothing_left(&store, &big_desc, "streaming push on a full disk").await;

    // In-memory path (<= 256 KiB) and a manifest: 64 KiB per file.
    limit_file_size(64 << 10);
    let mid = pattern(200 << 10, 3);
    let mid_desc = desc(LAYER, &mid);
    let err = push_bytes(&store, &mid_desc, mid.clone())
        .await
        .expect_err("a 200 KiB push past the file-size limit");
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert!(
        err.to_string().contains(&root.display().to_string()),
        "the error names the path: {err}"
    );
    assert_nothing_left(&store, &mid_desc, "small push on a full disk").await;

    let padding = "x".repeat(100 << 10);
    let manifest = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{{"mediaType":"{CONFIG}","digest":"{}","size":{}}},"layers":[],"annotations":{{"pad":"{padding}"}}}}"#,
        before_desc.digest(),
        before_desc.size()
    ));
    let manifest_desc = desc(MANIFEST, &manifest);
    let err = push_bytes(&store, &manifest_desc, manifest.clone())
        .await
        .expect_err("a 100 KiB manifest past the file-size limit");
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_nothing_left(&store, &manifest_desc, "manifest push on a full disk").await;
    let err = store
        .resolve(manifest_desc.digest().as_ref())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");

    // The store still works while the disk is full for big files: small pushes, tags, fetches.
    let small = pattern(1024, 4);
    let small_desc = desc(LAYER, &small);
    push_bytes(&store, &small_desc, small.clone())
        .await
        .unwrap();
    assert_eq!(fetch_all(&store, &small_desc).await.unwrap(), small);
    assert_eq!(fetch_all(&store, &before_desc).await.unwrap(), before);
    let image = Image::new(7, &pattern(2048, 5));
    image.push(&store).await;
    store.tag(&image.manifest.0, "after-full").await.unwrap();
    assert_eq!(ingest_files(&root), Vec::<String>::new());

    // Space freed: the big push that failed now succeeds, and the layout is sound.
    limit_file_size(libc::RLIM_INFINITY);
    push_bytes(&store, &big_desc, big.clone()).await.unwrap();
    assert_eq!(fetch_all(&store, &big_desc).await.unwrap(), big);
    push_bytes(&store, &manifest_desc, manifest.clone())
        .await
        .unwrap();
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.corrupt.is_empty(), "{report:?}");
    store.close().await.unwrap();

    let store = open(&dir).await;
    let tagged = store.resolve("after-full").await.unwrap();
    assert_eq!(tagged.digest(), image.manifest.0.digest());
    assert_eq!(ingest_files(&root), Vec::<String>::new());
    store.close().await.unwrap();
}

/// The child half of [`disk_full_mid_push_fails_cleanly`]; does nothing unless
/// `OCISTORE_FSIZE_CHILD` names a directory.
#[test]
fn disk_full_child() {
    let Some(dir) = std::env::var_os(FSIZE_ENV) else {
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(disk_full_scenario(PathBuf::from(dir)));
    println!("{FSIZE_DONE}");
}

#[test]
fn disk_full_mid_push_fails_cleanly() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("layout");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "disk_full_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(FSIZE_ENV, &dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains(FSIZE_DONE),
        "the disk-full child failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
}

// ---------------------------------------------------------------------------------------------
// b. A push future dropped midway.

/// Yields `data`, then signals that it was all read and stays pending forever.
struct StallAfter {
    data: Bytes,
    signal: Option<oneshot::Sender<()>>,
}

impl AsyncRead for StallAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.data.is_empty() {
            let n = self.data.len().min(buf.remaining());
            let chunk = self.data.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        if let Some(signal) = self.signal.take() {
            let _ = signal.send(());
        }
        Poll::Pending
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_push_leaves_nothing_behind() {
    let temp = tempfile::tempdir().unwrap();
    let store = Arc::new(open(temp.path()).await);
    let root = store.root().to_path_buf();
    // (declared size, bytes yielded before stalling, streaming path?)
    for (i, (size, given, streaming)) in [
        (8usize << 20, 1usize << 20, true),
        (200 << 10, 64 << 10, false),
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(size, 100 + i as u64);
        let d = desc(LAYER, &data);
        let (tx, rx) = oneshot::channel();
        let reader: BoxReader = Box::pin(StallAfter {
            data: data.slice(..given),
            signal: Some(tx),
        });
        let task = {
            let store = Arc::clone(&store);
            let d = d.clone();
            tokio::spawn(async move { store.push(&d, reader).await })
        };
        rx.await.expect("the push read the first chunk");
        if streaming {
            // The push is midway: its staging file exists.
            assert_eq!(ingest_files(&root).len(), 1, "{:?}", ingest_files(&root));
        }
        task.abort();
        let joined = task.await;
        assert!(
            joined.as_ref().is_err_and(|e| e.is_cancelled()),
            "the push was aborted, not finished: {joined:?}"
        );
        assert_nothing_left(&store, &d, &format!("push of {size} bytes dropped")).await;

        push_bytes(&*store, &d, data.clone()).await.unwrap();
        assert_eq!(fetch_all(&*store, &d).await.unwrap(), data);
        assert_eq!(ingest_files(&root), Vec::<String>::new());
    }
}

// ---------------------------------------------------------------------------------------------
// c. Failed pushes leave nothing behind.

/// Yields `data`, then fails.
struct FailAfter {
    data: Bytes,
}

impl AsyncRead for FailAfter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.data.is_empty() {
            return Poll::Ready(Err(io::Error::other("the source broke")));
        }
        let n = self.data.len().min(buf.remaining());
        let chunk = self.data.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_pushes_leave_nothing_behind() {
    let temp = tempfile::tempdir().unwrap();
    let store = open(temp.path()).await;
    let manifest = Image::new(1, b"layer").manifest.1;
    let cases = [
        ("large", LAYER, pattern((1 << 20) + (300 << 10), 200)),
        ("exactly 256 KiB + 1", LAYER, pattern((256 << 10) + 1, 201)),
        ("small", LAYER, pattern(4096, 202)),
        ("manifest", MANIFEST, manifest),
    ];
    for (name, media_type, data) in cases {
        let d = desc(media_type, &data);
        let len = data.len();
        let mut wrong = data.to_vec();
        wrong[len - 1] ^= 0xff;
        let mut wrong_first = data.to_vec();
        wrong_first[0] ^= 0x01;
        let mut trailing = data.to_vec();
        trailing.push(b'\n');
        let bad: Vec<(&str, Bytes)> = vec![
            ("wrong last byte", Bytes::from(wrong)),
            ("wrong first byte", Bytes::from(wrong_first)),
            ("one byte short", data.slice(..len - 1)),
            ("half", data.slice(..len / 2)),
            ("empty", Bytes::new()),
            ("trailing data", Bytes::from(trailing)),
        ];
        for (how, body) in bad {
            let what = format!("{name}, {how}");
            let err = push_bytes(&store, &d, body).await.expect_err(&what);
            assert_eq!(err.kind(), ErrorKind::Mismatch, "{what}: {err}");
            assert!(
                err.to_string().contains(d.digest().as_ref()),
                "{what}: {err}"
            );
            assert_nothing_left(&store, &d, &what).await;
        }
        let what = format!("{name}, reader error");
        let reader: BoxReader = Box::pin(FailAfter {
            data: data.slice(..len / 2),
        });
        let err = store.push(&d, reader).await.expect_err(&what);
        assert_eq!(err.kind(), ErrorKind::Io, "{what}: {err}");
        assert_nothing_left(&store, &d, &what).await;

        push_bytes(&store, &d, data.clone()).await.unwrap();
        assert!(store.exists(&d).await.unwrap(), "{name}");
        assert_eq!(fetch_all(&store, &d).await.unwrap(), data, "{name}");
        assert_eq!(ingest_files(store.root()), Vec::<String>::new(), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// d. Concurrent pushes of one digest.

async fn push_concurrently(store: &Arc<Store>, d: &Descriptor, data: &Bytes, tasks: usize) {
    let barrier = Arc::new(Barrier::new(tasks));
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (store, d, data, barrier) = (
                Arc::clone(store),
                d.clone(),
                data.clone(),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                push_bytes(&*store, &d, data).await
            })
        })
        .collect();
    let (mut ok, mut exists) = (0, 0);
    for handle in handles {
        match handle.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => exists += 1,
            Err(e) => panic!("{} bytes: unexpected error {e}", data.len()),
        }
    }
    assert_eq!((ok, exists), (1, tasks - 1), "{} bytes", data.len());
    assert_eq!(fetch_all(&**store, d).await.unwrap(), *data);
    let root = store.root();
    assert_eq!(ingest_files(root), Vec::<String>::new());
    // One name for the file: no staging link survived.
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(blob_path(root, d)).unwrap().nlink(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_of_one_digest() {
    let temp = tempfile::tempdir().unwrap();
    let store = Arc::new(open(temp.path()).await);
    let big = pattern(2 << 20, 300);
    push_concurrently(&store, &desc(LAYER, &big), &big, 16).await;
    let small = pattern(1024, 301);
    push_concurrently(&store, &desc(LAYER, &small), &small, 64).await;
    let image = Image::new(3, &pattern(100, 302));
    push_concurrently(&store, &image.manifest.0, &image.manifest.1, 16).await;
    let resolved = store
        .resolve(image.manifest.0.digest().as_ref())
        .await
        .unwrap();
    assert_eq!(resolved, image.manifest.0);
    let files = listing(&store.root().join("blobs"));
    assert_eq!(files.len(), 3, "{files:?}");
}

// ---------------------------------------------------------------------------------------------
// e. A descriptor claiming 2^62 bytes.

/// Records whether it was ever polled; yields nothing.
struct Watched(Arc<AtomicBool>);

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.0.store(true, Ordering::SeqCst);
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn absurd_size_is_refused_without_reading() {
    let temp = tempfile::tempdir().unwrap();
    let store = open(temp.path()).await;
    let root = store.root().to_path_buf();
    let present = Bytes::from_static(b"x");
    let present_desc = desc(LAYER, &present);
    push_bytes(&store, &present_desc, present.clone())
        .await
        .unwrap();
    let before = listing(&root);

    for media_type in [LAYER, MANIFEST, INDEX] {
        // One claim whose digest is on disk (with its real size), one whose digest is not.
        for data in [&b"x"[..], &b"never stored"[..]] {
            let mut claim = desc(media_type, data);
            claim.set_size(1 << 62);
            let what = format!("{media_type} {} claiming 2^62 bytes", claim.digest());

            let polled = Arc::new(AtomicBool::new(false));
            let err = store
                .push(&claim, Box::pin(Watched(Arc::clone(&polled))))
                .await
                .expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::SizeExceedsLimit,
                "{what}: push: {err}"
            );
            assert!(
                !polled.load(Ordering::SeqCst),
                "{what}: the reader was read"
            );
            assert_eq!(listing(&root), before, "{what}: something was written");

            match store.fetch(&claim).await {
                Ok(_) => panic!("{what}: fetch succeeded"),
                Err(e) => assert_eq!(e.kind(), ErrorKind::SizeExceedsLimit, "{what}: fetch: {e}"),
            }
            let err = fetch_all(&store, &claim).await.expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::SizeExceedsLimit,
                "{what}: fetch_all: {err}"
            );
            let err = store.exists(&claim).await.expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::SizeExceedsLimit,
                "{what}: exists: {err}"
            );
            let err = store.tag(&claim, "huge").await.expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::SizeExceedsLimit,
                "{what}: tag: {err}"
            );
            let err = store.delete(&claim).await.expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::SizeExceedsLimit,
                "{what}: delete: {err}"
            );
            assert_eq!(listing(&root), before, "{what}: something changed");
        }
    }
    let err = store.resolve("huge").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // The real blob with that digest is untouched.
    assert_eq!(fetch_all(&store, &present_desc).await.unwrap(), present);
    let report = store.fsck().await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// f. A manifest-typed push whose body is not a manifest.

#[tokio::test]
async fn unparsable_manifest_is_refused_and_stores_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let store = open(temp.path()).await;
    let bad_bodies: [(&str, &[u8]); 5] = [
        (MANIFEST, b"this is not json"),
        (MANIFEST, br#"{"schemaVersion":2,"config":"#),
        (INDEX, br#"{"schemaVersion":2,"manifests":5}"#),
        (INDEX, b"\x00\x01\x02 binary"),
        (DOCKER_MANIFEST, b""),
    ];
    for (media_type, body) in bad_bodies {
        let d = desc(media_type, body);
        let what = format!("{media_type} body {:?}", String::from_utf8_lossy(body));
        // Twice: a refused body must not turn the retry into AlreadyExists.
        for attempt in 0..2 {
            let err = push_bytes(&store, &d, Bytes::copy_from_slice(body))
                .await
                .expect_err(&what);
            assert_eq!(
                err.kind(),
                ErrorKind::InvalidManifest,
                "{what}, attempt {attempt}: {err}"
            );
            assert_nothing_left(&store, &d, &what).await;
            let err = store.resolve(d.digest().as_ref()).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{what}: resolve: {err}");
        }
    }
    // The same media type with a valid body (another digest) works, and is indexed.
    let image = Image::new(11, &pattern(5000, 400));
    image.push(&store).await;
    let m = &image.manifest.0;
    let plain = Descriptor::new(MediaType::from(MANIFEST), m.size(), m.digest().clone());
    assert_eq!(store.resolve(m.digest().as_ref()).await.unwrap(), plain);
    let report = store.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty(),
        "{report:?}"
    );
    assert!(store.tags(None).await.unwrap().is_empty());
    store.close().await.unwrap();

    // Still indexed after a reopen: index.json names it under its digest.
    let store = open(temp.path()).await;
    assert_eq!(store.resolve(m.digest().as_ref()).await.unwrap(), plain);
    for (media_type, body) in bad_bodies {
        let d = desc(media_type, body);
        assert!(!store.exists(&d).await.unwrap());
    }
    store.close().await.unwrap();
}

/// Durability off does not change what a failure leaves behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_leave_nothing_behind_when_not_durable() {
    let temp = tempfile::tempdir().unwrap();
    let store = Store::open_with(temp.path(), StoreOptions::default().durable(false))
        .await
        .unwrap();
    for (i, size) in [(1usize << 20) + 5, 3000].into_iter().enumerate() {
        let data = pattern(size, 500 + i as u64);
        let d = desc(LAYER, &data);
        let err = push_bytes(&store, &d, data.slice(1..)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
        assert_nothing_left(&store, &d, "not durable").await;
        push_bytes(&store, &d, data.clone()).await.unwrap();
        assert_eq!(fetch_all(&store, &d).await.unwrap(), data);
    }
}
