//! The options of the copy functions and the hook types they carry.
//!
//! Every hook is an `Arc<dyn Fn(..) -> BoxFuture<..> + Send + Sync>`, so options are cheap to
//! clone and can be shared between copies. The `with_*` builder methods take plain closures
//! returning futures and box them; assigning the fields directly works too.

use crate::error::Result;
use crate::sharing::{CopyReport, FileSharing};
use crate::traits::{Fetcher, ReadOnlyGraphTarget};
use crate::SharedDescriptor;
use oci_spec::image::{Descriptor, Platform};
use std::fmt;
use std::future::Future;
use std::sync::Arc;

pub use futures::future::BoxFuture;

/// The default [`CopyGraphOptions::concurrency`]: three nodes copied at a time.
pub const DEFAULT_CONCURRENCY: usize = 3;

/// The default [`CopyGraphOptions::max_metadata_bytes`]: 4 MiB.
pub const DEFAULT_MAX_METADATA_BYTES: u64 = crate::descriptor::MAX_MANIFEST_SIZE;

/// What a [`PreCopyHook`] decides for a node about to be copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PreCopy {
    /// Fetch the node from the source and push it to the destination (then run `post_copy`).
    Copy,
    /// Do not copy this node (nor run `post_copy` for it). Its successors were copied already;
    /// the caller vouches that the node is in the destination or deliberately leaves it out.
    Skip,
}

/// Called with each node about to be fetched and pushed, after all its successors are in the
/// destination; [`PreCopy::Skip`] skips the node. An error aborts the copy and is returned as
/// it is (it names no side).
pub type PreCopyHook = Arc<dyn Fn(Descriptor) -> BoxFuture<'static, Result<PreCopy>> + Send + Sync>;

/// Called with a node: `post_copy` after the node was pushed (or the destination answered that
/// it already had it), `on_copy_skipped` when the node was found in the destination and not
/// pushed. An error aborts the copy and is returned as it is.
pub type NodeHook = Arc<dyn Fn(Descriptor) -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Names the repositories of the destination's registry that may already hold a blob, for a
/// cross-repository mount (oras-go's `MountFrom`): they are tried in order through
/// [`crate::Pusher::mount_from`] of the destination before the blob is fetched, and the blob is
/// fetched and pushed as usual when none mounts it. Called for blobs only (manifests are always
/// pushed). An error aborts the copy and is returned as it is.
pub type MountFromHook =
    Arc<dyn Fn(Descriptor) -> BoxFuture<'static, Result<Vec<String>>> + Send + Sync>;

/// Finds the successors of a node, replacing [`crate::content::successors`]. The fetcher is the
/// copy's caching view of the source: content fetched through it is fetched from the source
/// once, kept in memory (bounded by [`CopyGraphOptions::max_metadata_bytes`]) and pushed from
/// memory later. Foreign (non-distributable) layers are dropped from what it returns.
pub type FindSuccessorsHook = Arc<
    dyn for<'a> Fn(&'a dyn Fetcher, &'a Descriptor) -> BoxFuture<'a, Result<Vec<Descriptor>>>
        + Send
        + Sync,
>;

/// Replaces the root of a [`crate::copy::copy`] after it was resolved (for instance to pick a
/// child of an index). The fetcher is the copy's caching view of the source.
pub type MapRootHook = Arc<
    dyn for<'a> Fn(&'a dyn Fetcher, &'a Descriptor) -> BoxFuture<'a, Result<Descriptor>>
        + Send
        + Sync,
>;

/// Finds the predecessors of a node for [`crate::copy::extended_copy_graph`], replacing
/// [`crate::PredecessorFinder::predecessors`] of the source (which it receives).
pub type FindPredecessorsHook = Arc<
    dyn for<'a> Fn(
            &'a dyn ReadOnlyGraphTarget,
            &'a Descriptor,
        ) -> BoxFuture<'a, Result<Vec<SharedDescriptor>>>
        + Send
        + Sync,
>;

/// Options of [`crate::copy::copy_graph`] (and the graph part of every other copy).
///
/// Write `CopyGraphOptions { concurrency: 1, ..Default::default() }`.
#[derive(Clone)]
pub struct CopyGraphOptions {
    /// How many nodes are worked on at once (exists checks, fetches, pushes and hooks); 0 means
    /// the default, [`DEFAULT_CONCURRENCY`]. A node waiting for its successors holds no slot,
    /// so any value, 1 included, makes progress.
    pub concurrency: usize,
    /// The largest body kept in memory while a copy runs (manifests, and anything a custom
    /// `find_successors` fetches); 0 means the default, [`DEFAULT_MAX_METADATA_BYTES`]. A
    /// larger manifest fails the copy with `SizeExceedsLimit`. A body is held from its fetch
    /// until it is pushed, so the memory in use is at most this times the number of manifests
    /// in flight.
    pub max_metadata_bytes: u64,
    /// Whether a manifest already in the destination has its sub-graph checked and completed
    /// (true, the default) rather than being skipped with everything below it (false,
    /// oras-go v2.6.2's behaviour). Checking costs one source fetch per manifest already present
    /// (a destination fetch instead when the source lacks it) and one destination exists check
    /// per node that only present manifests point at; it repairs a destination left incomplete
    /// by an interrupted copy or a deletion.
    pub repair: bool,
    /// Called before each node is fetched and pushed; may skip it. See [`PreCopyHook`].
    pub pre_copy: Option<PreCopyHook>,
    /// Called after each node is pushed. See [`NodeHook`].
    pub post_copy: Option<NodeHook>,
    /// Called for each node found in the destination and therefore not pushed. See
    /// [`NodeHook`].
    pub on_copy_skipped: Option<NodeHook>,
    /// Replaces the default successor discovery. See [`FindSuccessorsHook`].
    pub find_successors: Option<FindSuccessorsHook>,
    /// Repositories to mount blobs from instead of copying their bytes. See [`MountFromHook`].
    pub mount_from: Option<MountFromHook>,
    /// Called for each blob the destination mounted (instead of `post_copy`). See
    /// [`NodeHook`].
    pub on_mounted: Option<NodeHook>,
    /// Whether a blob may be shared as a file, rather than streamed, between a source and a
    /// destination that keep blobs as files on one file system (two layout stores); the default
    /// is a reflink where the file system supports it. See [`FileSharing`].
    pub file_sharing: FileSharing,
    /// Whether the source's files are trusted to hold what their digests say, so that a shared
    /// file is not read and hashed by the destination (false, the default: a shared blob is
    /// verified as a streamed one is). Trust a source only when it is your own layout.
    pub trust_source_files: bool,
    /// Where the copy counts what it did with each node it transferred (shared or streamed,
    /// and why a shareable blob was streamed).
    pub report: Option<Arc<CopyReport>>,
}

impl Default for CopyGraphOptions {
    fn default() -> Self {
        CopyGraphOptions {
            concurrency: DEFAULT_CONCURRENCY,
            max_metadata_bytes: DEFAULT_MAX_METADATA_BYTES,
            repair: true,
            pre_copy: None,
            post_copy: None,
            on_copy_skipped: None,
            find_successors: None,
            mount_from: None,
            on_mounted: None,
            file_sharing: FileSharing::default(),
            trust_source_files: false,
            report: None,
        }
    }
}

impl CopyGraphOptions {
    /// Sets [`CopyGraphOptions::pre_copy`] from a closure returning a future.
    pub fn with_pre_copy<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Descriptor) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<PreCopy>> + Send + 'static,
    {
        self.pre_copy = Some(Arc::new(move |desc| Box::pin(hook(desc))));
        self
    }

    /// Sets [`CopyGraphOptions::post_copy`] from a closure returning a future.
    pub fn with_post_copy<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Descriptor) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.post_copy = Some(Arc::new(move |desc| Box::pin(hook(desc))));
        self
    }

    /// Sets [`CopyGraphOptions::on_copy_skipped`] from a closure returning a future.
    pub fn with_on_copy_skipped<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Descriptor) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_copy_skipped = Some(Arc::new(move |desc| Box::pin(hook(desc))));
        self
    }

    /// Sets [`CopyGraphOptions::mount_from`] from a closure returning a future.
    pub fn with_mount_from<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Descriptor) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<String>>> + Send + 'static,
    {
        self.mount_from = Some(Arc::new(move |desc| Box::pin(hook(desc))));
        self
    }

    /// Sets [`CopyGraphOptions::file_sharing`].
    pub fn with_file_sharing(mut self, sharing: FileSharing) -> Self {
        self.file_sharing = sharing;
        self
    }

    /// Sets [`CopyGraphOptions::trust_source_files`].
    pub fn trusting_source_files(mut self, trusted: bool) -> Self {
        self.trust_source_files = trusted;
        self
    }

    /// Sets [`CopyGraphOptions::report`].
    pub fn with_report(mut self, report: Arc<CopyReport>) -> Self {
        self.report = Some(report);
        self
    }

    /// Sets [`CopyGraphOptions::on_mounted`] from a closure returning a future.
    pub fn with_on_mounted<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(Descriptor) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.on_mounted = Some(Arc::new(move |desc| Box::pin(hook(desc))));
        self
    }

    /// Sets [`CopyGraphOptions::find_successors`]; the closure returns a boxed future
    /// (`Box::pin(async move { .. })`) because it borrows its arguments.
    pub fn with_find_successors<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a dyn Fetcher, &'a Descriptor) -> BoxFuture<'a, Result<Vec<Descriptor>>>
            + Send
            + Sync
            + 'static,
    {
        self.find_successors = Some(Arc::new(hook));
        self
    }

    /// The concurrency in force (the default for 0).
    pub fn effective_concurrency(&self) -> usize {
        if self.concurrency == 0 {
            DEFAULT_CONCURRENCY
        } else {
            self.concurrency
        }
    }

    /// The metadata limit in force (the default for 0).
    pub fn effective_max_metadata_bytes(&self) -> u64 {
        if self.max_metadata_bytes == 0 {
            DEFAULT_MAX_METADATA_BYTES
        } else {
            self.max_metadata_bytes
        }
    }
}

fn hook_state<T: ?Sized>(hook: &Option<Arc<T>>) -> &'static str {
    if hook.is_some() {
        "set"
    } else {
        "none"
    }
}

impl fmt::Debug for CopyGraphOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyGraphOptions")
            .field("concurrency", &self.concurrency)
            .field("max_metadata_bytes", &self.max_metadata_bytes)
            .field("repair", &self.repair)
            .field("pre_copy", &hook_state(&self.pre_copy))
            .field("post_copy", &hook_state(&self.post_copy))
            .field("on_copy_skipped", &hook_state(&self.on_copy_skipped))
            .field("find_successors", &hook_state(&self.find_successors))
            .field("mount_from", &hook_state(&self.mount_from))
            .field("on_mounted", &hook_state(&self.on_mounted))
            .field("file_sharing", &self.file_sharing)
            .field("trust_source_files", &self.trust_source_files)
            .field("report", &self.report.is_some())
            .finish()
    }
}

/// Options of [`crate::copy::copy`].
#[derive(Clone, Default)]
pub struct CopyOptions {
    /// How the graph is copied.
    pub graph: CopyGraphOptions,
    /// Replaces the resolved root before anything is copied. See [`MapRootHook`].
    pub map_root: Option<MapRootHook>,
    /// Copies only the manifest for this platform: the first child of an index (or Docker
    /// manifest list) whose platform matches, or a single manifest whose config matches (see
    /// [`crate::copy::platform_matches`]). Applied after `map_root`.
    pub target_platform: Option<Platform>,
}

impl CopyOptions {
    /// Sets [`CopyOptions::map_root`]; the closure returns a boxed future because it borrows
    /// its arguments.
    pub fn with_map_root<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(&'a dyn Fetcher, &'a Descriptor) -> BoxFuture<'a, Result<Descriptor>>
            + Send
            + Sync
            + 'static,
    {
        self.map_root = Some(Arc::new(hook));
        self
    }
}

impl fmt::Debug for CopyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyOptions")
            .field("graph", &self.graph)
            .field("map_root", &hook_state(&self.map_root))
            .field("target_platform", &self.target_platform)
            .finish()
    }
}

/// Options of [`crate::copy::extended_copy`] and [`crate::copy::extended_copy_graph`].
#[derive(Clone, Default)]
pub struct ExtendedCopyOptions {
    /// How each root's graph is copied (one tracker and one concurrency limit for all roots).
    pub graph: CopyGraphOptions,
    /// How many predecessor hops to follow up from the node; 0 follows them all.
    pub depth: usize,
    /// Only predecessors of these artifact types are followed; empty follows every
    /// predecessor. A predecessor's artifact type is its descriptor's `artifactType`, else the
    /// `artifactType` of its body, else for an OCI image manifest its config's media type;
    /// others (indexes without one, layers) have none and are not followed when this is set.
    pub artifact_types: Vec<String>,
    /// Replaces the source's own predecessor lookup. See [`FindPredecessorsHook`].
    pub find_predecessors: Option<FindPredecessorsHook>,
}

impl ExtendedCopyOptions {
    /// Sets [`ExtendedCopyOptions::find_predecessors`]; the closure returns a boxed future
    /// because it borrows its arguments.
    pub fn with_find_predecessors<F>(mut self, hook: F) -> Self
    where
        F: for<'a> Fn(
                &'a dyn ReadOnlyGraphTarget,
                &'a Descriptor,
            ) -> BoxFuture<'a, Result<Vec<SharedDescriptor>>>
            + Send
            + Sync
            + 'static,
    {
        self.find_predecessors = Some(Arc::new(hook));
        self
    }
}

impl fmt::Debug for ExtendedCopyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedCopyOptions")
            .field("graph", &self.graph)
            .field("depth", &self.depth)
            .field("artifact_types", &self.artifact_types)
            .field("find_predecessors", &hook_state(&self.find_predecessors))
            .finish()
    }
}
