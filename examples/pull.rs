//! Pull an image (or index, with everything below it) from a registry into an OCI image layout,
//! with a progress bar per blob and the throughput at the end.
//!
//! `cargo run --example pull -- [--referrers] [--plain-http] HOST[:PORT]/REPO[:TAG|@DIGEST] DIR [DST_TAG]`
//!
//! References are written as docker does (`alpine` is `docker.io/library/alpine:latest`).
//! Credentials come from the Docker config (`$DOCKER_CONFIG/config.json`, else
//! `~/.docker/config.json`: `auths`, `credsStore`, `credHelpers`), so a registry that needs a
//! `docker login` works. `localhost` and `127.0.0.1` are spoken to over plain HTTP;
//! `--plain-http` does so for any host. DST_TAG defaults to the tag pulled; a pull by digest
//! without DST_TAG is untagged in the layout. `--referrers` also pulls what refers to the
//! image (signatures, SBOMs). Try it against a local registry:
//!
//! ```sh
//! docker-registry serve config.yml &   # listening on 127.0.0.1:5000
//! skopeo copy --dest-tls-verify=false oci:/tmp/src:v1 docker://127.0.0.1:5000/demo/app:v1
//! cargo run --example pull -- 127.0.0.1:5000/demo/app:v1 /tmp/pulled
//! ```

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use ocistore::content::BoxReader;
use ocistore::copy::{copy, extended_copy, CopyGraphOptions, CopyOptions, ExtendedCopyOptions};
use ocistore::fs::Store;
use ocistore::remote::{Client, ClientOptions, Reference, Repository};
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

const USAGE: &str =
    "usage: pull [--referrers] [--plain-http] HOST[:PORT]/REPO[:TAG|@DIGEST] DIR [DST_TAG]";

/// The progress bars of a pull: one per blob fetched, keyed by digest.
#[derive(Clone)]
struct Progress {
    multi: MultiProgress,
    bars: Arc<Mutex<HashMap<String, ProgressBar>>>,
    bytes: Arc<AtomicU64>,
    pulled: Arc<AtomicU64>,
    skipped: Arc<AtomicU64>,
}

impl Progress {
    fn new() -> Self {
        Progress {
            multi: MultiProgress::new(),
            bars: Arc::default(),
            bytes: Arc::default(),
            pulled: Arc::default(),
            skipped: Arc::default(),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars.lock().unwrap_or_else(|p| p.into_inner())
    }

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

/// The registry repository, with every fetch feeding a progress bar.
struct WithProgress {
    inner: Repository,
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
    let mut referrers = false;
    let mut plain_http = false;
    let mut rest = Vec::new();
    for arg in args {
        match arg.as_str() {
            "--referrers" => referrers = true,
            "--plain-http" => plain_http = true,
            _ => rest.push(arg.as_str()),
        }
    }
    let (source, dst_path, dst_tag) = match rest.as_slice() {
        [source, dir] => (*source, *dir, None),
        [source, dir, tag] => (*source, *dir, Some(*tag)),
        _ => return Err(USAGE.to_string()),
    };
    let reference = Reference::parse(source).map_err(|e| e.to_string())?;
    let src_ref = reference.reference_or_latest().to_string();
    // A pull by digest is untagged unless a tag is given; a pull by tag keeps the tag.
    let dst_ref = match (dst_tag, &reference.digest) {
        (Some(tag), _) => tag.to_string(),
        (None, Some(digest)) => digest.clone(),
        (None, None) => src_ref.clone(),
    };

    let client = Client::new(ClientOptions {
        plain_http,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    let repository = Repository::from_parts(&client, &reference.registry, &reference.repository)
        .map_err(|e| e.to_string())?;
    let progress = Progress::new();
    let src = WithProgress {
        inner: repository,
        progress: progress.clone(),
    };
    let dst = Store::open(dst_path)
        .await
        .map_err(|e| format!("opening the destination {dst_path}: {e}"))?;

    let graph = CopyGraphOptions::default()
        .with_post_copy({
            let progress = progress.clone();
            move |desc| {
                progress.pulled.fetch_add(1, Ordering::Relaxed);
                progress.finish(&desc, "pulled");
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
        extended_copy(&src, &src_ref, &dst, &dst_ref, &opts).await
    } else {
        let opts = CopyOptions {
            graph,
            ..Default::default()
        };
        copy(&src, &src_ref, &dst, &dst_ref, &opts).await
    };
    let root = copied.map_err(|e| format!("pull failed: {e}"))?;
    dst.close()
        .await
        .map_err(|e| format!("saving the destination's index.json: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    let bytes = progress.bytes.load(Ordering::Relaxed);
    if reference.digest.is_some() && dst_tag.is_none() {
        println!(
            "pulled {} into {dst_path}, untagged (pass DST_TAG to tag it)",
            root.digest()
        );
    } else {
        println!("pulled {} as {dst_ref} into {dst_path}", root.digest());
    }
    println!(
        "{} nodes pulled, {} already there; {bytes} bytes in {secs:.3} s: {:.1} MB/s",
        progress.pulled.load(Ordering::Relaxed),
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
