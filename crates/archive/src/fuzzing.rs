//! Fuzz target bodies (feature `fuzzing`): each takes arbitrary bytes, runs the importer on
//! them and panics when an invariant breaks. The cargo-fuzz targets in `fuzz/` and the corpus
//! replay test of the `ocistore` crate both call these, so a crash found once is replayed by
//! every `cargo test --workspace --all-features`. Not API: it may change at any time.

use crate::{import, ImportOptions};
use store_core::digest::{digest_string, ValidDigest};
use store_core::memory::MemoryStore;
use store_core::{Fetcher, ReadOnlyStorage, Resolver};
use tokio::io::AsyncReadExt;

/// The importer's limits under fuzzing: small enough that no input (a gzip or zstd bomb
/// included) makes it hold or decompress more than a few MiB.
fn options() -> ImportOptions {
    ImportOptions::default()
        .max_blob_size(1 << 20)
        .max_total_size(4 << 20)
        .max_index_size(1 << 20)
        .max_held_manifest_bytes(2 << 20)
}

/// [`import`] of the input (a plain, gzip or zstd tar) into a [`MemoryStore`].
///
/// Invariants: on success every imported descriptor is in the destination with the bytes its
/// digest names, and each name given resolves to the last descriptor given it; on failure no tag exists.
pub fn fuzz_import(data: &[u8]) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build();
    let Ok(runtime) = runtime else {
        panic!("no tokio runtime for the fuzz target");
    };
    let archive = std::io::Cursor::new(data.to_vec());
    runtime.block_on(async move {
        let dst = MemoryStore::new();
        let imported = match import(archive, &dst, &options()).await {
            Ok(imported) => imported,
            Err(_) => {
                let tags = store_core::TagLister::tags(&dst, None).await;
                assert!(
                    tags.as_ref().is_ok_and(Vec::is_empty),
                    "a failed import tagged {tags:?}"
                );
                return;
            }
        };
        // Two entries may carry one name: the later tag wins, as in the destination.
        let mut named = std::collections::HashMap::new();
        for item in &imported {
            if let Some(name) = &item.name {
                named.insert(name.clone(), item.descriptor.digest().clone());
            }
        }
        for item in imported {
            let desc = &item.descriptor;
            assert!(
                dst.exists(desc).await.unwrap_or(false),
                "{desc:?} not stored"
            );
            let Ok(digest) = ValidDigest::from_digest(desc.digest()) else {
                panic!("imported an invalid digest {}", desc.digest());
            };
            let Ok(mut reader) = dst.fetch(desc).await else {
                panic!("{desc:?} cannot be fetched");
            };
            let mut bytes = Vec::new();
            if let Err(e) = reader.read_to_end(&mut bytes).await {
                panic!("{desc:?} does not read back: {e}");
            }
            assert_eq!(bytes.len() as u64, desc.size());
            assert_eq!(digest_string(digest.algorithm(), &bytes), digest.as_str());
        }
        for (name, digest) in named {
            match dst.resolve(&name).await {
                Ok(found) => assert_eq!(found.digest(), &digest, "{name}"),
                Err(e) => panic!("the imported name {name:?} does not resolve: {e}"),
            }
        }
    });
}
