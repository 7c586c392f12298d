//! Consistency check: re-hash every blob and walk everything `index.json` reaches. Reports,
//! never modifies.

use crate::blob::read::open_blob;
use crate::index::codec::parse_index;
use crate::layout::{check_layout_bytes, Layout};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use store_core::descriptor::{
    is_manifest_type, DOCKER_CONFIG, MAX_MANIFEST_SIZE, OCI_ARTIFACT_MANIFEST, OCI_CONFIG,
    OCI_MANIFEST,
};
use store_core::digest::{Algorithm, ValidDigest};
use store_core::manifest::parse_successors;
use store_core::{Error, Result};

/// What [`crate::Store::fsck`] found. Digests are `<algorithm>:<hex>` strings, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsckReport {
    /// Blobs checked by re-hashing.
    pub blobs_checked: usize,
    /// Blob files whose content does not hash to their name.
    pub corrupt: Vec<String>,
    /// Digests that `index.json` or a manifest reachable from it names, but that are not on disk.
    pub missing: Vec<String>,
    /// Digests on disk whose size differs from a descriptor that names them.
    pub size_mismatch: Vec<String>,
    /// Reachable manifests whose body does not parse as their media type (an OCI image
    /// manifest without its required `config` included).
    pub invalid_manifests: Vec<String>,
    /// Blob files nothing in `index.json` reaches (garbage, not corruption).
    pub orphaned: Vec<String>,
    /// Problems with the layout files themselves (`oci-layout`, `index.json`).
    pub layout_errors: Vec<String>,
    /// Departures from the image spec that readers (this store included) tolerate but some
    /// tools refuse, each naming the file or digest: `"manifests": null` or absent in
    /// `index.json` (Go tools write it after removing the last entry; oci-image-tool rejects
    /// it); a `schemaVersion` other than 2 in `index.json` or in a reachable OCI or Docker
    /// manifest or index (oci-image-tool rejects it); an image config that is not a JSON
    /// object, or an OCI one without `rootfs.diff_ids` (umoci refuses both; configs are data
    /// to a content store, so this is not corruption); an `oci-layout` that was missing beside an
    /// existing `index.json` until `Store::open` created it (umoci and oci-image-tool refuse
    /// such a layout). They do not make the report unclean.
    pub warnings: Vec<String>,
}

impl FsckReport {
    /// Whether nothing is corrupt, missing, mis-sized or unparsable (orphans are allowed).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.size_mismatch.is_empty()
            && self.invalid_manifests.is_empty()
            && self.layout_errors.is_empty()
    }
}

/// The blocking check of a layout directory.
pub(crate) fn check(layout: &Layout) -> Result<FsckReport> {
    let mut report = FsckReport::default();
    let layout_path = layout.layout_path();
    match fs::read(&layout_path) {
        Ok(bytes) => {
            if let Err(e) = check_layout_bytes(&layout_path, &bytes) {
                report.layout_errors.push(e.to_string());
            }
        }
        Err(e) => report
            .layout_errors
            .push(format!("{}: {e}", layout_path.display())),
    }

    let mut on_disk: BTreeSet<String> = BTreeSet::new();
    for algorithm in Algorithm::ALL {
        let dir = layout.algorithm_dir(algorithm.name());
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
            let Some(hex) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let Ok(digest) = ValidDigest::parse(&format!("{}:{hex}", algorithm.name())) else {
                continue;
            };
            report.blobs_checked += 1;
            if !hashes_to(&entry.path(), &digest)? {
                report.corrupt.push(digest.to_string());
            }
            on_disk.insert(digest.to_string());
        }
    }

    let index_path = layout.index_path();
    let doc = match crate::index::codec::read_index_bytes(&index_path) {
        Ok(Some(bytes)) => match parse_index(&index_path, &bytes) {
            Ok(doc) => {
                report
                    .warnings
                    .extend(index_warnings(&index_path.display().to_string(), &bytes));
                Some(doc)
            }
            Err(e) => {
                report.layout_errors.push(e.to_string());
                None
            }
        },
        Ok(None) => {
            report
                .layout_errors
                .push(format!("{}: missing", index_path.display()));
            None
        }
        Err(e) => {
            report.layout_errors.push(e.to_string());
            None
        }
    };
    let mut reached: HashSet<String> = HashSet::new();
    let mut stack: Vec<oci_spec::image::Descriptor> = doc
        .map(|doc| {
            doc.entries
                .into_iter()
                .map(|e| std::sync::Arc::unwrap_or_clone(e.desc))
                .collect()
        })
        .unwrap_or_default();
    let (mut missing, mut mis_sized, mut invalid) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut warnings = BTreeSet::new();
    while let Some(desc) = stack.pop() {
        let Ok(digest) = ValidDigest::from_digest(desc.digest()) else {
            invalid.insert(desc.digest().to_string());
            continue;
        };
        let path = layout.blob_path(&digest);
        let size = match fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_file() => meta.len(),
            _ => {
                missing.insert(digest.to_string());
                continue;
            }
        };
        if size != desc.size() {
            mis_sized.insert(digest.to_string());
        }
        if !reached.insert(digest.to_string()) {
            continue;
        }
        let media_type = desc.media_type().to_string();
        let config = matches!(media_type.as_str(), OCI_CONFIG | DOCKER_CONFIG);
        if !(config || is_manifest_type(&media_type))
            || size != desc.size()
            || size > MAX_MANIFEST_SIZE
        {
            continue;
        }
        let body = match fs::read(&path) {
            Ok(body) => body,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let conforms = if config {
            check_config(&media_type, &body)
        } else {
            match parse_successors(digest.as_str(), &media_type, &body) {
                Ok(children) => {
                    stack.extend(children);
                    check_manifest(&media_type, &body)
                }
                Err(_) => Err(()),
            }
        };
        match conforms {
            Ok(Some(warning)) => {
                warnings.insert(format!("{digest}: {warning}"));
            }
            Ok(None) => {}
            Err(()) => {
                invalid.insert(digest.to_string());
            }
        }
    }
    report.warnings.extend(warnings);
    report.missing = missing.into_iter().collect();
    report.size_mismatch = mis_sized.into_iter().collect();
    report.invalid_manifests = invalid.into_iter().collect();
    report.orphaned = on_disk
        .into_iter()
        .filter(|d| !reached.contains(d))
        .collect();
    Ok(report)
}

/// What the image spec requires of the `schemaVersion` of `value`: a warning unless it is 2.
fn schema_version_warning(value: &Value) -> Option<String> {
    match value.get("schemaVersion") {
        Some(version) if version.as_u64() == Some(2) => None,
        Some(version) => Some(format!(
            "schemaVersion is {version}, the image spec requires 2"
        )),
        None => Some("schemaVersion is missing, the image spec requires 2".into()),
    }
}

/// Warnings about `index.json` bytes that parse: no `manifests` array (`null` or absent, read
/// as empty), a `schemaVersion` other than 2. Each starts with `name`.
fn index_warnings(name: &str, bytes: &[u8]) -> Vec<String> {
    let Ok(value) = serde_json::from_slice::<Value>(bytes) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    match value.get("manifests") {
        Some(Value::Array(_)) => {}
        Some(Value::Null) => out.push(format!(
            "{name}: \"manifests\" is null; the image spec requires an array (read as empty)"
        )),
        _ => out.push(format!(
            "{name}: \"manifests\" is missing; the image spec requires an array (read as empty)"
        )),
    }
    if let Some(warning) = schema_version_warning(&value) {
        out.push(format!("{name}: {warning}"));
    }
    out
}

/// Checks a manifest body that `parse_successors` accepted against what the spec requires
/// beyond that: `Err` for an OCI image manifest without `config`; a warning for a
/// `schemaVersion` other than 2 (OCI and Docker manifests and indexes; the withdrawn artifact
/// manifest has none).
fn check_manifest(media_type: &str, body: &[u8]) -> std::result::Result<Option<String>, ()> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ())?;
    if media_type == OCI_MANIFEST && !value.get("config").is_some_and(Value::is_object) {
        return Err(());
    }
    if media_type == OCI_ARTIFACT_MANIFEST {
        return Ok(None);
    }
    Ok(schema_version_warning(&value))
}

/// Checks an image config body: a warning unless it is a JSON object, and for an OCI config
/// without a `rootfs.diff_ids` array (umoci refuses to unpack such images).
fn check_config(media_type: &str, body: &[u8]) -> std::result::Result<Option<String>, ()> {
    let Ok(Value::Object(config)) = serde_json::from_slice::<Value>(body) else {
        return Ok(Some("image config that is not a JSON object".into()));
    };
    let diff_ids = config
        .get("rootfs")
        .and_then(|rootfs| rootfs.get("diff_ids"))
        .is_some_and(Value::is_array);
    if media_type == OCI_CONFIG && !diff_ids {
        return Ok(Some(
            "image config without rootfs.diff_ids, which the image spec requires".into(),
        ));
    }
    Ok(None)
}

/// Whether the file at `path` hashes to `digest` (a symbolic link never does: it is not read).
fn hashes_to(path: &Path, digest: &ValidDigest) -> Result<bool> {
    let mut file = match open_blob(path, digest.as_str()) {
        Ok(file) => file,
        Err(e) if e.kind() == store_core::ErrorKind::InvalidLayout => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut hasher = digest.algorithm().hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }
    Ok(hasher.finish() == digest.as_str())
}
