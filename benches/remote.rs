//! The registry pull benchmark: `ocistore::copy` from a local `docker-registry` (distribution
//! 2.8 on 127.0.0.1, started by the benchmark) into an OCI image layout, side by side in one run
//! with `skopeo copy docker://... oci:...` of the same content, and the machine's own limits.
//!
//! `cargo bench -p ocistore-benches --bench remote -- [--runs N] [--images N] [--big-mib M] [--parallel P] [--no-skopeo] [--no-small]`
//!
//! `--no-skopeo` leaves skopeo out (its big pull takes seconds per run); `--no-small` leaves
//! pull_small out, for timing the big layer alone.
//!
//! - **pull_small**: `--images` (200) tagged images of the copy benchmark's content (own config,
//!   one shared 1,024-byte layer), pulled one `copy` per tag into an empty layout: ocistore one
//!   after the other and `--parallel` (8) at a time; skopeo one process per image one after
//!   the other, and `--parallel` processes at a time each into a layout of its own (skopeo
//!   cannot share one layout between processes). Images/s.
//! - **pull_big**: one image whose layer is `--big-mib` (1,024) MiB: ocistore and skopeo into an
//!   empty layout, `curl -o /dev/null` of the layer blob, and SHA-256 on one core: MB/s.
//!
//! Layouts are relaxed (`durable(false)`: skopeo does not fsync either). Each figure is the
//! median of `--runs` (3) timed runs into new directories under `$OCISTORE_BENCH_DIR` (default:
//! the temp dir); the registry is filled once, untimed. One JSON line per figure on stdout:
//! `{"scenario","tool","n","bytes","secs","per_s","mb_s"}`.
//!
//! Run without `--bench` (as `cargo test --benches` does), it pulls 5 images and an 8 MiB layer
//! once, to check that it works; without docker-registry or skopeo it says so and stops.

#[path = "support/content.rs"]
mod content;

use content::{big_desc, BigReader, Images, CONFIG, MANIFEST};
use futures::stream::{self, StreamExt};
use ocistore::autosave::AutoSave;
use ocistore::content::{descriptor_from_bytes, push_bytes};
use ocistore::copy::{copy, CopyOptions};
use ocistore::fs::{Store, StoreOptions};
use ocistore::remote::{Client, ClientOptions, Repository};
use ocistore::spec::MediaType;
use ocistore::{Pusher, Tagger};
use sha2::{Digest as _, Sha256};
use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

struct Args {
    runs: usize,
    images: usize,
    big_bytes: u64,
    parallel: usize,
    skopeo: bool,
    small: bool,
}

fn parse_args() -> Res<Args> {
    let mut bench = false;
    let mut args = Args {
        runs: 3,
        images: 200,
        big_bytes: 1 << 30,
        parallel: 8,
        skopeo: true,
        small: true,
    };
    let mut explicit = false;
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
            "--runs" => args.runs = number("--runs")?.max(1) as usize,
            "--parallel" => args.parallel = number("--parallel")?.max(1) as usize,
            "--images" => {
                args.images = number("--images")?.max(1) as usize;
                explicit = true;
            }
            "--big-mib" => {
                args.big_bytes = number("--big-mib")?.max(1) << 20;
                explicit = true;
            }
            other if !other.starts_with('-') => {}
            "--no-skopeo" => args.skopeo = false,
            "--no-small" => args.small = false,
            "--nocapture" | "--quiet" => {}
            other => {
                return Err(format!(
                    "unknown argument {other}\nusage: cargo bench -p ocistore-benches --bench remote -- \
                     [--runs N] [--images N] [--big-mib M] [--parallel P] [--no-skopeo] [--no-small]"
                )
                .into())
            }
        }
    }
    if !bench && !explicit {
        args = Args {
            runs: 1,
            images: 5,
            big_bytes: 8 << 20,
            parallel: 2,
            ..args
        };
    }
    Ok(args)
}

fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(|a, b| a.total_cmp(b));
    secs.get(secs.len() / 2).copied().unwrap_or(f64::NAN)
}

fn emit(scenario: &str, tool: &str, n: u64, bytes: u64, secs: f64) {
    println!(
        r#"{{"scenario":"{scenario}","tool":"{tool}","n":{n},"bytes":{bytes},"secs":{secs:.6},"per_s":{:.3},"mb_s":{:.1}}}"#,
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

/// CPU seconds of process `pid` so far: its own threads, and its children it waited for; and
/// its minor page faults.
fn cpu_secs(pid: &str) -> (f64, f64, f64) {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which ends at the last ')': state is field 3.
    let fields: Vec<u64> = text
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .map(|f| f.parse().unwrap_or(0))
                .collect()
        })
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).copied().unwrap_or(0) as f64 / ticks;
    (
        field(14) + field(15),
        field(16) + field(17),
        field(10) * ticks,
    )
}

/// The process id of the `docker-registry` this process started, to count its CPU time.
fn registry_pid() -> Option<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid = entry.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let (name, rest) = text.rsplit_once(')')?;
            let parent = rest.split_whitespace().nth(1)?;
            (name.ends_with("(docker-registry") && parent == me).then_some(pid)
        })
}

fn relaxed() -> StoreOptions {
    StoreOptions::default()
        .durable(false)
        .autosave(AutoSave::Manual)
}

/// Fills the registry (untimed): the small images in `bench/small`, the big one in `bench/big`.
async fn fill(
    client: &Client,
    host: &str,
    images: &Images,
    big: u64,
) -> Res<ocistore::spec::Descriptor> {
    let small = Repository::new(client, &format!("{host}/bench/small"))?;
    push_bytes(&small, &images.layer.desc, images.layer.data.clone()).await?;
    for im in &images.images {
        push_bytes(&small, &im.config.desc, im.config.data.clone()).await?;
        push_bytes(&small, &im.manifest.desc, im.manifest.data.clone()).await?;
        small.tag(&im.manifest.desc, &im.tag).await?;
    }
    let repo = Repository::new(client, &format!("{host}/bench/big"))?;
    let layer = big_desc(big);
    let config_bytes = content::config_bytes(0);
    let config = descriptor_from_bytes(MediaType::from(CONFIG), &config_bytes);
    let manifest_bytes = content::manifest_bytes(&config, &layer);
    let manifest = descriptor_from_bytes(MediaType::from(MANIFEST), &manifest_bytes);
    repo.push(&layer, Box::pin(BigReader::new(big))).await?;
    push_bytes(&repo, &config, config_bytes).await?;
    push_bytes(&repo, &manifest, manifest_bytes).await?;
    repo.tag(&manifest, "big").await?;
    Ok(layer)
}

fn skopeo(src: &str, dst: &str) -> Res<()> {
    let out = Command::new("skopeo")
        .args([
            "--insecure-policy",
            "copy",
            "--quiet",
            "--preserve-digests",
            "--src-tls-verify=false",
            src,
            dst,
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "skopeo copy {src} {dst}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn fresh(root: &Path, label: &str, run: usize) -> PathBuf {
    root.join(format!("{label}-{run}"))
}

async fn ours_small(
    client: &Client,
    host: &str,
    images: &Images,
    dir: &Path,
    parallel: usize,
) -> Res<f64> {
    let repo = Repository::new(client, &format!("{host}/bench/small"))?;
    let started = Instant::now();
    let dst = Store::open_with(dir, relaxed()).await?;
    let opts = CopyOptions::default();
    let results: Vec<_> = stream::iter(&images.images)
        .map(|im| copy(&repo, &im.tag, &dst, "", &opts))
        .buffer_unordered(parallel)
        .collect()
        .await;
    for result in results {
        result?;
    }
    dst.close().await?;
    Ok(started.elapsed().as_secs_f64())
}

fn skopeo_small(host: &str, images: &Images, dir: &Path, parallel: usize) -> Res<f64> {
    std::fs::create_dir_all(dir)?;
    let started = Instant::now();
    let tags: Vec<String> = images.images.iter().map(|im| im.tag.clone()).collect();
    let shares: Vec<Vec<String>> = (0..parallel)
        .map(|p| tags.iter().skip(p).step_by(parallel).cloned().collect())
        .collect();
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .enumerate()
            .map(|(p, share)| {
                let layout = dir.join(format!("p{p}"));
                scope.spawn(move || -> Result<(), String> {
                    for tag in share {
                        skopeo(
                            &format!("docker://{host}/bench/small:{tag}"),
                            &format!("oci:{}:{tag}", layout.display()),
                        )
                        .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(failure)) => Some(failure),
                Err(_) => Some("a skopeo thread panicked".to_string()),
            })
            .collect()
    });
    if let Some(failure) = failures.first() {
        return Err(failure.clone().into());
    }
    Ok(started.elapsed().as_secs_f64())
}

fn sha256_speed(bytes: u64) -> f64 {
    let buf: Vec<u8> = (0..1usize << 20).map(|j| (j * 7 + 13) as u8).collect();
    let mut hasher = Sha256::new();
    let rounds = (bytes >> 20).max(1);
    let started = Instant::now();
    for _ in 0..rounds {
        hasher.update(&buf);
    }
    std::hint::black_box(hasher.finalize());
    (rounds << 20) as f64 / started.elapsed().as_secs_f64() / 1e6
}

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

fn main() -> Res<()> {
    let args = parse_args()?;
    if Command::new("skopeo").arg("--version").output().is_err()
        || Command::new("curl").arg("--version").output().is_err()
    {
        eprintln!(
            "remote bench: skopeo and curl are needed (apt-get install skopeo curl); skipped"
        );
        return Ok(());
    }
    let registry =
        match ocistore_test_registry::Registry::start(ocistore_test_registry::Auth::Anonymous) {
            Ok(registry) => registry,
            Err(err) => {
                eprintln!("remote bench: {err}; skipped");
                return Ok(());
            }
        };
    let host = registry.host();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let client = Client::anonymous(ClientOptions::default())?;
    let images = Images::new(args.images);
    let root = tempfile::Builder::new()
        .prefix("ocistore-remote-bench-")
        .tempdir_in(
            std::env::var_os("OCISTORE_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from),
        )?;
    eprintln!(
        "remote bench: filling {host} ({} images, {} MiB layer); load {}",
        args.images,
        args.big_bytes >> 20,
        load_average()
    );
    let layer = runtime.block_on(fill(&client, &host, &images, args.big_bytes))?;
    let n = args.images as u64;
    let small_bytes = images.bytes();

    let small_runs = [
        ("ocistore", 1),
        ("ocistore", args.parallel),
        ("skopeo", 1),
        ("skopeo", args.parallel),
    ];
    for (tool, parallel) in small_runs
        .into_iter()
        .filter(|(tool, _)| args.small && (args.skopeo || *tool != "skopeo"))
    {
        let mut secs = Vec::new();
        for run in 0..args.runs {
            let dir = fresh(root.path(), &format!("small-{tool}-{parallel}"), run);
            let taken = if tool == "ocistore" {
                // A fresh client per run: its token and connection caches start cold, as skopeo's.
                let client = Client::anonymous(ClientOptions::default())?;
                runtime.block_on(ours_small(&client, &host, &images, &dir, parallel))?
            } else {
                skopeo_small(&host, &images, &dir, parallel)?
            };
            secs.push(taken);
            std::fs::remove_dir_all(&dir)?;
        }
        emit(
            &format!("pull_small_p{parallel}"),
            tool,
            n,
            small_bytes,
            median(secs),
        );
    }

    let big = args.big_bytes;
    let registry_pid = registry_pid();
    for tool in ["ocistore", "skopeo", "curl"]
        .into_iter()
        .filter(|tool| args.skopeo || *tool != "skopeo")
    {
        let mut secs = Vec::new();
        let mut cpu = Vec::new();
        let mut registry_cpu = Vec::new();
        let mut faults = Vec::new();
        for run in 0..args.runs {
            let dir = fresh(root.path(), &format!("big-{tool}"), run);
            let registry_before = registry_pid.as_deref().map(|pid| cpu_secs(pid).0);
            let (own_before, children_before, faults_before) = cpu_secs("self");
            let started = Instant::now();
            match tool {
                "ocistore" => {
                    let client = Client::anonymous(ClientOptions::default())?;
                    runtime.block_on(async {
                        let repo = Repository::new(&client, &format!("{host}/bench/big"))?;
                        let dst = Store::open_with(&dir, relaxed()).await?;
                        copy(&repo, "big", &dst, "", &CopyOptions::default()).await?;
                        dst.close().await?;
                        Ok::<_, Box<dyn Error>>(())
                    })?;
                }
                "skopeo" => skopeo(
                    &format!("docker://{host}/bench/big:big"),
                    &format!("oci:{}:big", dir.display()),
                )?,
                _ => {
                    let status = Command::new("curl")
                        .args(["-sf", "-o", "/dev/null"])
                        .arg(format!(
                            "http://{host}/v2/bench/big/blobs/{}",
                            layer.digest()
                        ))
                        .status()?;
                    if !status.success() {
                        return Err(format!("curl failed: {status}").into());
                    }
                }
            }
            secs.push(started.elapsed().as_secs_f64());
            let (own, children, faults_after) = cpu_secs("self");
            faults.push(faults_after - faults_before);
            cpu.push(if tool == "ocistore" {
                own - own_before
            } else {
                children - children_before
            });
            if let (Some(pid), Some(before)) = (&registry_pid, registry_before) {
                registry_cpu.push(cpu_secs(pid).0 - before);
            }
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
        }
        emit("pull_big", tool, 1, big, median(secs));
        eprintln!(
            "remote bench: pull_big {tool}: CPU {:.2} s in the client ({:.0} page faults), {:.2} s in the registry (medians)",
            median(cpu),
            median(faults),
            median(registry_cpu)
        );
    }
    let sha = sha256_speed(big.min(1 << 30));
    println!(
        r#"{{"scenario":"sha256_one_core","tool":"sha2","n":1,"bytes":{big},"secs":null,"per_s":null,"mb_s":{sha:.1}}}"#
    );
    eprintln!("remote bench: done; load {}", load_average());
    Ok(())
}
