//! The archive benchmark: `ocistore::archive::export` and `import` between an OCI image layout
//! on disk and an archive file, beside `skopeo copy` between `oci:` and `oci-archive:` of the
//! same content, and SHA-256 on one core, all in the same run.
//!
//! `cargo bench -p ocistore-benches --bench archive -- [--runs N] [--images N] [--big-mib M]
//! [--no-skopeo]`
//!
//! - **images**: the 1,000 images of the scenario benchmark (`support/content.rs`: one config
//!   each, one shared 1,024-byte layer) under one index tagged `all`, so that one
//!   `skopeo copy --all` moves them all, as one export does. Ours also exports the 1,000 tags
//!   themselves (`export_tags`).
//! - **big**: one image whose layer is 1 GiB (generated, never held in memory), tagged `big`.
//!
//! Per content: `export` (layout → archive file), `import` (archive file → new layout, whose
//! stores are `durable(false)`: skopeo does not fsync either), and `skopeo copy
//! --preserve-digests [--all]` for `oci:` → `oci-archive:` and back. Each figure is the median
//! of `--runs` timed runs (default 3) into new files or directories under
//! `$OCISTORE_BENCH_DIR` (default: the temp dir); `sync()` before each timer. One JSON line per
//! figure on stdout: `{"scenario","n","bytes","secs","mb_s"}`, a summary on stderr.
//!
//! Run without `--bench` (as `cargo test --benches` does), it moves 10 images and an 8 MiB
//! layer once, with skopeo only when it is installed.

#[path = "support/content.rs"]
mod content;

use content::{big_desc, BigReader, Images, CONFIG, MANIFEST};
use ocistore::archive::{export, import, ExportOptions, ImportOptions};
use ocistore::autosave::AutoSave;
use ocistore::content::{descriptor_from_bytes, push_bytes};
use ocistore::fs::{Store, StoreOptions};
use ocistore::spec::MediaType;
use ocistore::{Pusher, Tagger};
use sha2::{Digest as _, Sha256};
use std::error::Error;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    runs: usize,
    images: usize,
    big_bytes: u64,
    skopeo: bool,
}

fn parse_args() -> Res<Args> {
    let mut bench = false;
    let mut args = Args {
        runs: 3,
        images: content::N_IMAGES,
        big_bytes: content::BIG_SIZE,
        skopeo: true,
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
            "--no-skopeo" => args.skopeo = false,
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
                    "unknown argument {other}\nusage: cargo bench -p ocistore-benches --bench \
                     archive -- [--runs N] [--images N] [--big-mib M] [--no-skopeo]"
                )
                .into())
            }
        }
    }
    if !bench && !explicit_size {
        args.runs = 1;
        args.images = 10;
        args.big_bytes = 8 << 20;
    }
    if args.skopeo && Command::new("skopeo").arg("--version").output().is_err() {
        if bench {
            return Err(
                "skopeo is not installed (apt-get install skopeo), or pass --no-skopeo".into(),
            );
        }
        args.skopeo = false;
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

/// SHA-256 of `mib` MiB (1,024 in a real run) in 1 MiB updates on one core; returns MB/s.
fn sha256_speed(mib: u64) -> f64 {
    let buf: Vec<u8> = (0..1usize << 20).map(|j| (j * 7 + 13) as u8).collect();
    let mut hasher = Sha256::new();
    let started = Instant::now();
    for _ in 0..mib {
        hasher.update(&buf);
    }
    std::hint::black_box(hasher.finalize());
    (mib << 20) as f64 / started.elapsed().as_secs_f64() / 1e6
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn relaxed() -> StoreOptions {
    StoreOptions::default()
        .durable(false)
        .autosave(AutoSave::Manual)
}

/// The 1,000 images and their index, tagged `t0000`.. and `all` (untimed).
async fn build_images(dir: &Path, images: &Images) -> Res<()> {
    let store = Store::open_with(dir, relaxed()).await?;
    push_bytes(&store, &images.layer.desc, images.layer.data.clone()).await?;
    for im in &images.images {
        push_bytes(&store, &im.config.desc, im.config.data.clone()).await?;
        push_bytes(&store, &im.manifest.desc, im.manifest.data.clone()).await?;
        store.tag(&im.manifest.desc, &im.tag).await?;
    }
    let index = images.index();
    push_bytes(&store, &index.desc, index.data.clone()).await?;
    store.tag(&index.desc, "all").await?;
    store.close().await?;
    Ok(())
}

/// One image whose only layer is `size` bytes, streamed from its generator, tagged `big`;
/// returns the image's total size.
async fn build_big(dir: &Path, size: u64) -> Res<u64> {
    let layer = big_desc(size);
    let config_bytes = content::config_bytes(0);
    let config = descriptor_from_bytes(MediaType::from(CONFIG), &config_bytes);
    let manifest_bytes = content::manifest_bytes(&config, &layer);
    let manifest = descriptor_from_bytes(MediaType::from(MANIFEST), &manifest_bytes);
    let store = Store::open_with(dir, relaxed()).await?;
    store.push(&layer, Box::pin(BigReader::new(size))).await?;
    push_bytes(&store, &config, config_bytes).await?;
    push_bytes(&store, &manifest, manifest_bytes).await?;
    store.tag(&manifest, "big").await?;
    store.close().await?;
    Ok(layer.size() + config.size() + manifest.size())
}

/// Times `run` (given a fresh path under `root` each time) `runs` times; removes the path
/// after each run except the last, whose path is returned with the median.
async fn timed<F, Fut>(root: &Path, label: &str, runs: usize, mut run: F) -> Res<(f64, PathBuf)>
where
    F: FnMut(PathBuf) -> Fut,
    Fut: Future<Output = Res<()>>,
{
    let mut secs = Vec::new();
    let mut last = PathBuf::new();
    for r in 0..runs {
        if r > 0 {
            remove(&last)?;
        }
        last = root.join(format!("{label}-{r}"));
        sync_disks();
        let started = Instant::now();
        run(last.clone()).await?;
        secs.push(started.elapsed().as_secs_f64());
    }
    Ok((median(secs), last))
}

fn remove(path: &Path) -> Res<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)?;
    } else if path.exists() {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

fn skopeo(args: &[&str]) -> Res<()> {
    let out = Command::new("skopeo").args(args).output()?;
    if !out.status.success() {
        return Err(format!(
            "skopeo {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

struct Report {
    lines: Vec<String>,
}

impl Report {
    fn add(&mut self, scenario: &str, n: u64, bytes: u64, secs: f64) {
        let mb_s = bytes as f64 / secs / 1e6;
        println!(
            r#"{{"scenario":"{scenario}","n":{n},"bytes":{bytes},"secs":{secs:.6},"mb_s":{mb_s:.1}}}"#
        );
        self.lines.push(format!(
            "{scenario:<34} {secs:>9.3} s  {:>10.1} images/s  {mb_s:>8.1} MB/s",
            n as f64 / secs
        ));
    }
}

/// What [`measure`] moves: `tag` of the layout `dir`, `n` images of `bytes` in all.
struct Content<'a> {
    label: &'a str,
    dir: &'a Path,
    tag: &'a str,
    n: u64,
    bytes: u64,
}

/// Our export and import of the content, and skopeo's copies both ways.
async fn measure(args: &Args, root: &Path, report: &mut Report, content: Content<'_>) -> Res<()> {
    let Content {
        label,
        dir: src_dir,
        tag,
        n,
        bytes,
    } = content;
    let src = Store::open_with(src_dir, StoreOptions::default().durable(false)).await?;
    let (secs, archive) = timed(root, &format!("{label}-export"), args.runs, |path| {
        let src = &src;
        async move {
            let file = tokio::fs::File::create(&path).await?;
            export(src, [tag], file, &ExportOptions::default()).await?;
            Ok(())
        }
    })
    .await?;
    report.add(&format!("{label}: export"), n, bytes, secs);
    let (secs, imported) = timed(root, &format!("{label}-import"), args.runs, |path| {
        let archive = archive.clone();
        async move {
            let dst = Store::open_with(&path, relaxed()).await?;
            let file = tokio::fs::File::open(&archive).await?;
            import(file, &dst, &ImportOptions::default()).await?;
            dst.close().await?;
            Ok(())
        }
    })
    .await?;
    report.add(&format!("{label}: import"), n, bytes, secs);
    remove(&imported)?;
    if args.skopeo {
        let all: &[&str] = if n > 1 { &["--all"] } else { &[] };
        let from = format!("oci:{}:{tag}", src_dir.display());
        let (secs, skopeo_archive) =
            timed(root, &format!("{label}-skopeo-export"), args.runs, |path| {
                let to = format!("oci-archive:{}:{tag}", path.display());
                let from = from.clone();
                async move {
                    let mut cmd = vec!["copy", "--quiet", "--preserve-digests"];
                    cmd.extend_from_slice(all);
                    cmd.push(&from);
                    cmd.push(&to);
                    skopeo(&cmd)
                }
            })
            .await?;
        report.add(
            &format!("{label}: skopeo oci: -> oci-archive:"),
            n,
            bytes,
            secs,
        );
        let (secs, copied) = timed(root, &format!("{label}-skopeo-import"), args.runs, |path| {
            let from = format!("oci-archive:{}:{tag}", skopeo_archive.display());
            let to = format!("oci:{}:{tag}", path.display());
            async move {
                let mut cmd = vec!["copy", "--quiet", "--preserve-digests"];
                cmd.extend_from_slice(all);
                cmd.push(&from);
                cmd.push(&to);
                skopeo(&cmd)
            }
        })
        .await?;
        report.add(
            &format!("{label}: skopeo oci-archive: -> oci:"),
            n,
            bytes,
            secs,
        );
        remove(&copied)?;
        remove(&skopeo_archive)?;
    }
    remove(&archive)?;
    src.close().await?;
    Ok(())
}

async fn run(args: &Args) -> Res<()> {
    let base = std::env::var_os("OCISTORE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base)?;
    let scratch = tempfile::Builder::new()
        .prefix("ocistore-archive-bench-")
        .tempdir_in(&base)?;
    let root = scratch.path();
    let mut report = Report {
        lines: vec![format!("load average at the start: {}", load_average())],
    };
    let sha = sha256_speed(args.big_bytes.div_ceil(1 << 20));
    report
        .lines
        .push(format!("SHA-256 (sha2, one core): {sha:.0} MB/s"));

    let images = Images::new(args.images);
    let images_dir = root.join("src-images");
    build_images(&images_dir, &images).await?;
    let n = images.images.len() as u64;
    let index_size = images.index().desc.size();
    let content = Content {
        label: "images",
        dir: &images_dir,
        tag: "all",
        n,
        bytes: images.bytes() + index_size,
    };
    measure(args, root, &mut report, content).await?;

    // Ours only: the same images as 1,000 tags in one archive.
    let src = Store::open_with(&images_dir, StoreOptions::default().durable(false)).await?;
    let tags: Vec<String> = images.images.iter().map(|im| im.tag.clone()).collect();
    let (secs, archive) = timed(root, "tags-export", args.runs, |path| {
        let (src, tags) = (&src, &tags);
        async move {
            let file = tokio::fs::File::create(&path).await?;
            export(src, tags, file, &ExportOptions::default()).await?;
            Ok(())
        }
    })
    .await?;
    report.add(
        &format!("images, {n} tags: export"),
        n,
        images.bytes(),
        secs,
    );
    let (secs, imported) = timed(root, "tags-import", args.runs, |path| {
        let archive = archive.clone();
        async move {
            let dst = Store::open_with(&path, relaxed()).await?;
            let file = tokio::fs::File::open(&archive).await?;
            import(file, &dst, &ImportOptions::default()).await?;
            dst.close().await?;
            Ok(())
        }
    })
    .await?;
    report.add(
        &format!("images, {n} tags: import"),
        n,
        images.bytes(),
        secs,
    );
    remove(&imported)?;
    remove(&archive)?;
    src.close().await?;
    remove(&images_dir)?;

    let big_dir = root.join("src-big");
    let big_bytes = build_big(&big_dir, args.big_bytes).await?;
    let content = Content {
        label: "big",
        dir: &big_dir,
        tag: "big",
        n: 1,
        bytes: big_bytes,
    };
    measure(args, root, &mut report, content).await?;

    report
        .lines
        .push(format!("load average at the end: {}", load_average()));
    for line in report.lines {
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
        eprintln!("archive bench: {err}");
        std::process::exit(1);
    }
}
