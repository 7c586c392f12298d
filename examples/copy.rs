//! Copy a tagged image (or index, with everything below it) from one OCI image layout to
//! another, with a progress bar per blob and the throughput at the end.
//!
//! `cargo run --example copy -- [--referrers] SRC SRC_REF DST_DIR [DST_REF]`
//!
//! SRC is a layout directory (or an uncompressed tar of one), opened read-only; DST_DIR is
//! created if missing; DST_REF defaults to SRC_REF. When SRC_REF is a digest and no DST_REF is
//! given, the copy is untagged in the destination (it resolves by digest only). Content already
//! in the destination is not copied again (a manifest there has its children checked, so an
//! interrupted copy is finished). `--referrers` makes it an extended copy: what points at the
//! image comes too (referrers such as signatures and SBOMs, and indexes that list it, at any
//! depth). Try it on the quickstart's layout:
//!
//! ```sh
//! cargo run --example quickstart -- /tmp/src
//! cargo run --example copy -- --referrers /tmp/src v1 /tmp/dst
//! ```

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ocistore::content::BoxReader;
use ocistore::copy::{copy, extended_copy, CopyGraphOptions, CopyOptions, ExtendedCopyOptions};
use ocistore::digest::ValidDigest;
use ocistore::fs::{ReadOnlyStore, Store};
use ocistore::spec::Descriptor;
use ocistore::{Fetcher, PredecessorFinder, ReadOnlyStorage, Resolver};
use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;
use tokio::io::{AsyncRead, ReadBuf};

const USAGE: &str = "usage: copy [--referrers] SRC SRC_REF DST_DIR [DST_REF]";

/// The progress bars of a copy: one per blob fetched from the source, keyed by digest.
#[derive(Clone)]
struct Progress {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    bytes: Arc<AtomicU64>,
    pushed: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            multi: MultiProgress::new(),
            bars: Arc::default(),
            bytes: Arc::default(),
            pushed: Arc::default(),
            skipped: Arc::default(),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new bar for `desc`, fed by the reader of its fetch.
    fn start(&self, desc: &Descriptor) -> ProgressBar {
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
    fn finish(&self, desc: &Descriptor, how: &str) {
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

/// The source, with every fetch feeding a progress bar.
struct WithProgress {
    inner: ReadOnlyStore,
    progress: Progress,
}

#[ocistore::async_trait]
impl Fetcher for WithProgress {
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
impl ReadOnlyStorage for WithProgress {
    async fn exists(&self, target: &Descriptor) -> ocistore::Result<bool> {
        self.inner.exists(target).await
    }
}

#[ocistore::async_trait]
impl Resolver for WithProgress {
    async fn resolve(&self, reference: &str) -> ocistore::Result<Descriptor> {
        self.inner.resolve(reference).await
    }
}

#[ocistore::async_trait]
impl PredecessorFinder for WithProgress {
    async fn predecessors(&self, node: &Descriptor) -> ocistore::Result<Vec<Descriptor>> {
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

async fn run(args: &[String]) -> Result<(), String> {
    let referrers = args.first().map(String::as_str) == Some("--referrers");
    let args = if referrers { &args[1..] } else { args };
    let (src_path, src_ref, dst_path) = match args {
        [src, src_ref, dst] | [src, src_ref, dst, _] => (src, src_ref, dst),
        _ => return Err(USAGE.to_string()),
    };
    let dst_ref = args.get(3).map(String::as_str).unwrap_or("");

    let progress = Progress::new();
    let src = WithProgress {
        inner: ReadOnlyStore::open(src_path)
            .await
            .map_err(|e| format!("opening the source {src_path}: {e}"))?,
        progress: progress.clone(),
    };
    let dst = Store::open(dst_path)
        .await
        .map_err(|e| format!("opening the destination {dst_path}: {e}"))?;

    let graph = CopyGraphOptions::default()
        .with_post_copy({
            let progress = progress.clone();
            move |desc| {
                progress.pushed.fetch_add(1, Ordering::Relaxed);
                progress.finish(&desc, "copied");
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
        });
    let started = Instant::now();
    let copied = if referrers {
        let opts = ExtendedCopyOptions {
            graph,
            ..Default::default()
        };
        extended_copy(&src, src_ref, &dst, dst_ref, &opts).await
    } else {
        let opts = CopyOptions {
            graph,
            ..Default::default()
        };
        copy(&src, src_ref, &dst, dst_ref, &opts).await
    };
    let root = copied.map_err(|e| format!("copy failed: {e}"))?;
    dst.close()
        .await
        .map_err(|e| format!("saving the destination's index.json: {e}"))?;
    let secs = started.elapsed().as_secs_f64();

    let bytes = progress.bytes.load(Ordering::Relaxed);
    let tag = if dst_ref.is_empty() { src_ref } else { dst_ref };
    // A digest as the destination reference names the content without tagging it.
    if ValidDigest::parse(tag).is_ok() {
        println!(
            "copied {} into {dst_path}, untagged (pass DST_REF to tag it)",
            root.digest()
        );
    } else {
        println!("copied {} as {tag} into {dst_path}", root.digest());
    }
    println!(
        "{} nodes pushed, {} already there; {bytes} bytes read from the source in {secs:.3} s: {:.1} MB/s",
        progress.pushed.load(Ordering::Relaxed),
        progress.skipped.load(Ordering::Relaxed),
        bytes as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            if message == USAGE {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
