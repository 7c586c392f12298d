//! `ocistore`: OCI content on the command line — layouts, layout archives and registries.
//!
//! Exit statuses: 0 success, 1 error, 2 usage (bad arguments or location), 3 `fsck` found
//! problems, 130 interrupted (Ctrl-C).

mod commands;
mod fail;
mod location;
mod open;
mod progress;

use clap::{Args, Parser, Subcommand};
use fail::{Failure, EXIT_ERROR, EXIT_INTERRUPTED};
use std::path::PathBuf;
use std::process::ExitCode;

/// OCI content on the command line: copy, inspect, tag, delete, gc and fsck over OCI image
/// layouts, layout archives and registries.
#[derive(Parser, Debug)]
#[command(name = "ocistore", version, after_help = concat!(
    "Example:\n  ocistore copy docker://127.0.0.1:5000/app:v1 oci:/tmp/layout:v1\n\n",
    "Locations: oci:PATH[:TAG|@DIGEST] (a layout directory), oci-archive:PATH[:TAG] ",
    "(a layout archive; - is stdin or stdout), docker://HOST/REPO[:TAG|@DIGEST] (a registry; plain HTTP ",
    "for localhost and 127.0.0.1, or with --plain-http).\n\n",
    "Exit status: 0 success, 1 error, 2 usage, 3 fsck found problems, 130 interrupted.\n"))]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Options of every command.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Use plain HTTP for every registry.
    #[arg(long, global = true)]
    plain_http: bool,
    /// Registry credentials USER:PASS (else the Docker config).
    #[arg(long, global = true, value_name = "USER:PASS")]
    creds: Option<String>,
    /// A Docker config file to take registry credentials from (default: $DOCKER_CONFIG/config.json).
    #[arg(long, global = true, value_name = "FILE")]
    authfile: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy an image, index or artifact (with everything it references) between locations.
    #[command(
        after_help = "Examples:\n  ocistore copy docker://127.0.0.1:5000/app:v1 oci:/tmp/layout:v1\n  \
ocistore copy --referrers --platform linux/arm64 oci:/tmp/layout:v1 oci-archive:/tmp/app.tar:v1"
    )]
    Copy(commands::CopyArgs),
    /// List the tags of a layout, archive or repository.
    #[command(after_help = "Example:\n  ocistore tags --json docker://127.0.0.1:5000/app")]
    Tags(commands::LocArgs),
    /// Print the descriptor a tag or digest resolves to, as JSON.
    #[command(after_help = "Example:\n  ocistore resolve oci:/tmp/layout:v1")]
    Resolve(commands::LocArgs),
    /// Print a manifest or index (pretty JSON; --raw for its exact bytes).
    #[command(
        after_help = "Example:\n  ocistore inspect --raw docker://127.0.0.1:5000/app:v1 | sha256sum"
    )]
    Inspect(commands::InspectArgs),
    /// Write a blob or manifest, verified, to a file or stdout.
    #[command(
        after_help = "Example:\n  ocistore fetch oci:/tmp/layout@sha256:0123...cdef -o layer.tar.gz"
    )]
    Fetch(commands::FetchArgs),
    /// Tag what a location names with another tag.
    #[command(after_help = "Example:\n  ocistore tag oci:/tmp/layout:v1 latest")]
    Tag(commands::TagArgs),
    /// Remove a tag (the content stays).
    #[command(after_help = "Example:\n  ocistore untag oci:/tmp/layout:old")]
    Untag(commands::LocArgs),
    /// Delete what a location names (a manifest and its tags).
    #[command(after_help = "Example:\n  ocistore delete oci:/tmp/layout:v1")]
    Delete(commands::LocArgs),
    /// List what refers to a manifest (signatures, SBOMs...).
    #[command(
        after_help = "Example:\n  ocistore referrers --artifact-type application/spdx+json oci:/tmp/layout:v1"
    )]
    Referrers(commands::ReferrersArgs),
    /// Remove unreachable blobs and stale temporary files from a layout.
    #[command(after_help = "Example:\n  ocistore gc --grace 10m --dry-run oci:/tmp/layout")]
    Gc(commands::GcArgs),
    /// Check a layout: every blob re-hashed, everything index.json reaches present.
    /// Exit status 0 only when clean, 3 when problems were found.
    #[command(after_help = "Example:\n  ocistore fsck oci:/tmp/layout || echo damaged")]
    Fsck(commands::LocArgs),
    /// Import a layout archive (tar, tar.gz, tar.zst; - for stdin) into a layout or repository.
    #[command(
        after_help = "Example:\n  skopeo copy docker://alpine oci-archive:/dev/stdout | ocistore import - oci:/tmp/layout"
    )]
    Import(commands::ImportArgs),
    /// Export tags or digests of one layout or repository into a layout archive (- for stdout).
    #[command(
        after_help = "Example:\n  ocistore export oci:/tmp/layout:v1 oci:/tmp/layout:v2 -o images.tar"
    )]
    Export(commands::ExportArgs),
}

fn main() -> ExitCode {
    // One line, never a backtrace, whatever goes wrong.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("error: internal error: {}", what.replace('\n', " "));
        std::process::exit(i32::from(EXIT_ERROR));
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let status = runtime.block_on(async move {
        // Registered before any work so that Ctrl-C never takes the default (killing) path.
        let mut interrupt =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()) {
                Ok(s) => s,
                Err(e) => return report(Err(Failure::error(format!("handling Ctrl-C: {e}")))),
            };
        tokio::select! {
            result = commands::run(cli.global, cli.command) => report(result),
            _ = interrupt.recv() => {
                // The command's future is dropped here: stores remove their partial blobs and
                // temporary files in their drop guards, staged archives their directories.
                eprintln!("error: interrupted; nothing partial was left in the destination");
                EXIT_INTERRUPTED
            }
        }
    });
    // Lets blocking file work started by dropped futures end before the process does; a read
    // of a stalled pipe never ends, so the wait is short.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    ExitCode::from(status)
}

fn report(result: Result<u8, Failure>) -> u8 {
    match result {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            failure.status
        }
    }
}
