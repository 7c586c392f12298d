//! The graph copy engine behind every copy function, and [`copy_graph`].
//!
//! One engine copies one or more roots with one tracker, one cache and one semaphore. Each node
//! is handled by the first task that reaches it:
//!
//! 1. with a slot: `exists` on the destination. A present node whose successors cannot matter
//!    (a blob, or any node when [`CopyGraphOptions::repair`] is off) is skipped with its whole
//!    sub-graph: `on_copy_skipped`, done.
//! 2. with the slot: its successors (the body comes from the cache or is fetched into it), minus
//!    foreign layers.
//! 3. without a slot: every successor is handled, concurrently; the first error ends the wait
//!    and, propagating up, drops (cancels) every other branch of the copy.
//! 4. with a slot again: a node that was present is reported through `on_copy_skipped`; any
//!    other is copied: `pre_copy`, the body from the cache or a streaming fetch, `push`
//!    (`AlreadyExists` tolerated), `post_copy`.
//!
//! So a parent is pushed only after all its successors are in the destination, and a node is
//! fetched and pushed at most once. A slot is never held while waiting for another node, so
//! no concurrency, 1 included, can deadlock.

use super::cache::{CachingSource, MetadataCache};
use super::options::{CopyGraphOptions, PreCopy};
use super::tracker::{Claim, Outcome, Tracker};
use crate::content::{fetch_all, reader_from_bytes, BoxReader};
use crate::descriptor::{is_foreign_layer, is_manifest};
use crate::error::{Error, ErrorKind, Result, Side};
use crate::manifest::parse_successors;
use crate::sharing::{FileSharing, ShareRequest, StoredAs};
use crate::traits::{ReadOnlyStorage, ReferencePusher, Storage};
use futures::future::{try_join_all, BoxFuture};
use futures::StreamExt;
use oci_spec::image::Descriptor;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::{Semaphore, SemaphorePermit};

/// Copies the graph rooted at `root` from `src` to `dst`: every node reachable from `root`
/// through its successors (config, layers, manifests of an index, subject) that is not in the
/// destination yet, children strictly before parents.
///
/// - A node already in `dst` is not pushed and is reported through `on_copy_skipped`. A blob
///   found there ends the walk below it; a manifest found there has its sub-graph checked and
///   completed (see [`CopyGraphOptions::repair`]), so a copy interrupted earlier is finished
///   instead of being taken as complete. Its body comes from the source, or from the
///   destination when the source lacks it (a partial mirror).
/// - Each node is fetched from `src` at most once (manifest bodies are kept in memory from the
///   fetch that finds their successors until their push) and pushed to `dst` at most once;
///   `AlreadyExists` from `dst` counts as success.
/// - Foreign (non-distributable) layers are neither fetched nor pushed.
/// - At most `opts.concurrency` nodes are worked on at once.
/// - The first error stops the copy: every operation still running is dropped, and no node
///   whose successors are not all in the destination is pushed.
///
/// A full copy of a graph of N nodes costs N `exists` on `dst`, N `fetch` on `src` and N
/// `push` on `dst`, and nothing else.
///
/// Errors: a target's error wrapped as [`Error::Copy`], which keeps its [`ErrorKind`] and says
/// which side failed ([`Error::side`]) in which operation (`exists`, `fetch`, `push`,
/// `find successors`): for instance `SizeExceedsLimit` (source, `fetch`) for a manifest larger
/// than `max_metadata_bytes`, `InvalidManifest` (source, `find successors`) for a body that
/// does not parse, `Mismatch` (source, `fetch`) for source content that does not match its
/// descriptor. Errors of the hooks are returned as they are.
pub async fn copy_graph(
    src: &(impl ReadOnlyStorage + ?Sized),
    dst: &(impl Storage + ?Sized),
    root: &Descriptor,
    opts: &CopyGraphOptions,
) -> Result<()> {
    let cache = MetadataCache::new(opts.effective_max_metadata_bytes());
    let engine = Engine::new(&src, &dst, opts, cache);
    engine.run(std::slice::from_ref(root)).await
}

/// One copy in progress.
pub(crate) struct Engine<'a> {
    src: &'a dyn ReadOnlyStorage,
    dst: &'a dyn Storage,
    opts: &'a CopyGraphOptions,
    cache: MetadataCache,
    tracker: Tracker,
    slots: Semaphore,
    /// The root to push with its reference, and how (see [`Engine::tagging_root`]).
    root_reference: Option<RootReference<'a>>,
}

/// A root pushed and tagged as one change.
struct RootReference<'a> {
    pusher: &'a dyn ReferencePusher,
    root: Descriptor,
    reference: &'a str,
    done: AtomicBool,
}

impl<'a> Engine<'a> {
    /// An engine copying from `src` to `dst`, starting with the bodies already in `cache`.
    pub(crate) fn new(
        src: &'a dyn ReadOnlyStorage,
        dst: &'a dyn Storage,
        opts: &'a CopyGraphOptions,
        cache: MetadataCache,
    ) -> Self {
        Engine {
            src,
            dst,
            opts,
            cache,
            tracker: Tracker::default(),
            slots: Semaphore::new(opts.effective_concurrency()),
            root_reference: None,
        }
    }

    /// Pushes `root`, when its body is in hand, through `pusher` with `reference` (one change
    /// in a layout store instead of a push and a tag); see [`Engine::root_tagged`].
    pub(crate) fn tagging_root(
        mut self,
        pusher: Option<&'a dyn ReferencePusher>,
        root: &Descriptor,
        reference: &'a str,
    ) -> Self {
        self.root_reference = pusher.map(|pusher| RootReference {
            pusher,
            root: root.clone(),
            reference,
            done: AtomicBool::new(false),
        });
        self
    }

    /// Whether the root was pushed with its reference: the caller has no tag left to make.
    pub(crate) fn root_tagged(&self) -> bool {
        self.root_reference
            .as_ref()
            .is_some_and(|r| r.done.load(Ordering::Acquire))
    }

    /// Copies the graphs of every root; returns at the first error.
    pub(crate) async fn run(&self, roots: &[Descriptor]) -> Result<()> {
        try_join_all(roots.iter().map(|root| self.node(root.clone()))).await?;
        Ok(())
    }

    /// How `desc` ended, once [`Engine::run`] returned `Ok`.
    pub(crate) fn outcome(&self, desc: &Descriptor) -> Option<Outcome> {
        self.tracker.outcome(desc)
    }

    async fn slot(&self) -> Result<SemaphorePermit<'_>> {
        // The semaphore is never closed, so this cannot fail; map it anyway rather than panic.
        self.slots
            .acquire()
            .await
            .map_err(|_| Error::io("copy", io::Error::other("the copy's semaphore was closed")))
    }

    /// Handles one node: as its owner, or by waiting for the task that owns it.
    fn node(&self, desc: Descriptor) -> BoxFuture<'_, Result<Outcome>> {
        Box::pin(async move {
            match self.tracker.claim(&desc) {
                Claim::Wait(rx) => Tracker::wait(rx).await,
                Claim::Owner(owner) => {
                    let result = self.own(&desc).await;
                    // Whatever happened, the body is no longer needed.
                    self.cache.take(&desc);
                    owner.finish(&result);
                    result
                }
            }
        })
    }

    /// Whether a node present in the destination must be looked into.
    fn must_check_below(&self, desc: &Descriptor) -> bool {
        self.opts.repair && (self.opts.find_successors.is_some() || is_manifest(desc))
    }

    async fn own(&self, desc: &Descriptor) -> Result<Outcome> {
        let slot = self.slot().await?;
        let present = self
            .dst
            .exists(desc)
            .await
            .map_err(|e| e.in_copy(Side::Destination, "exists"))?;
        if present && !self.must_check_below(desc) {
            self.skipped(desc).await?;
            return Ok(Outcome::Existed);
        }
        let successors = match self.successors(desc).await {
            Err(e)
                if present
                    && e.kind() == ErrorKind::NotFound
                    && self.opts.find_successors.is_none() =>
            {
                // The destination has a manifest the source lacks (a partial mirror): the
                // walk below it reads its body from the destination instead.
                self.successors_from_destination(desc).await?
            }
            other => other?,
        };
        drop(slot);

        if !successors.is_empty() {
            try_join_all(successors.into_iter().map(|child| self.node(child))).await?;
        }

        let _slot = self.slot().await?;
        if present {
            self.skipped(desc).await?;
            return Ok(Outcome::Existed);
        }
        self.copy_node(desc).await
    }

    async fn skipped(&self, desc: &Descriptor) -> Result<()> {
        match &self.opts.on_copy_skipped {
            Some(hook) => hook(desc.clone()).await,
            None => Ok(()),
        }
    }

    /// The successors of `desc`, foreign layers left out.
    async fn successors(&self, desc: &Descriptor) -> Result<Vec<Descriptor>> {
        let mut found = match &self.opts.find_successors {
            Some(hook) => {
                let view = CachingSource::new(self.src, &self.cache);
                hook(&view, desc)
                    .await
                    .map_err(|e| e.in_copy(Side::Source, "find successors"))?
            }
            None if is_manifest(desc) => {
                let body = self.cache.body(self.src, desc).await?;
                parse_successors(desc.digest().as_ref(), desc.media_type().as_ref(), &body)
                    .map_err(|e| e.in_copy(Side::Source, "find successors"))?
            }
            None => Vec::new(),
        };
        found.retain(|d| !is_foreign_layer(d.media_type().as_ref()));
        Ok(found)
    }

    /// The successors of a manifest present in the destination, read from its body there.
    ///
    /// Errors, as destination errors: `SizeExceedsLimit` above the metadata limit, those of
    /// [`fetch_all`], `InvalidManifest`.
    async fn successors_from_destination(&self, desc: &Descriptor) -> Result<Vec<Descriptor>> {
        let limit = self.opts.effective_max_metadata_bytes();
        if desc.size() > limit {
            return Err(Error::SizeExceedsLimit {
                what: format!("{} ({}) held in memory", desc.digest(), desc.media_type()),
                size: desc.size(),
                limit,
            }
            .in_copy(Side::Destination, "fetch"));
        }
        let body = fetch_all(self.dst, desc)
            .await
            .map_err(|e| e.in_copy(Side::Destination, "fetch"))?;
        let mut found = parse_successors(desc.digest().as_ref(), desc.media_type().as_ref(), &body)
            .map_err(|e| e.in_copy(Side::Destination, "find successors"))?;
        found.retain(|d| !is_foreign_layer(d.media_type().as_ref()));
        Ok(found)
    }

    /// Whether the destination mounted blob `desc` from one of the repositories the
    /// `mount_from` hook names, tried in order until one mounts it or the destination says it
    /// cannot mount at all.
    ///
    /// Errors: the hook's, as they are; the destination's, as destination errors.
    async fn mounted(&self, desc: &Descriptor) -> Result<bool> {
        let Some(hook) = &self.opts.mount_from else {
            return Ok(false);
        };
        if is_manifest(desc) {
            return Ok(false);
        }
        for from in hook(desc.clone()).await? {
            match self.dst.mount_from(desc, &from).await {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) if e.kind() == ErrorKind::Unsupported => return Ok(false),
                Err(e) => return Err(e.in_copy(Side::Destination, "mount")),
            }
        }
        Ok(false)
    }

    /// Fetches `desc` (from the cache or the source) and pushes it, between the hooks.
    async fn copy_node(&self, desc: &Descriptor) -> Result<Outcome> {
        if let Some(hook) = &self.opts.pre_copy {
            if hook(desc.clone()).await? == PreCopy::Skip {
                return Ok(Outcome::SkippedByHook);
            }
        }
        if self.mounted(desc).await? {
            if let Some(hook) = &self.opts.on_mounted {
                hook(desc.clone()).await?;
            }
            return Ok(Outcome::Mounted);
        }
        let mut share = None;
        let root_reference = self
            .root_reference
            .as_ref()
            .filter(|r| r.root.digest() == desc.digest());
        let pushed = match self.cache.take(desc) {
            Some(body) => match root_reference {
                Some(r) => r
                    .pusher
                    .push_reference(
                        &crate::descriptor::without_ref_name(desc),
                        reader_from_bytes(body),
                        r.reference,
                    )
                    .await
                    .map(|()| r.done.store(true, Ordering::Release))
                    .map_err(|e| (e, false)),
                None => self
                    .dst
                    .push(desc, reader_from_bytes(body))
                    .await
                    .map_err(|e| (e, false)),
            },
            None => {
                // Checked content lets a hashing destination hash each blob once.
                let mut fetched = self
                    .src
                    .fetch_checked(desc)
                    .await
                    .map_err(|e| e.in_copy(Side::Source, "fetch"))?;
                if fetched.offers_file() && self.opts.file_sharing != FileSharing::Stream {
                    let request =
                        ShareRequest::new(self.opts.file_sharing, self.opts.trust_source_files);
                    fetched.request_sharing(request.clone());
                    share = Some(request);
                }
                let failed = Arc::new(AtomicBool::new(false));
                let chunks_failed = Arc::clone(&failed);
                let fetched = fetched.map_body(
                    |inner| {
                        Box::pin(SourceReader {
                            inner,
                            failed: Arc::clone(&failed),
                        })
                    },
                    |chunks| {
                        Box::pin(chunks.inspect(move |chunk| {
                            if chunk.is_err() {
                                chunks_failed.store(true, Ordering::Relaxed);
                            }
                        }))
                    },
                );
                self.dst.push_fetched(desc, fetched).await.map_err(|e| {
                    // Bytes that failed to arrive, or arrived but do not match the
                    // descriptor, are the source's fault even though the push saw it.
                    let source_fault =
                        failed.load(Ordering::Relaxed) || e.kind() == ErrorKind::Mismatch;
                    (e, source_fault)
                })
            }
        };
        match pushed {
            Ok(()) => {
                if let Some(report) = &self.opts.report {
                    let stored = share.map(|request| {
                        request.answered().unwrap_or_else(|| {
                            StoredAs::Streamed("the destination does not share files".into())
                        })
                    });
                    report.count(desc.size(), stored);
                }
            }
            Err((e, _)) if e.kind() == ErrorKind::AlreadyExists => {}
            Err((e, true)) => return Err(e.in_copy(Side::Source, "fetch")),
            Err((e, false)) => return Err(e.in_copy(Side::Destination, "push")),
        }
        if let Some(hook) = &self.opts.post_copy {
            hook(desc.clone()).await?;
        }
        Ok(Outcome::Copied)
    }
}

/// A source reader that remembers whether it failed, so that a push failing because of it is
/// reported as the source's error.
struct SourceReader {
    inner: BoxReader,
    failed: Arc<AtomicBool>,
}

impl AsyncRead for SourceReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let polled = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Err(_)) = &polled {
            self.failed.store(true, Ordering::Relaxed);
        }
        polled
    }
}
