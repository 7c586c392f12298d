//! Layout upkeep: `gc` and `fsck`.

use super::*;

/// The directory of an `oci:PATH` location given to gc or fsck (which take no reference).
pub(super) fn layout_path(text: &str, command: &str) -> CliResult<PathBuf> {
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

pub(super) async fn gc(global: &Global, args: GcArgs) -> CliResult<()> {
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

pub(super) async fn fsck(global: &Global, text: &str) -> CliResult<()> {
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
