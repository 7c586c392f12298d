//! `push_fetched`: content that checks itself against the pushed descriptor is not hashed a
//! second time by the layout store, yet a wrong byte still never becomes a visible blob, and a
//! claim about another descriptor is not believed.

use oci_spec::image::{Descriptor, MediaType};
use store_core::content::{descriptor_from_bytes, fetch_all, reader_from_bytes, Fetched};
use store_core::digest::ValidDigest;
use store_core::{ErrorKind, Fetcher, Pusher, ReadOnlyStorage};
use store_fs::{Store, StoreOptions};
use tokio::io::AsyncRead;

/// Sizes on both sides of the store's in-memory limit (256 KiB): one read whole, one streamed.
const SIZES: [usize; 2] = [4 << 10, 1 << 20];

fn bytes_of(size: usize, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

async fn store(dir: &std::path::Path) -> Store {
    Store::open_with(dir, StoreOptions::default().durable(false))
        .await
        .expect("open")
}

/// A checking reader over `data` for `desc`.
fn checked(data: Vec<u8>, desc: &Descriptor) -> Fetched {
    let reader = std::io::Cursor::new(data);
    Fetched::verified(store_core::content::VerifyReader::new(reader, desc).expect("valid"))
}

/// Lists what `ingest/` holds, so a test can say nothing was left behind.
fn ingest_entries(root: &std::path::Path) -> Vec<String> {
    match std::fs::read_dir(root.join("ingest")) {
        Ok(entries) => entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn boxed<R: AsyncRead + Send + 'static>(reader: R) -> store_core::content::BoxReader {
    Box::pin(reader)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_content_is_stored_and_reads_back() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let data = bytes_of(size, 1);
        let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
        store
            .push_fetched(&desc, checked(data.clone(), &desc))
            .await
            .expect("push_fetched");
        assert_eq!(fetch_all(&store, &desc).await.unwrap(), data, "size {size}");
        let again = store
            .push_fetched(&desc, checked(data.clone(), &desc))
            .await;
        assert_eq!(again.unwrap_err().kind(), ErrorKind::AlreadyExists);
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checking_reader_that_fails_leaves_no_blob() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let data = bytes_of(size, 2);
        let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
        let mut wrong = data.clone();
        wrong[size / 2] ^= 0xff;
        let short = data[..size - 1].to_vec();
        for (what, bytes) in [("a flipped byte", wrong), ("a short body", short)] {
            let err = store
                .push_fetched(&desc, checked(bytes, &desc))
                .await
                .expect_err(what);
            assert_eq!(
                err.kind(),
                ErrorKind::Mismatch,
                "{what}, size {size}: {err}"
            );
            assert!(!store.exists(&desc).await.unwrap(), "{what}: no blob");
            assert!(
                store.fetch(&desc).await.is_err(),
                "{what}: nothing to fetch"
            );
            assert!(
                ingest_entries(dir.path()).is_empty(),
                "{what}: no staging file"
            );
        }
        store.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_about_another_descriptor_is_not_believed() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let data = bytes_of(size, 3);
        let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
        let other = bytes_of(size, 4);
        let other_desc = descriptor_from_bytes(MediaType::ImageLayer, &other);
        // A reader that claims to check `other_desc` but yields `other`'s bytes: pushed as
        // `desc`, the store hashes them itself and refuses them.
        let digest = ValidDigest::from_digest(other_desc.digest()).unwrap();
        let fetched = Fetched::vouched(boxed(std::io::Cursor::new(other)), digest, size as u64);
        let err = store.push_fetched(&desc, fetched).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Mismatch, "size {size}: {err}");
        assert!(!store.exists(&desc).await.unwrap());
        // Unchecked content is hashed as by `push`.
        let unchecked = Fetched::unchecked(reader_from_bytes(bytes_of(size, 5)));
        let err = store.push_fetched(&desc, unchecked).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Mismatch);
        assert!(ingest_entries(dir.path()).is_empty());
        store.close().await.unwrap();
    }
}

/// The store believes a reader that vouches for the descriptor it pushes: that is how a copy
/// from a registry skips the second hash. A false claim is the vouching code's bug; this test
/// pins the fast path so a refactor cannot silently drop it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_about_the_pushed_descriptor_skips_the_stores_hash() {
    for size in SIZES {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path()).await;
        let data = bytes_of(size, 6);
        let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
        let lie = bytes_of(size, 7);
        let digest = ValidDigest::from_digest(desc.digest()).unwrap();
        let fetched = Fetched::vouched(boxed(std::io::Cursor::new(lie)), digest, size as u64);
        store.push_fetched(&desc, fetched).await.expect("believed");
        assert!(store.exists(&desc).await.unwrap(), "size {size}");
        store.close().await.unwrap();
    }
}

/// `data` as a stream of chunks of `piece` bytes, ending with `last` in place of its end.
fn chunks_of(
    data: &[u8],
    piece: usize,
    last: Option<std::io::Error>,
) -> store_core::content::ChunkStream {
    let mut items: Vec<std::io::Result<bytes::Bytes>> = data
        .chunks(piece)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    items.extend(last.map(Err));
    Box::pin(futures::stream::iter(items))
}

/// Chunked content (a registry's pieces) is written as it came: stored whole when it ends
/// cleanly; an error in place of its end (how checking chunks report a wrong digest), a short
/// stream or trailing bytes leave no blob and no staging file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checked_chunks_are_stored_or_leave_nothing() {
    let size = 3 << 20;
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    let data = bytes_of(size, 8);
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    let digest = ValidDigest::from_digest(desc.digest()).unwrap();
    let bad_end = || Some(std::io::Error::other("the digest did not match"));
    let mut longer = data.clone();
    longer.push(0);
    let failing = [
        ("an error at the end", chunks_of(&data, 300_000, bad_end())),
        (
            "a short stream",
            chunks_of(&data[..size - 1], 300_000, None),
        ),
        ("trailing bytes", chunks_of(&longer, 1 << 20, None)),
    ];
    for (what, chunks) in failing {
        let fetched = Fetched::vouched_chunks(chunks, digest.clone(), size as u64);
        store.push_fetched(&desc, fetched).await.expect_err(what);
        assert!(!store.exists(&desc).await.unwrap(), "{what}: no blob");
        assert!(
            ingest_entries(dir.path()).is_empty(),
            "{what}: no staging file"
        );
    }
    let fetched = Fetched::vouched_chunks(chunks_of(&data, 300_000, None), digest, size as u64);
    store.push_fetched(&desc, fetched).await.expect("stored");
    assert_eq!(fetch_all(&store, &desc).await.unwrap(), data);
    store.close().await.unwrap();
}
