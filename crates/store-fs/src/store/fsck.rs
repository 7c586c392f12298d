//! Consistency check: re-hash every blob ([`scan`], beside any other operation) and walk
//! everything `index.json` reaches ([`walk`], which the store runs while no delete or gc of its
//! own can). Reports, never modifies. A blob removed by a concurrent delete or gc is neither an
//! error nor reported.

use crate::blob::read::{digest_of_file, open_blob};
use crate::fsutil::{self, FileKind};
use crate::index::codec::{parse_index, MAX_INDEX_JSON_SIZE};
use crate::layout::{
    check_layout_bytes, Create, Layout, INDEX_FILE, LAYOUT_FILE, LAYOUT_FILE_LIMIT_BYTES,
};
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read};
use std::os::fd::BorrowedFd;
use store_core::descriptor::{
    is_manifest_type, DOCKER_CONFIG, MAX_MANIFEST_SIZE, OCI_ARTIFACT_MANIFEST, OCI_CONFIG,
    OCI_MANIFEST,
};
use store_core::digest::{Algorithm, ValidDigest};
use store_core::manifest::parse_successors;
use store_core::{Error, ErrorKind, Result};

/// What [`crate::Store::fsck`] found. Digests are `<algorithm>:<hex>` strings, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FsckReport {
    /// Blobs checked by re-hashing.
    pub blobs_checked: usize,
    /// Blob files whose content does not hash to their name, and names under `blobs/<alg>/`
    /// that are not regular files at all (a symbolic link, directory, FIFO, socket or device:
    /// never opened; `warnings` says what each is). Neither holds the blob's bytes.
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
    /// such a layout). They do not make the report unclean. Also, for each name of `corrupt`
    /// that is not a regular file, what it is instead (`blobs/sha256/<hex> is a FIFO, ...`).
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

/// What [`scan`] found: the report so far and the blobs it listed (and that were still there
/// when it read them).
pub(crate) struct Scan {
    report: FsckReport,
    on_disk: BTreeSet<String>,
}

/// How many times [`walk`] walks again when another process changed `index.json` during a walk
/// that found blobs missing.
const WALKS: usize = 3;

/// The first, blocking half of the check of a layout directory: `oci-layout`, and every blob
/// listed re-hashed against its name. A blob that vanishes between the listing and its read
/// (a concurrent delete or gc removed it) is skipped: neither an error nor counted. A name that
/// is not a regular file is never opened: it is reported in `corrupt` with a warning.
///
/// Errors: `InvalidLayout` when `blobs/` or `blobs/<alg>/` is a symbolic link or not a
/// directory; `Io` when a directory cannot be listed or a blob file read.
pub(crate) fn scan(layout: &Layout) -> Result<Scan> {
    let mut report = FsckReport::default();
    let layout_path = layout.path_of(LAYOUT_FILE);
    match layout.read_file(LAYOUT_FILE, Some(LAYOUT_FILE_LIMIT_BYTES)) {
        Ok(Some(bytes)) => {
            if let Err(e) = check_layout_bytes(&layout_path, &bytes) {
                report.layout_errors.push(e.to_string());
            }
        }
        Ok(None) => report
            .layout_errors
            .push(format!("{}: missing", layout_path.display())),
        Err(e) => report.layout_errors.push(e.to_string()),
    }

    let mut on_disk: BTreeSet<String> = BTreeSet::new();
    let mut not_files = BTreeSet::new();
    for algorithm in Algorithm::ALL {
        let Some(dir) = layout.algorithm_dir(algorithm, Create::No)? else {
            continue;
        };
        let entries = fsutil::list_dir(dir).map_err(|e| {
            Error::io(
                format!("listing {}", layout.algorithm_path(algorithm).display()),
                e,
            )
        })?;
        for entry in entries {
            let Some(hex) = entry.name.to_str() else {
                continue;
            };
            let Ok(digest) = ValidDigest::parse(&format!("{}:{hex}", algorithm.name())) else {
                continue;
            };
            let kind = match fsutil::entry_kind(dir, &entry) {
                Ok(kind) => kind,
                // Removed since the listing.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("inspecting {}", layout.blob_path(&digest).display()),
                        e,
                    ))
                }
            };
            let hashed = match kind {
                FileKind::Regular => hash(dir, layout, &digest)?,
                other => Hashed::Not(other),
            };
            match hashed {
                Hashed::Matches => {}
                Hashed::Differs => report.corrupt.push(digest.to_string()),
                Hashed::Gone => continue,
                Hashed::Not(kind) => {
                    report.corrupt.push(digest.to_string());
                    not_files.insert(format!(
                        "blobs/{}/{hex} is {}, not a blob file (never opened)",
                        algorithm.name(),
                        kind.describe()
                    ));
                    continue;
                }
            }
            report.blobs_checked += 1;
            on_disk.insert(digest.to_string());
        }
    }
    report.warnings.extend(not_files);
    Ok(Scan { report, on_disk })
}

/// The second, blocking half of the check: reads `index.json` and walks everything it reaches
/// (presence, sizes, manifests that parse), then reports as orphans the blobs [`scan`] listed
/// that the walk did not reach and that are still there. The store runs it while no delete or
/// gc of its own can run, so it sees one state of the index; when blobs are missing and
/// another process changed `index.json` meanwhile, the walk is made again (up to [`WALKS`]
/// times in all), and the last one is reported.
///
/// Errors: `Io` when a manifest cannot be read.
pub(crate) fn walk(layout: &Layout, scan: Scan) -> Result<FsckReport> {
    let Scan { report, on_disk } = scan;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (walked, index_bytes) = walk_once(layout, report.clone(), &on_disk)?;
        if walked.missing.is_empty() || attempt >= WALKS {
            return Ok(walked);
        }
        let now = layout
            .read_file(INDEX_FILE, Some(MAX_INDEX_JSON_SIZE))
            .ok()
            .flatten();
        if now == index_bytes {
            return Ok(walked);
        }
    }
}

/// One walk of `index.json` (see [`walk`]); returns the report and the `index.json` bytes it
/// read.
fn walk_once(
    layout: &Layout,
    mut report: FsckReport,
    on_disk: &BTreeSet<String>,
) -> Result<(FsckReport, Option<Vec<u8>>)> {
    let index_path = layout.path_of(INDEX_FILE);
    let index_bytes = layout.read_file(INDEX_FILE, Some(MAX_INDEX_JSON_SIZE));
    let doc = match &index_bytes {
        Ok(Some(bytes)) => match parse_index(&index_path, &bytes::Bytes::copy_from_slice(bytes)) {
            Ok(doc) => {
                report
                    .warnings
                    .extend(index_warnings(&index_path.display().to_string(), bytes));
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
                .iter()
                .filter_map(|e| e.held.descriptor())
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
        let size = match stat_blob(layout, &digest) {
            Some(size) => size,
            None => {
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
        let body = match read_blob(layout, &digest)? {
            Some(body) => body,
            None => {
                missing.insert(digest.to_string());
                continue;
            }
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
        .iter()
        .filter(|d| !reached.contains(*d) && still_there(layout, d))
        .cloned()
        .collect();
    Ok((report, index_bytes.ok().flatten()))
}

/// Whether the blob `digest` (listed earlier) is still on disk.
fn still_there(layout: &Layout, digest: &str) -> bool {
    ValidDigest::parse(digest).is_ok_and(|digest| stat_blob(layout, &digest).is_some())
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

/// The size of the blob file of `digest`; `None` when there is no regular file (or its
/// directory cannot be opened: the listing reported that).
fn stat_blob(layout: &Layout, digest: &ValidDigest) -> Option<u64> {
    let dir = layout
        .algorithm_dir(digest.algorithm(), Create::No)
        .ok()??;
    match fsutil::stat_at(dir, digest.hex()) {
        Ok(st) if st.kind == FileKind::Regular => Some(st.len),
        _ => None,
    }
}

/// Reads the blob file of `digest` whole; `None` when it is gone or no longer a regular file.
///
/// Errors: `Io`.
fn read_blob(layout: &Layout, digest: &ValidDigest) -> Result<Option<Vec<u8>>> {
    let (mut file, _) = match open_blob(layout, digest) {
        Ok(opened) => opened,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::InvalidLayout) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    let mut body = Vec::new();
    file.read_to_end(&mut body)
        .map_err(|e| Error::io(format!("reading {}", layout.blob_path(digest).display()), e))?;
    Ok(Some(body))
}

/// What hashing a listed blob file found.
enum Hashed {
    Matches,
    Differs,
    /// Removed since the listing: nothing to check.
    Gone,
    /// Not a regular file (any more): never read.
    Not(FileKind),
}

/// Hashes the blob file of `digest` in `dir` (its `blobs/<alg>/`) and compares.
///
/// Errors: `Io` opening or reading it.
fn hash(dir: BorrowedFd<'_>, layout: &Layout, digest: &ValidDigest) -> Result<Hashed> {
    let path = || layout.blob_path(digest);
    let file = match fsutil::open_file_at(dir, digest.hex()) {
        Ok(fsutil::Opened::File(file, _)) => file,
        Ok(fsutil::Opened::Not(kind)) => return Ok(Hashed::Not(kind)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Hashed::Gone),
        Err(e) => return Err(Error::io(format!("opening {}", path().display()), e)),
    };
    let (actual, _) = digest_of_file(&file, digest.algorithm())
        .map_err(|e| Error::io(format!("reading {}", path().display()), e))?;
    Ok(if actual == digest.as_str() {
        Hashed::Matches
    } else {
        Hashed::Differs
    })
}
