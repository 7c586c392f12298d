//! The commands: each parses its locations, opens what it needs and prints what was asked for
//! on stdout (JSON with `--json`); people's messages go to stderr.

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

/// A destination layout this run creates: removed again unless the run succeeds (an error or
/// Ctrl-C drops it armed), so that a failed copy leaves no empty layout where there was nothing.
#[derive(Default)]
struct NewLayout(Option<PathBuf>);

impl NewLayout {
    /// Armed when nothing is at `path` yet.
    fn before_open(path: &Path) -> NewLayout {
        NewLayout((!path.exists()).then(|| path.to_path_buf()))
    }

    /// The run succeeded: the layout stays.
    fn keep(&mut self) {
        self.0 = None;
    }
}

impl Drop for NewLayout {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_dir_all(path);
        }
    }
}

/// `30s`, `10m`, `2h`, `1d`, `0`.
fn parse_duration(text: &str) -> Result<Duration, String> {
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

/// `OS/ARCH[/VARIANT]`.
fn parse_platform(text: &str) -> CliResult<Platform> {
    let parts: Vec<&str> = text.split('/').collect();
    let bad = || {
        Failure::usage(format!(
            "bad --platform {text:?}: write OS/ARCH[/VARIANT], as in linux/arm64/v8"
        ))
    };
    if !(2..=3).contains(&parts.len())
        || parts.iter().any(|p| {
            p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        })
    {
        return Err(bad());
    }
    let mut json = serde_json::json!({"os": parts[0], "architecture": parts[1]});
    if let Some(variant) = parts.get(2) {
        json["variant"] = (*variant).into();
    }
    serde_json::from_value(json).map_err(|_| bad())
}

fn access(global: &Global, creds: Option<&String>) -> Access {
    Access {
        plain_http: global.plain_http,
        creds: creds.or(global.creds.as_ref()).cloned(),
        authfile: global.authfile.clone(),
    }
}

fn print_json(value: &serde_json::Value) -> CliResult<()> {
    let text =
        serde_json::to_string(value).map_err(|e| Failure::error(format!("writing JSON: {e}")))?;
    out(format!("{text}\n").as_bytes())
}

fn out(bytes: &[u8]) -> CliResult<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::error(format!("writing to stdout: {e}")))
}

fn to_json(desc: &Descriptor) -> serde_json::Value {
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
async fn open_resolved(
    global: &Global,
    text: &str,
) -> CliResult<(Location, Opened, String, Descriptor)> {
    let loc = Location::parse(text)?;
    let opened = open::source(&loc, &access(global, None)).await?;
    let reference = open::reference_of(&loc, &opened)?;
    let desc = opened.store.resolve(&reference).await.map_err(|e| {
        Failure::store(
            &format!("resolving {loc}"),
            e,
            opened.credentials.as_deref(),
        )
    })?;
    Ok((loc, opened, reference, desc))
}

async fn tags(global: &Global, text: &str) -> CliResult<()> {
    let loc = Location::parse(text)?;
    let opened = open::source(&loc, &access(global, None)).await?;
    let mut tags = opened.store.tags(None).await.map_err(|e| {
        Failure::store(
            &format!("listing the tags of {loc}"),
            e,
            opened.credentials.as_deref(),
        )
    })?;
    tags.sort();
    if global.json {
        print_json(&serde_json::json!(tags))
    } else {
        out(tags
            .iter()
            .map(|t| format!("{t}\n"))
            .collect::<String>()
            .as_bytes())
    }
}

async fn resolve_cmd(global: &Global, text: &str) -> CliResult<()> {
    let (_, _, _, desc) = open_resolved(global, text).await?;
    if global.json {
        print_json(&to_json(&desc))
    } else {
        let pretty = serde_json::to_string_pretty(&desc)
            .map_err(|e| Failure::error(format!("writing JSON: {e}")))?;
        out(format!("{pretty}\n").as_bytes())
    }
}

async fn inspect(global: &Global, args: InspectArgs) -> CliResult<()> {
    let (loc, opened, _, desc) = open_resolved(global, &args.location).await?;
    let body = fetch_all(&*opened.store, &desc).await.map_err(|e| {
        Failure::store(&format!("fetching {loc}"), e, opened.credentials.as_deref())
    })?;
    if args.raw {
        return out(&body);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        Failure::error(format!(
            "{loc}: {} is not JSON ({e}); use --raw or fetch",
            desc.digest()
        ))
    })?;
    if global.json {
        print_json(&serde_json::json!({"descriptor": to_json(&desc), "manifest": manifest}))
    } else {
        let pretty = serde_json::to_string_pretty(&manifest)
            .map_err(|e| Failure::error(format!("writing JSON: {e}")))?;
        out(format!("{pretty}\n").as_bytes())
    }
}

/// A file written beside its final name and renamed into place when complete, so that a failed
/// or interrupted write leaves what was there.
fn temp_beside(path: &Path) -> CliResult<tempfile::NamedTempFile> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".ocistore-")
        .tempfile_in(&dir)
        .map_err(|e| Failure::error(format!("writing {}: {e}", path.display())))
}

async fn fetch(global: &Global, args: FetchArgs) -> CliResult<()> {
    let loc = Location::parse(&args.location)?;
    match loc.reference() {
        Some(r) if r.contains(':') => {}
        _ => {
            return Err(Failure::usage(format!(
                "{loc}: fetch needs a digest, as in oci:PATH@sha256:..."
            )))
        }
    }
    let (loc, opened, _, desc) = match open_resolved(global, &args.location).await {
        Err(mut failure) if matches!(loc, Location::Registry(_)) => {
            // A registry says a blob's size only to a HEAD of its own, which the library does
            // not expose; manifests resolve by digest.
            failure.message.push_str(
                " (from a registry, fetch reaches manifests and indexes by digest; for a layer, \
                 copy the image to oci:PATH and fetch from there)",
            );
            return Err(failure);
        }
        other => other?,
    };
    let mut reader = opened.store.fetch(&desc).await.map_err(|e| {
        Failure::store(&format!("fetching {loc}"), e, opened.credentials.as_deref())
    })?;
    let failed = |e: std::io::Error| Failure::error(format!("fetching {loc}: {e}"));
    match &args.output {
        None => {
            let mut stdout = tokio::io::stdout();
            tokio::io::copy(&mut reader, &mut stdout)
                .await
                .map_err(failed)?;
            stdout.flush().await.map_err(failed)?;
        }
        Some(path) => {
            let temp = temp_beside(path)?;
            let mut file = tokio::fs::File::from_std(temp.reopen().map_err(failed)?);
            tokio::io::copy(&mut reader, &mut file)
                .await
                .map_err(failed)?;
            file.flush().await.map_err(failed)?;
            temp.persist(path)
                .map_err(|e| Failure::error(format!("writing {}: {}", path.display(), e.error)))?;
        }
    }
    if global.json && args.output.is_some() {
        print_json(&to_json(&desc))?;
    }
    Ok(())
}

async fn tag(global: &Global, args: TagArgs) -> CliResult<()> {
    let loc = Location::parse(&args.location)?;
    ocistore::reference::validate_tag(&args.tag)
        .map_err(|e| Failure::usage(format!("bad tag: {e}")))?;
    let (store, creds) = open::editable(&loc, &access(global, None)).await?;
    let reference = loc.reference().ok_or_else(|| {
        Failure::usage(format!(
            "{loc}: name what to tag, as in {loc}:TAG or @DIGEST"
        ))
    })?;
    let desc = store
        .resolve(&reference)
        .await
        .map_err(|e| Failure::store(&format!("resolving {loc}"), e, creds.as_deref()))?;
    store.tag(&desc, &args.tag).await.map_err(|e| {
        Failure::store(
            &format!("tagging {loc} as {}", args.tag),
            e,
            creds.as_deref(),
        )
    })?;
    if global.json {
        print_json(&to_json(&desc))?;
    }
    Ok(())
}

async fn untag(global: &Global, text: &str) -> CliResult<()> {
    let loc = Location::parse(text)?;
    let tag = match loc.reference() {
        Some(t) if !t.contains(':') => t,
        _ => {
            return Err(Failure::usage(format!(
                "{loc}: untag needs a tag, as in oci:PATH:TAG"
            )))
        }
    };
    let (store, creds) = open::editable(&loc, &access(global, None)).await?;
    store
        .untag(&tag)
        .await
        .map_err(|e| Failure::store(&format!("untagging {loc}"), e, creds.as_deref()))
}

async fn delete(global: &Global, text: &str) -> CliResult<()> {
    let loc = Location::parse(text)?;
    let reference = loc.reference().ok_or_else(|| {
        Failure::usage(format!(
            "{loc}: name what to delete, as in {loc}:TAG or @DIGEST"
        ))
    })?;
    let (store, creds) = open::editable(&loc, &access(global, None)).await?;
    let desc = store
        .resolve(&reference)
        .await
        .map_err(|e| Failure::store(&format!("resolving {loc}"), e, creds.as_deref()))?;
    store
        .delete(&desc)
        .await
        .map_err(|e| Failure::store(&format!("deleting {loc}"), e, creds.as_deref()))?;
    if global.json {
        print_json(&to_json(&desc))?;
    }
    Ok(())
}

async fn referrers_cmd(global: &Global, args: ReferrersArgs) -> CliResult<()> {
    let (loc, opened, _, desc) = open_resolved(global, &args.location).await?;
    let found = referrers(&*opened.store, &desc, args.artifact_type.as_deref())
        .await
        .map_err(|e| {
            Failure::store(
                &format!("listing the referrers of {loc}"),
                e,
                opened.credentials.as_deref(),
            )
        })?;
    if global.json {
        return print_json(&serde_json::Value::Array(
            found.iter().map(to_json).collect(),
        ));
    }
    let lines: String = found
        .iter()
        .map(|d| {
            let kind = d
                .artifact_type()
                .as_ref()
                .map(|t| t.to_string())
                .unwrap_or_default();
            format!("{}\t{kind}\n", d.digest())
        })
        .collect();
    out(lines.as_bytes())
}

/// The directory of an `oci:PATH` location given to gc or fsck (which take no reference).
fn layout_path(text: &str, command: &str) -> CliResult<PathBuf> {
    match Location::parse(text)? {
        Location::Layout {
            path,
            reference: None,
        } => Ok(path),
        loc => Err(Failure::usage(format!(
            "{command} works on a layout directory, as in oci:PATH (got {loc})"
        ))),
    }
}

async fn gc(global: &Global, args: GcArgs) -> CliResult<()> {
    let path = layout_path(&args.location, "gc")?;
    let mut options = StoreOptions::default();
    if let Some(grace) = args.grace {
        options = options.gc_grace(grace);
    }
    let store = open::layout(&path, false, options).await?;
    let what = format!("collecting garbage in oci:{}", path.display());
    let report = if args.dry_run {
        store.gc_dry_run().await
    } else {
        store.gc().await
    }
    .map_err(|e| Failure::store(&what, e, None))?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if global.json {
        print_json(&serde_json::json!({
            "dry_run": args.dry_run,
            "blobs_removed": report.blobs_removed,
            "bytes_removed": report.bytes_removed,
            "temp_files_removed": report.temp_files_removed,
            "entries_removed": report.entries_removed,
        }))
    } else {
        out(format!(
            "{verb} {} blob(s) ({}), {} temporary file(s), {} index.json entr(y/ies)\n",
            report.blobs_removed,
            indicatif::HumanBytes(report.bytes_removed),
            report.temp_files_removed,
            report.entries_removed
        )
        .as_bytes())
    }
}

async fn fsck(global: &Global, text: &str) -> CliResult<()> {
    let path = layout_path(text, "fsck")?;
    let store = open::layout(&path, false, StoreOptions::default().auto_gc(false)).await?;
    let report = store
        .fsck()
        .await
        .map_err(|e| Failure::store(&format!("checking oci:{}", path.display()), e, None))?;
    let groups: [(&str, &Vec<String>); 7] = [
        ("corrupt", &report.corrupt),
        ("missing", &report.missing),
        ("size_mismatch", &report.size_mismatch),
        ("invalid_manifest", &report.invalid_manifests),
        ("orphaned", &report.orphaned),
        ("layout_error", &report.layout_errors),
        ("warning", &report.warnings),
    ];
    if global.json {
        let mut json =
            serde_json::json!({"clean": report.is_clean(), "blobs_checked": report.blobs_checked});
        for (name, items) in groups {
            json[name] = serde_json::json!(items);
        }
        print_json(&json)?;
    } else {
        let mut lines = String::new();
        for (name, items) in groups {
            for item in items {
                lines.push_str(&format!("{name}\t{item}\n"));
            }
        }
        out(lines.as_bytes())?;
        eprintln!(
            "fsck: {} blob(s) checked, {}",
            report.blobs_checked,
            if report.is_clean() {
                "clean"
            } else {
                "problems found"
            }
        );
    }
    if report.is_clean() {
        Ok(())
    } else {
        Err(Failure {
            message: format!(
                "oci:{}: the layout has problems (listed on stdout)",
                path.display()
            ),
            status: EXIT_FSCK_PROBLEMS,
        })
    }
}

async fn copy_cmd(global: &Global, args: CopyArgs) -> CliResult<()> {
    let src_loc = Location::parse(&args.src)?;
    let dst_loc = Location::parse(&args.dst)?;
    let platform = args.platform.as_deref().map(parse_platform).transpose()?;
    if platform.is_some() && args.referrers {
        return Err(Failure::usage(
            "--platform and --referrers cannot be combined",
        ));
    }
    if let Location::Archive { path, .. } = &dst_loc {
        if path == "-" && !global.json {
            // fine: the archive is the only thing on stdout
        } else if path == "-" {
            return Err(Failure::usage(
                "--json and an archive on stdout cannot be combined",
            ));
        }
    }
    let src_access = access(global, args.src_creds.as_ref());
    let dst_access = access(global, args.dest_creds.as_ref());

    // Everything about the source is checked before the destination is touched.
    let opened = open::source(&src_loc, &src_access).await?;
    let src_ref = open::reference_of(&src_loc, &opened)?;
    let creds = opened.credentials.clone();
    let root = opened
        .store
        .resolve(&src_ref)
        .await
        .map_err(|e| Failure::store(&format!("resolving {src_loc}"), e, creds.as_deref()))?;
    let dst_ref = dst_loc.reference().unwrap_or_default();

    let progress = Progress::new();
    if progress.shown() && !args.referrers && platform.is_none() {
        if let Ok(nodes) = walk(&*opened.store, &root).await {
            progress.set_total(nodes.iter().map(Descriptor::size).sum());
        }
    }
    let src = Counted {
        inner: opened.store.clone(),
        progress: progress.clone(),
    };

    let mut staging = None;
    let mut created = NewLayout::default();
    let (dst, dst_creds): (Arc<dyn Dest>, Option<String>) = match &dst_loc {
        Location::Layout { path, .. } => {
            created = NewLayout::before_open(path);
            (
                Arc::new(open::layout(path, true, StoreOptions::default()).await?),
                None,
            )
        }
        Location::Registry(reference) => {
            let (repo, said) = open::repository(&dst_access, reference)?;
            (Arc::new(repo), Some(said))
        }
        Location::Archive { .. } => {
            let dir = tempfile::Builder::new()
                .prefix("ocistore-archive-")
                .tempdir()
                .map_err(|e| Failure::error(format!("creating a temporary directory: {e}")))?;
            let store = open::layout(
                dir.path(),
                true,
                StoreOptions::default().auto_gc(false).durable(false),
            )
            .await?;
            staging = Some(dir);
            (Arc::new(store), None)
        }
    };

    let graph = CopyGraphOptions {
        concurrency: usize::from(args.concurrency),
        ..Default::default()
    }
    .with_post_copy({
        let progress = progress.clone();
        move |desc| {
            progress.done(&desc, true);
            async { Ok(()) }
        }
    })
    .with_on_copy_skipped({
        let progress = progress.clone();
        move |desc| {
            progress.done(&desc, false);
            async { Ok(()) }
        }
    });
    let copied = if args.referrers {
        let options = ExtendedCopyOptions {
            graph,
            ..Default::default()
        };
        extended_copy(&src, &src_ref, &*dst, &dst_ref, &options).await
    } else {
        let options = CopyOptions {
            graph,
            target_platform: platform,
            ..Default::default()
        };
        copy(&src, &src_ref, &*dst, &dst_ref, &options).await
    };
    let what = format!("copying {src_loc} to {dst_loc}");
    let desc = copied.map_err(|e| {
        let tried = match e.side() {
            Some(ocistore::copy::Side::Destination) => dst_creds.as_deref(),
            _ => creds.as_deref(),
        };
        Failure::store(&what, e, tried)
    })?;

    if let Location::Archive { path, .. } = &dst_loc {
        let name = if dst_ref.is_empty() {
            src_ref.clone()
        } else {
            dst_ref.clone()
        };
        let options = ExportOptions::default().referrers(args.referrers);
        write_archive(&*dst as &dyn open::Source, &[name], path, &options).await?;
    }
    drop(staging);
    created.keep();
    let summary = progress.finish("copy");
    if global.json {
        print_json(&serde_json::json!({"descriptor": to_json(&desc), "summary": summary}))?;
    }
    Ok(())
}

/// Exports `references` of `src` to `path` (`-`: stdout) through a file renamed into place.
async fn write_archive(
    src: &dyn open::Source,
    references: &[String],
    path: &str,
    options: &ExportOptions,
) -> CliResult<ocistore::archive::Exported> {
    let failed =
        |e: ocistore::Error| Failure::store(&format!("writing the archive {path}"), e, None);
    if path == "-" {
        let mut stdout = tokio::io::stdout();
        let exported = export(src, references, &mut stdout, options)
            .await
            .map_err(failed)?;
        stdout
            .flush()
            .await
            .map_err(|e| Failure::error(format!("writing to stdout: {e}")))?;
        return Ok(exported);
    }
    let target = Path::new(path);
    let temp = temp_beside(target)?;
    let io = |e: std::io::Error| Failure::error(format!("writing the archive {path}: {e}"));
    let mut file = tokio::fs::File::from_std(temp.reopen().map_err(io)?);
    let exported = export(src, references, &mut file, options)
        .await
        .map_err(failed)?;
    file.flush().await.map_err(io)?;
    file.sync_all().await.map_err(io)?;
    temp.persist(target).map_err(|e| io(e.error))?;
    Ok(exported)
}

async fn import_cmd(global: &Global, args: ImportArgs) -> CliResult<()> {
    let dst_loc = Location::parse(&args.dst)?;
    if dst_loc.reference().is_some() {
        return Err(Failure::usage(format!(
            "{dst_loc}: import takes the tags from the archive; give the destination without a tag"
        )));
    }
    // The archive is opened before the destination is created, so an unreadable file leaves it as it was.
    let progress = Progress::new();
    let mut created = NewLayout::default();
    let reader = if args.file == "-" {
        progress.reader(tokio::io::stdin(), None)
    } else {
        let file = tokio::fs::File::open(&args.file)
            .await
            .map_err(|e| Failure::error(format!("opening the archive {}: {e}", args.file)))?;
        let size = file.metadata().await.ok().map(|m| m.len());
        progress.reader(file, size)
    };
    let (dst, creds): (Arc<dyn Dest>, Option<String>) = match &dst_loc {
        Location::Layout { path, .. } => {
            created = NewLayout::before_open(path);
            (
                Arc::new(open::layout(path, true, StoreOptions::default()).await?),
                None,
            )
        }
        Location::Registry(reference) => {
            let (repo, said) = open::repository(&access(global, None), reference)?;
            (Arc::new(repo), Some(said))
        }
        Location::Archive { .. } => {
            return Err(Failure::usage(
                "import writes to oci:PATH or docker://HOST/REPO; to copy an archive use copy",
            ))
        }
    };
    let imported = ocistore::archive::import(reader, &*dst, &Default::default())
        .await
        .map_err(|e| {
            Failure::store(
                &format!("importing {} into {dst_loc}", args.file),
                e,
                creds.as_deref(),
            )
        })?;
    created.keep();
    progress.finish_archive("import", None);
    let names: Vec<String> = imported.iter().filter_map(|i| i.name.clone()).collect();
    eprintln!(
        "import: {} entr(y/ies), tagged: {}",
        imported.len(),
        names.join(", ")
    );
    if global.json {
        let list: Vec<serde_json::Value> = imported
            .iter()
            .map(|i| serde_json::json!({"name": i.name, "descriptor": to_json(&i.descriptor)}))
            .collect();
        print_json(&serde_json::Value::Array(list))?;
    }
    Ok(())
}

async fn export_cmd(global: &Global, args: ExportArgs) -> CliResult<()> {
    let locations = args
        .locations
        .iter()
        .map(|t| Location::parse(t))
        .collect::<CliResult<Vec<_>>>()?;
    let first = &locations[0];
    let same_store = |l: &Location| match (l, first) {
        (Location::Layout { path: a, .. }, Location::Layout { path: b, .. }) => a == b,
        (Location::Archive { path: a, .. }, Location::Archive { path: b, .. }) => a == b,
        (Location::Registry(a), Location::Registry(b)) => {
            a.registry == b.registry && a.repository == b.repository
        }
        _ => false,
    };
    if !locations.iter().all(same_store) {
        return Err(Failure::usage(
            "export takes tags or digests of one layout, archive or repository",
        ));
    }
    if args.output == "-" && global.json {
        return Err(Failure::usage(
            "--json and an archive on stdout cannot be combined",
        ));
    }
    let opened = open::source(first, &access(global, None)).await?;
    let mut references = Vec::new();
    for loc in &locations {
        references.push(open::reference_of(loc, &opened)?);
    }
    for (loc, reference) in locations.iter().zip(&references) {
        opened.store.resolve(reference).await.map_err(|e| {
            Failure::store(
                &format!("resolving {loc}"),
                e,
                opened.credentials.as_deref(),
            )
        })?;
    }
    let progress = Progress::new();
    let src = Counted {
        inner: opened.store.clone(),
        progress: progress.clone(),
    };
    let options = ExportOptions::default().referrers(args.referrers);
    let exported = write_archive(&src, &references, &args.output, &options).await?;
    progress.finish_archive("export", Some(exported.blobs));
    if global.json {
        print_json(&serde_json::json!({
            "manifests": exported.manifests.iter().map(to_json).collect::<Vec<_>>(),
            "blobs": exported.blobs,
            "bytes": exported.bytes,
        }))?;
    }
    Ok(())
}
