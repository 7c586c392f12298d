//! What the copy and pull examples share: a progress bar per blob fetched from a source
//! target, and counters of bytes read and nodes copied or skipped.

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ocistore::content::BoxReader;
use ocistore::copy::{copy, extended_copy, CopyGraphOptions, CopyOptions, ExtendedCopyOptions};
use ocistore::spec::Descriptor;
use ocistore::{
    Fetcher, PredecessorFinder, ReadOnlyGraphTarget, ReadOnlyStorage, Resolver, Target,
};
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The progress bars of a copy: one per blob fetched from the source, keyed by digest.
#[derive(Clone)]
pub struct Progress {
    pub multi: MultiProgress,
    pub bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    pub bytes: Arc<AtomicU64>,
    pub copied: Arc<AtomicU64>,
    pub skipped: Arc<AtomicU64>,
}

impl Progress {
    pub fn new() -> Self {
        Progress {
            multi: MultiProgress::new(),
            bars: Arc::default(),
            bytes: Arc::default(),
            copied: Arc::default(),
            skipped: Arc::default(),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new bar for `desc`, fed by the reader of its fetch.
    pub fn start(&self, desc: &Descriptor) -> ProgressBar {
        let style = ProgressStyle::with_template(
            "{msg:36} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let bar = self.multi.add(ProgressBar::new(desc.size()));
        bar.set_style(style);
        bar.set_message(label(desc));
        self.bars().insert(desc.digest().to_string(), bar.clone());
        bar
    }

    /// Marks `desc` done (pushed, or found in the destination).
    pub fn finish(&self, desc: &Descriptor, how: &str) {
        let bar = self.bars().remove(desc.digest().as_ref());
        match bar {
            Some(bar) => bar.finish_with_message(format!("{} {how}", label(desc))),
            None => {
                let _ = self.multi.println(format!("{} {how}", label(desc)));
            }
        }
    }
}

/// `sha256:0123456789ab layer` and the like.
fn label(desc: &Descriptor) -> String {
    let digest = desc.digest().to_string();
    let short = digest.get(..19).unwrap_or(&digest);
    let media_type = desc.media_type().to_string();
    let kind = if media_type.contains("index") || media_type.contains("list") {
        "index"
    } else if media_type.contains("manifest") {
        "manifest"
    } else if media_type.contains("config") {
        "config"
    } else {
        "blob"
    };
    format!("{short} {kind}")
}

/// Copy options whose hooks count each node into `progress` and close its bar: `done` names
/// a node pushed ("copied", "pulled"), a node the destination had is "already there".
pub fn counted_graph(progress: &Progress, done: &'static str) -> CopyGraphOptions {
    CopyGraphOptions::default()
        .with_post_copy({
            let progress = progress.clone();
            move |desc| {
                progress.copied.fetch_add(1, Ordering::Relaxed);
                progress.finish(&desc, done);
                async { Ok(()) }
            }
        })
        .with_on_copy_skipped({
            let progress = progress.clone();
            move |desc| {
                progress.skipped.fetch_add(1, Ordering::Relaxed);
                progress.finish(&desc, "already there");
                async { Ok(()) }
            }
        })
}

/// `copy`, or `extended_copy` when `referrers` (signatures and SBOMs come along), with `graph`.
pub async fn copy_with(
    src: &(impl ReadOnlyGraphTarget + ?Sized),
    src_ref: &str,
    dst: &(impl Target + ?Sized),
    dst_ref: &str,
    referrers: bool,
    graph: CopyGraphOptions,
) -> ocistore::Result<Descriptor> {
    if referrers {
        let opts = ExtendedCopyOptions {
            graph,
            ..Default::default()
        };
        extended_copy(src, src_ref, dst, dst_ref, &opts).await
    } else {
        let opts = CopyOptions {
            graph,
            ..Default::default()
        };
        copy(src, src_ref, dst, dst_ref, &opts).await
    }
}

/// A source target, with every fetch feeding a progress bar.
pub struct WithProgress<T> {
    pub inner: T,
    pub progress: Progress,
}

#[ocistore::async_trait]
impl<T: Fetcher + Send + Sync> Fetcher for WithProgress<T> {
    async fn fetch(&self, target: &Descriptor) -> ocistore::Result<BoxReader> {
        let inner = self.inner.fetch(target).await?;
        Ok(Box::pin(CountingReader {
            inner,
            bar: self.progress.start(target),
            total: self.progress.bytes.clone(),
        }))
    }
}

#[ocistore::async_trait]
impl<T: ReadOnlyStorage + Send + Sync> ReadOnlyStorage for WithProgress<T> {
    async fn exists(&self, target: &Descriptor) -> ocistore::Result<bool> {
        self.inner.exists(target).await
    }
}

#[ocistore::async_trait]
impl<T: Resolver + Send + Sync> Resolver for WithProgress<T> {
    async fn resolve(&self, reference: &str) -> ocistore::Result<ocistore::SharedDescriptor> {
        self.inner.resolve(reference).await
    }
}

#[ocistore::async_trait]
impl<T: PredecessorFinder + Send + Sync> PredecessorFinder for WithProgress<T> {
    async fn predecessors(
        &self,
        node: &Descriptor,
    ) -> ocistore::Result<Vec<ocistore::SharedDescriptor>> {
        self.inner.predecessors(node).await
    }
}

/// Counts the bytes read through it into a bar and a total.
struct CountingReader {
    inner: BoxReader,
    bar: ProgressBar,
    total: Arc<AtomicU64>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            self.bar.inc(n);
            self.total.fetch_add(n, Ordering::Relaxed);
        }
        polled
    }
}
