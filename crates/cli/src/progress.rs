//! Progress for people: a bar per blob and one for the total on a terminal, and the summary
//! line at the end.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ocistore::content::BoxReader;
use ocistore::spec::Descriptor;
use ocistore::{Fetcher, PredecessorFinder, ReadOnlyStorage, Resolver, TagLister};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, ReadBuf};

/// Bars and counters of one transfer; bars are drawn only when stdout and stderr are terminals.
#[derive(Clone)]
pub struct Progress {
    multi: MultiProgress,
    total: ProgressBar,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    /// Bytes read from the source.
    pub bytes: Arc<AtomicU64>,
    /// Blobs written to the destination.
    pub copied: Arc<AtomicU64>,
    /// Blobs the destination already had.
    pub skipped: Arc<AtomicU64>,
    /// Blobs the destination registry mounted from the source repository.
    pub mounted: Arc<AtomicU64>,
    started: Instant,
    shown: bool,
}

impl Progress {
    /// New counters; bars only on a terminal.
    pub fn new() -> Progress {
        let shown = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let total = multi.add(ProgressBar::new(0));
        // Until the total size is known, no bar and no ETA: only bytes and speed.
        total.set_style(
            ProgressStyle::with_template("total {bytes:>10} {binary_bytes_per_sec:>12}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress {
            multi,
            total,
            bars: Arc::default(),
            bytes: Arc::default(),
            copied: Arc::default(),
            skipped: Arc::default(),
            mounted: Arc::default(),
            started: Instant::now(),
            shown,
        }
    }

    /// Whether bars are drawn (worth computing the total size for).
    pub fn shown(&self) -> bool {
        self.shown
    }

    /// Sets the total number of bytes expected.
    pub fn set_total(&self, bytes: u64) {
        self.total.set_length(bytes);
        self.total.set_style(
            ProgressStyle::with_template(
                "total {bar:30} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn start(&self, desc: &Descriptor) -> ProgressBar {
        let bar = self
            .multi
            .insert_before(&self.total, ProgressBar::new(desc.size()));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:28} {bar:30} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let digest = desc.digest().to_string();
        bar.set_message(digest.get(..19).unwrap_or(&digest).to_string());
        self.bars().insert(digest, bar.clone());
        bar
    }

    /// Counts `desc` as copied (`true`) or skipped, and closes its bar.
    pub fn done(&self, desc: &Descriptor, copied: bool) {
        let counter = if copied { &self.copied } else { &self.skipped };
        counter.fetch_add(1, Ordering::Relaxed);
        if !copied {
            self.total.inc(desc.size());
        }
        if let Some(bar) = self.bars().remove(desc.digest().as_ref()) {
            bar.finish_and_clear();
        }
    }

    /// Counts `desc` as mounted (its bytes never passed through us), and closes its bar.
    pub fn mounted(&self, desc: &Descriptor) {
        self.mounted.fetch_add(1, Ordering::Relaxed);
        self.total.inc(desc.size());
        if let Some(bar) = self.bars().remove(desc.digest().as_ref()) {
            bar.finish_and_clear();
        }
    }

    /// Removes the bars and prints the summary line on stderr (for people; scripts read
    /// stdout): blobs copied, mounted and skipped, bytes, time. Returns the same as JSON.
    pub fn finish(&self, verb: &str) -> serde_json::Value {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
        let secs = self.started.elapsed().as_secs_f64();
        let bytes = self.bytes.load(Ordering::Relaxed);
        let copied = self.copied.load(Ordering::Relaxed);
        let skipped = self.skipped.load(Ordering::Relaxed);
        let mounted = self.mounted.load(Ordering::Relaxed);
        let mounts = if mounted > 0 {
            format!(", {mounted} mounted")
        } else {
            String::new()
        };
        eprintln!(
            "{verb}: {copied} blob(s) copied{mounts}, {skipped} skipped, {} in {secs:.2}s",
            indicatif::HumanBytes(bytes)
        );
        serde_json::json!({
            "copied": copied,
            "mounted": mounted,
            "skipped": skipped,
            "bytes": bytes,
            "seconds": secs
        })
    }
}

impl Progress {
    /// Removes the bars and prints `verb: N blob(s), BYTES in SECS` on stderr: for archives,
    /// whose blobs are counted by the archive code rather than the copy hooks.
    pub fn finish_archive(&self, verb: &str, blobs: Option<usize>) {
        self.total.finish_and_clear();
        let _ = self.multi.clear();
        let secs = self.started.elapsed().as_secs_f64();
        let bytes = indicatif::HumanBytes(self.bytes.load(Ordering::Relaxed));
        match blobs {
            Some(n) => eprintln!("{verb}: {n} blob(s), {bytes} in {secs:.2}s"),
            None => eprintln!("{verb}: {bytes} read in {secs:.2}s"),
        }
    }

    /// `reader` counted into the total bar (sized `size` when known) and the byte count.
    pub fn reader<R: AsyncRead + Send + Unpin + 'static>(
        &self,
        reader: R,
        size: Option<u64>,
    ) -> BoxReader {
        if let Some(size) = size {
            self.set_total(size);
        }
        Box::pin(CountingReader {
            inner: Box::pin(reader),
            bar: ProgressBar::hidden(),
            total: self.total.clone(),
            bytes: self.bytes.clone(),
        })
    }
}

/// A source whose fetches feed the bars.
pub struct Counted<T: ?Sized> {
    /// The source.
    pub inner: Arc<T>,
    /// Its progress.
    pub progress: Progress,
}

#[ocistore::async_trait]
impl<T: Fetcher + ?Sized> Fetcher for Counted<T> {
    async fn fetch(&self, target: &Descriptor) -> ocistore::Result<BoxReader> {
        let inner = self.inner.fetch(target).await?;
        Ok(Box::pin(CountingReader {
            inner,
            bar: self.progress.start(target),
            total: self.progress.total.clone(),
            bytes: self.progress.bytes.clone(),
        }))
    }
}

#[ocistore::async_trait]
impl<T: ReadOnlyStorage + ?Sized> ReadOnlyStorage for Counted<T> {
    async fn exists(&self, target: &Descriptor) -> ocistore::Result<bool> {
        self.inner.exists(target).await
    }
}

#[ocistore::async_trait]
impl<T: Resolver + ?Sized> Resolver for Counted<T> {
    async fn resolve(&self, reference: &str) -> ocistore::Result<ocistore::SharedDescriptor> {
        self.inner.resolve(reference).await
    }
}

#[ocistore::async_trait]
impl<T: PredecessorFinder + ?Sized> PredecessorFinder for Counted<T> {
    async fn predecessors(
        &self,
        node: &Descriptor,
    ) -> ocistore::Result<Vec<ocistore::SharedDescriptor>> {
        self.inner.predecessors(node).await
    }
}

#[ocistore::async_trait]
impl<T: TagLister + ?Sized> TagLister for Counted<T> {
    async fn tags(&self, last: Option<&str>) -> ocistore::Result<Vec<String>> {
        self.inner.tags(last).await
    }
}

/// Counts the bytes read through it into a blob's bar and the totals.
struct CountingReader {
    inner: BoxReader,
    bar: ProgressBar,
    total: ProgressBar,
    bytes: Arc<AtomicU64>,
}

impl AsyncRead for CountingReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let n = (buf.filled().len() - before) as u64;
            self.bar.inc(n);
            self.total.inc(n);
            self.bytes.fetch_add(n, Ordering::Relaxed);
        }
        polled
    }
}
