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

use ocistore::fs::Store;
use ocistore::remote::{Client, ClientOptions, Reference, Repository};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

const USAGE: &str =
    "usage: pull [--referrers] [--plain-http] HOST[:PORT]/REPO[:TAG|@DIGEST] DIR [DST_TAG]";

#[path = "support/progress.rs"]
mod progress;
use progress::{copy_with, counted_graph, Progress, WithProgress};

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

    let graph = counted_graph(&progress, "pulled");
    let started = Instant::now();
    let copied = copy_with(&src, &src_ref, &dst, &dst_ref, referrers, graph).await;
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
        progress.copied.load(Ordering::Relaxed),
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
