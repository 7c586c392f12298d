//! [`ReadOnlyStore`]: an OCI image layout directory, or an uncompressed tar of one, opened for
//! reading only.

pub(crate) mod tar;

use crate::blob::read::StoreReads;
use crate::blob::{self, Blobs};
use crate::fsutil::spawn_blocking;
use crate::index::codec::{parse_index, IndexDocument, PlainRoots, MAX_INDEX_JSON_SIZE};
use crate::index::state::IndexState;
use crate::layout::{self, Layout, LAYOUT_FILE_LIMIT_BYTES};
use async_trait::async_trait;
use oci_spec::image::Descriptor;
use std::io;
use std::path::Path;
use store_core::content::BoxReader;
use store_core::descriptor;
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::{
    Error, Fetcher, PredecessorFinder, ReadOnlyStorage, Resolver, Result, SharedDescriptor,
    TagLister,
};
use tar::TarSource;

/// The blobs of a read-only store.
#[derive(Debug)]
enum Source {
    /// `blobs/<alg>/<hex>` under a layout directory; symbolic links are never followed.
    Dir(Blobs),
    /// Entries of an uncompressed tar archive.
    Tar(TarSource),
}

impl Source {
    /// The layout directory or the archive.
    fn path(&self) -> &Path {
        match self {
            Source::Dir(blobs) => blobs.layout().root(),
            Source::Tar(tar) => tar.path(),
        }
    }

    /// The size of the blob `digest`, or `None` when there is none (in a directory, a symbolic
    /// link or anything else that is not a regular file does not count). A single `lstat` or a
    /// map lookup: cheap enough for an async thread.
    ///
    /// Errors: `Io` when the directory cannot be inspected.
    fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        match self {
            Source::Dir(blobs) => blobs.stat(digest),
            Source::Tar(tar) => Ok(tar.stat(digest)),
        }
    }
}

#[async_trait]
impl Fetcher for Source {
    /// Opens the blob for a read that checks size and digest.
    ///
    /// Errors: `NotFound`; `Mismatch` when the stored size differs; `InvalidLayout` for a
    /// symbolic link or anything but a regular file in a directory; `Io`.
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        match self {
            Source::Dir(blobs) => blob::read::open(blobs, &digest, target.size()).await,
            Source::Tar(tar) => tar.open(&digest, target.size()).await,
        }
    }
}

/// The source read to index the graph at open: no use of the content, so a directory's files
/// keep their access times where they may (see [`StoreReads`]).
struct Indexing<'a>(&'a Source);

#[async_trait]
impl Fetcher for Indexing<'_> {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        match self.0 {
            Source::Dir(blobs) => StoreReads(blobs).fetch(target).await,
            Source::Tar(_) => self.0.fetch(target).await,
        }
    }
}

/// An OCI image layout opened read-only, from a directory or from an uncompressed tar of one
/// (entries named with or without a leading `./`): a `ReadOnlyGraphTarget + TagLister`.
///
/// Opening reads `oci-layout` and `index.json` and indexes every `index.json` entry into the
/// predecessor graph; after that the state never changes. Nothing is ever written: no
/// directory, no `index.json`, no lock. Fetches stream the blob (big ones in large chunks,
/// never whole in memory) through a reader that checks size and digest, so corrupted content
/// ends in `Mismatch` rather than in wrong bytes. Symbolic links inside a layout directory are
/// never followed (the directory itself may be one), and an archive holding links, absolute
/// paths or `..` entries is refused. Nothing in a layout directory can make it wait: files are
/// opened with `O_NONBLOCK` and read only when they are regular, so a blob, `index.json` or
/// `oci-layout` that is a link, directory, FIFO, socket or device is `InvalidLayout` naming it
/// (a blob path holding one does not count as the blob: `exists` is false).
///
/// Resolve, exists, predecessors and tags follow the same contract as [`crate::Store`]'s.
pub struct ReadOnlyStore {
    source: Source,
    index: IndexState,
    graph: MemoryGraph,
    /// The `index.json` entries as read, in the file's order.
    entries: Vec<Descriptor>,
}

impl std::fmt::Debug for ReadOnlyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadOnlyStore")
            .field("path", &self.path())
            .field("archive", &self.is_archive())
            .field("nodes", &self.graph.len())
            .finish()
    }
}

/// Checks `oci-layout` and parses `index.json`, given how to read a file of the layout.
///
/// Errors: `InvalidLayout` naming the file when either is missing or invalid,
/// `UnsupportedVersion`, and those of `read`.
fn check_layout(
    root: &Path,
    read: impl Fn(&str, Option<u64>) -> Result<Option<Vec<u8>>>,
) -> Result<IndexDocument> {
    let layout_path = root.join("oci-layout");
    let Some(bytes) = read("oci-layout", Some(LAYOUT_FILE_LIMIT_BYTES))? else {
        return Err(Error::InvalidLayout {
            path: layout_path,
            reason: "missing: an OCI image layout needs an oci-layout file".into(),
        });
    };
    layout::check_layout_bytes(&layout_path, &bytes)?;
    let index_path = root.join("index.json");
    let Some(bytes) = read("index.json", Some(MAX_INDEX_JSON_SIZE))? else {
        return Err(Error::InvalidLayout {
            path: index_path,
            reason: "missing: an OCI image layout needs an index.json file".into(),
        });
    };
    parse_index(&index_path, &bytes.into())
}

/// Opens the source at `path` and reads its index (blocking).
fn open_source(path: &Path) -> Result<(Source, IndexDocument)> {
    let absolute = std::path::absolute(path)
        .map_err(|e| Error::io(format!("making {} absolute", path.display()), e))?;
    let meta = match std::fs::metadata(&absolute) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::not_found(absolute.display()))
        }
        Err(e) => return Err(Error::io(format!("inspecting {}", absolute.display()), e)),
    };
    if meta.is_dir() {
        let layout = Layout::open(absolute)?;
        // Opening the blob directories now refuses a link there at once (and keeps the handles);
        // ingest/ is never used.
        layout.open_dirs(false)?;
        let root = layout.root().to_path_buf();
        let doc = check_layout(&root, |name, limit| layout.read_file(name, limit))?;
        Ok((Source::Dir(Blobs::new(layout, false)), doc))
    } else if meta.is_file() {
        let tar = TarSource::scan(&absolute)?;
        let doc = check_layout(&absolute, |name, limit| {
            tar.read_entry(name, limit.unwrap_or(u64::MAX))
        })?;
        Ok((Source::Tar(tar), doc))
    } else {
        Err(Error::InvalidLayout {
            path: absolute,
            reason: "neither a layout directory nor a tar archive of one".into(),
        })
    }
}

impl ReadOnlyStore {
    /// Opens the layout at `path`: a directory, or a file holding an uncompressed tar of a
    /// layout. `oci-layout` and `index.json` must exist and be valid; every `index.json` entry
    /// is then indexed into the predecessor graph. An entry whose manifest is missing, has
    /// another size than the entry says, or does not parse is tolerated and left out of the
    /// graph: its tags still resolve, and fetching it fails (`NotFound`, `Mismatch`...), so one
    /// bad entry is refused only where it is used. Nothing is written.
    ///
    /// Errors: `NotFound` when `path` does not exist; `InvalidLayout` naming the file for a
    /// missing or non-JSON `oci-layout`, a missing, empty or non-JSON `index.json` or an entry
    /// in it that is not a descriptor, a symbolic link where a layout file or blob directory
    /// should be, an `oci-layout` or `index.json` that is not a regular file (a FIFO, say: never
    /// opened for a blocking read), bytes that are not a tar archive, or an archive entry that is
    /// a link, has an absolute path or a `..` component (naming the entry); `SizeExceedsLimit`
    /// for an `index.json` beyond [`crate::MAX_INDEX_JSON_SIZE`]; `UnsupportedVersion` for an
    /// `oci-layout` version other than "1.0.0"; `Unsupported` for a sparse archive entry; `Io`.
    pub async fn open(path: impl AsRef<Path>) -> Result<ReadOnlyStore> {
        let path = path.as_ref().to_path_buf();
        let (source, doc) = spawn_blocking(move || open_source(&path)).await?;
        let index = IndexState::default();
        index.load(&doc);
        let entries = doc
            .entries
            .iter()
            .filter_map(|entry| entry.held.descriptor())
            .collect();
        let graph = MemoryGraph::new();
        let roots = PlainRoots::new(std::sync::Arc::new(doc));
        // Never fails: what could not be indexed is refused when it is fetched.
        let _skipped = graph.index_roots_tolerant(&Indexing(&source), roots).await;
        Ok(ReadOnlyStore {
            source,
            index,
            graph,
            entries,
        })
    }

    /// The absolute path of the layout directory or of the archive.
    pub fn path(&self) -> &Path {
        self.source.path()
    }

    /// Whether the store reads a tar archive (rather than a directory).
    pub fn is_archive(&self) -> bool {
        matches!(self.source, Source::Tar(_))
    }

    /// The entries of `index.json` exactly as read, in the file's order, untagged ones
    /// included. A tagged entry carries its tag in the `org.opencontainers.image.ref.name`
    /// annotation; an untagged one has none and resolves only by its digest. An archive written
    /// by `skopeo copy ... oci-archive:FILE` has no `ref.name` at all, so [`TagLister::tags`] is
    /// empty and this is the way to find its image. Never fails: the entries are in memory.
    pub fn entries(&self) -> Vec<Descriptor> {
        self.entries.clone()
    }
}

#[async_trait]
impl Fetcher for ReadOnlyStore {
    /// Opens the blob `target` names for a read that checks size and digest as it goes (a
    /// corrupted blob ends in `Mismatch` at the end of the read).
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit` for a size beyond 2^48, `NotFound`,
    /// `Mismatch` when the stored size differs from `target`'s, `InvalidLayout` naming the
    /// blob's path when it holds anything but a regular file (a symbolic link, never followed;
    /// a directory, FIFO, socket or device, never opened for reading), `Io`.
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        self.source.fetch(target).await
    }
}

#[async_trait]
impl ReadOnlyStorage for ReadOnlyStore {
    /// Whether a blob with `target`'s digest is stored (a symbolic link, or anything else that
    /// is not a regular file, does not count). One `lstat`.
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit`, `InvalidLayout` when a `blobs/<alg>/`
    /// created since the open is a symbolic link, `Io`; never `NotFound`.
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let digest = descriptor::validate(target)?;
        Ok(self.source.stat(&digest)?.is_some())
    }
}

#[async_trait]
impl Resolver for ReadOnlyStore {
    /// A tag gives the descriptor of its `index.json` entry as written; the digest of an
    /// `index.json` entry, or of a manifest reachable from one, its plain descriptor; the digest
    /// of any other blob present (layers and configs included) `application/octet-stream` with
    /// the blob's size.
    ///
    /// Errors: `MissingReference` for an empty reference, `NotFound` otherwise (saying so, and
    /// pointing to [`ReadOnlyStore::entries`], when every `index.json` entry is untagged).
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        crate::resolve::resolve_reference(
            reference,
            &self.index,
            &self.graph,
            |digest| self.source.stat(digest),
            self.path(),
        )
    }
}

#[async_trait]
impl PredecessorFinder for ReadOnlyStore {
    /// Every indexed manifest or index that lists `node` (by digest); empty for an unknown node.
    ///
    /// Errors: none.
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        Ok(self.graph.predecessors(node))
    }
}

#[async_trait]
impl TagLister for ReadOnlyStore {
    /// The `ref.name`s of `index.json`, ascending, strictly after `last`.
    ///
    /// Errors: none.
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        Ok(self.index.tags(last))
    }
}
