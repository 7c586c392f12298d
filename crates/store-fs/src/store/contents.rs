//! What a [`crate::Store`] holds, without its locks and policies: the blob files, the in-memory
//! index and predecessor graph, and the `index.json` file they are saved to. The index flusher
//! and every store operation share one [`Contents`].

use crate::blob::read::StoreReads;
use crate::blob::{self, Blobs};
use crate::fsutil::{self, spawn_blocking};
use crate::index::codec::{IndexDocument, PlainRoots};
use crate::index::state::IndexState;
use crate::index::sync::IndexFile;
use crate::layout::Layout;
use async_trait::async_trait;
use autosave::Flush;
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::io;
use std::sync::{Arc, Mutex};
use store_core::content::BoxReader;
use store_core::descriptor::{
    self, is_manifest, MAX_MANIFEST_SIZE, OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::manifest::ManifestParts;
use store_core::{Error, ErrorKind, Fetcher, Result};

/// Refuses a manifest (by media type) larger than [`MAX_MANIFEST_SIZE`]; other content passes.
///
/// Errors: `SizeExceedsLimit` naming the manifest.
pub(crate) fn refuse_oversized_manifest(desc: &Descriptor) -> Result<()> {
    if is_manifest(desc) && desc.size() > MAX_MANIFEST_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: format!("manifest {}", desc.digest()),
            size: desc.size(),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    Ok(())
}

/// Everything a store knows.
#[derive(Debug)]
pub(crate) struct Contents {
    blobs: Blobs,
    index: IndexState,
    graph: MemoryGraph,
    file: IndexFile,
    /// Nodes opening could not index (a wrong size, a corrupt manifest), with why: their tags
    /// still resolve, fetching them fails, and what they reach is unknown to the graph.
    unindexed: Mutex<Vec<(Descriptor, Error)>>,
}

impl Contents {
    /// Empty contents of `layout`; [`Contents::load`] fills them.
    pub(crate) fn new(layout: Layout, durable: bool) -> Self {
        Contents {
            file: IndexFile::new(&layout, durable),
            blobs: Blobs::new(layout, durable),
            index: IndexState::default(),
            graph: MemoryGraph::new(),
            unindexed: Mutex::default(),
        }
    }

    /// The blob files.
    pub(crate) fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// The in-memory index.
    pub(crate) fn index(&self) -> &IndexState {
        &self.index
    }

    /// The predecessor graph.
    pub(crate) fn graph(&self) -> &MemoryGraph {
        &self.graph
    }

    /// The `index.json` file.
    pub(crate) fn index_file(&self) -> &IndexFile {
        &self.file
    }

    /// The layout directory.
    pub(crate) fn layout(&self) -> &Layout {
        self.blobs.layout()
    }

    /// The size of the blob `digest` on disk (see [`Blobs::stat`]).
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        self.blobs.stat(digest)
    }

    /// Reads `index.json`, creating an empty one first when there is none (another process may
    /// create one meanwhile: what is there is read back). Returns the document and its bytes.
    ///
    /// Errors: `InvalidLayout` (empty, not JSON, a bad entry), `Io`.
    pub(crate) async fn read_or_create_index(self: &Arc<Self>) -> Result<(IndexDocument, Bytes)> {
        let contents = Arc::clone(self);
        spawn_blocking(move || {
            let file = &contents.file;
            if let Some(found) = file.read()? {
                return Ok(found);
            }
            let bytes = contents.index.encode(&contents.index.entries());
            file.create_if_absent(&bytes)?;
            Ok(file
                .read()?
                .unwrap_or((IndexDocument::default(), bytes.into())))
        })
        .await
    }

    /// Loads `doc` (read as `bytes`) into the index and indexes every entry's graph (each node
    /// once). A node that cannot be indexed (a wrong size, a corrupt manifest) is left out of the
    /// graph and remembered (see [`Contents::unindexed_in_use`]); it does not fail the load.
    ///
    /// Errors: `Io` when the index loading task fails.
    pub(crate) async fn load(self: &Arc<Self>, doc: IndexDocument, bytes: Bytes) -> Result<()> {
        self.graph.clear();
        // Loading the index (references, entries to write) and indexing the graph (reading
        // and parsing every manifest) are independent: the first runs on the blocking pool
        // meanwhile, on the other core.
        let doc = Arc::new(doc);
        let contents = Arc::clone(self);
        let loading = Arc::clone(&doc);
        let index = tokio::task::spawn_blocking(move || {
            contents.index.load(&loading);
            contents.file.remember(bytes);
        });
        // The roots are the entries, plain, as the index loads them: made one at a time as the
        // walks take them, never all at once. Reading, hashing and parsing the manifests is
        // most of an open, so the entries are shared among one walk per core (a node two walks
        // reach is recorded twice, the same way).
        let count = graph_walks();
        let walks: Vec<_> = (0..count)
            .map(|first| {
                let contents = Arc::clone(self);
                let roots = PlainRoots::every(Arc::clone(&doc), first, count);
                tokio::spawn(async move {
                    let reads = StoreReads(&contents.blobs);
                    contents.graph.index_roots_tolerant(&reads, roots).await
                })
            })
            .collect();
        let mut skipped = Vec::new();
        let mut failed = None;
        for walk in walks {
            match walk.await {
                Ok(found) => skipped.extend(found),
                Err(e) => failed = Some(Error::io("indexing the graph", io::Error::other(e))),
            }
        }
        *self.unindexed.lock().unwrap_or_else(|p| p.into_inner()) = skipped;
        let loaded = index
            .await
            .map_err(|e| Error::io("loading index.json", io::Error::other(e)));
        match failed {
            Some(e) => Err(e),
            None => loaded,
        }
    }

    /// The nodes opening could not index that are still in use: named by an `index.json` entry,
    /// or a successor of a node in the graph. What they reach is unknown, so nothing may be
    /// removed on the strength of the graph while there are any. Each comes with its error.
    pub(crate) fn unindexed_in_use(&self) -> Vec<(Descriptor, Error)> {
        let mut unindexed = self.unindexed.lock().unwrap_or_else(|p| p.into_inner());
        unindexed.retain(|(desc, _)| {
            let digest = desc.digest().as_ref();
            !self.graph.contains(digest)
                && (self.index.resolve(digest).is_some()
                    || !self.graph.predecessors(desc).is_empty())
        });
        unindexed.clone()
    }

    /// Writes the in-memory index to `index.json` under the cross-process lock, first taking in
    /// what other writers changed; manifests learnt that way are indexed into the graph.
    ///
    /// Errors: `Io` (the previous `index.json` is left intact), `InvalidLayout` when another
    /// writer left an `index.json` that does not parse.
    pub(crate) async fn write_index(self: &Arc<Self>) -> Result<()> {
        let file = &self.file;
        if blob::runs_inline(file.last_len() as u64, file.is_durable()) {
            // Without fsyncs a write of a small index is a few syscalls on cached data, cheaper
            // on this thread than two thread switches; a large index, or another process holding
            // the lock (its gc holds it through the sweep), goes to the blocking pool, so an
            // async worker never blocks for more than a tiny write.
            if let Some(lock) = file.try_lock()? {
                let learnt = file.absorb_locked(&lock, &self.index)?;
                file.write_locked(&lock, &self.index)?;
                drop(lock);
                self.learn_all(&learnt).await;
                return Ok(());
            }
        }
        if !file.is_durable() {
            // A larger index, still without fsyncs: written from this task, the runtime's other
            // tasks moving to another worker meanwhile (see `fsutil::block_here`), unless another
            // process holds the lock (then the wait is the blocking pool's).
            let written = fsutil::block_here(|| -> Result<Option<Vec<Descriptor>>> {
                let Some(lock) = file.try_lock()? else {
                    return Ok(None);
                };
                let learnt = file.absorb_locked(&lock, &self.index)?;
                file.write_locked(&lock, &self.index)?;
                Ok(Some(learnt))
            });
            if let Some(learnt) = written.transpose()?.flatten() {
                self.learn_all(&learnt).await;
                return Ok(());
            }
        }
        let contents = Arc::clone(self);
        let learnt = spawn_blocking(move || {
            let file = &contents.file;
            let lock = file.lock()?;
            let learnt = file.absorb_locked(&lock, &contents.index)?;
            file.write_locked(&lock, &contents.index)?;
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

    /// Makes sure a manifest that is on disk is in the graph (it may have been written by
    /// another process or before a crash); a missing blob is not an error.
    ///
    /// Errors: fetch or parse errors of the manifest.
    pub(crate) async fn learn(&self, desc: &Descriptor) -> Result<()> {
        if is_manifest(desc) && !self.graph.contains(desc.digest().as_ref()) {
            self.graph.index_all(&StoreReads(&self.blobs), desc).await?;
        }
        Ok(())
    }

    /// Reads a manifest body from disk, verified and bounded.
    ///
    /// Errors: `SizeExceedsLimit` above [`MAX_MANIFEST_SIZE`], `NotFound`, `Mismatch`, `Io`.
    pub(crate) async fn read_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        let digest = descriptor::validate(desc)?;
        refuse_oversized_manifest(desc)?;
        blob::read::read_all(&self.blobs, &digest, desc.size()).await
    }

    /// The digest of the `subject` of the manifest `desc`, if it is an OCI manifest, index or
    /// artifact manifest that has one (the graph does not keep subjects). A manifest whose blob
    /// is missing has none.
    ///
    /// Errors: `Mismatch`, `InvalidManifest`, `Io` reading a present manifest.
    pub(crate) async fn subject_of(&self, desc: &Descriptor) -> Result<Option<String>> {
        let media_type = desc.media_type().as_ref();
        if !matches!(media_type, OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST) {
            return Ok(None);
        }
        let body = match self.read_manifest(desc).await {
            Ok(body) => body,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let parts = ManifestParts::parse(desc.digest().as_ref(), media_type, &body)?;
        Ok(parts.subject.map(|s| s.digest().to_string()))
    }
}

#[async_trait]
impl Fetcher for Contents {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        blob::read::open(&self.blobs, &digest, target.size()).await
    }
}

/// Writes the in-memory index to `index.json` when the autosave engine says so.
pub(crate) struct IndexFlusher(Arc<Contents>);

impl IndexFlusher {
    /// The flusher of `contents`.
    pub(crate) fn new(contents: Arc<Contents>) -> Self {
        IndexFlusher(contents)
    }
}

#[async_trait]
impl Flush for IndexFlusher {
    type Error = Error;

    async fn flush(&self) -> Result<()> {
        self.0.write_index().await
    }
}

/// How many walks index the graph at open: one per core, at most four (the walks share one
/// graph lock, and past a few more only contend).
fn graph_walks() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}
