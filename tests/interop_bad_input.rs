//! Bad input: a layout that skopeo, umoci or oci-image-tool rejects must be rejected or reported
//! by us too. Each case breaks a copy of a clean one-image layout we wrote (the cases of
//! interop.md section 3, plus schema violations found while writing these tests), and says how
//! we catch it: `Store::open` / `ReadOnlyStore::open` refuse it, or `Store::fsck` reports it (in
//! `corrupt`, `missing`, `size_mismatch`, `invalid_manifests`, or `warnings` for a departure
//! from the spec that every reader tolerates, such as `"manifests": null`).
//!
//! `fsck_catches_every_broken_layout` checks our side alone (no tool needed, runs everywhere).
//! `every_layout_a_tool_rejects_we_reject_or_report` runs every tool on every case, asserts the
//! tools' verdicts (so a change of tool behaviour shows up here rather than silently weakening
//! the comparison) and fails on any case a tool rejects that we neither refuse nor report.
//!
//! Disagreements these cases found, fixed in `crates/store-fs/src/fsck.rs` (each case below is
//! its regression test): `"manifests": null`, a `schemaVersion` other than 2 in index.json or in
//! a manifest, a config that is not JSON or an OCI config without `rootfs.diff_ids` (warnings);
//! an OCI image manifest without `config` (invalid_manifests); a missing `oci-layout` that
//! `Store::open` silently created (a warning now). One is left on purpose: a config whose
//! `diff_ids` do not match the decompressed layers, which only `umoci unpack` notices; checking
//! it would mean decompressing every layer (and knowing every compression), beyond a content
//! store's check of what is addressed by digest.

mod interop;

use interop::*;
use ocistore::fs::{FsckReport, ReadOnlyStore, Store};
use ocistore::{Resolver, Tagger};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const TAG: &str = "app";

/// What every tool said about a layout: true = rejected it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tools {
    skopeo_inspect: bool,
    skopeo_copy: bool,
    umoci_stat: bool,
    umoci_unpack: bool,
    oci_image_tool: bool,
}

impl Tools {
    fn any(self) -> bool {
        self.skopeo_inspect
            || self.skopeo_copy
            || self.umoci_stat
            || self.umoci_unpack
            || self.oci_image_tool
    }
}

fn rejects(program: &str, args: &[&dyn AsRef<std::ffi::OsStr>]) -> bool {
    !run(program, args).status.success()
}

fn run_tools(layout: &Path, work: &Path) -> Tools {
    let oci = format!("oci:{}:{TAG}", layout.display());
    let image = format!("{}:{TAG}", layout.display());
    let unpack = umoci_unpack_args();
    let mut unpack_args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![&"unpack"];
    for flag in &unpack {
        unpack_args.push(flag);
    }
    let bundle = work.join("bundle");
    unpack_args.extend([&"--image" as &dyn AsRef<_>, &image, &bundle]);
    Tools {
        skopeo_inspect: rejects("skopeo", &[&"inspect", &"--raw", &oci]),
        skopeo_copy: rejects(
            "skopeo",
            &[
                &"copy",
                &"--quiet",
                &oci,
                &format!("dir:{}", work.join("dir").display()),
            ],
        ),
        umoci_stat: rejects("umoci", &[&"stat", &"--image", &image]),
        umoci_unpack: rejects("umoci", &unpack_args),
        oci_image_tool: rejects(
            "oci-image-tool",
            &[&"validate", &"--type", &"image", &layout],
        ),
    }
}

/// What our readers said: `Err(reason)` = rejected or reported.
#[derive(Debug)]
struct Ours {
    read_only: Result<(), String>,
    store: Result<FsckReport, String>,
}

impl Ours {
    /// Whether we catch the case: an open refuses it, or fsck reports it.
    fn catches(&self) -> bool {
        let store = match &self.store {
            Err(_) => true,
            Ok(report) => !report.is_clean() || !report.warnings.is_empty(),
        };
        store
            || self
                .read_only
                .as_ref()
                .is_err_and(|e| e.starts_with("open"))
    }
}

async fn our_verdict(layout: &Path, work: &Path) -> Ours {
    let read_only = match ReadOnlyStore::open(layout).await {
        Err(e) => Err(format!("open: {e}")),
        Ok(store) => match store.resolve(TAG).await {
            Err(e) => Err(format!("resolve: {e}")),
            Ok(desc) => try_fetch_graph(&store, &desc).await,
        },
    };
    // Store::open may write (it creates a missing oci-layout or index.json): use a copy.
    let copy = work.join("store-copy");
    copy_tree(layout, &copy);
    let store = match Store::open(&copy).await {
        Err(e) => Err(format!("open: {e}")),
        Ok(store) => {
            let report = store.fsck().await.map_err(|e| format!("fsck: {e}"));
            store.close().await.ok();
            report
        }
    };
    Ours { read_only, store }
}

/// Fetches (verified) every node reachable from `root`; the first error.
async fn try_fetch_graph(
    store: &ReadOnlyStore,
    root: &ocistore::spec::Descriptor,
) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(desc) = stack.pop() {
        if !seen.insert(desc.digest().to_string()) {
            continue;
        }
        ocistore::content::fetch_all(store, &desc)
            .await
            .map_err(|e| format!("fetch {}: {e}", desc.digest()))?;
        stack.extend(
            ocistore::content::successors(store, &desc)
                .await
                .map_err(|e| format!("successors of {}: {e}", desc.digest()))?,
        );
    }
    Ok(())
}

/// How we catch a broken layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum We {
    /// Both `Store::open` and `ReadOnlyStore::open` refuse it.
    Refuse,
    /// `ReadOnlyStore::open` refuses it; `Store::open` repairs it and fsck warns.
    RepairAndWarn,
    /// Both open it; reading the tag's graph through `ReadOnlyStore` fails, and fsck reports
    /// the problem in the field named.
    FailReadAndReport(Field),
    /// Both open it and read it whole; fsck reports it in the field named.
    Report(Field),
    /// Nobody refuses it and neither do we.
    Accept,
    /// A tool refuses it and we do not, on purpose (see the module doc).
    KnownGap,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Corrupt,
    Missing,
    SizeMismatch,
    Invalid,
    Warning,
}

fn field(report: &FsckReport, field: Field) -> &Vec<String> {
    match field {
        Field::Corrupt => &report.corrupt,
        Field::Missing => &report.missing,
        Field::SizeMismatch => &report.size_mismatch,
        Field::Invalid => &report.invalid_manifests,
        Field::Warning => &report.warnings,
    }
}

/// One way to break the layout: the change, how we catch it, and what the tools say (as
/// measured for interop.md section 3 and for the cases added here).
struct Case {
    name: &'static str,
    breaks: fn(&Path, &Image),
    we: We,
    tools: Tools,
}

fn flip_last_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn edit_index(layout: &Path, edit: impl FnOnce(&mut Value)) {
    let mut index = index_json(layout);
    edit(&mut index);
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
}

/// Replaces the blob `old` by `bytes` (a new digest) and points every reference to `old` in
/// index.json and in the manifest at the new one.
fn replace_blob(layout: &Path, old: &Blob, bytes: Vec<u8>) -> Blob {
    let new = Blob::new(
        old.desc.media_type().as_ref(),
        ocistore::digest::Algorithm::Sha256,
        bytes,
    );
    std::fs::write(blob_path(layout, &new.digest()), &new.bytes).unwrap();
    std::fs::remove_file(blob_path(layout, &old.digest())).unwrap();
    new
}

/// Rewrites the manifest with `edit` (a new digest) and points index.json at it.
fn rewrite_manifest(layout: &Path, image: &Image, edit: impl FnOnce(&mut Value)) {
    let mut body: Value = serde_json::from_slice(&image.manifest.bytes).unwrap();
    edit(&mut body);
    let new = replace_blob(layout, &image.manifest, serde_json::to_vec(&body).unwrap());
    edit_index(layout, |index| {
        index["manifests"][0]["digest"] = Value::from(new.digest());
        index["manifests"][0]["size"] = Value::from(new.desc.size());
    });
}

/// Replaces the config by `bytes` and rewrites the manifest to name it.
fn rewrite_config(layout: &Path, image: &Image, bytes: Vec<u8>) {
    let new = replace_blob(layout, &image.config, bytes);
    rewrite_manifest(layout, image, |m| {
        m["config"]["digest"] = Value::from(new.digest());
        m["config"]["size"] = Value::from(new.desc.size());
    });
}

/// Tool verdicts written as five characters, `x` = rejects, `.` = accepts, in the order
/// skopeo inspect --raw, skopeo copy (to dir:), umoci stat, umoci unpack, oci-image-tool validate.
fn t(verdicts: &str) -> Tools {
    let v: Vec<bool> = verdicts.chars().map(|c| c == 'x').collect();
    assert_eq!(v.len(), 5);
    Tools {
        skopeo_inspect: v[0],
        skopeo_copy: v[1],
        umoci_stat: v[2],
        umoci_unpack: v[3],
        oci_image_tool: v[4],
    }
}

fn without(value: &mut Value, key: &str) {
    value.as_object_mut().unwrap().shift_remove(key);
}

fn cases() -> Vec<Case> {
    use Field::*;
    use We::*;
    vec![
        // interop.md section 3.
        Case {
            name: "layer bytes corrupted",
            breaks: |l, image| flip_last_byte(&blob_path(l, &image.layers[1].digest())),
            we: FailReadAndReport(Corrupt),
            tools: t(".x.xx"),
        },
        Case {
            name: "manifest bytes corrupted, same size",
            breaks: |l, image| {
                // Still JSON, still a manifest: one letter of the title annotation changes.
                let path = blob_path(l, &image.manifest.digest());
                let text = std::fs::read_to_string(&path).unwrap();
                std::fs::write(&path, text.replace("interop amd64", "interop amd65")).unwrap();
            },
            we: FailReadAndReport(Corrupt),
            tools: t("..xxx"),
        },
        Case {
            name: "layer missing",
            breaks: |l, image| {
                std::fs::remove_file(blob_path(l, &image.layers[0].digest())).unwrap()
            },
            we: FailReadAndReport(Missing),
            tools: t(".x.xx"),
        },
        Case {
            name: "manifest missing",
            breaks: |l, image| {
                std::fs::remove_file(blob_path(l, &image.manifest.digest())).unwrap()
            },
            we: FailReadAndReport(Missing),
            tools: t("xxxxx"),
        },
        Case {
            name: "index.json size != blob size",
            breaks: |l, _| {
                edit_index(l, |index| {
                    let size = index["manifests"][0]["size"].as_u64().unwrap();
                    index["manifests"][0]["size"] = Value::from(size + 1);
                })
            },
            we: FailReadAndReport(SizeMismatch),
            tools: t("..xxx"),
        },
        Case {
            name: "oci-layout version 2.0.0",
            breaks: |l, _| {
                std::fs::write(l.join("oci-layout"), br#"{"imageLayoutVersion":"2.0.0"}"#).unwrap()
            },
            we: Refuse,
            tools: t("..xxx"),
        },
        Case {
            name: "oci-layout missing",
            breaks: |l, _| std::fs::remove_file(l.join("oci-layout")).unwrap(),
            we: RepairAndWarn,
            tools: t("..xxx"),
        },
        Case {
            name: "index.json not JSON",
            breaks: |l, _| std::fs::write(l.join("index.json"), b"{not json").unwrap(),
            we: Refuse,
            tools: t("xxxxx"),
        },
        Case {
            name: "\"manifests\": null",
            // With no entry there is no tag, so every per-tag command fails for that reason;
            // oci-image-tool fails the layout itself (schema: manifests must be an array).
            breaks: |l, _| edit_index(l, |index| index["manifests"] = Value::Null),
            we: Report(Warning),
            tools: t("xxxxx"),
        },
        // Added here.
        Case {
            name: "blobs/ missing",
            breaks: |l, _| std::fs::remove_dir_all(l.join("blobs")).unwrap(),
            we: FailReadAndReport(Missing),
            tools: t("xxxxx"),
        },
        Case {
            name: "index.json entry digest sha256:abc",
            breaks: |l, _| {
                edit_index(l, |index| {
                    index["manifests"][0]["digest"] = Value::from("sha256:abc")
                })
            },
            we: Refuse,
            tools: t("xxxxx"),
        },
        Case {
            name: "index.json entry without mediaType",
            breaks: |l, _| edit_index(l, |index| without(&mut index["manifests"][0], "mediaType")),
            we: Refuse,
            tools: t("xxxxx"),
        },
        Case {
            name: "index.json without schemaVersion",
            breaks: |l, _| edit_index(l, |index| without(index, "schemaVersion")),
            we: Report(Warning),
            tools: t("....x"),
        },
        Case {
            name: "index.json schemaVersion 1",
            breaks: |l, _| edit_index(l, |index| index["schemaVersion"] = Value::from(1)),
            we: Report(Warning),
            tools: t("....x"),
        },
        Case {
            name: "layer size in the manifest wrong",
            breaks: |l, image| {
                rewrite_manifest(l, image, |m| {
                    let size = m["layers"][0]["size"].as_u64().unwrap();
                    m["layers"][0]["size"] = Value::from(size + 1);
                })
            },
            we: FailReadAndReport(SizeMismatch),
            tools: t("...xx"),
        },
        Case {
            name: "manifest without schemaVersion",
            breaks: |l, image| rewrite_manifest(l, image, |m| without(m, "schemaVersion")),
            we: Report(Warning),
            tools: t("....x"),
        },
        Case {
            name: "manifest schemaVersion 1",
            breaks: |l, image| rewrite_manifest(l, image, |m| m["schemaVersion"] = Value::from(1)),
            we: Report(Warning),
            tools: t("....x"),
        },
        Case {
            name: "manifest without config",
            breaks: |l, image| rewrite_manifest(l, image, |m| without(m, "config")),
            we: Report(Invalid),
            tools: t("..xxx"),
        },
        Case {
            name: "manifest layers not an array",
            breaks: |l, image| rewrite_manifest(l, image, |m| m["layers"] = Value::from("none")),
            we: FailReadAndReport(Invalid),
            tools: t(".xxxx"),
        },
        Case {
            name: "manifest mediaType field says index",
            breaks: |l, image| {
                rewrite_manifest(l, image, |m| {
                    m["mediaType"] = Value::from(ocistore::descriptor::OCI_INDEX)
                })
            },
            we: Accept,
            tools: t("....."),
        },
        Case {
            name: "config not JSON",
            breaks: |l, image| rewrite_config(l, image, b"not json at all".to_vec()),
            we: Report(Warning),
            tools: t("..xx."),
        },
        Case {
            name: "config without rootfs",
            breaks: |l, image| {
                let mut config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
                without(&mut config, "rootfs");
                rewrite_config(l, image, serde_json::to_vec(&config).unwrap())
            },
            we: Report(Warning),
            tools: t("...x."),
        },
        Case {
            name: "config diff_ids not those of the layers",
            breaks: |l, image| {
                let mut config: Value = serde_json::from_slice(&image.config.bytes).unwrap();
                config["rootfs"]["diff_ids"][0] = Value::from(image.layers[0].digest());
                rewrite_config(l, image, serde_json::to_vec(&config).unwrap())
            },
            we: KnownGap,
            tools: t("...x."),
        },
    ]
}

/// Writes the clean one-image layout (tag `app`) at `root`; returns its image.
async fn clean_layout(root: &Path) -> Image {
    let image = Image::build("amd64", &[BASE, APP], ocistore::digest::Algorithm::Sha256);
    let store = Store::open(root).await.unwrap();
    for blob in image.blobs() {
        push(&store, blob).await;
    }
    store.tag(&image.manifest.desc, TAG).await.unwrap();
    store.close().await.unwrap();
    image
}

/// Whether our verdict is what `we` says; the reason when not.
fn check_we(we: We, ours: &Ours) -> Result<(), String> {
    let open_refused = |r: &Result<(), String>| r.as_ref().is_err_and(|e| e.starts_with("open"));
    let ok = match we {
        We::Refuse => open_refused(&ours.read_only) && ours.store.is_err(),
        We::RepairAndWarn => {
            open_refused(&ours.read_only)
                && ours
                    .store
                    .as_ref()
                    .is_ok_and(|r| r.is_clean() && r.warnings.len() == 1)
        }
        We::FailReadAndReport(f) => {
            ours.read_only.is_err()
                && !open_refused(&ours.read_only)
                && ours.store.as_ref().is_ok_and(|r| !field(r, f).is_empty())
        }
        We::Report(f) => {
            !open_refused(&ours.read_only)
                && ours.store.as_ref().is_ok_and(|r| !field(r, f).is_empty())
        }
        We::Accept | We::KnownGap => !ours.catches(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("expected {we:?}, got {ours:?}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_catches_every_broken_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let image = clean_layout(&clean).await;
    let ours = our_verdict(&clean, tmp.path()).await;
    assert!(ours.read_only.is_ok(), "{ours:?}");
    let report = ours.store.as_ref().unwrap();
    assert!(
        report.is_clean() && report.warnings.is_empty(),
        "{report:?}"
    );

    let mut failures = Vec::new();
    for (n, case) in cases().into_iter().enumerate() {
        let layout = tmp.path().join(format!("case-{n}"));
        copy_tree(&clean, &layout);
        (case.breaks)(&layout, &image);
        let work = tmp.path().join(format!("work-{n}"));
        std::fs::create_dir_all(&work).unwrap();
        if let Err(e) = check_we(case.we, &our_verdict(&layout, &work).await) {
            failures.push(format!("{}: {e}", case.name));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_layout_a_tool_rejects_we_reject_or_report() {
    if !have(&["skopeo", "umoci", "oci-image-tool"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let image = clean_layout(&clean).await;
    let work = tmp.path().join("work-clean");
    std::fs::create_dir_all(&work).unwrap();
    assert_eq!(
        run_tools(&clean, &work),
        Tools::default(),
        "the clean layout"
    );

    let mut changed = Vec::new();
    let mut disagreements = Vec::new();
    for (n, case) in cases().into_iter().enumerate() {
        let layout = tmp.path().join(format!("case-{n}"));
        copy_tree(&clean, &layout);
        (case.breaks)(&layout, &image);
        let work = tmp.path().join(format!("work-{n}"));
        std::fs::create_dir_all(&work).unwrap();
        let tools = run_tools(&layout, &work);
        let ours = our_verdict(&layout, &work).await;
        println!(
            "{:<45} tools {tools:?}\n{:<45} ours {ours:?}",
            case.name, ""
        );
        if tools != case.tools {
            changed.push(format!(
                "{}: expected {:?}, got {tools:?}",
                case.name, case.tools
            ));
        }
        if tools.any() && !ours.catches() && case.we != We::KnownGap {
            disagreements.push(format!("{}: tools {tools:?}, ours {ours:?}", case.name));
        }
    }
    assert!(
        changed.is_empty(),
        "the tools changed their verdicts:\n{}",
        changed.join("\n")
    );
    assert!(
        disagreements.is_empty(),
        "a tool rejects what we accept:\n{}",
        disagreements.join("\n")
    );
}

/// The layouts of `tests/fixtures/` (written by umoci, skopeo and hand-built JSON): fsck warns
/// exactly where the spec is departed from (`"manifests": null`, as umoci writes after `init` and
/// after removing the last tag), and once our store has written index.json the warning is gone
/// (we always write an array). A new layout has no warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_warns_about_the_fixtures_only_where_the_spec_is_departed_from() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let null = [
        "edge/null-manifests",
        "edge/umoci-init",
        "edge/umoci-rm-all",
    ];
    for name in [
        "umoci",
        "handmade",
        "handmade-exotic",
        "edge/empty",
        "edge/dup-tag",
        "edge/skopeo-index-only",
    ]
    .into_iter()
    .chain(null)
    {
        let tmp = tempfile::tempdir().unwrap();
        copy_tree(&fixtures.join(name), tmp.path());
        let store = Store::open(tmp.path()).await.unwrap();
        let report = store.fsck().await.unwrap();
        if null.contains(&name) {
            assert_eq!(report.warnings.len(), 1, "{name}: {report:?}");
            assert!(
                report.warnings[0].contains("\"manifests\" is null"),
                "{name}"
            );
            let image = Image::build("amd64", &[BASE], ocistore::digest::Algorithm::Sha256);
            for blob in image.blobs() {
                push(&store, blob).await;
            }
            store
                .tag(&image.manifest.desc, "now-an-array")
                .await
                .unwrap();
            let report = store.fsck().await.unwrap();
            assert!(report.warnings.is_empty(), "{name}: {report:?}");
        } else {
            assert!(report.warnings.is_empty(), "{name}: {report:?}");
        }
        store.close().await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path().join("new")).await.unwrap();
    let report = store.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.warnings.is_empty(),
        "{report:?}"
    );
}
