//! The copy benchmark: `ocistore::copy` between two OCI image layouts on disk, beside the
//! machine's own limits measured in the same run.
//!
//! `cargo bench -p ocistore-benches --bench copy -- [--relaxed | --durable] [--runs N] [--images N] [--big-mib M]
//! [--no-machine]`
//!
//! - **copy_tagged**: 1,000 tagged images (the content of the scenario benchmark, `support/content.rs`:
//!   configs `{"architecture":"amd64","os":"linux","rootfs":{..},"i":<i>}`, one shared
//!   1,024-byte layer, compact manifests, tags `t0000`..`t0999`) copied into an empty layout,
//!   one `copy` per tag: images/s and MB/s (482,914 bytes for 1,000 images).
//! - **copy_big**: one image whose layer is 1 GiB (the scenario benchmark's big blob, generated on the
//!   fly and pushed through a streaming reader, never held in memory) copied into an empty
//!   layout, its bytes streamed: MB/s. Then the same copy sharing the layer's file
//!   (`copy_big_reflink`: a reflink where the file system has them, else streamed;
//!   `copy_big_link`: a reflink, else a hard link), verified by reading the shared file or,
//!   with `_trusted`, not read at all; each line says how the layer was stored (the copy's
//!   report). Run it on XFS (`mkfs.xfs -m reflink=1`) or Btrfs to see reflinks.
//! - **machine**: SHA-256 of 1 GiB on one core (`sha2`, 1 MiB updates) and a sequential write of
//!   1 GiB with `dd if=/dev/zero bs=1M count=1024 conv=fdatasync` in the same directory.
//!
//! Both copy scenarios run with durable stores (fsync on every commit) and relaxed ones
//! (`durable(false)`, like oras-go, which never fsyncs), unless `--relaxed` or `--durable`
//! picks one. Each figure is the median of `--runs` timed runs (default 3), each into a new
//! empty directory under `$OCISTORE_BENCH_DIR` (default: the temp dir); the sources are written
//! once, untimed, and `sync()` runs before each timer. One JSON line per figure on stdout:
//! `{"scenario","n","bytes","secs","per_s","mb_s","durable"}`.
//!
//! Run without `--bench` (as `cargo test --benches` does), it copies 10 images and an 8 MiB
//! layer once, to check that it works.

#[path = "support/content.rs"]
mod content;

use content::{big_desc, BigReader, Images, CONFIG, MANIFEST};
use ocistore::autosave::AutoSave;
use ocistore::content::{descriptor_from_bytes, push_bytes};
use ocistore::copy::{copy, CopyOptions, CopyReport, FileSharing};
use ocistore::fs::{Store, StoreOptions};
use ocistore::spec::MediaType;
use ocistore::{Pusher, Tagger};
use sha2::{Digest as _, Sha256};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    modes: Vec<bool>,
    runs: usize,
    images: usize,
    big_bytes: u64,
    machine: bool,
}

fn parse_args() -> Res<Args> {
    let mut bench = false;
    let mut args = Args {
        modes: vec![true, false],
        runs: 3,
        images: content::N_IMAGES,
        big_bytes: content::BIG_SIZE,
        machine: true,
    };
    let mut explicit_size = false;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Res<u64> {
            let value = it.next().ok_or_else(|| format!("{name} needs a value"))?;
            Ok(value
                .parse::<u64>()
                .map_err(|_| format!("{name} takes a whole number, not {value:?}"))?)
        };
        match arg.as_str() {
            "--bench" => bench = true,
            "--relaxed" => args.modes = vec![false],
            "--durable" => args.modes = vec![true],
            "--no-machine" => args.machine = false,
            "--runs" => args.runs = number("--runs")?.max(1) as usize,
            "--images" => {
                args.images = number("--images")?.max(1) as usize;
                explicit_size = true;
            }
            "--big-mib" => {
                args.big_bytes = number("--big-mib")?.max(1) << 20;
                explicit_size = true;
            }
            // What `cargo test` may pass to a harness-less target.
            other if !other.starts_with('-') => {}
            "--nocapture" | "--quiet" => {}
            other => {
                return Err(format!(
                "unknown argument {other}\nusage: cargo bench -p ocistore-benches --bench copy -- \
                     [--relaxed | --durable] [--runs N] [--images N] [--big-mib M] [--no-machine]"
            )
                .into())
            }
        }
    }
    if !bench && !explicit_size {
        // A smoke run: small, once, no machine figures.
        args = Args {
            modes: vec![false],
            runs: 1,
            images: 10,
            big_bytes: 8 << 20,
            machine: false,
        };
    }
    Ok(args)
}

fn sync_disks() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(|a, b| a.total_cmp(b));
    secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn emit(scenario: &str, n: u64, bytes: u64, secs: f64, durable: Option<bool>) {
    let durable = durable.map_or("null".to_string(), |d| d.to_string());
    println!(
        r#"{{"scenario":"{scenario}","n":{n},"bytes":{bytes},"secs":{secs:.6},"per_s":{:.3},"mb_s":{:.1},"durable":{durable}}}"#,
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

/// SHA-256 of 1 GiB in 1 MiB updates on one core; returns MB/s.
fn sha256_speed() -> f64 {
    let buf: Vec<u8> = (0..1usize << 20).map(|j| (j * 7 + 13) as u8).collect();
    let mut hasher = Sha256::new();
    let started = Instant::now();
    for _ in 0..1024 {
        hasher.update(&buf);
    }
    let digest = hasher.finalize();
    let secs = started.elapsed().as_secs_f64();
    std::hint::black_box(digest);
    (1u64 << 30) as f64 / secs / 1e6
}

/// `dd if=/dev/zero of=DIR/dd.bin bs=1M count=1024 conv=fdatasync`; returns MB/s as timed here.
fn dd_speed(dir: &Path) -> Res<f64> {
    let target = dir.join("dd.bin");
    sync_disks();
    let started = Instant::now();
    let status = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", target.display()))
        .args(["bs=1M", "count=1024", "conv=fdatasync"])
        .stderr(std::process::Stdio::null())
        .status()?;
    let secs = started.elapsed().as_secs_f64();
    std::fs::remove_file(&target)?;
    if !status.success() {
        return Err(format!("dd failed: {status}").into());
    }
    Ok((1u64 << 30) as f64 / secs / 1e6)
}

/// The 1, 5 and 15 minute load averages (other work on the machine skews every figure).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_string())
}

fn relaxed_writer() -> StoreOptions {
    StoreOptions::default()
        .durable(false)
        .autosave(AutoSave::Manual)
}

/// Writes the tagged images into a new layout (untimed) and closes it.
async fn build_images(dir: &Path, images: &Images) -> Res<()> {
    let store = Store::open_with(dir, relaxed_writer()).await?;
    push_bytes(&store, &images.layer.desc, images.layer.data.clone()).await?;
    for im in &images.images {
        push_bytes(&store, &im.config.desc, im.config.data.clone()).await?;
        push_bytes(&store, &im.manifest.desc, im.manifest.data.clone()).await?;
        store.tag(&im.manifest.desc, &im.tag).await?;
    }
    store.close().await?;
    Ok(())
}

/// Writes an image whose only layer is the big blob of `size` bytes, tagged `big`, streaming
/// the layer from its generator; returns the image's total size.
async fn build_big(dir: &Path, size: u64) -> Res<u64> {
    let layer = big_desc(size);
    let config_bytes = content::config_bytes(0);
    let config = descriptor_from_bytes(MediaType::from(CONFIG), &config_bytes);
    let manifest_bytes = content::manifest_bytes(&config, &layer);
    let manifest = descriptor_from_bytes(MediaType::from(MANIFEST), &manifest_bytes);
    let store = Store::open_with(dir, relaxed_writer()).await?;
    store.push(&layer, Box::pin(BigReader::new(size))).await?;
    push_bytes(&store, &config, config_bytes).await?;
    push_bytes(&store, &manifest, manifest_bytes).await?;
    store.tag(&manifest, "big").await?;
    store.close().await?;
    Ok(layer.size() + config.size() + manifest.size())
}

fn destination(root: &Path, label: &str) -> PathBuf {
    root.join(label)
}

async fn copy_tagged(src: &Store, dst_dir: &Path, images: &Images, durable: bool) -> Res<f64> {
    let dst = Store::open_with(dst_dir, StoreOptions::default().durable(durable)).await?;
    let opts = CopyOptions::default();
    sync_disks();
    let started = Instant::now();
    for im in &images.images {
        copy(src, &im.tag, &dst, &im.tag, &opts).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    dst.close().await?;
    Ok(secs)
}

/// The ways the big layer is copied: streamed (the bytes read, hashed once and written), and
/// shared as a file (a reflink where the file system has them, a hard link when allowed),
/// verified by reading the shared file, or trusted.
const BIG_WAYS: [(&str, FileSharing, bool); 5] = [
    ("copy_big", FileSharing::Stream, false),
    ("copy_big_reflink", FileSharing::Reflink, false),
    ("copy_big_reflink_trusted", FileSharing::Reflink, true),
    ("copy_big_link", FileSharing::ReflinkOrHardLink, false),
    (
        "copy_big_link_trusted",
        FileSharing::ReflinkOrHardLink,
        true,
    ),
];

async fn copy_big(
    src: &Store,
    dst_dir: &Path,
    durable: bool,
    sharing: FileSharing,
    trusted: bool,
) -> Res<(f64, String)> {
    let dst = Store::open_with(dst_dir, StoreOptions::default().durable(durable)).await?;
    let report = CopyReport::new();
    let mut opts = CopyOptions::default();
    opts.graph = opts
        .graph
        .with_file_sharing(sharing)
        .trusting_source_files(trusted)
        .with_report(report.clone());
    sync_disks();
    let started = Instant::now();
    copy(src, "big", &dst, "big", &opts).await?;
    let secs = started.elapsed().as_secs_f64();
    dst.close().await?;
    let counts = report.counts();
    let how = match (counts.cloned, counts.linked, counts.why_streamed) {
        (1, _, _) => "layer cloned".to_string(),
        (_, 1, _) => "layer hard-linked".to_string(),
        (_, _, Some(why)) => format!("layer streamed: {why}"),
        _ => "layer streamed".to_string(),
    };
    Ok((secs, how))
}

async fn run(args: &Args) -> Res<()> {
    let base = std::env::var_os("OCISTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let scratch = tempfile::Builder::new()
        .prefix("ocistore-copy-bench-")
        .tempdir_in(&base)?;
    let root = scratch.path();

    let mut summary = vec![format!("load average at the start: {}", load_average())];
    if args.machine {
        let sha = sha256_speed();
        emit(
            "sha256_1gib",
            1,
            1 << 30,
            (1u64 << 30) as f64 / sha / 1e6,
            None,
        );
        let dd = dd_speed(root)?;
        emit(
            "dd_1gib_fdatasync",
            1,
            1 << 30,
            (1u64 << 30) as f64 / dd / 1e6,
            None,
        );
        summary.push(format!(
            "SHA-256 (sha2, one core)            {sha:>9.0} MB/s"
        ));
        summary.push(format!(
            "dd 1 GiB, conv=fdatasync            {dd:>9.0} MB/s"
        ));
    }

    let images = Images::new(args.images);
    let images_dir = root.join("src-images");
    build_images(&images_dir, &images).await?;
    let big_dir = root.join("src-big");
    let big_bytes = build_big(&big_dir, args.big_bytes).await?;
    let src_images = Store::open_with(&images_dir, StoreOptions::default().durable(false)).await?;
    let src_big = Store::open_with(&big_dir, StoreOptions::default().durable(false)).await?;

    let n = images.images.len() as u64;
    for &durable in &args.modes {
        let mode = if durable { "durable" } else { "relaxed" };
        let mut tagged = Vec::new();
        let mut big: Vec<Vec<f64>> = vec![Vec::new(); BIG_WAYS.len()];
        let mut how = vec![String::new(); BIG_WAYS.len()];
        for r in 0..args.runs {
            let dir = destination(root, &format!("dst-tagged-{mode}-{r}"));
            tagged.push(copy_tagged(&src_images, &dir, &images, durable).await?);
            std::fs::remove_dir_all(&dir)?;
            // Alternated run by run, so that a slow spell of the machine hits every way.
            for (i, (name, sharing, trusted)) in BIG_WAYS.iter().enumerate() {
                let dir = destination(root, &format!("dst-{name}-{mode}-{r}"));
                let (secs, stored) = copy_big(&src_big, &dir, durable, *sharing, *trusted).await?;
                big[i].push(secs);
                how[i] = stored;
                std::fs::remove_dir_all(&dir)?;
            }
        }
        let tagged = median(tagged);
        emit("copy_tagged", n, images.bytes(), tagged, Some(durable));
        summary.push(format!(
            "copy_tagged ({mode}, {n} images)      {:>9.0} images/s  {:>7.2} MB/s  ({tagged:.3} s)",
            n as f64 / tagged,
            images.bytes() as f64 / tagged / 1e6
        ));
        for (i, (name, _, _)) in BIG_WAYS.iter().enumerate() {
            let secs = median(big[i].clone());
            emit(name, 1, big_bytes, secs, Some(durable));
            summary.push(format!(
                "{name} ({mode}, {} MiB layer) {:>9.0} MB/s  ({secs:.3} s; {})",
                args.big_bytes >> 20,
                big_bytes as f64 / secs / 1e6,
                how[i]
            ));
        }
    }
    src_images.close().await?;
    src_big.close().await?;
    summary.push(format!("load average at the end: {}", load_average()));
    for line in summary {
        eprintln!("{line}");
    }
    Ok(())
}

fn main() {
    let outcome = parse_args().and_then(|args| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(run(&args))
    });
    if let Err(err) = outcome {
        eprintln!("copy bench: {err}");
        std::process::exit(1);
    }
}
