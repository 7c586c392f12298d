//! The commands: each parses its locations, opens what it needs and prints what was asked for
//! on stdout (JSON with `--json`); people's messages go to stderr.

mod archive;
mod copy;
mod edit;
mod maintain;
mod read;

use archive::{export_cmd, import_cmd};
use copy::copy_cmd;
use edit::{delete, tag, untag};
use maintain::{fsck, gc};
use read::{fetch, inspect, referrers_cmd, resolve_cmd, tags};

use crate::fail::{CliResult, Failure, EXIT_FSCK_PROBLEMS};
use crate::location::Location;
use crate::open::{self, Access, Dest, Opened};
use crate::progress::{Counted, Progress};
use crate::{Command, Global};
use clap::Args;
use ocistore::archive::{export, ExportOptions};
use ocistore::content::{fetch_all, referrers, walk};
use ocistore::copy::{copy, extended_copy, CopyGraphOptions, CopyOptions, ExtendedCopyOptions};
use ocistore::fs::StoreOptions;
use ocistore::spec::{Descriptor, Platform};
use ocistore::{Fetcher, Resolver};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// A command on one location.
#[derive(Args, Debug)]
pub struct LocArgs {
    /// The location.
    location: String,
}

/// `copy`.
#[derive(Args, Debug)]
pub struct CopyArgs {
    /// Where to copy from.
    src: String,
    /// Where to copy to (a layout is created when missing).
    dst: String,
    /// Also copy what refers to the image (signatures, SBOMs), to any depth.
    #[arg(long)]
    referrers: bool,
    /// Copy only this platform's manifest from an index: OS/ARCH[/VARIANT].
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    platform: Option<String>,
    /// How many blobs are copied at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    concurrency: u16,
    /// Credentials USER:PASS for the source registry.
    #[arg(long, value_name = "USER:PASS")]
    src_creds: Option<String>,
    /// Credentials USER:PASS for the destination registry.
    #[arg(long, value_name = "USER:PASS")]
    dest_creds: Option<String>,
}

/// `inspect`.
#[derive(Args, Debug)]
pub struct InspectArgs {
    /// The manifest or index.
    location: String,
    /// Print the exact bytes as stored.
    #[arg(long)]
    raw: bool,
}

/// `fetch`.
#[derive(Args, Debug)]
pub struct FetchArgs {
    /// The location with the blob's digest: oci:PATH@DIGEST, docker://HOST/REPO@DIGEST.
    location: String,
    /// The file to write (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// `tag`.
#[derive(Args, Debug)]
pub struct TagArgs {
    /// What to tag.
    location: String,
    /// The new tag.
    tag: String,
}

/// `referrers`.
#[derive(Args, Debug)]
pub struct ReferrersArgs {
    /// The manifest whose referrers are listed.
    location: String,
    /// Only referrers of this artifact type.
    #[arg(long, value_name = "TYPE")]
    artifact_type: Option<String>,
}

/// `gc`.
#[derive(Args, Debug)]
pub struct GcArgs {
    /// The layout: oci:PATH.
    location: String,
    /// Keep unreferenced blobs younger than this (30s, 10m, 2h, 1d; 0 for none).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    grace: Option<Duration>,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
}

/// `import`.
#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The archive file, or - for stdin.
    file: String,
    /// Where to import to: oci:PATH or docker://HOST/REPO.
    dst: String,
}

/// `export`.
#[derive(Args, Debug)]
pub struct ExportArgs {
    /// What to export: tags or digests of one layout, archive or repository.
    #[arg(required = true)]
    locations: Vec<String>,
    /// The archive to write, or - for stdout.
    #[arg(short, long, value_name = "FILE|-")]
    output: String,
    /// Also export what refers to the exported images.
    #[arg(long)]
    referrers: bool,
}

/// `30s`, `10m`, `2h`, `1d`, `0`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 10m, 2h or 1d"))?;
    let scale = match unit {
        "" if n == 0 => 0,
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => {
            return Err(format!(
                "{text:?} is not a duration like 30s, 10m, 2h or 1d"
            ))
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(scale)))
}

pub(super) fn access(global: &Global, creds: Option<&String>) -> Access {
    Access {
        plain_http: global.plain_http,
        creds: creds.or(global.creds.as_ref()).cloned(),
        authfile: global.authfile.clone(),
    }
}

pub(super) fn print_json(value: &serde_json::Value) -> CliResult<()> {
    let text =
        serde_json::to_string(value).map_err(|e| Failure::error(format!("writing JSON: {e}")))?;
    out(format!("{text}\n").as_bytes())
}

pub(super) fn out(bytes: &[u8]) -> CliResult<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::error(format!("writing to stdout: {e}")))
}

pub(super) fn to_json(desc: &Descriptor) -> serde_json::Value {
    serde_json::to_value(desc).unwrap_or(serde_json::Value::Null)
}

/// Runs `command`; returns the exit status.
pub async fn run(global: Global, command: Command) -> CliResult<u8> {
    match command {
        Command::Copy(args) => copy_cmd(&global, args).await,
        Command::Tags(args) => tags(&global, &args.location).await,
        Command::Resolve(args) => resolve_cmd(&global, &args.location).await,
        Command::Inspect(args) => inspect(&global, args).await,
        Command::Fetch(args) => fetch(&global, args).await,
        Command::Tag(args) => tag(&global, args).await,
        Command::Untag(args) => untag(&global, &args.location).await,
        Command::Delete(args) => delete(&global, &args.location).await,
        Command::Referrers(args) => referrers_cmd(&global, args).await,
        Command::Gc(args) => gc(&global, args).await,
        Command::Fsck(args) => fsck(&global, &args.location).await,
        Command::Import(args) => import_cmd(&global, args).await,
        Command::Export(args) => export_cmd(&global, args).await,
    }?;
    Ok(0)
}

/// Opens `text` for reading and resolves its reference.
pub(super) async fn open_resolved(
    global: &Global,
    text: &str,
) -> CliResult<(Location, Opened, String, Descriptor)> {
    let loc = Location::parse(text)?;
    let opened = open::source(&loc, &access(global, None)).await?;
    let reference = open::reference_of(&loc, &opened)?;
    let desc = opened
        .store
        .resolve(&reference)
        .await
        .map_err(|e| {
            Failure::store(
                &format!("resolving {loc}"),
                e,
                opened.credentials.as_deref(),
            )
        })?
        .into_owned();
    Ok((loc, opened, reference, desc))
}

/// A file written beside its final name and renamed into place when complete, so that a failed
/// or interrupted write leaves what was there.
pub(super) fn temp_beside(path: &Path) -> CliResult<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".ocistore-")
        .tempfile_in(&dir)
        .map_err(|e| Failure::error(format!("writing {}: {e}", path.display())))
}
