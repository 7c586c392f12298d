//! [`Store`]: an OCI image layout in an object store. Every public operation starts here, takes
//! the store's gate (shared for pushes, tags and reads; exclusive for delete and gc) and records
//! index changes through the autosave engine, as the layout store does.

use crate::absent::RecentlyAbsent;
use crate::blob::{Blobs, WHOLE_LIMIT};
use crate::contents::{refuse_oversized_manifest, Contents, IndexFlusher};
use crate::index::RemoteIndex;
use crate::keys::Keys;
use crate::options::StoreOptions;
use crate::stored::{trust_window, RecentlyStored};
use crate::{delete, fsck, gc, layout};
use async_trait::async_trait;
use autosave::AutoSaver;
use object_store::path::Path;
use object_store::ObjectStore;
use oci_spec::image::{Descriptor, MediaType};
use std::sync::Arc;
use std::time::Instant;
use store_core::content::{reader_from_bytes, BoxReader, Bytes, VerifyReader};
use store_core::descriptor::{self, is_manifest, OCTET_STREAM};
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::manifest::parse_successors;
use store_core::{
    error_from_io, reference, Deleter, Error, ErrorKind, Fetcher, PredecessorFinder, Pusher,
    ReadOnlyStorage, ReferencePusher, Resolver, Result, SharedDescriptor, TagLister, Tagger,
    Untagger,
};
use store_fs::index_model::{IndexModel, TagUndo};
use store_fs::{FsckReport, GcReport};
use tokio::io::AsyncReadExt;
use tokio::sync::RwLock;

/// An OCI image layout under a prefix of an object store (`oci-layout`, `index.json`,
/// `blobs/<alg>/<hex>`) as a `GraphTarget + Deleter + Untagger + TagLister`.
///
/// What it requires of the service: atomic conditional writes — a put that fails when the
/// object exists (`PutMode::Create`) and one that fails unless the object still has the ETag
/// or version we read (`PutMode::Update`), each decided atomically by the service even under
/// concurrent requests. `index.json` changes by compare-and-swap on those, so several stores
/// (processes, machines) sharing a prefix lose no tag. Opening probes them with a throwaway
/// object under `ingest/` and refuses a service that does not honour them, unless
/// [`StoreOptions::last_writer_wins`] is set (then `index.json` is overwritten and concurrent
/// writers from other stores can lose each other's changes). On S3 (`AmazonS3Builder`), keep
/// the default `S3ConditionalPut::ETagMatch`.
pub struct Store {
    core: Arc<StoreCore>,
}

struct StoreCore {
    contents: Arc<Contents>,
    options: StoreOptions,
    gate: RwLock<()>,
    saver: AutoSaver<IndexFlusher>,
    conditional: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location())
            .field("options", &self.core.options)
            .field("conditional_writes", &self.core.conditional)
            .finish()
    }
}

/// What a push is given to store.
enum Content {
    /// A caller's reader, which must be left unread when the content is stored already.
    Reader(BoxReader),
    /// Bytes in memory, which nothing else reads.
    Bytes(Bytes),
}

impl Content {
    fn into_reader(self) -> BoxReader {
        match self {
            Content::Reader(reader) => reader,
            Content::Bytes(data) => reader_from_bytes(data),
        }
    }
}

/// Turns the shared outcome of an index write into this caller's error.
fn saved(result: std::result::Result<(), autosave::Error<Error>>) -> Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(autosave::Error::Flush(e)) => Err((*e).clone()),
        Err(autosave::Error::Stopped) => Err(Error::backend(
            "saving index.json",
            std::io::Error::other("the index writer has stopped"),
        )),
    }
}

impl Store {
    /// Opens the layout under `prefix` of `store` with default options, creating it if missing.
    ///
    /// Errors: see [`Store::open_with`].
    pub async fn open(store: Arc<dyn ObjectStore>, prefix: impl Into<Path>) -> Result<Store> {
        Store::open_with(store, prefix, StoreOptions::default()).await
    }

    /// Opens the layout under `prefix` (an empty path for the bucket's root): checks that the
    /// service has atomic conditional writes (unless last-writer-wins is opted into), creates
    /// `oci-layout` and an empty `index.json` when missing (with [`StoreOptions::create`]),
    /// reads `index.json` and indexes every manifest reachable from it into the graph.
    ///
    /// Errors: `Unsupported` naming the service when it has no atomic conditional writes;
    /// `NotFound` naming `oci-layout` or `index.json` when missing and creation is off;
    /// `InvalidLayout` naming the object for a bad `oci-layout` or `index.json`;
    /// `UnsupportedVersion`; `Backend` naming the object for the service's own failures
    /// (refused credentials, unreachable); fetch or parse errors of a present manifest.
    pub async fn open_with(
        store: Arc<dyn ObjectStore>,
        prefix: impl Into<Path>,
        options: StoreOptions,
    ) -> Result<Store> {
        let keys = Keys::new(store.to_string(), prefix.into());
        layout::read_or_create(&*store, &keys, options.creates()).await?;
        let conditional = layout::probe_conditional_writes(&*store, &keys).await?;
        if !conditional && !options.is_last_writer_wins() {
            return Err(Error::unsupported(format!(
                "{} has no atomic conditional writes (put if absent, put if the ETag matches), \
                 which a shared index.json needs; open with \
                 StoreOptions::last_writer_wins(true) to overwrite it anyway",
                keys.name(keys.prefix())
            )));
        }
        let blobs = Blobs {
            store: Arc::clone(&store),
            keys: keys.clone(),
            conditional,
        };
        let contents = Arc::new(Contents {
            remote: RemoteIndex::new(store, keys, conditional),
            blobs,
            absent: RecentlyAbsent::default(),
            stored: RecentlyStored::default(),
            model: IndexModel::new(),
            graph: MemoryGraph::new(),
        });
        let doc = contents
            .remote
            .read_or_create(&contents.model, options.creates())
            .await?;
        let roots = contents.model.load(&doc);
        contents.graph.index_all_many(&*contents, &roots).await?;
        let saver = AutoSaver::new(
            Arc::new(IndexFlusher(Arc::clone(&contents))),
            options.autosave_policy(),
        );
        Ok(Store {
            core: Arc::new(StoreCore {
                contents,
                options,
                gate: RwLock::new(()),
                saver,
                conditional,
            }),
        })
    }

    /// Where the layout lives: `<service>/<prefix>`.
    pub fn location(&self) -> String {
        let keys = &self.core.contents.blobs.keys;
        keys.name(keys.prefix())
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.core.options
    }

    /// Whether `index.json` is written by compare-and-swap (false only under last-writer-wins
    /// on a service without conditional writes).
    pub fn has_conditional_writes(&self) -> bool {
        self.core.conditional
    }

    /// The entries of `index.json` once pending changes are saved, in its order.
    pub fn entries(&self) -> Vec<Descriptor> {
        self.core.contents.model.listed()
    }

    /// Writes every pending index change to `index.json` now, whatever the autosave policy.
    ///
    /// Errors: `Backend` (the changes stay pending); `InvalidLayout` when another writer left an
    /// `index.json` that does not parse.
    pub async fn save_index(&self) -> Result<()> {
        saved(self.core.saver.flush_now().await)
    }

    /// Flushes pending index changes and closes the store.
    ///
    /// Errors: those of the final write.
    pub async fn close(self) -> Result<()> {
        match Arc::try_unwrap(self.core) {
            Ok(core) => saved(core.saver.close().await),
            Err(core) => saved(core.saver.flush_now().await),
        }
    }

    /// How many times `index.json` was written since the store was opened.
    pub fn index_writes(&self) -> u64 {
        self.core.saver.flushes()
    }

    /// Removes every blob object not reachable from a tag (keeping referrers of reachable
    /// nodes), and stale objects under `ingest/`; objects younger than the grace period are
    /// spared. Saves the pruned `index.json` first. Runs alone within this store.
    ///
    /// Errors: `Backend` listing, saving or deleting; fetch and parse errors of a manifest.
    pub async fn gc(&self) -> Result<GcReport> {
        let _alone = self.core.gate.write().await;
        // Anything may be removed now: nothing is taken as present without asking.
        self.core.contents.stored.clear();
        gc::collect(&self.core.contents, self.core.options.gc_grace_period()).await
    }

    /// Checks the layout in the bucket: `oci-layout`, every blob re-hashed against its key,
    /// every `index.json` entry and everything reachable present, the right size, parsable.
    /// Never modifies anything.
    ///
    /// Errors: `Backend` when the prefix cannot be listed or read.
    pub async fn fsck(&self) -> Result<FsckReport> {
        fsck::check(&self.core.contents).await
    }
}

impl StoreCore {
    /// Remembers that this store's put of `digest` (`size` bytes) just completed.
    fn just_put(&self, digest: &ValidDigest, size: u64) {
        self.contents
            .stored
            .note(digest.as_str(), size, Instant::now());
    }

    /// Whether this store put `digest` with `size` bytes recently enough that nothing can have
    /// removed it (see `RecentlyStored`), so that nobody need ask the service.
    fn put_moments_ago(&self, digest: &ValidDigest, size: u64) -> bool {
        let window = trust_window(self.options.gc_grace_period());
        self.contents
            .stored
            .is_fresh(digest.as_str(), size, window, Instant::now())
    }

    async fn index_changed(&self) -> Result<()> {
        saved(self.saver.changed().await)
    }

    /// Pushes `content` as `expected`; with a `reference`, a manifest is tagged in the same
    /// change (one save) and other content is tagged after it is stored. `content` is what
    /// the caller holds: a reader, or bytes in memory.
    async fn push(
        &self,
        expected: &Descriptor,
        content: Content,
        reference: Option<&str>,
    ) -> Result<()> {
        let contents = &self.contents;
        let digest = descriptor::validate(expected)?;
        refuse_oversized_manifest(expected)?;
        let manifest = is_manifest(expected);
        let whole = expected.size() <= WHOLE_LIMIT || manifest;
        // The existence check comes first even where a create-if-absent put would answer
        // AlreadyExists by itself: the contract says a push of stored content must not read
        // the caller's reader. It doubles the requests of a small push, so it is skipped where
        // there is no reader to protect (bytes in memory) and for a push right after `exists`
        // found the blob absent (what a copy does for every node it transfers): either way the
        // create-if-absent put still refuses stored content, and it is answered as stored.
        let conditional = whole && contents.blobs.conditional;
        // Taken whatever the content: a push must use up the memo's answer.
        let known_absent = conditional && contents.absent.take(digest.as_str());
        let refused_by_put = conditional && matches!(content, Content::Bytes(_));
        let content = content.into_reader();
        if !known_absent && !refused_by_put && contents.blobs.stat(&digest).await?.is_some() {
            return self.already_stored(expected, &digest).await;
        }
        if whole {
            let mut reader = VerifyReader::with_digest(content, digest.clone(), expected.size());
            let mut body = Vec::with_capacity(expected.size() as usize);
            reader
                .read_to_end(&mut body)
                .await
                .map_err(|e| error_from_io(e, format!("reading the content of {digest}")))?;
            let successors = if manifest {
                Some(parse_successors(
                    digest.as_str(),
                    expected.media_type().as_ref(),
                    &body,
                )?)
            } else {
                None
            };
            match contents.blobs.put_whole(&digest, body.into()).await {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    return self.already_stored(expected, &digest).await;
                }
                put => put?,
            }
            self.just_put(&digest, expected.size());
            self.record(expected, successors, reference).await
        } else {
            contents
                .blobs
                .put_stream(&digest, expected.size(), content)
                .await?;
            self.just_put(&digest, expected.size());
            self.record(expected, None, reference).await
        }
    }

    /// Answers a push of content the bucket holds already: `AlreadyExists`, once a manifest
    /// the graph does not know (another writer's, or one whose record a crash lost) is indexed
    /// and given its `index.json` entry.
    ///
    /// Errors: `AlreadyExists`; those of saving `index.json`.
    async fn already_stored(&self, expected: &Descriptor, digest: &ValidDigest) -> Result<()> {
        let contents = &self.contents;
        if is_manifest(expected) && !contents.graph.contains(digest.as_str()) {
            if let Ok(()) = contents.learn(expected).await {
                contents.model.tag_digest(expected);
                self.index_changed().await?;
            }
        }
        Err(Error::already_exists(digest))
    }

    /// Makes stored content known: a manifest (with its `successors`) gets an `index.json`
    /// entry, tagged `reference` in the same change when given; other content is tagged by a
    /// change of its own.
    async fn record(
        &self,
        desc: &Descriptor,
        successors: Option<Vec<Descriptor>>,
        reference: Option<&str>,
    ) -> Result<()> {
        let contents = &self.contents;
        match successors {
            Some(successors) => {
                contents.graph.insert(desc, successors);
                contents.model.tag_digest(desc);
                match reference {
                    Some(reference) => {
                        let undo = contents.model.tag(desc, reference);
                        self.changed_or_undo(undo).await
                    }
                    None => self.index_changed().await,
                }
            }
            None => {
                contents.graph.insert(desc, Vec::new());
                match reference {
                    Some(reference) => self.tag(desc, reference).await,
                    None => Ok(()),
                }
            }
        }
    }

    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let digest = reference::check_tagging(desc, reference)?;
        let contents = &self.contents;
        // A blob this store has just put is there (see `RecentlyStored` for why that holds):
        // tagging right after pushing, as images are published, asks nothing.
        if !self.put_moments_ago(&digest, desc.size()) {
            reference::require_stored(desc, &digest, contents.blobs.stat(&digest).await?)?;
        }
        contents.learn(desc).await?;
        let undo = contents.model.tag(desc, reference);
        self.changed_or_undo(undo).await
    }

    /// Records a tag or untag and waits as the autosave policy says; when the save fails, puts
    /// the change back in memory before returning the error, so that an error means nothing
    /// changed (the saver stays dirty: the next write saves the rolled-back state).
    ///
    /// Errors: those of the save.
    async fn changed_or_undo(&self, undo: Option<TagUndo>) -> Result<()> {
        let result = self.index_changed().await;
        if let (Err(_), Some(undo)) = (&result, undo) {
            self.contents.model.undo(undo);
        }
        result
    }

    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let contents = &self.contents;
        let doomed = delete::doomed(contents, target, self.options.is_auto_gc()).await?;
        for node in &doomed {
            contents.stored.forget(node.digest().as_ref());
        }
        let mut forgotten = store_fs::index_model::Forgotten::default();
        for node in &doomed {
            forgotten.extend(contents.model.forget_digest(node.digest().as_ref()));
        }
        if !forgotten.is_empty() {
            if let Err(e) = self.index_changed().await {
                // Nothing was removed yet: put back what was forgotten so memory matches.
                contents.model.restore(forgotten);
                return Err(e);
            }
        }
        // Under `Manual` and `Debounce` the change above is only recorded: a store dropped or
        // a process killed after the removals must not leave an `index.json` naming what they
        // removed. Even with nothing forgotten now, an earlier unsaved untag may have dropped
        // the last reference to a doomed digest that the saved `index.json` still names.
        if let Err(e) = saved(self.saver.flush_now().await) {
            contents.model.restore(forgotten);
            return Err(e);
        }
        delete::remove(contents, &doomed).await
    }

    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        reference::require_reference("resolve", reference)?;
        let contents = &self.contents;
        if let Some(desc) = contents.model.resolve(reference) {
            // The digest of an entry gives its plain descriptor, a tag its whole one.
            return Ok(desc);
        }
        let keys = &contents.blobs.keys;
        let not_found = || Error::not_found(format!("{reference} in {}", keys.name(keys.prefix())));
        let Ok(digest) = ValidDigest::parse(reference) else {
            return Err(not_found());
        };
        let Some(size) = contents.blobs.stat(&digest).await? else {
            return Err(not_found());
        };
        if let Some(node) = contents.graph.get(reference) {
            if is_manifest(&node) && node.size() == size {
                return Ok(descriptor::plain(&node).into());
            }
        }
        Ok(SharedDescriptor::new(Descriptor::new(
            MediaType::from(OCTET_STREAM),
            size,
            digest.to_oci(),
        )))
    }
}

#[async_trait]
impl Fetcher for Store {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let _gate = self.core.gate.read().await;
        self.core.contents.fetch(target).await
    }
}

#[async_trait]
impl ReadOnlyStorage for Store {
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let digest = descriptor::validate(target)?;
        let _gate = self.core.gate.read().await;
        let contents = &self.core.contents;
        // A blob this store has just put is there (see `RecentlyStored`): a copy asks about
        // every blob it transfers, the layers its images share among them.
        if self.core.put_moments_ago(&digest, target.size()) {
            return Ok(true);
        }
        let present = contents.blobs.stat(&digest).await?.is_some();
        if present {
            contents.absent.take(digest.as_str());
        } else {
            contents.absent.note(digest.as_str());
        }
        Ok(present)
    }
}

#[async_trait]
impl Pusher for Store {
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let _gate = self.core.gate.read().await;
        self.core
            .push(expected, Content::Reader(content), None)
            .await
    }

    /// Stores `data` like `push`; where the service has conditional writes, content up to
    /// 8 MiB (and any manifest) is put once, create-if-absent, with no existence check first:
    /// the service's refusal of stored content answers `AlreadyExists` (nothing written).
    ///
    /// Errors: those of `push`.
    async fn push_bytes(&self, expected: &Descriptor, data: Bytes) -> Result<()> {
        let _gate = self.core.gate.read().await;
        self.core.push(expected, Content::Bytes(data), None).await
    }
}

#[async_trait]
impl ReferencePusher for Store {
    /// Stores `content` as `expected` and points `reference` at it: for a manifest one change
    /// (one compare-and-swap of `index.json` under `AutoSave::Always` where a push and a tag
    /// make two). Content already stored is tagged. On an error saving `index.json` the tag is
    /// taken back (the pushed content stays, recorded, as after a push).
    ///
    /// Errors: those of `push` but `AlreadyExists`, and those of `tag`, `reference` checked
    /// before anything is read or stored.
    async fn push_reference(
        &self,
        expected: &Descriptor,
        content: BoxReader,
        reference: &str,
    ) -> Result<()> {
        reference::check_tagging(expected, reference)?;
        let _gate = self.core.gate.read().await;
        match self
            .core
            .push(expected, Content::Reader(content), Some(reference))
            .await
        {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                self.core.tag(expected, reference).await
            }
            other => other,
        }
    }
}

#[async_trait]
impl Resolver for Store {
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        self.core.resolve(reference).await
    }
}

#[async_trait]
impl Tagger for Store {
    /// Points `reference` at `desc`, whose blob must be stored with that size: the service is
    /// asked, unless this store put that blob, with that size, within the last half of the gc
    /// grace period and at most 10 seconds (nothing can have removed it: see the module
    /// `stored`; its own delete and gc forget what they may remove). On an error
    /// saving `index.json` (under `AutoSave::Always`) the change is undone in memory before the
    /// error is returned: an error means nothing changed. Under `Manual` and `Debounce` a failed
    /// save is reported by `save_index` or `close`, the changes staying pending.
    ///
    /// Errors: `MissingReference`, `InvalidReference`, `InvalidDescriptor`; `NotFound` when the
    /// blob is not stored; `Mismatch` for another size; those of the save.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let _gate = self.core.gate.read().await;
        self.core.tag(desc, reference).await
    }

    fn as_reference_pusher(&self) -> Option<&dyn ReferencePusher> {
        Some(self)
    }
}

#[async_trait]
impl Untagger for Store {
    async fn untag(&self, reference: &str) -> Result<()> {
        reference::require_reference("untag", reference)?;
        let _gate = self.core.gate.read().await;
        let model = &self.core.contents.model;
        let Some(desc) = model.resolve(reference) else {
            return Err(Error::not_found(format!("reference {reference:?}")));
        };
        if reference == desc.digest().as_ref() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a digest is not a tag; delete the content instead".into(),
            });
        }
        let undo = model.untag(reference);
        self.core.changed_or_undo(undo).await
    }
}

#[async_trait]
impl TagLister for Store {
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        Ok(self.core.contents.model.tags(last))
    }
}

#[async_trait]
impl PredecessorFinder for Store {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        Ok(self.core.contents.graph.predecessors(node))
    }
}

#[async_trait]
impl Deleter for Store {
    /// Deletes `target`; with auto GC ([`StoreOptions::auto_gc`], the default) also its
    /// referrers and every blob left with no predecessor and no tag. `index.json` is saved
    /// without the deleted entries first, under every autosave policy (other pending changes
    /// are saved with it), and only then are objects removed: `index.json` never names a
    /// removed blob. Runs alone within this store.
    ///
    /// Errors: `InvalidDigest`; `NotFound` when `target` is not stored; `Backend` from the save
    /// of `index.json` (nothing is removed then) or from a removal; fetch and parse errors of a
    /// present manifest.
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let _alone = self.core.gate.write().await;
        self.core.delete(target).await
    }
}
