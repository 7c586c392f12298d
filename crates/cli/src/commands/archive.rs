//! Layout archives: `import` and `export`.

use super::copy::NewLayout;
use super::*;

/// Exports `references` of `src` to `path` (`-`: stdout) through a file renamed into place.
pub(super) async fn write_archive(
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

pub(super) async fn import_cmd(global: &Global, args: ImportArgs) -> CliResult<()> {
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

pub(super) async fn export_cmd(global: &Global, args: ExportArgs) -> CliResult<()> {
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
