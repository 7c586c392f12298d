//! The commands that change references: `tag`, `untag`, `delete`.

use super::*;

pub(super) async fn tag(global: &Global, args: TagArgs) -> CliResult<()> {
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

pub(super) async fn untag(global: &Global, text: &str) -> CliResult<()> {
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

pub(super) async fn delete(global: &Global, text: &str) -> CliResult<()> {
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
