//! How the autosave policy changes the cost of tagging: N manifests tagged one by one with
//! `Always` from one task, `Always` from 16 concurrent tasks, `Debounce(50 ms)`, and `Manual` plus
//! one save, beside a mode that writes `index.json` once per change as oras-go v2.6.2 does
//! (`Manual` + `save_index` after every tag).
//!
//! `cargo bench -p ocistore-benches --bench autosave -- [--n N] [--relaxed]` prints one JSON line per mode:
//! `{"mode":..,"n":..,"secs":..,"tags_per_s":..,"index_writes":..,"durable":..}` and then the
//! ratios between the modes. Each mode starts from a fresh copy of a layout that already holds
//! the N manifests (pushed and saved outside the timer).

use ocistore::autosave::AutoSave;
use ocistore::content::{descriptor_from_bytes, push_bytes};
use ocistore::fs::{Store, StoreOptions};
use ocistore::spec::{Descriptor, MediaType};
use ocistore::Tagger;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LAYER: &[u8] = &[7u8; 1024];

fn manifest_bytes(i: usize, config: &Descriptor, layer: &Descriptor) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}],"annotations":{{"i":"{i}"}}}}"#,
        config.media_type(),
        config.digest(),
        config.size(),
        layer.media_type(),
        layer.digest(),
        layer.size()
    )
    .into_bytes()
}

/// Writes a layout holding `n` untagged manifests (one config, one layer shared by all).
async fn seed(dir: &Path, n: usize) -> Vec<Descriptor> {
    let store = Store::open_with(
        dir,
        StoreOptions::default()
            .durable(false)
            .autosave(AutoSave::Manual),
    )
    .await
    .unwrap();
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = descriptor_from_bytes(MediaType::ImageConfig, config_bytes);
    let layer = descriptor_from_bytes(MediaType::ImageLayer, LAYER);
    push_bytes(&store, &config, &config_bytes[..])
        .await
        .unwrap();
    push_bytes(&store, &layer, LAYER).await.unwrap();
    let mut manifests = Vec::with_capacity(n);
    for i in 0..n {
        let body = manifest_bytes(i, &config, &layer);
        let desc = descriptor_from_bytes(MediaType::ImageManifest, &body);
        push_bytes(&store, &desc, body).await.unwrap();
        manifests.push(desc);
    }
    store.close().await.unwrap();
    manifests
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[derive(Clone, Copy)]
enum Mode {
    WritePerChange,
    AlwaysOneTask,
    AlwaysSixteenTasks,
    Debounce,
    ManualOneSave,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::WritePerChange => "write_per_change",
            Mode::AlwaysOneTask => "always_1_task",
            Mode::AlwaysSixteenTasks => "always_16_tasks",
            Mode::Debounce => "debounce_50ms",
            Mode::ManualOneSave => "manual_one_save",
        }
    }

    fn policy(self) -> AutoSave {
        match self {
            Mode::WritePerChange | Mode::ManualOneSave => AutoSave::Manual,
            Mode::AlwaysOneTask | Mode::AlwaysSixteenTasks => AutoSave::Always,
            Mode::Debounce => AutoSave::Debounce(Duration::from_millis(50)),
        }
    }
}

/// Tags every manifest in `dir` under `mode`; returns (seconds, index writes). The timer stops
/// once every tag is durable in index.json (for Debounce and Manual: after the final save).
async fn run(mode: Mode, dir: &Path, manifests: &[Descriptor], durable: bool) -> (f64, u64) {
    let options = StoreOptions::default()
        .durable(durable)
        .autosave(mode.policy());
    let store = Arc::new(Store::open_with(dir, options).await.unwrap());
    let start = Instant::now();
    match mode {
        Mode::AlwaysSixteenTasks => {
            let manifests = Arc::new(manifests.to_vec());
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let (store, manifests, next) = (store.clone(), manifests.clone(), next.clone());
                    tokio::spawn(async move {
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(desc) = manifests.get(i) else { break };
                            store.tag(desc, &format!("t{i:05}")).await.unwrap();
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        }
        _ => {
            for (i, desc) in manifests.iter().enumerate() {
                store.tag(desc, &format!("t{i:05}")).await.unwrap();
                if let Mode::WritePerChange = mode {
                    store.save_index().await.unwrap();
                }
            }
            store.save_index().await.unwrap();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let writes = store.index_writes();
    Arc::into_inner(store).unwrap().close().await.unwrap();
    (secs, writes)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000usize);
    let durable = !args.iter().any(|a| a == "--relaxed");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let base = std::env::var_os("OCISTORE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let scratch = tempfile::tempdir_in(base).unwrap();
    let seeded = scratch.path().join("seed");
    let manifests = runtime.block_on(seed(&seeded, n));
    let mut rates = Vec::new();
    for mode in [
        Mode::WritePerChange,
        Mode::AlwaysOneTask,
        Mode::AlwaysSixteenTasks,
        Mode::Debounce,
        Mode::ManualOneSave,
    ] {
        let dir = scratch.path().join(mode.name());
        copy_dir(&seeded, &dir);
        let (secs, writes) = runtime.block_on(run(mode, &dir, &manifests, durable));
        let per_s = n as f64 / secs;
        println!(
            r#"{{"mode":"{}","n":{n},"secs":{secs:.6},"tags_per_s":{per_s:.1},"index_writes":{writes},"durable":{durable}}}"#,
            mode.name()
        );
        rates.push((mode.name(), per_s));
    }
    let baseline = rates[0].1;
    for (name, rate) in &rates[1..] {
        eprintln!("{name}: {:.1}x the write-per-change mode", rate / baseline);
    }
}
