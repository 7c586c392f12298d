//! Item: documented behaviour. A reader of a blob that is deleted mid-read still receives the
//! complete, verified bytes (the open file outlives its name, as POSIX unlink promises). This
//! holds today; the test keeps it so while the documentation says it.

use crate::common::{desc, LAYER};
use crate::util::pattern;
use store_core::content::push_bytes;
use store_core::{Deleter, Fetcher, ReadOnlyStorage};
use store_fs::Store;
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_of_a_blob_deleted_mid_read_gets_the_whole_verified_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    // In memory once opened (small), and streamed in chunks (large).
    for (n, len) in [(1, 4096), (2, 8 << 20)] {
        let body = pattern(len, n);
        let d = desc(LAYER, &body);
        push_bytes(&store, &d, body.clone()).await.unwrap();
        let mut reader = store.fetch(&d).await.unwrap();
        let mut head = vec![0u8; 1024];
        reader.read_exact(&mut head).await.unwrap();
        store.delete(&d).await.unwrap();
        assert!(!store.exists(&d).await.unwrap(), "deleted");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        head.extend_from_slice(&rest);
        assert_eq!(head.len(), len);
        assert!(
            head == body,
            "the bytes read after the delete are the blob's"
        );
    }
}
