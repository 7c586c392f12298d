//! [`Store`]: the read/write OCI image layout store.

use crate::blob::{spawn_blocking, Blobs, SMALL};
use crate::index_file::IndexDocument;
use crate::index_state::IndexState;
use crate::layout;
use crate::options::StoreOptions;
use crate::shared::Shared;
use async_trait::async_trait;
use autosave::{AutoSaver, Flush};
use oci_spec::image::Descriptor;
use std::path::Path;
use std::sync::Arc;
use store_core::content::BoxReader;
use store_core::descriptor::{self, is_manifest, MAX_MANIFEST_SIZE};
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::manifest::parse_successors;
use store_core::{
    reference, Deleter, Error, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, Resolver,
    Result, TagLister, Tagger, Untagger,
};
use tokio::sync::RwLock;

/// Writes the in-memory index to `index.json` when the autosave engine says so.
pub(crate) struct IndexFlusher(pub(crate) Arc<Shared>);

#[async_trait]
impl Flush for IndexFlusher {
    type Error = Error;

    async fn flush(&self) -> Result<()> {
        self.0.write_index().await
    }
}

/// An OCI image layout directory as a `GraphTarget + Deleter + Untagger + TagLister`.
///
/// Blobs are streamed in and out with constant memory, verified on both ways, and published
/// atomically; `index.json` is written atomically, when the [`autosave::AutoSave`] policy says.
/// Pushes, tags and reads run concurrently; `delete` and `gc` run alone.
pub struct Store {
    pub(crate) shared: Arc<Shared>,
    pub(crate) options: StoreOptions,
    /// Shared by pushes, tags and reads; exclusive for delete and gc.
    pub(crate) gate: RwLock<()>,
    pub(crate) saver: AutoSaver<IndexFlusher>,
    /// What opening found and repaired (a missing `oci-layout`); `fsck` reports it.
    pub(crate) open_note: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root())
            .field("options", &self.options)
            .finish()
    }
}

/// Turns the shared outcome of an index write into this caller's error.
pub(crate) fn saved(result: std::result::Result<(), autosave::Error<Error>>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(autosave::Error::Flush(e)) => Err((*e).clone()),
        Err(autosave::Error::Stopped) => Err(Error::io(
            "saving index.json",
            std::io::Error::other("the index writer has stopped"),
        )),
    }
}

impl Store {
    /// Opens the layout at `root` with default options, creating it if missing.
    ///
    /// Errors: see [`Store::open_with`].
    pub async fn open(root: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(root, StoreOptions::default()).await
    }

    /// Opens the layout at `root`: a relative root is made absolute, a missing root is created,
    /// `oci-layout` and an empty `index.json` are created when missing (whatever the autosave
    /// policy), and every `index.json` entry is indexed into the graph.
    ///
    /// Errors: `InvalidLayout` (bad `oci-layout`, empty or non-JSON `index.json`, a bad entry),
    /// `UnsupportedVersion`, `Io` naming the path; fetch or parse errors of a present manifest.
    pub async fn open_with(root: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let durable = options.durable;
        let (layout, open_note) =
            spawn_blocking(move || layout::prepare_root(&root, durable)).await?;
        let shared = Arc::new(Shared {
            blobs: Blobs::new(layout, durable),
            index: IndexState::default(),
            graph: MemoryGraph::new(),
            durable,
            disk: Default::default(),
        });
        let (doc, bytes) = match shared.read_index_file().await? {
            Some(found) => found,
            None => {
                let bytes = shared.index.encode(&shared.index.entries());
                let path = shared.layout().index_path();
                let written = bytes.clone();
                spawn_blocking(move || {
                    crate::fsutil::write_if_absent(&path, &written, durable)
                        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
                })
                .await?;
                // Another process may have written one in the meantime: read what is there.
                shared
                    .read_index_file()
                    .await?
                    .unwrap_or((IndexDocument::default(), bytes))
            }
        };
        shared.load(doc, bytes).await?;
        let saver = AutoSaver::new(
            Arc::new(IndexFlusher(Arc::clone(&shared))),
            options.autosave,
        );
        Ok(Store {
            shared,
            options,
            gate: RwLock::new(()),
            saver,
            open_note,
        })
    }

    /// The absolute root of the layout.
    pub fn root(&self) -> &Path {
        self.shared.layout().root()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// Writes every pending index change to `index.json` now, whatever the autosave policy.
    ///
    /// Errors: `Io` (the previous `index.json` stays intact and the changes stay pending).
    pub async fn save_index(&self) -> Result<()> {
        saved(self.saver.flush_now().await)
    }

    /// Flushes pending index changes and closes the store.
    ///
    /// Errors: those of the final write.
    pub async fn close(self) -> Result<()> {
        saved(self.saver.close().await)
    }

    /// How many times `index.json` was written since the store was opened.
    pub fn index_writes(&self) -> u64 {
        self.saver.flushes()
    }

    /// Records an index change and waits as the autosave policy says.
    pub(crate) async fn index_changed(&self) -> Result<()> {
        saved(self.saver.changed().await)
    }

    /// Resolves `reference` (see [`crate::resolve::resolve_reference`]).
    pub(crate) fn resolve_unlocked(&self, reference: &str) -> Result<Descriptor> {
        let shared = &self.shared;
        crate::resolve::resolve_reference(
            reference,
            &shared.index,
            &shared.graph,
            |digest| shared.stat(digest),
            self.root(),
        )
    }

    async fn push_unlocked(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let shared = &self.shared;
        let digest = descriptor::validate(expected)?;
        let manifest = is_manifest(expected);
        if manifest && expected.size() > MAX_MANIFEST_SIZE {
            return Err(Error::SizeExceedsLimit {
                what: format!("manifest {}", expected.digest()),
                size: expected.size(),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        if shared.stat(&digest)?.is_some() {
            // Written before by us, another process or a crashed run: make sure the graph knows
            // it (the reference could never index such a manifest again).
            if manifest && !shared.graph.contains(digest.as_str()) {
                if let Ok(()) = shared.learn(expected).await {
                    shared.index.tag_digest(expected);
                    self.index_changed().await?;
                }
            }
            return Err(Error::already_exists(&digest));
        }
        if manifest {
            let body = Blobs::read_verified(&digest, expected.size(), content).await?;
            let media_type = expected.media_type().to_string();
            let successors = parse_successors(digest.as_str(), &media_type, &body)?;
            shared.blobs.commit_bytes(&digest, body).await?;
            shared.graph.insert(expected, successors);
            shared.index.tag_digest(expected);
            self.index_changed().await
        } else {
            if expected.size() <= SMALL {
                let body = Blobs::read_verified(&digest, expected.size(), content).await?;
                shared.blobs.commit_bytes(&digest, body).await?;
            } else {
                shared
                    .blobs
                    .ingest_stream(&digest, expected.size(), content)
                    .await?;
            }
            shared.graph.insert(expected, Vec::new());
            Ok(())
        }
    }

    async fn tag_unlocked(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        store_core::reference::require_reference("tag", reference)?;
        let shared = &self.shared;
        let digest = descriptor::validate(desc)?;
        reference::validate_tag(reference)?;
        let by_digest = ValidDigest::parse(reference).is_ok();
        if by_digest && reference != digest.as_str() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: format!("a digest reference must be the content's own digest {digest}"),
            });
        }
        let Some(size) = shared.stat(&digest)? else {
            return Err(Error::not_found(format!(
                "{} ({})",
                desc.digest(),
                desc.media_type()
            )));
        };
        if size != desc.size() {
            return Err(Error::mismatch(
                &digest,
                format!(
                    "the stored blob has {size} bytes, the descriptor says {}",
                    desc.size()
                ),
            ));
        }
        shared.learn(desc).await?;
        shared.index.tag_digest(desc);
        if !by_digest {
            shared.index.tag(desc.clone(), reference);
        }
        self.index_changed().await
    }
}

#[async_trait]
impl Fetcher for Store {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let _shared = self.gate.read().await;
        self.shared.fetch(target).await
    }
}

#[async_trait]
impl ReadOnlyStorage for Store {
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let digest = descriptor::validate(target)?;
        let _shared = self.gate.read().await;
        Ok(self.shared.stat(&digest)?.is_some())
    }
}

#[async_trait]
impl Pusher for Store {
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let _shared = self.gate.read().await;
        self.push_unlocked(expected, content).await
    }
}

#[async_trait]
impl Resolver for Store {
    async fn resolve(&self, reference: &str) -> Result<Descriptor> {
        self.resolve_unlocked(reference)
    }
}

#[async_trait]
impl Tagger for Store {
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let _shared = self.gate.read().await;
        self.tag_unlocked(desc, reference).await
    }
}

#[async_trait]
impl Untagger for Store {
    async fn untag(&self, reference: &str) -> Result<()> {
        store_core::reference::require_reference("untag", reference)?;
        let _shared = self.gate.read().await;
        let index = &self.shared.index;
        let Some(desc) = index.resolver.resolve(reference) else {
            return Err(Error::not_found(format!("reference {reference:?}")));
        };
        if reference == desc.digest().as_ref() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a digest is not a tag; delete the content instead".into(),
            });
        }
        index.untag(reference);
        self.index_changed().await
    }
}

#[async_trait]
impl TagLister for Store {
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        Ok(self.shared.index.resolver.tags(last))
    }
}

#[async_trait]
impl PredecessorFinder for Store {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<Descriptor>> {
        Ok(self.shared.graph.predecessors(node))
    }
}

#[async_trait]
impl Deleter for Store {
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let _alone = self.gate.write().await;
        self.delete_unlocked(target).await
    }
}
