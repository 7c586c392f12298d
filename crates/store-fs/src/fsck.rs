//! Consistency check: re-hash every blob and walk everything `index.json` reaches. Reports,
//! never modifies.

use crate::blob::{open_blob, spawn_blocking};
use crate::index_file::parse_index;
use crate::layout::{check_layout_bytes, Layout};
use crate::store::Store;
use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use store_core::descriptor::{is_manifest_type, MAX_MANIFEST_SIZE};
use store_core::digest::{Algorithm, ValidDigest};
use store_core::manifest::parse_successors;
use store_core::{Error, Result};

/// What [`Store::fsck`] found. Digests are `<algorithm>:<hex>` strings, sorted.
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
    /// Reachable manifests whose body does not parse as their media type.
    pub invalid_manifests: Vec<String>,
    /// Blob files nothing in `index.json` reaches (garbage, not corruption).
    pub orphaned: Vec<String>,
    /// Problems with the layout files themselves (`oci-layout`, `index.json`).
    pub layout_errors: Vec<String>,
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

impl Store {
    /// Checks the layout on disk: `oci-layout`; every blob re-hashed against its name; every
    /// `index.json` entry and every descriptor reachable from it present with the right size
    /// and, for manifests, parsable. Never modifies anything; runs beside other operations.
    ///
    /// Errors: `Io` when the layout cannot be listed or read.
    pub async fn fsck(&self) -> Result<FsckReport> {
        let layout = self.shared.layout().clone();
        spawn_blocking(move || check(&layout)).await
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
    let doc = match fs::read(&index_path) {
        Ok(bytes) => match parse_index(&index_path, &bytes) {
            Ok(doc) => Some(doc),
            Err(e) => {
                report.layout_errors.push(e.to_string());
                None
            }
        },
        Err(e) => {
            report
                .layout_errors
                .push(format!("{}: {e}", index_path.display()));
            None
        }
    };
    let mut reached: HashSet<String> = HashSet::new();
    let mut stack: Vec<oci_spec::image::Descriptor> = doc
        .map(|doc| doc.entries.into_iter().map(|e| e.desc).collect())
        .unwrap_or_default();
    let (mut missing, mut mis_sized, mut invalid) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
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
        if !is_manifest_type(&media_type) || size != desc.size() || size > MAX_MANIFEST_SIZE {
            continue;
        }
        let body = match fs::read(&path) {
            Ok(body) => body,
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        match parse_successors(digest.as_str(), &media_type, &body) {
            Ok(children) => stack.extend(children),
            Err(_) => {
                invalid.insert(digest.to_string());
            }
        }
    }
    report.missing = missing.into_iter().collect();
    report.size_mismatch = mis_sized.into_iter().collect();
    report.invalid_manifests = invalid.into_iter().collect();
    report.orphaned = on_disk
        .into_iter()
        .filter(|d| !reached.contains(d))
        .collect();
    Ok(report)
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
