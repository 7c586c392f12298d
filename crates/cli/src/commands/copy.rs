//! `copy`: any location to any other, with progress and a summary.

use super::archive::write_archive;
use super::*;

/// A destination layout this run creates: removed again unless the run succeeds (an error or
/// Ctrl-C drops it armed), so that a failed copy leaves no empty layout where there was nothing.
#[derive(Default)]
pub(super) struct NewLayout(Option<PathBuf>);

impl NewLayout {
    /// Armed when nothing is at `path` yet.
    pub(super) fn before_open(path: &Path) -> NewLayout {
        NewLayout((!path.exists()).then(|| path.to_path_buf()))
    }

    /// The run succeeded: the layout stays.
    pub(super) fn keep(&mut self) {
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

/// `OS/ARCH[/VARIANT]`.
pub(super) fn parse_platform(text: &str) -> CliResult<Platform> {
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

pub(super) async fn copy_cmd(global: &Global, args: CopyArgs) -> CliResult<()> {
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
    })
    .with_on_mounted({
        let progress = progress.clone();
        move |desc| {
            progress.mounted(&desc);
            async { Ok(()) }
        }
    });
    // Between two repositories of one registry, blobs are mounted rather than copied.
    let graph = match (&src_loc, &dst_loc) {
        (Location::Registry(from), Location::Registry(to))
            if from.host() == to.host() && from.repository != to.repository =>
        {
            let repository = from.repository.clone();
            graph.with_mount_from(move |_| {
                let repository = repository.clone();
                async move { Ok(vec![repository]) }
            })
        }
        _ => graph,
    };
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
