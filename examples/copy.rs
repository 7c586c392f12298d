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

use ocistore::digest::ValidDigest;
use ocistore::fs::{ReadOnlyStore, Store};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

const USAGE: &str = "usage: copy [--referrers] SRC SRC_REF DST_DIR [DST_REF]";

#[path = "support/progress.rs"]
mod progress;
use progress::{copy_with, counted_graph, Progress, WithProgress};

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

    let graph = counted_graph(&progress, "copied");
    let started = Instant::now();
    let copied = copy_with(&src, src_ref, &dst, dst_ref, referrers, graph).await;
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
