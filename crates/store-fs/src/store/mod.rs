//! [`Store`]: the read/write OCI image layout store.
//!
//! This file is the store's top: every public operation starts here, takes the store's gate
//! (shared for pushes, commits, tags and reads; exclusive for delete and gc), and records index
//! changes through the autosave engine. The submodules do one job each and never use this file:
//! [`contents`] (what the store holds and how `index.json` is read and written), [`delete`] (the
//! cascade), [`gc`] (mark and sweep), [`fsck`] (the consistency check), [`in_flight`] (what
//! pushes touched lately, which delete and gc spare).
//!
//! A push, top-down: [`Store::push`](Pusher::push) checks the descriptor and the manifest size
//! limit, then [`crate::blob::ingest`] verifies and stages the bytes, [`crate::blob::publish`]
//! links them into `blobs/`, and [`StoreCore::record`] indexes a manifest into the graph and
//! records it in [`crate::index::state`]; the autosave engine then saves `index.json`
//! ([`contents::Contents::write_index`]). A [`BlobWriter`] commit joins the same path at
//! the publish step ([`StoreCore::commit_staged`]). A tag: [`Store::tag`](Tagger::tag) checks the
//! reference with [`store_core::reference::check_tag`], the blob's presence and size, records
//! the tag in [`crate::index::state`], and saves the same way.

pub(crate) mod contents;
pub(crate) mod delete;
pub(crate) mod fsck;
pub(crate) mod gc;
pub(crate) mod in_flight;

use crate::blob::writer::{BlobWriter, CommitStaged};
use crate::blob::{self, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil::spawn_blocking;
use crate::layout;
use crate::options::StoreOptions;
use async_trait::async_trait;
use autosave::AutoSaver;
use contents::{refuse_oversized_manifest, Contents, IndexFlusher};
use fsck::FsckReport;
use gc::GcReport;
use in_flight::Touches;
use oci_spec::image::{Descriptor, MediaType};
use std::path::Path;
use std::sync::Arc;
use store_core::content::BoxReader;
use store_core::descriptor::{self, is_manifest};
use store_core::manifest::parse_successors;
use store_core::{
    reference, Deleter, Error, ErrorKind, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage,
    Resolver, Result, TagLister, Tagger, Untagger,
};
use tokio::sync::RwLock;

/// An OCI image layout directory as a `GraphTarget + Deleter + Untagger + TagLister`.
///
/// Blobs are streamed in and out with constant memory, verified on both ways, and published
/// atomically; `index.json` is written atomically, when the [`autosave::AutoSave`] policy says.
/// Pushes, tags, reads and [`BlobWriter`] commits run concurrently; `delete` and `gc` run alone.
///
/// The store never follows a symbolic link inside the layout, and never waits on a special file
/// (the root itself may be a link: the user chose it). `blobs/`, `blobs/<alg>/`, `ingest/`,
/// `index.json`, `index.json.lock` and `oci-layout` that are links, or not a directory or not a
/// regular file as they should be (a FIFO, say), are refused with `InvalidLayout` naming them:
/// at [`Store::open`] when they are there already, otherwise by the first operation that uses
/// them (`push`, `tag`, `untag`, `delete`, [`Store::gc`], [`Store::save_index`],
/// [`Store::blob_writer`]). Directories are kept open from their first use, so a directory
/// swapped for a link afterwards is never followed either. A blob path that holds anything but a
/// regular file (a link, directory, FIFO, socket or device) is never opened for reading: it does
/// not count as the blob (`exists` is false, `resolve` says `NotFound`), `fetch` of it is
/// `InvalidLayout` naming it (at once, even on a current-thread runtime), a push of that digest
/// is `InvalidLayout` saying what occupies the path (not `AlreadyExists`), and [`Store::fsck`]
/// reports it as corrupt, with a warning saying what it is. `gc` removes an unreachable link
/// in `blobs/` (never its target) and leaves other special files there alone.
pub struct Store {
    core: Arc<StoreCore>,
}

/// The store's state, shared with its [`BlobWriter`]s so that a commit takes the same gate and
/// records through the same code as a push.
struct StoreCore {
    contents: Arc<Contents>,
    options: StoreOptions,
    /// Shared by pushes, commits, tags and reads; exclusive for delete and gc.
    gate: RwLock<()>,
    saver: AutoSaver<IndexFlusher>,
    /// Blobs pushes touched within the gc grace period, which delete's cascade spares.
    touches: Touches,
    /// What opening found and repaired (a missing `oci-layout`); `fsck` reports it.
    open_note: Option<String>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("root", &self.root())
            .field("options", &self.core.options)
            .finish()
    }
}

/// Turns the shared outcome of an index write into this caller's error.
fn saved(result: std::result::Result<(), autosave::Error<Error>>) -> Result<()> {
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
    /// Errors: `InvalidLayout` when `root` is a file rather than a directory (a tar archive of a
    /// layout opens with [`crate::ReadOnlyStore::open`]), for a bad `oci-layout`, an empty or
    /// non-JSON `index.json` or a bad entry in it, naming `blobs/`, `blobs/<alg>/`, `ingest/`,
    /// `index.json`, `index.json.lock` or `oci-layout` when it is a symbolic link or not of its
    /// type (a FIFO `index.json`, say: it is never opened for a blocking read), or naming an
    /// `index.json` entry's manifest whose path holds anything but a regular file;
    /// `UnsupportedVersion`; `Io` naming the path; fetch or parse errors of a present manifest.
    pub async fn open_with(root: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let durable = options.is_durable();
        let (layout, open_note) =
            spawn_blocking(move || layout::prepare_root(&root, durable)).await?;
        let contents = Arc::new(Contents::new(layout, durable));
        let (doc, bytes) = contents.read_or_create_index().await?;
        contents.load(doc, bytes).await?;
        let saver = AutoSaver::new(
            Arc::new(IndexFlusher::new(Arc::clone(&contents))),
            options.autosave_policy(),
        );
        Ok(Store {
            core: Arc::new(StoreCore {
                contents,
                options,
                gate: RwLock::new(()),
                saver,
                touches: Touches::new(options.gc_grace_period()),
                open_note,
            }),
        })
    }

    /// The absolute root of the layout.
    pub fn root(&self) -> &Path {
        self.core.contents.layout().root()
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &StoreOptions {
        &self.core.options
    }

    /// The entries of `index.json` as it stands once pending changes are saved, in its order
    /// (tagged entries by tag, then untagged ones by digest), untagged ones included. A tagged
    /// entry carries its tag in the `org.opencontainers.image.ref.name` annotation; an untagged
    /// one (a manifest pushed but never tagged, or every entry of a layout written by a tool
    /// that records no names, such as `skopeo copy ... oci-archive:FILE`) has none, and
    /// resolves only by its digest. Never fails: the entries are in memory.
    pub fn entries(&self) -> Vec<Descriptor> {
        self.core.contents.index().listed()
    }

    /// Writes every pending index change to `index.json` now, whatever the autosave policy.
    ///
    /// Errors: `Io` (the previous `index.json` stays intact and the changes stay pending);
    /// `InvalidLayout` when `index.json.lock` or `index.json` became a symbolic link or not a
    /// regular file (never followed), or `index.json` no longer parses.
    pub async fn save_index(&self) -> Result<()> {
        saved(self.core.saver.flush_now().await)
    }

    /// Flushes pending index changes and closes the store. A [`BlobWriter`] still alive keeps
    /// the store's state (and its index writer) alive: its commit is recorded and saved as the
    /// autosave policy says, and a last change is saved when the writer goes.
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

    /// Starts writing a blob of `media_type` whose digest is computed as it is written; see
    /// [`BlobWriter::commit`].
    ///
    /// Errors: `InvalidLayout` when `ingest/` is a symbolic link or not a directory; `Io`
    /// creating the staging file.
    pub async fn blob_writer(&self, media_type: MediaType) -> Result<BlobWriter> {
        let target: Arc<dyn CommitStaged> = Arc::clone(&self.core) as Arc<dyn CommitStaged>;
        BlobWriter::start(self.core.contents.blobs(), media_type, target).await
    }

    /// Removes every blob not reachable from a tag, keeping the referrers of reachable nodes
    /// (to any depth); blob files the store never knew; and temp files in `ingest/` left by
    /// crashed pushes. Files younger than the grace period ([`StoreOptions::gc_grace`]) are
    /// spared (a push that finds its blob already stored makes the file young again), as are
    /// blobs this store's pushes, commits and `exists` touched within that period (with what
    /// they reach), and anything under `blobs/` that is not a file named like a digest. Saves
    /// the pruned `index.json` before it removes any file, whatever the autosave policy. Runs
    /// alone (no push, commit, tag or read meanwhile). A reader opened before the removal of
    /// its blob keeps reading the complete, verified content (POSIX unlink semantics); a fetch
    /// started after it gets `NotFound`.
    ///
    /// Errors: `Io` from the sweep or the save; `InvalidLayout` when `blobs/<alg>/`, `ingest/`,
    /// `index.json` or `index.json.lock` is a symbolic link or of the wrong type (nothing is
    /// swept through it); fetch and parse errors of a present manifest.
    pub async fn gc(&self) -> Result<GcReport> {
        let _alone = self.core.gate.write().await;
        self.core.touches.prune();
        let touched = self.core.touches.recent();
        gc::collect(
            &self.core.contents,
            self.core.options.gc_grace_period(),
            touched,
            false,
        )
        .await
    }

    /// What [`Store::gc`] would remove now, counted the same way; removes nothing and leaves
    /// `index.json` as it is. Runs alone, as `gc` does.
    ///
    /// Errors: as [`Store::gc`].
    pub async fn gc_dry_run(&self) -> Result<GcReport> {
        let _alone = self.core.gate.write().await;
        self.core.touches.prune();
        let touched = self.core.touches.recent();
        gc::collect(
            &self.core.contents,
            self.core.options.gc_grace_period(),
            touched,
            true,
        )
        .await
    }

    /// Checks the layout on disk: `oci-layout`; every blob re-hashed against its name; every
    /// `index.json` entry and every descriptor reachable from it present with the right size
    /// and, for manifests, parsable. Never modifies anything; runs beside other operations: a
    /// blob removed by a concurrent delete or gc is neither an error nor reported, and the walk
    /// of `index.json` sees one consistent state (it runs while no delete or gc of this store
    /// can, and is made again, up to three times, when another process changed `index.json`
    /// during a walk that found blobs missing). What `index.json` on disk names is checked:
    /// under `Manual` or `Debounce` autosave, unsaved changes are not.
    /// A name under `blobs/<alg>/` that is not a regular file (a symbolic link, directory, FIFO,
    /// socket or device) is never opened: it is reported in `corrupt`, with a warning saying
    /// what it is; an `index.json` or `oci-layout` that is one is a layout error.
    ///
    /// Errors: `InvalidLayout` when `blobs/` or `blobs/<alg>/` is a symbolic link or not a
    /// directory; `Io` when the layout cannot be listed or read.
    pub async fn fsck(&self) -> Result<FsckReport> {
        let layout = self.core.contents.layout().clone();
        // Re-hashing runs beside everything; the walk of `index.json` runs while no delete or
        // gc of this store can, so it sees one state of the index and what it names.
        let scan = spawn_blocking(move || fsck::scan(&layout)).await?;
        let layout = self.core.contents.layout().clone();
        let _gate = self.core.gate.read().await;
        let mut report = spawn_blocking(move || fsck::walk(&layout, scan)).await?;
        if let Some(note) = &self.core.open_note {
            report.warnings.insert(0, note.clone());
        }
        Ok(report)
    }
}

impl StoreCore {
    /// Records an index change and waits as the autosave policy says.
    async fn index_changed(&self) -> Result<()> {
        saved(self.saver.changed().await)
    }

    /// Makes published content known: a manifest (with the `successors` parsed from it) is
    /// indexed into the graph and recorded as an `index.json` entry, saved as the autosave
    /// policy says; other content (`successors` is `None`) goes into the graph only.
    ///
    /// Errors: `Io` from the save of `index.json` under `AutoSave::Always`.
    async fn record(&self, desc: &Descriptor, successors: Option<Vec<Descriptor>>) -> Result<()> {
        let contents = &self.contents;
        match successors {
            Some(successors) => {
                contents.graph().insert(desc, successors);
                contents.index().tag_digest(desc);
                self.index_changed().await
            }
            None => {
                contents.graph().insert(desc, Vec::new());
                Ok(())
            }
        }
    }

    /// Pushes `content` as `expected`; the caller holds the gate.
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let contents = &self.contents;
        let digest = descriptor::validate(expected)?;
        refuse_oversized_manifest(expected)?;
        let manifest = is_manifest(expected);
        if contents.stat(&digest)?.is_some() {
            // Written before by us, another process or a crashed run: make sure the graph knows
            // it (oras-go could never index such a manifest again).
            if manifest && !contents.graph().contains(digest.as_str()) {
                if let Ok(()) = contents.learn(expected).await {
                    contents.index().tag_digest(expected);
                    self.index_changed().await?;
                }
            }
            return Err(Error::already_exists(&digest));
        }
        let blobs = contents.blobs();
        if manifest {
            let body = blob::ingest::read_verified(&digest, expected.size(), content).await?;
            let media_type = expected.media_type().to_string();
            let successors = parse_successors(digest.as_str(), &media_type, &body)?;
            blob::ingest::commit_bytes(blobs, &digest, body).await?;
            self.record(expected, Some(successors)).await
        } else {
            if expected.size() <= IN_MEMORY_LIMIT_BYTES {
                let body = blob::ingest::read_verified(&digest, expected.size(), content).await?;
                blob::ingest::commit_bytes(blobs, &digest, body).await?;
            } else {
                blob::ingest::ingest_stream(blobs, &digest, expected.size(), content).await?;
            }
            self.record(expected, None).await
        }
    }

    /// Tags `desc` as `reference`; the caller holds the gate.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        reference::require_reference("tag", reference)?;
        let contents = &self.contents;
        let digest = descriptor::validate(desc)?;
        reference::check_tag(reference, &digest)?;
        let Some(size) = contents.stat(&digest)? else {
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
        contents.learn(desc).await?;
        contents.index().tag_digest(desc);
        if reference != digest.as_str() {
            contents.index().tag(desc.clone(), reference);
        }
        self.index_changed().await
    }

    /// Deletes `target` (and, with auto GC, its cascade); the caller holds the gate alone.
    /// `index.json` is written before anything is unlinked, whatever the autosave policy.
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let contents = &self.contents;
        self.touches.prune();
        let doomed =
            delete::doomed(contents, target, self.options.is_auto_gc(), &self.touches).await?;
        let forgotten = delete::forget(contents, &doomed);
        if !forgotten.is_empty() {
            // Recorded as a change (under `Always` this is the write itself).
            if let Err(e) = self.index_changed().await {
                // Nothing was unlinked yet: put what was forgotten back so memory matches disk.
                delete::restore(contents, forgotten);
                return Err(e);
            }
        }
        // Under `Manual` and `Debounce` too: a crash after the unlinks must not leave an
        // `index.json` naming what they removed. Even with nothing forgotten now, an earlier
        // unsaved untag may have dropped the last reference to a doomed digest that the file on
        // disk still names.
        if let Err(e) = saved(self.saver.flush_now().await) {
            delete::restore(contents, forgotten);
            return Err(e);
        }
        delete::unlink(contents, &doomed).await
    }

    /// Records that a push or commit of `desc` ended with `result`: stored, or found already
    /// stored (whose file then gets a fresh modification time, so that other processes see it
    /// as young too). See [`in_flight`].
    fn touched(&self, desc: &Descriptor, result: &Result<()>) {
        if !self.touches.is_on() {
            return;
        }
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                if let Ok(digest) = descriptor::validate(desc) {
                    in_flight::refresh_mtime(&self.contents.blobs().path(&digest));
                }
            }
            Err(_) => return,
        }
        self.touches.touch(desc.digest().as_ref());
    }
}

#[async_trait]
impl CommitStaged for StoreCore {
    async fn commit_staged(&self, staging: &str, desc: &Descriptor) -> Result<()> {
        let _gate = self.gate.read().await;
        let digest = descriptor::validate(desc)?;
        refuse_oversized_manifest(desc)?;
        let successors = if is_manifest(desc) {
            let layout = self.contents.layout().clone();
            let name = staging.to_string();
            let body = spawn_blocking(move || {
                let ingest = blob::ingest_dir(&layout, false)?;
                let path = layout.ingest_path().join(&name);
                layout::read_file_in(ingest, &path, &name, Some(descriptor::MAX_MANIFEST_SIZE))?
                    .ok_or_else(|| Error::not_found(path.display()))
            })
            .await?;
            Some(parse_successors(
                digest.as_str(),
                desc.media_type().as_ref(),
                &body,
            )?)
        } else {
            None
        };
        let published =
            blob::publish::publish_staged(self.contents.blobs(), staging, &digest).await;
        match &published {
            // Same digest, same bytes: stored before by a push, a commit or another process.
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.clone()),
        }
        self.record(desc, successors).await?;
        self.touched(desc, &published);
        Ok(())
    }
}

#[async_trait]
impl Fetcher for Store {
    /// Opens the blob of `target` for a verified read (size and digest checked as it is read).
    /// A reader opened before a delete or gc removes the blob keeps reading the complete,
    /// verified content (POSIX unlink semantics: the open file outlives its name); a fetch
    /// started after the removal gets `NotFound`.
    ///
    /// Errors: `InvalidDigest`; `NotFound`; `Mismatch` (size now, digest while reading);
    /// `InvalidLayout` for a symbolic link; `Io`.
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let _gate = self.core.gate.read().await;
        self.core.contents.fetch(target).await
    }
}

#[async_trait]
impl ReadOnlyStorage for Store {
    /// Whether the blob of `target` is stored. One found is remembered as touched, as a push
    /// that finds it is: a copy skips what `exists` finds, and until the copy's manifest
    /// arrives, a delete's cascade spares it (see [`Deleter::delete`](Store#method.delete)).
    ///
    /// Errors: `InvalidDigest`; `Io` when the path cannot be inspected.
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let digest = descriptor::validate(target)?;
        let _gate = self.core.gate.read().await;
        let found = self.core.contents.stat(&digest)?.is_some();
        if found {
            // A copy checks `exists` and skips what is there: what it found, the image it is
            // copying needs (see `in_flight`).
            self.core.touches.touch(digest.as_str());
        }
        Ok(found)
    }
}

#[async_trait]
impl Pusher for Store {
    /// Verifies and stores `content` as `expected`; see the README section on the layout store.
    /// A push that finds the blob already stored returns `AlreadyExists` and makes the blob
    /// young again: its file's modification time is set to now (best effort), so that `gc`
    /// and other processes' deletes within [`StoreOptions::gc_grace`] spare it, and this
    /// store's delete cascade spares it too until the manifest that needs it arrives.
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit`, `Mismatch`, `InvalidManifest`,
    /// `AlreadyExists`, `Io`.
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let _gate = self.core.gate.read().await;
        let result = self.core.push(expected, content).await;
        self.core.touched(expected, &result);
        result
    }
}

#[async_trait]
impl Resolver for Store {
    async fn resolve(&self, reference: &str) -> Result<Descriptor> {
        let contents = &self.core.contents;
        crate::resolve::resolve_reference(
            reference,
            contents.index(),
            contents.graph(),
            |digest| contents.stat(digest),
            self.root(),
        )
    }
}

#[async_trait]
impl Tagger for Store {
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let _gate = self.core.gate.read().await;
        self.core.tag(desc, reference).await
    }
}

#[async_trait]
impl Untagger for Store {
    async fn untag(&self, reference: &str) -> Result<()> {
        reference::require_reference("untag", reference)?;
        let _gate = self.core.gate.read().await;
        let index = self.core.contents.index();
        let Some(desc) = index.resolve(reference) else {
            return Err(Error::not_found(format!("reference {reference:?}")));
        };
        if reference == desc.digest().as_ref() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a digest is not a tag; delete the content instead".into(),
            });
        }
        index.untag(reference);
        self.core.index_changed().await
    }
}

#[async_trait]
impl TagLister for Store {
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        Ok(self.core.contents.index().tags(last))
    }
}

#[async_trait]
impl PredecessorFinder for Store {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<Descriptor>> {
        Ok(self.core.contents.graph().predecessors(node))
    }
}

#[async_trait]
impl Deleter for Store {
    /// Deletes `target`; with auto GC ([`StoreOptions::auto_gc`], the default) also its
    /// referrers (tagged or not, as oras-go does) and every blob left with no predecessor and
    /// no tag. The cascade is worked out first (linear in the nodes and edges it visits), then
    /// `index.json` is written without the deleted entries, under every autosave policy (the
    /// one exception to `Manual` and `Debounce`; other pending changes are written with it),
    /// and only then are files unlinked: a crash at any point never leaves `index.json` naming
    /// a removed blob. Runs alone (no push, tag or read of this store meanwhile).
    ///
    /// Content in flight: the cascade spares a blob that a push (stored, or found already
    /// there), a [`BlobWriter`] commit or an `exists` that found it touched after every deleted
    /// manifest that lists it was pushed, less than [`StoreOptions::gc_grace`] ago: an image
    /// being copied in (layers first, manifest last) keeps the layers it shares with the
    /// deleted one. Such blobs are left to [`Store::gc`]. In this process the order is exact;
    /// across processes it is read from the files' modification times. With `gc_grace` zero
    /// nothing is spared: tasks of one process that push an image sharing blobs with one being
    /// deleted race, and must order themselves.
    ///
    /// A reader opened before the delete keeps reading the complete, verified content (POSIX
    /// unlink semantics); a fetch started after it gets `NotFound`.
    ///
    /// Errors: `InvalidDigest`; `NotFound` when `target` is not stored; `Io` from the write of
    /// `index.json` (nothing is removed then) or from an unlink; fetch and parse errors of a
    /// present manifest.
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let _alone = self.core.gate.write().await;
        self.core.delete(target).await
    }
}
