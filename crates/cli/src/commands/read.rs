//! The commands that only read: `tags`, `resolve`, `inspect`, `fetch`, `referrers`.

use super::*;

pub(super) async fn tags(global: &Global, text: &str) -> CliResult<()> {
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

pub(super) async fn resolve_cmd(global: &Global, text: &str) -> CliResult<()> {
    let (_, _, _, desc) = open_resolved(global, text).await?;
    if global.json {
        print_json(&to_json(&desc))
    } else {
        let pretty = serde_json::to_string_pretty(&desc)
            .map_err(|e| Failure::error(format!("writing JSON: {e}")))?;
        out(format!("{pretty}\n").as_bytes())
    }
}

pub(super) async fn inspect(global: &Global, args: InspectArgs) -> CliResult<()> {
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

pub(super) async fn fetch(global: &Global, args: FetchArgs) -> CliResult<()> {
    let loc = Location::parse(&args.location)?;
    let digest = match loc.reference() {
        Some(r) if r.contains(':') => r,
        _ => {
            return Err(Failure::usage(format!(
                "{loc}: fetch needs a digest, as in oci:PATH@sha256:..."
            )))
        }
    };
    let (loc, opened, desc) = match &loc {
        Location::Registry(reference) => {
            let (opened, desc) = registry_digest(global, &loc, reference, &digest).await?;
            (loc, opened, desc)
        }
        _ => {
            let (loc, opened, _, desc) = open_resolved(global, &args.location).await?;
            (loc, opened, desc)
        }
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

/// What `digest` names in a registry repository: a blob, whose size only a blob HEAD tells, or
/// else a manifest. The blob is asked first because distribution 2.8 answers a manifest HEAD
/// of a blob's digest with a 500, not a 404.
async fn registry_digest(
    global: &Global,
    loc: &Location,
    reference: &ocistore::remote::Reference,
    digest: &str,
) -> CliResult<(Opened, Descriptor)> {
    let (repo, said) = open::repository(&access(global, None), reference)?;
    let failed = |e| Failure::store(&format!("resolving {loc}"), e, Some(&said));
    let desc = match repo.blob_descriptor(digest).await {
        Ok(desc) => desc,
        Err(e) if e.kind() == ocistore::ErrorKind::NotFound => {
            repo.resolve(digest).await.map_err(failed)?.into_owned()
        }
        Err(e) => return Err(failed(e)),
    };
    let opened = Opened {
        store: Arc::new(repo),
        credentials: Some(said),
        _staging: None,
        entries: None,
    };
    Ok((opened, desc))
}

pub(super) async fn referrers_cmd(global: &Global, args: ReferrersArgs) -> CliResult<()> {
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
