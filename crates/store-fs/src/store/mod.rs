//! [`Store`]: the read/write OCI image layout store.
//!
//! This file is the store's top: every public operation starts here, takes the store's gate
//! (shared for the publish step of pushes and commits, tags and reads; exclusive for delete and
//! gc; never while a push reads its content), and records index changes through the autosave
//! engine. The submodules do one job each and never use this file:
//! [`contents`] (what the store holds and how `index.json` is read and written), [`delete`] (the
//! cascade), [`gc`] (mark and sweep), [`fsck`] (the consistency check), [`in_flight`] (what
//! pushes touched lately, which delete and gc spare).
//!
//! A push, top-down: [`Store::push`](Pusher::push) checks the descriptor and the manifest size
//! limit, then [`crate::blob::ingest`] verifies the bytes (in memory or staged in `ingest/`),
//! and [`StoreCore::publish_and_record`], under the gate, links them into `blobs/` with
//! [`crate::blob::publish`], indexes a manifest into the graph and records it in
//! [`crate::index::state`]; the autosave engine then saves `index.json`
//! ([`contents::Contents::write_index`]). A [`BlobWriter`] commit joins the same path at
//! the publish step ([`StoreCore::commit_staged`]). A tag: [`Store::tag`](Tagger::tag) checks the
//! reference with [`store_core::reference::check_tag`], the blob's presence and size, records
//! the tag in [`crate::index::state`], and saves the same way.

pub(crate) mod contents;
pub(crate) mod delete;
pub(crate) mod fsck;
pub(crate) mod gc;
pub(crate) mod in_flight;

use crate::blob::ingest::{Check, Content};
use crate::blob::publish::{Ready, Staging};
use crate::blob::writer::{BlobWriter, CommitStaged};
use crate::blob::{self, IN_MEMORY_LIMIT_BYTES};
use crate::fsutil::spawn_blocking;
use crate::index::state::Undo;
use crate::layout;
use crate::options::StoreOptions;
use async_trait::async_trait;
use autosave::{AutoSaver, Saved};
use contents::{refuse_oversized_manifest, Contents, IndexFlusher};
use fsck::FsckReport;
use gc::GcReport;
use in_flight::Touches;
use oci_spec::image::{Descriptor, MediaType};
use std::path::Path;
use std::sync::Arc;
use store_core::content::{BoxReader, Fetched};
use store_core::copy::{ShareRequest, StoredAs};
use store_core::descriptor::{self, is_manifest};
use store_core::manifest::parse_successors;
use store_core::{
    reference, Deleter, Error, ErrorKind, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage,
    ReferencePusher, Resolver, Result, SharedDescriptor, TagLister, Tagger, Untagger,
};
use tokio::sync::RwLock;

/// An OCI image layout directory as a `GraphTarget + Deleter + Untagger + TagLister`.
///
/// Blobs are streamed in and out with constant memory, verified on both ways, and published
/// atomically; `index.json` is written atomically, when the [`autosave::AutoSave`] policy says.
/// Pushes, tags, reads and [`BlobWriter`] commits run concurrently; `delete` and `gc` run alone.
/// Pushes stream their content without holding any lock; only the final publish (a link and the
/// index record, one unit) waits for a running `delete` or `gc`. A slow or stalled client delays
/// nobody else, and `gc` never sweeps the staging file of a push or writer of this store still
/// in flight, whatever the grace period.
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
    /// Shared by the publish step of pushes and commits, tags and reads; exclusive for delete
    /// and gc. In an `Arc` so that a publish step moves its guard onto the thread that runs it.
    gate: Arc<RwLock<()>>,
    /// In an `Arc` so that a publish step records its change on the thread that runs it.
    saver: Arc<AutoSaver<IndexFlusher>>,
    /// Blobs pushes touched within the gc grace period, which delete's cascade spares. In an
    /// `Arc` so that a publish step records its touch on the thread that runs it.
    touches: Arc<Touches>,
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

/// Names nodes opening could not index, with why (the first few).
fn describe_unindexed(unindexed: &[(Descriptor, Error)]) -> String {
    const SHOWN: usize = 3;
    let mut out: Vec<String> = unindexed
        .iter()
        .take(SHOWN)
        .map(|(desc, e)| format!("{} ({e})", desc.digest()))
        .collect();
    if unindexed.len() > SHOWN {
        out.push(format!("and {} more", unindexed.len() - SHOWN));
    }
    format!(
        "{} {} that could not be indexed at open: {}",
        unindexed.len(),
        if unindexed.len() == 1 {
            "manifest"
        } else {
            "manifests"
        },
        out.join(", ")
    )
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
    /// Loading trusts nothing on disk, and one bad entry is refused only where it is used: a
    /// manifest that cannot be indexed (its entry gives the wrong size, its body is corrupt or
    /// does not parse) is left out of the graph. Its tag still resolves to the descriptor as
    /// written; fetching it fails (`Mismatch`...); [`Store::fsck`] reports it; [`Store::gc`]
    /// refuses to run while such an entry is in use (what it reaches is unknown) and `delete`
    /// removes only its target, without the auto-GC cascade. An `index.json` larger than
    /// [`crate::MAX_INDEX_JSON_SIZE`] is refused before it is read.
    ///
    /// Errors: `InvalidLayout` when `root` is a file rather than a directory (a tar archive of a
    /// layout opens with [`crate::ReadOnlyStore::open`]), for a bad `oci-layout`, an empty or
    /// non-JSON `index.json` or an entry in it that is not a descriptor, naming `blobs/`,
    /// `blobs/<alg>/`, `ingest/`, `index.json`, `index.json.lock` or `oci-layout` when it is a
    /// symbolic link or not of its type (a FIFO `index.json`, say: it is never opened for a
    /// blocking read); `SizeExceedsLimit` for an `index.json` beyond
    /// [`crate::MAX_INDEX_JSON_SIZE`]; `UnsupportedVersion`; `Io` naming the path.
    pub async fn open_with(root: impl AsRef<Path>, options: StoreOptions) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        let durable = options.is_durable();
        let (layout, open_note) =
            spawn_blocking(move || layout::prepare_root(&root, durable)).await?;
        let contents = Arc::new(Contents::new(layout, durable));
        let (doc, bytes) = contents.read_or_create_index().await?;
        contents.load(doc, bytes).await?;
        let saver = Arc::new(AutoSaver::new(
            Arc::new(IndexFlusher::new(Arc::clone(&contents))),
            options.autosave_policy(),
        ));
        Ok(Store {
            core: Arc::new(StoreCore {
                contents,
                options,
                gate: Arc::new(RwLock::new(())),
                saver,
                touches: Arc::new(Touches::new(options.gc_grace_period())),
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
        // A publish step still running on the blocking pool holds the saver for a moment.
        match Arc::try_unwrap(self.core).map(|core| Arc::try_unwrap(core.saver)) {
            Ok(Ok(saver)) => saved(saver.close().await),
            Ok(Err(saver)) => saved(saver.flush_now().await),
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
    /// they reach), anything under `blobs/` that is not a file named like a digest, and the
    /// staging file of a push or [`BlobWriter`] of this store in flight. Saves the pruned
    /// `index.json` before it removes any file, whatever the autosave policy. Runs alone: no
    /// tag, read or publish step of a push or commit meanwhile (pushes go on streaming their
    /// content, and publish once it is done). A reader opened before the removal of its blob
    /// keeps reading the complete, verified content (POSIX unlink semantics); a fetch started
    /// after it gets `NotFound`.
    ///
    /// Errors: `InvalidLayout` naming `index.json` while an entry opening could not index is in
    /// use (see [`Store::open_with`]; nothing is removed); `Io` from the sweep or the save;
    /// `InvalidLayout` when `blobs/<alg>/`, `ingest/`, `index.json` or `index.json.lock` is a
    /// symbolic link or of the wrong type (nothing is swept through it); fetch and parse errors
    /// of a present manifest.
    pub async fn gc(&self) -> Result<GcReport> {
        let _alone = self.core.gate.write().await;
        let unindexed = self.core.contents.unindexed_in_use();
        if !unindexed.is_empty() {
            return Err(Error::InvalidLayout {
                path: self.core.contents.layout().path_of(layout::INDEX_FILE),
                reason: format!(
                    "gc refused: what {} reaches is unknown, so gc cannot tell what it may \
                     remove; fix or remove {} (fsck reports {}) and reopen the store",
                    describe_unindexed(&unindexed),
                    if unindexed.len() == 1 { "it" } else { "them" },
                    if unindexed.len() == 1 { "it" } else { "them" },
                ),
            });
        }
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

    /// The publish step of a push or a commit: under the shared gate, links `ready` into
    /// `blobs/` and makes it known (a manifest, with the `successors` parsed from it, is indexed
    /// into the graph and recorded as an `index.json` entry; other content, `successors` being
    /// `None`, goes into the graph only), then waits for the save as the autosave policy says,
    /// without the gate.
    ///
    /// The link and the record are one unit that a dropped future cannot split: it runs on one
    /// thread, which also holds the gate guard, so no `delete` or `gc` can come between them and
    /// a cancelled push whose file was published still records it. With `existing_ok` (a
    /// commit), content already stored under the digest is recorded too. With a `reference`, a
    /// manifest is tagged in the same change (one save for both); when that save fails, the tag
    /// is taken back.
    ///
    /// Errors: `AlreadyExists` (unless `existing_ok`) when another writer published it first;
    /// `Io` from the publish or from the save of `index.json` under `AutoSave::Always`.
    async fn publish_and_record(
        &self,
        ready: Ready,
        desc: &Descriptor,
        successors: Option<Vec<Descriptor>>,
        existing_ok: bool,
        reference: Option<&str>,
    ) -> Result<()> {
        let gate = Arc::clone(&self.gate).read_owned().await;
        let reference = reference.map(str::to_owned);
        let contents = Arc::clone(&self.contents);
        let saver = Arc::clone(&self.saver);
        let touches = Arc::clone(&self.touches);
        let desc = desc.clone();
        let inline = ready.runs_inline();
        let unit = move || -> Result<Option<(Saved<Error>, Option<Undo>)>> {
            let _gate = gate;
            let published = ready.publish();
            match &published {
                Ok(()) => {}
                Err(e) if existing_ok && e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => {
                    // Another writer stored it first: still touched (see `in_flight`).
                    touched(&touches, &contents, &desc, &published);
                    return Err(e.clone());
                }
            }
            let manifest = successors.is_some();
            contents
                .graph()
                .insert(&desc, successors.unwrap_or_default());
            // Under the gate, after the record: a delete's cascade sees both or neither.
            touched(&touches, &contents, &desc, &published);
            if !manifest {
                return Ok(None);
            }
            contents.index().tag_digest(&desc);
            let undo = reference.and_then(|r| contents.index().tag_with_undo(&desc, &r));
            // Recorded now, on this thread; the engine saves it even if nobody awaits.
            Ok(Some((saver.changed(), undo)))
        };
        let pending = if inline {
            unit()?
        } else {
            spawn_blocking(unit).await?
        };
        match pending {
            Some((pending, undo)) => {
                let result = saved(pending.await);
                if let (Err(_), Some(undo)) = (&result, undo) {
                    self.contents.index().undo(undo);
                }
                result
            }
            None => Ok(()),
        }
    }

    /// Pushes `content` as `expected`, checked as `check` says. The content streams without the
    /// gate; only the check for stored content and the publish step take it (shared).
    async fn push(
        &self,
        expected: &Descriptor,
        content: Content,
        check: Check,
        reference: Option<&str>,
    ) -> Result<()> {
        let contents = &self.contents;
        let digest = descriptor::validate(expected)?;
        refuse_oversized_manifest(expected)?;
        let manifest = is_manifest(expected);
        {
            let _gate = self.gate.read().await;
            if contents.stat(&digest)?.is_some() {
                // Written before by us, another process or a crashed run: make sure the graph
                // knows it (oras-go could never index such a manifest again).
                if manifest && !contents.graph().contains(digest.as_str()) {
                    if let Ok(()) = contents.learn(expected).await {
                        contents.index().tag_digest(expected);
                        self.index_changed().await?;
                    }
                }
                let found = Err(Error::already_exists(&digest));
                touched(&self.touches, contents, expected, &found);
                return found;
            }
        }
        let blobs = contents.blobs();
        if manifest {
            let body =
                blob::ingest::read_verified(&digest, expected.size(), content.into_reader(), check)
                    .await?;
            let media_type = expected.media_type().to_string();
            let successors = parse_successors(digest.as_str(), &media_type, &body)?;
            let ready = Ready::from_bytes(blobs, &digest, body)?;
            self.publish_and_record(ready, expected, Some(successors), false, reference)
                .await
        } else {
            let ready = if expected.size() <= IN_MEMORY_LIMIT_BYTES {
                let body = blob::ingest::read_verified(
                    &digest,
                    expected.size(),
                    content.into_reader(),
                    check,
                )
                .await?;
                Ready::from_bytes(blobs, &digest, body)?
            } else {
                blob::ingest::ingest_stream(blobs, &digest, expected.size(), content, check).await?
            };
            self.publish_and_record(ready, expected, None, false, None)
                .await?;
            match reference {
                Some(reference) => {
                    // Tagged as `Store::tag` does: under the shared gate.
                    let _gate = self.gate.read().await;
                    self.tag(expected, reference).await
                }
                None => Ok(()),
            }
        }
    }

    /// Stores the blob `expected` by sharing `source`, another layout's file of it, as
    /// `request` allows (see [`blob::share`]); answers the request with how it was stored.
    /// `Ok(false)` (the request answered with why) when the bytes must be streamed instead: a
    /// manifest or a small blob, a file system without reflinks...
    ///
    /// Errors: `Mismatch` when the source's file is not the blob; `AlreadyExists` when the blob
    /// is stored; `Io`.
    async fn push_shared(
        &self,
        expected: &Descriptor,
        source: std::fs::File,
        request: &ShareRequest,
    ) -> Result<bool> {
        let digest = descriptor::validate(expected)?;
        if is_manifest(expected) || expected.size() <= IN_MEMORY_LIMIT_BYTES {
            request.answer(StoredAs::Streamed(
                "manifests and blobs up to 256 KiB are written, not shared".into(),
            ));
            return Ok(false);
        }
        let contents = Arc::clone(&self.contents);
        let (size, asked) = (expected.size(), request.clone());
        let shared = spawn_blocking(move || {
            blob::share::share(contents.blobs(), &digest, size, &source, &asked)
        })
        .await?;
        match shared {
            blob::share::Shared::Ready(ready, how) => {
                self.publish_and_record(ready, expected, None, false, None)
                    .await?;
                request.answer(how);
                Ok(true)
            }
            blob::share::Shared::Stream(why) => {
                request.answer(StoredAs::Streamed(why));
                Ok(false)
            }
        }
    }

    /// Tags `desc` as `reference`; the caller holds the gate.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let digest = reference::check_tagging(desc, reference)?;
        let contents = &self.contents;
        reference::require_stored(desc, &digest, contents.stat(&digest)?)?;
        contents.learn(desc).await?;
        let undo = contents.index().tag_with_undo(desc, reference);
        self.changed_or_undo(undo).await
    }

    /// Records an index change made by a tag or untag and waits as the autosave policy says;
    /// when the save fails, puts the change back in memory before returning the error, so that
    /// an error means nothing changed. The engine stays dirty, so the next write saves the
    /// rolled-back state (and replaces a failed write that in fact reached the disk).
    ///
    /// Errors: those of the save.
    async fn changed_or_undo(&self, undo: Option<Undo>) -> Result<()> {
        let result = self.index_changed().await;
        if result.is_err() {
            if let Some(undo) = undo {
                self.contents.index().undo(undo);
            }
        }
        result
    }

    /// Deletes `target` (and, with auto GC, its cascade); the caller holds the gate alone.
    /// `index.json` is written before anything is unlinked, whatever the autosave policy.
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let contents = &self.contents;
        self.touches.prune();
        // What an entry opening could not index reaches is unknown: the cascade could remove
        // its content, so only the target goes while there is one.
        let cascade = self.options.is_auto_gc() && contents.unindexed_in_use().is_empty();
        let doomed = delete::doomed(contents, target, cascade, &self.touches).await?;
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
}

/// Records that a push or commit of `desc` ended with `result`: stored, or found already stored
/// (whose file then gets a fresh modification time, so that other processes see it as young
/// too). Called under the gate, right after the record, so that no delete comes between them.
/// See [`in_flight`].
fn touched(touches: &Touches, contents: &Contents, desc: &Descriptor, result: &Result<()>) {
    if !touches.is_on() {
        return;
    }
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            if let Ok(digest) = descriptor::validate(desc) {
                in_flight::refresh_mtime(&contents.blobs().path(&digest));
            }
        }
        Err(_) => return,
    }
    touches.touch(desc.digest().as_ref());
}

#[async_trait]
impl CommitStaged for StoreCore {
    async fn commit_staged(&self, staging: Staging, desc: &Descriptor) -> Result<()> {
        let digest = descriptor::validate(desc)?;
        refuse_oversized_manifest(desc)?;
        let successors = if is_manifest(desc) {
            let layout = self.contents.layout().clone();
            let name = staging.name().to_string();
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
        let ready = Ready::from_file(self.contents.blobs(), &digest, staging, desc.size())?;
        // Same digest, same bytes: content stored before by a push, a commit or another
        // process counts as committed.
        self.publish_and_record(ready, desc, successors, true, None)
            .await
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

    /// [`Fetcher::fetch`], vouching for its verifying reader (a destination need not hash the
    /// content again) and, for a blob over 256 KiB, offering its file, which another layout
    /// store on the same file system can share instead of streaming the bytes (see
    /// [`FileSharing`](store_core::copy::FileSharing)).
    ///
    /// Errors: those of [`Fetcher::fetch`].
    async fn fetch_checked(&self, target: &Descriptor) -> Result<Fetched> {
        let digest = descriptor::validate(target)?;
        let _gate = self.core.gate.read().await;
        let blobs = self.core.contents.blobs();
        let (reader, file) = blob::read::open_shareable(blobs, &digest, target.size()).await?;
        let fetched = Fetched::vouched(reader, digest, target.size());
        Ok(match file {
            Some(file) => fetched.with_file(file),
            None => fetched,
        })
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
        self.core
            .push(expected, Content::Reader(content), Check::Hash, None)
            .await
    }

    /// Like [`Store::push`]; content that checks itself against `expected` (a registry's
    /// verified blob stream in a copy, say) is not hashed a second time, and content that comes
    /// as chunks is written out as it came, without a copy into buffers of the store's own.
    async fn push_fetched(&self, expected: &Descriptor, mut content: Fetched) -> Result<()> {
        if let Some((file, request)) = content.take_shareable_file() {
            if self.core.push_shared(expected, file, &request).await? {
                return Ok(());
            }
        }
        let check = if content.checks(expected) {
            Check::Reader
        } else {
            Check::Hash
        };
        self.core
            .push(expected, content.into_body(), check, None)
            .await
    }
}

impl Store {
    /// [`Resolver::resolve`], called on a `Store` itself rather than through a trait object:
    /// the same answer without the boxed future every `async_trait` method returns (a third of
    /// the cost of resolving a tag).
    ///
    /// Errors: `MissingReference` for an empty reference; `NotFound` for an unknown tag or
    /// digest; `Io` when the blob of a digest cannot be inspected.
    pub async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
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
impl Resolver for Store {
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        Store::resolve(self, reference).await
    }
}

#[async_trait]
impl Tagger for Store {
    /// Points `reference` at `desc`, whose blob must be stored with that size.
    ///
    /// On an error saving `index.json` (under `AutoSave::Always`) the change is undone in
    /// memory before the error is returned: an error means nothing changed. Under `Manual` and
    /// `Debounce` the change is applied at once and a failed save is reported by
    /// [`Store::save_index`] or [`Store::close`], the changes staying pending.
    ///
    /// Errors: `MissingReference`, `InvalidReference`, `InvalidDescriptor`; `NotFound` when the
    /// blob is not stored; `Mismatch` for another size; `Io` from the save.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let _gate = self.core.gate.read().await;
        self.core.tag(desc, reference).await
    }

    fn as_reference_pusher(&self) -> Option<&dyn ReferencePusher> {
        Some(self)
    }
}

#[async_trait]
impl ReferencePusher for Store {
    /// Verifies and stores `content` as `expected` and points `reference` at it: for a
    /// manifest, one change (under `AutoSave::Always`, one `index.json` write where a push and
    /// a tag make two). Content already stored is tagged. On an error saving `index.json` the
    /// tag is taken back (the pushed content stays, recorded, as after a push).
    ///
    /// Errors: those of [`Store::push`] but `AlreadyExists`, and those of [`Store::tag`].
    async fn push_reference(
        &self,
        expected: &Descriptor,
        content: BoxReader,
        reference: &str,
    ) -> Result<()> {
        reference::check_tagging(expected, reference)?;
        let pushed = self
            .core
            .push(
                expected,
                Content::Reader(content),
                Check::Hash,
                Some(reference),
            )
            .await;
        match pushed {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => self.tag(expected, reference).await,
            other => other,
        }
    }
}

#[async_trait]
impl Untagger for Store {
    /// Removes the tag `reference` (the content stays).
    ///
    /// On an error saving `index.json` (under `AutoSave::Always`) the tag is put back in memory
    /// before the error is returned: an error means nothing changed. Under `Manual` and
    /// `Debounce` the removal is applied at once and a failed save is reported by
    /// [`Store::save_index`] or [`Store::close`], the change staying pending.
    ///
    /// Errors: `MissingReference`; `NotFound` for an unknown reference; `InvalidReference` for
    /// a digest; `Io` from the save.
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
        let undo = index.untag(reference);
        self.core.changed_or_undo(undo).await
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
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
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
