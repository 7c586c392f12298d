//! The scenario benchmark: 14 scenarios measured the way our oras-go v2.6.2 harness (`benches/oras-go`) measures
//! oras-go v2.6.2 (built from `benches/oras-go/`), with the content it generates
//! (`support/content.rs`), one JSON line per scenario on stdout:
//!
//! ```text
//! {"scenario":NAME,"n":COUNT,"bytes":BYTES,"secs":SECONDS,"per_s":RATE,"durable":BOOL,"peak_rss_kib":KIB}
//! ```
//!
//! `cargo bench -p ocistore-benches --bench scenarios -- [--relaxed] [--only NAME[,NAME]] [--scale F] [--runs N]
//! [--warmup N] [--selftest] [--cleanup] [--quiet]`
//!
//! - `--relaxed` opens every store with `durable(false)` (no fsync; oras-go never fsyncs,
//!   so this is the like-for-like mode). The default is durable.
//! - `--only` takes scenario names and the groups `create` (the 12 without mass deletes) and
//!   `delete` (`delete_all,gc_dangling`), as `oras-go-bench -only` does.
//! - `--scale F` multiplies every count (blobs, images, lookups, calls) and the big blob's size
//!   (in whole MiB, at most 1 GiB), for quick runs; `n` and `bytes` follow.
//! - `--selftest` checks the content against the check values `oras-go-bench -selftest` (`benches/oras-go`) prints.
//!
//! Protocol (as `benches/oras-go`): each timed section works on a new directory under
//! `$OCISTORE_BENCH_DIR` (default: the temp dir), inside one scratch root per process that is
//! kept at exit unless `--cleanup` (mass deletes slow ext4 creates down for minutes); content and
//! descriptors are generated and hashed before the timer; stores are opened before the timer
//! (except in `open_tagged`); `sync()` and a reset of the RSS high-water mark (through
//! `/proc/self/clear_refs`) come just before each timer; `secs` is the median of the timed runs
//! after the warm-ups; `per_s = n / secs`; `peak_rss_kib` is the largest VmHWM over the timed
//! runs. Every scenario runs in a task spawned on a multi-thread runtime (one worker per core).
//! Stores that are read from (open, resolve, exists, predecessors, the copy sources, delete
//! and gc) are written with `AutoSave::Manual` and one `save_index`, closed, and reopened with the
//! default options (plus `durable(false)` with `--relaxed`; plus `gc_grace(0)` for
//! `gc_dangling`: oras-go's GC has no grace period). `push_large` and `fetch_large` run
//! back to back in each run, and the blob is deleted right after each run.
//!
//! Run without `--bench` (as `cargo test --benches` does), it only runs the selftest without the
//! 1 GiB blob.

#[path = "support/content.rs"]
mod content;

use content::*;
use ocistore::autosave::AutoSave;
use ocistore::content::{push_bytes, reader_from_bytes};
use ocistore::copy::{copy, CopyOptions};
use ocistore::fs::{Store, StoreOptions};
use ocistore::{Deleter, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, TagLister, Tagger};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// Scenario names in the order they run; the deletion-heavy ones last.
const ALL: &[&str] = &[
    "push_small_seq",
    "push_small_par16",
    "push_large",
    "fetch_large",
    "tag_manifests",
    "tag_manifests_manual",
    "open_tagged",
    "resolve_tags",
    "exists_manifests",
    "predecessors_shared",
    "copy_tagged",
    "copy_index",
    "delete_all",
    "gc_dangling",
];
const DELETES: &[&str] = &["delete_all", "gc_dangling"];
const PAR_WORKERS: usize = 16;
const FETCH_BUF: usize = 1 << 20;

struct Args {
    relaxed: bool,
    selected: BTreeSet<String>,
    scale: f64,
    runs: usize,
    warmup: usize,
    selftest: bool,
    cleanup: bool,
    quiet: bool,
    bench: bool,
}

fn usage(msg: &str) -> ! {
    eprintln!("scenarios: {msg}");
    eprintln!(
        "usage: cargo bench -p ocistore-benches --bench scenarios -- [--relaxed] [--only NAME[,NAME]|create|delete] \
         [--scale F] [--runs N] [--warmup N] [--selftest] [--cleanup] [--quiet]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut args = Args {
        relaxed: false,
        selected: BTreeSet::new(),
        scale: 1.0,
        runs: 3,
        warmup: 1,
        selftest: false,
        cleanup: false,
        quiet: false,
        bench: false,
    };
    let mut only: Option<String> = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--bench" => args.bench = true,
            "--relaxed" => args.relaxed = true,
            "--selftest" => args.selftest = true,
            "--cleanup" => args.cleanup = true,
            "--quiet" | "-q" => args.quiet = true,
            "--only" => only = Some(value("--only")),
            "--scale" => {
                args.scale = value("--scale")
                    .parse()
                    .unwrap_or_else(|_| usage("--scale takes a number"))
            }
            "--runs" => {
                args.runs = value("--runs")
                    .parse()
                    .unwrap_or_else(|_| usage("--runs takes a count"))
            }
            "--warmup" => {
                args.warmup = value("--warmup")
                    .parse()
                    .unwrap_or_else(|_| usage("--warmup takes a count"))
            }
            other if other.starts_with("--only=") => only = Some(other[7..].to_string()),
            other if other.starts_with("--scale=") => {
                args.scale = other[8..]
                    .parse()
                    .unwrap_or_else(|_| usage("--scale takes a number"))
            }
            // Filters and flags `cargo test` may pass to a harness-less target.
            other if !other.starts_with('-') => {}
            "--nocapture" | "--quiet-test" => {}
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if args.scale.is_nan() || args.scale <= 0.0 || args.runs == 0 {
        usage("--scale must be > 0 and --runs >= 1");
    }
    match only {
        None => args.selected = ALL.iter().map(|s| s.to_string()).collect(),
        Some(list) => {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match name {
                    "create" => args.selected.extend(
                        ALL.iter()
                            .filter(|s| !DELETES.contains(s))
                            .map(|s| s.to_string()),
                    ),
                    "delete" => args.selected.extend(DELETES.iter().map(|s| s.to_string())),
                    n if ALL.contains(&n) => {
                        args.selected.insert(n.to_string());
                    }
                    n => usage(&format!(
                        "unknown scenario {n:?} (known: {})",
                        ALL.join(", ")
                    )),
                }
            }
        }
    }
    args
}

// ---------------------------------------------------------------- timing and memory

/// Resets VmHWM to the current RSS (Linux >= 4.0).
fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM in KiB.
fn read_hwm() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Returns freed heap to the system, so that each scenario's RSS starts from a small heap.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the system; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

struct Timer(Instant);

fn start_timer() -> Timer {
    // Freed heap goes back first (as `benches/oras-go` calls runtime.GC() before each timer), so that
    // the high-water mark starts from what is live.
    trim_heap();
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    reset_hwm();
    Timer(Instant::now())
}

#[derive(Clone, Copy)]
struct Sample {
    secs: f64,
    rss: u64,
}

impl Timer {
    fn stop(self) -> Sample {
        let secs = self.0.elapsed().as_secs_f64();
        Sample {
            secs,
            rss: read_hwm(),
        }
    }
}

/// Rounds to 6 significant digits (as `benches/oras-go` prints).
fn round6(x: f64) -> f64 {
    format!("{x:.5e}").parse().unwrap_or(x)
}

/// Gathers the timed samples of one scenario and prints its JSON line.
struct Collector {
    name: &'static str,
    n: u64,
    bytes: u64,
    warmup: usize,
    durable: bool,
    quiet: bool,
    samples: Vec<Sample>,
}

impl Collector {
    fn add(&mut self, run: usize, s: Sample, extra: &str) {
        let kind = if run < self.warmup { "warmup" } else { "run" };
        if run >= self.warmup {
            self.samples.push(s);
        }
        if !self.quiet {
            eprintln!(
                "  {:<21} {:<6} {run}: {:.6} s  ({:.4e} /s)  rss {} KiB  {extra}",
                self.name,
                kind,
                s.secs,
                self.n as f64 / s.secs,
                s.rss
            );
        }
    }

    fn emit(&self) {
        if self.samples.is_empty() {
            return;
        }
        let mut secs: Vec<f64> = self.samples.iter().map(|s| s.secs).collect();
        secs.sort_by(f64::total_cmp);
        let m = secs.len() / 2;
        let median = if secs.len() % 2 == 1 {
            secs[m]
        } else {
            (secs[m - 1] + secs[m]) / 2.0
        };
        let rss = self.samples.iter().map(|s| s.rss).max().unwrap_or(0);
        println!(
            "{{\"scenario\":\"{}\",\"n\":{},\"bytes\":{},\"secs\":{},\"per_s\":{},\"durable\":{},\"peak_rss_kib\":{}}}",
            self.name,
            self.n,
            self.bytes,
            round6(median),
            round6(self.n as f64 / median),
            self.durable,
            rss
        );
    }
}

// ---------------------------------------------------------------- the bench

struct Bench {
    args: Args,
    root: PathBuf,
    seq: usize,
    n_small: usize,
    n_images: usize,
    n_lookups: usize,
    n_preds: usize,
    n_dangling: usize,
    big_size: u64,
}

fn scaled(n: usize, scale: f64) -> usize {
    ((n as f64 * scale).round() as usize).max(1)
}

/// A deterministic pseudo-random sequence (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn count_blobs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("blobs").join("sha256"))
        .map(|d| d.count())
        .unwrap_or(0)
}

impl Bench {
    fn total_runs(&self) -> usize {
        self.args.warmup + self.args.runs
    }

    fn collector(&self, name: &'static str, n: u64, bytes: u64) -> Collector {
        Collector {
            name,
            n,
            bytes,
            warmup: self.args.warmup,
            durable: !self.args.relaxed,
            quiet: self.args.quiet,
            samples: Vec::new(),
        }
    }

    fn new_dir(&mut self, label: &str) -> PathBuf {
        self.seq += 1;
        let dir = self.root.join(format!("{:03}-{label}", self.seq));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The options of the measured stores.
    fn options(&self) -> StoreOptions {
        StoreOptions::default().durable(!self.args.relaxed)
    }

    async fn open(&self, dir: &Path) -> Store {
        Store::open_with(dir, self.options()).await.unwrap()
    }

    /// Writes the images (and, with `index`, the index over them, tagged `all`) into a new
    /// layout with `Manual` and one save, untimed; returns the open store.
    async fn build_tagged(&self, dir: &Path, images: &Images, index: Option<&Blob>) -> Store {
        let store = Store::open_with(
            dir,
            StoreOptions::default()
                .durable(false)
                .autosave(AutoSave::Manual),
        )
        .await
        .unwrap();
        push_bytes(&store, &images.layer.desc, images.layer.data.clone())
            .await
            .unwrap();
        for im in &images.images {
            push_bytes(&store, &im.config.desc, im.config.data.clone())
                .await
                .unwrap();
            push_bytes(&store, &im.manifest.desc, im.manifest.data.clone())
                .await
                .unwrap();
            store.tag(&im.manifest.desc, &im.tag).await.unwrap();
        }
        if let Some(index) = index {
            push_bytes(&store, &index.desc, index.data.clone())
                .await
                .unwrap();
            store.tag(&index.desc, "all").await.unwrap();
        }
        store.save_index().await.unwrap();
        store
    }

    /// A new layout holding the tagged images, reopened with the measured options.
    async fn open_tagged(&mut self, label: &str, images: &Images) -> Store {
        let dir = self.new_dir(label);
        self.build_tagged(&dir, images, None)
            .await
            .close()
            .await
            .unwrap();
        self.open(&dir).await
    }

    async fn push_small_seq(&mut self) {
        let blobs = smalls(0, self.n_small);
        let mut col = self.collector(
            "push_small_seq",
            blobs.len() as u64,
            (blobs.len() * SMALL_SIZE) as u64,
        );
        for r in 0..self.total_runs() {
            let dir = self.new_dir(&format!("push_small_seq-r{r}"));
            let store = self.open(&dir).await;
            let t = start_timer();
            for b in &blobs {
                store
                    .push(&b.desc, reader_from_bytes(b.data.clone()))
                    .await
                    .unwrap();
            }
            col.add(r, t.stop(), "");
            store.close().await.unwrap();
        }
        col.emit();
    }

    async fn push_small_par16(&mut self) {
        let blobs = Arc::new(smalls(0, self.n_small));
        let mut col = self.collector(
            "push_small_par16",
            blobs.len() as u64,
            (blobs.len() * SMALL_SIZE) as u64,
        );
        for r in 0..self.total_runs() {
            let dir = self.new_dir(&format!("push_small_par16-r{r}"));
            let store = Arc::new(self.open(&dir).await);
            let next = Arc::new(AtomicUsize::new(0));
            let t = start_timer();
            let workers: Vec<_> = (0..PAR_WORKERS)
                .map(|_| {
                    let (store, blobs, next) = (store.clone(), blobs.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(b) = blobs.get(i) else { return };
                            store
                                .push(&b.desc, reader_from_bytes(b.data.clone()))
                                .await
                                .unwrap();
                        }
                    })
                })
                .collect();
            for w in workers {
                w.await.unwrap();
            }
            col.add(r, t.stop(), "");
            Arc::try_unwrap(store).unwrap().close().await.unwrap();
        }
        col.emit();
    }

    /// `push_large` and `fetch_large`, back to back in each run; a scenario that is not selected
    /// still runs, untimed, as the other's setup.
    async fn large(&mut self, do_push: bool, do_fetch: bool) {
        let desc = big_desc(self.big_size);
        let mut push = self.collector("push_large", 1, self.big_size);
        let mut fetch = self.collector("fetch_large", 1, self.big_size);
        let mut buf = vec![0u8; FETCH_BUF];
        for r in 0..self.total_runs() {
            let dir = self.new_dir(&format!("large-r{r}"));
            let store = self.open(&dir).await;
            trim_heap();
            let t = start_timer();
            store
                .push(&desc, Box::pin(BigReader::new(self.big_size)))
                .await
                .unwrap();
            let s = t.stop();
            if do_push {
                push.add(r, s, "");
            }
            if do_fetch {
                let t = start_timer();
                // The store's reader verifies size and digest as it goes and fails at the end
                // on a mismatch (oras-go wraps its unverified reader in a VerifyReader).
                let mut reader = store.fetch(&desc).await.unwrap();
                let mut n = 0u64;
                loop {
                    let m = reader.read(&mut buf).await.unwrap();
                    if m == 0 {
                        break;
                    }
                    n += m as u64;
                }
                drop(reader);
                let s = t.stop();
                assert_eq!(n, self.big_size, "fetch_large read {n} bytes");
                fetch.add(r, s, "");
            }
            store.close().await.unwrap();
            let hex = &desc.digest().as_ref()[7..];
            std::fs::remove_file(dir.join("blobs").join("sha256").join(hex)).unwrap();
        }
        if do_push {
            push.emit();
        }
        if do_fetch {
            fetch.emit();
        }
    }

    async fn tag_manifests(&mut self, autosave: bool) {
        let images = Images::new(self.n_images);
        let name = if autosave {
            "tag_manifests"
        } else {
            "tag_manifests_manual"
        };
        let mut col = self.collector(name, images.images.len() as u64, images.bytes());
        for r in 0..self.total_runs() {
            let dir = self.new_dir(&format!("{name}-r{r}"));
            let options = if autosave {
                self.options()
            } else {
                self.options().autosave(AutoSave::Manual)
            };
            let store = Store::open_with(&dir, options).await.unwrap();
            let (mut in_manifest, mut in_tag) = (Duration::ZERO, Duration::ZERO);
            let t = start_timer();
            store
                .push(
                    &images.layer.desc,
                    reader_from_bytes(images.layer.data.clone()),
                )
                .await
                .unwrap();
            for im in &images.images {
                store
                    .push(&im.config.desc, reader_from_bytes(im.config.data.clone()))
                    .await
                    .unwrap();
                let t1 = Instant::now();
                store
                    .push(
                        &im.manifest.desc,
                        reader_from_bytes(im.manifest.data.clone()),
                    )
                    .await
                    .unwrap();
                let t2 = Instant::now();
                store.tag(&im.manifest.desc, &im.tag).await.unwrap();
                in_manifest += t2 - t1;
                in_tag += t2.elapsed();
            }
            if !autosave {
                store.save_index().await.unwrap();
            }
            let s = t.stop();
            let writes = store.index_writes();
            col.add(
                r,
                s,
                &format!(
                    "[manifest pushes {:.3} s, tag calls {:.3} s, {writes} index writes]",
                    in_manifest.as_secs_f64(),
                    in_tag.as_secs_f64()
                ),
            );
            store.close().await.unwrap();
        }
        col.emit();
    }

    async fn open_tagged_scenario(&mut self) {
        let images = Images::new(self.n_images);
        let mut col = self.collector("open_tagged", 1, 0);
        for r in 0..self.total_runs() {
            let dir = self.new_dir(&format!("open_tagged-r{r}"));
            self.build_tagged(&dir, &images, None)
                .await
                .close()
                .await
                .unwrap();
            let options = self.options();
            let t = start_timer();
            let store = Store::open_with(&dir, options).await.unwrap();
            let s = t.stop();
            assert_eq!(store.tags(None).await.unwrap().len(), images.images.len());
            col.add(r, s, "");
            store.close().await.unwrap();
        }
        col.emit();
    }

    fn lookups(&self, r: usize) -> Vec<usize> {
        let mut rng = Rng(42 + r as u64);
        (0..self.n_lookups)
            .map(|_| (rng.next() % self.n_images as u64) as usize)
            .collect()
    }

    async fn resolve_tags(&mut self) {
        let images = Images::new(self.n_images);
        let mut col = self.collector("resolve_tags", self.n_lookups as u64, 0);
        for r in 0..self.total_runs() {
            let store = self
                .open_tagged(&format!("resolve_tags-r{r}"), &images)
                .await;
            let ks = self.lookups(r);
            let tags: Vec<&str> = ks.iter().map(|&k| images.images[k].tag.as_str()).collect();
            let mut hits = 0usize;
            let t = start_timer();
            for (i, tag) in tags.iter().enumerate() {
                let d = store.resolve(tag).await.unwrap();
                if d.digest() == images.images[ks[i]].manifest.desc.digest() {
                    hits += 1;
                }
            }
            let s = t.stop();
            assert_eq!(hits, tags.len(), "resolve_tags: wrong digests");
            col.add(r, s, "");
            store.close().await.unwrap();
        }
        col.emit();
    }

    async fn exists_manifests(&mut self) {
        let images = Images::new(self.n_images);
        let mut col = self.collector("exists_manifests", self.n_lookups as u64, 0);
        for r in 0..self.total_runs() {
            let store = self
                .open_tagged(&format!("exists_manifests-r{r}"), &images)
                .await;
            let descs: Vec<_> = self
                .lookups(r)
                .iter()
                .map(|&k| images.images[k].manifest.desc.clone())
                .collect();
            let mut found = 0usize;
            let t = start_timer();
            for d in &descs {
                if store.exists(d).await.unwrap() {
                    found += 1;
                }
            }
            let s = t.stop();
            assert_eq!(found, descs.len(), "exists_manifests: not all found");
            col.add(r, s, "");
            store.close().await.unwrap();
        }
        col.emit();
    }

    async fn predecessors_shared(&mut self) {
        let images = Images::new(self.n_images);
        let mut col = self.collector("predecessors_shared", self.n_preds as u64, 0);
        for r in 0..self.total_runs() {
            let store = self
                .open_tagged(&format!("predecessors_shared-r{r}"), &images)
                .await;
            let layer = images.layer.desc.clone();
            let mut total = 0usize;
            let t = start_timer();
            for _ in 0..self.n_preds {
                total += store.predecessors(&layer).await.unwrap().len();
            }
            let s = t.stop();
            assert_eq!(total, self.n_preds * images.images.len());
            col.add(r, s, "");
            store.close().await.unwrap();
        }
        col.emit();
    }

    /// One `copy` per tag, in image order, from a tagged layout into an empty one.
    async fn copy_tagged(&mut self) {
        let images = Images::new(self.n_images);
        let n_images = images.images.len();
        let mut col = self.collector("copy_tagged", n_images as u64, images.bytes());
        let opts = CopyOptions::default();
        for r in 0..self.total_runs() {
            let src = self
                .open_tagged(&format!("copy_tagged-r{r}-src"), &images)
                .await;
            let dst_dir = self.new_dir(&format!("copy_tagged-r{r}-dst"));
            let dst = self.open(&dst_dir).await;
            let t = start_timer();
            for im in &images.images {
                copy(&src, &im.tag, &dst, &im.tag, &opts).await.unwrap();
            }
            let s = t.stop();
            let writes = dst.index_writes();
            assert_eq!(count_blobs(&dst_dir), 2 * n_images + 1, "copy_tagged");
            col.add(r, s, &format!("[{writes} index writes]"));
            src.close().await.unwrap();
            dst.close().await.unwrap();
        }
        col.emit();
    }

    /// One `copy` of the index over every manifest (tagged `all` in the source).
    async fn copy_index(&mut self) {
        let images = Images::new(self.n_images);
        let index = images.index();
        let n_images = images.images.len();
        let mut col = self.collector(
            "copy_index",
            n_images as u64,
            images.bytes() + index.desc.size(),
        );
        let opts = CopyOptions::default();
        for r in 0..self.total_runs() {
            let src_dir = self.new_dir(&format!("copy_index-r{r}-src"));
            self.build_tagged(&src_dir, &images, Some(&index))
                .await
                .close()
                .await
                .unwrap();
            let src = self.open(&src_dir).await;
            let dst_dir = self.new_dir(&format!("copy_index-r{r}-dst"));
            let dst = self.open(&dst_dir).await;
            let t = start_timer();
            copy(&src, "all", &dst, "all", &opts).await.unwrap();
            let s = t.stop();
            let writes = dst.index_writes();
            assert_eq!(count_blobs(&dst_dir), 2 * n_images + 2, "copy_index");
            col.add(r, s, &format!("[{writes} index writes]"));
            src.close().await.unwrap();
            dst.close().await.unwrap();
        }
        col.emit();
    }

    /// `delete_all` and `gc_dangling`: every layout both need is built before either deletes
    /// anything; each is reopened just before its timer.
    async fn deletion(&mut self, do_delete: bool, do_gc: bool) {
        let images = Images::new(self.n_images);
        let dangling = smalls(DANGLING_OFFSET, self.n_dangling);
        let n_images = images.images.len();
        let mut del_dirs = Vec::new();
        let mut gc_dirs = Vec::new();
        for r in 0..self.total_runs() {
            if !do_delete {
                break;
            }
            let dir = self.new_dir(&format!("delete_all-r{r}"));
            self.build_tagged(&dir, &images, None)
                .await
                .close()
                .await
                .unwrap();
            del_dirs.push(dir);
        }
        for r in 0..self.total_runs() {
            if !do_gc {
                break;
            }
            let dir = self.new_dir(&format!("gc_dangling-r{r}"));
            let store = self.build_tagged(&dir, &images, None).await;
            for b in &dangling {
                push_bytes(&store, &b.desc, b.data.clone()).await.unwrap();
            }
            store.close().await.unwrap();
            assert_eq!(count_blobs(&dir), 2 * n_images + 1 + dangling.len());
            gc_dirs.push(dir);
        }
        trim_heap();
        if do_delete {
            let mut col = self.collector("delete_all", n_images as u64, images.bytes());
            for (r, dir) in del_dirs.iter().enumerate() {
                let store = self.open(dir).await;
                let t = start_timer();
                for im in &images.images {
                    store.delete(&im.manifest.desc).await.unwrap();
                }
                let s = t.stop();
                let writes = store.index_writes();
                assert_eq!(count_blobs(dir), 0, "delete_all: blobs left");
                col.add(r, s, &format!("[{writes} index writes]"));
                store.close().await.unwrap();
            }
            col.emit();
        }
        if do_gc {
            let mut col = self.collector("gc_dangling", 1, (dangling.len() * SMALL_SIZE) as u64);
            for (r, dir) in gc_dirs.iter().enumerate() {
                let options = self.options().gc_grace(Duration::ZERO);
                let store = Store::open_with(dir, options).await.unwrap();
                let t = start_timer();
                let report = store.gc().await.unwrap();
                let s = t.stop();
                assert_eq!(report.blobs_removed, dangling.len());
                assert_eq!(
                    count_blobs(dir),
                    2 * n_images + 1,
                    "gc_dangling: blobs left"
                );
                col.add(r, s, "");
                store.close().await.unwrap();
            }
            col.emit();
        }
    }
}

fn run_selftest(with_big: bool) -> bool {
    let mut bad = 0;
    for (what, got, want) in selftest(with_big) {
        let ok = got == want;
        if !ok {
            bad += 1;
        }
        println!(
            "{what:<24} {got}  {}",
            if ok {
                "ok".to_string()
            } else {
                format!("MISMATCH (want {want})")
            }
        );
    }
    if bad > 0 {
        println!("selftest: {bad} MISMATCH");
    } else {
        println!("selftest: all check values match");
    }
    bad == 0
}

fn main() {
    let args = parse_args();
    if args.selftest || !args.bench {
        // Without --bench this is `cargo test --benches`: check the content, skip the 1 GiB blob.
        let ok = run_selftest(args.selftest);
        std::process::exit(if ok { 0 } else { 1 });
    }
    let base = std::env::var_os("OCISTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    let root = tempfile::Builder::new()
        .prefix("ocistore-bench-")
        .tempdir_in(&base)
        .unwrap()
        .keep();
    let s = args.scale;
    let big_mib = ((1024.0 * s).round() as u64).clamp(1, 1024);
    let bench = Bench {
        n_small: scaled(N_SMALL, s),
        n_images: scaled(N_IMAGES, s),
        n_lookups: scaled(N_LOOKUPS, s),
        n_preds: scaled(N_PREDS, s),
        n_dangling: scaled(N_DANGLING, s),
        big_size: big_mib << 20,
        root: root.clone(),
        seq: 0,
        args,
    };
    if !bench.args.quiet {
        eprintln!(
            "scenarios: durable={}, scale {}, scratch {}, {} warm-up + {} runs",
            !bench.args.relaxed,
            s,
            root.display(),
            bench.args.warmup,
            bench.args.runs
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let sel = |name: &str| bench.args.selected.contains(name);
    let (push_large, fetch_large) = (sel("push_large"), sel("fetch_large"));
    let (delete_all, gc_dangling) = (sel("delete_all"), sel("gc_dangling"));
    let steps: Vec<&str> = ALL.iter().copied().filter(|n| sel(n)).collect();
    // The scenarios run in a task on the runtime's workers, as a server's requests would (and
    // as oras-go's goroutines do), not on the thread that blocks on the runtime.
    let steps: Vec<String> = steps.into_iter().map(String::from).collect();
    let bench = rt
        .block_on(rt.spawn(async move {
            let mut bench = bench;
            let mut done_large = false;
            let mut done_deletion = false;
            for name in &steps {
                trim_heap();
                match name.as_str() {
                    "push_small_seq" => bench.push_small_seq().await,
                    "push_small_par16" => bench.push_small_par16().await,
                    "push_large" | "fetch_large" if !done_large => {
                        done_large = true;
                        bench.large(push_large, fetch_large).await
                    }
                    "tag_manifests" => bench.tag_manifests(true).await,
                    "tag_manifests_manual" => bench.tag_manifests(false).await,
                    "open_tagged" => bench.open_tagged_scenario().await,
                    "resolve_tags" => bench.resolve_tags().await,
                    "exists_manifests" => bench.exists_manifests().await,
                    "predecessors_shared" => bench.predecessors_shared().await,
                    "copy_tagged" => bench.copy_tagged().await,
                    "copy_index" => bench.copy_index().await,
                    "delete_all" | "gc_dangling" if !done_deletion => {
                        done_deletion = true;
                        bench.deletion(delete_all, gc_dangling).await
                    }
                    _ => {}
                }
            }
            bench
        }))
        .unwrap();
    if bench.args.cleanup {
        let _ = std::fs::remove_dir_all(&root);
    } else if !bench.args.quiet {
        eprintln!(
            "scenarios: scratch root left in place (remove it after the last bench of the day): {}",
            root.display()
        );
    }
}
