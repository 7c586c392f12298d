//! The state one store shares between its API calls and its index flusher: the layout, blobs,
//! the in-memory index and graph, and how `index.json` is read and written.

use crate::blob::{spawn_blocking, Blobs};
use crate::index_file::{parse_index, IndexDocument};
use crate::index_state::IndexState;
use crate::layout::Layout;
use async_trait::async_trait;
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::io;
use std::sync::Arc;
use store_core::content::BoxReader;
use store_core::descriptor::{self, MAX_MANIFEST_SIZE};
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::{Error, Fetcher, Result};

/// Everything a store knows, without its locks and policies.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) blobs: Blobs,
    pub(crate) index: IndexState,
    pub(crate) graph: MemoryGraph,
    pub(crate) durable: bool,
    /// What we last read from or wrote to `index.json` (see `disk_sync.rs`).
    pub(crate) disk: std::sync::Mutex<crate::disk_sync::DiskView>,
}

impl Shared {
    pub(crate) fn layout(&self) -> &Layout {
        self.blobs.layout()
    }

    /// Reads and parses `index.json`; `None` when it does not exist. Returns the bytes too.
    ///
    /// Errors: `InvalidLayout` (empty, not JSON, a bad entry), `Io`.
    pub(crate) async fn read_index_file(&self) -> Result<Option<(IndexDocument, Vec<u8>)>> {
        let path = self.layout().index_path();
        spawn_blocking(move || match std::fs::read(&path) {
            Ok(bytes) => parse_index(&path, &bytes).map(|doc| Some((doc, bytes))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        })
        .await
    }

    /// Loads `doc` (read as `bytes`) into the index and indexes every entry's graph (each node
    /// once).
    ///
    /// Errors: fetch or parse errors of a present manifest.
    pub(crate) async fn load(self: &Arc<Self>, doc: IndexDocument, bytes: Vec<u8>) -> Result<()> {
        // The roots are the entries, plain, as the index loads them.
        let roots: Vec<Descriptor> = doc
            .entries
            .iter()
            .map(|entry| descriptor::plain(&entry.desc))
            .collect();
        self.graph.clear();
        // Loading the index (references, entries to write) and indexing the graph (reading
        // and parsing every manifest) are independent: the first runs on the blocking pool
        // meanwhile, on the other core.
        let shared = Arc::clone(self);
        let index = tokio::task::spawn_blocking(move || {
            shared.index.load(&doc);
            shared.remember_disk(crate::merge::keyed(&doc), bytes);
        });
        let graph = self.graph.index_all_many(&**self, &roots).await;
        index
            .await
            .map_err(|e| Error::io("loading index.json", io::Error::other(e)))?;
        graph
    }

    /// Writes the in-memory index to `index.json` under the cross-process lock, first taking in
    /// what other writers changed; manifests learnt that way are indexed into the graph.
    ///
    /// Errors: `Io` (the previous `index.json` is left intact), `InvalidLayout` when another
    /// writer left an `index.json` that does not parse.
    pub(crate) async fn write_index(self: &Arc<Self>) -> Result<()> {
        if !self.durable && self.last_index_len() <= crate::blob::INLINE as usize {
            // Without fsyncs a write of a small index is a few syscalls on cached data, cheaper
            // on this thread than two thread switches; a large index, or another process holding
            // the lock (its gc holds it through the sweep), goes to the blocking pool, so an
            // async worker never blocks for more than a tiny write.
            if let Some(lock) = crate::lock::IndexLock::try_acquire(self.layout().root())? {
                let learnt = self.absorb_locked(&lock)?;
                self.write_locked(&lock)?;
                drop(lock);
                self.learn_all(&learnt).await;
                return Ok(());
            }
        }
        let shared = Arc::clone(self);
        let learnt = spawn_blocking(move || {
            let lock = shared.lock_index()?;
            let learnt = shared.absorb_locked(&lock)?;
            shared.write_locked(&lock)?;
            Ok(learnt)
        })
        .await?;
        self.learn_all(&learnt).await;
        Ok(())
    }

    /// Indexes manifests another writer referenced; one that cannot be read is left out of the
    /// graph (its tag still resolves), as a missing manifest is at open.
    pub(crate) async fn learn_all(&self, descs: &[Descriptor]) {
        for desc in descs {
            let _ = self.learn(desc).await;
        }
    }

    /// Reads a manifest body from disk, verified and bounded.
    ///
    /// Errors: `SizeExceedsLimit` above 4 MiB, `NotFound`, `Mismatch`, `Io`.
    pub(crate) async fn read_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        let digest = descriptor::validate(desc)?;
        if desc.size() > MAX_MANIFEST_SIZE {
            return Err(Error::SizeExceedsLimit {
                what: format!("manifest {}", desc.digest()),
                size: desc.size(),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        self.blobs.read_all(&digest, desc.size()).await
    }

    /// Makes sure a manifest that is on disk is in the graph (it may have been written by
    /// another process or before a crash); a missing blob is not an error.
    ///
    /// Errors: fetch or parse errors of the manifest.
    pub(crate) async fn learn(&self, desc: &Descriptor) -> Result<()> {
        if descriptor::is_manifest(desc) && !self.graph.contains(desc.digest().as_ref()) {
            self.graph.index_all(self, desc).await?;
        }
        Ok(())
    }

    /// The size of the blob `digest` on disk.
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        self.blobs.stat(digest)
    }
}

#[async_trait]
impl Fetcher for Shared {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        self.blobs.open(&digest, target.size()).await
    }
}
