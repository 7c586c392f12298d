//! The layout on disk: where things live under the root, and the `oci-layout` file.

use crate::fsutil;
use serde::Deserialize;
use std::io;
use std::path::{Path, PathBuf};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The only `imageLayoutVersion` the OCI image spec defines.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// The bytes written to a new `oci-layout` file.
pub(crate) const LAYOUT_FILE_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Paths of one layout directory.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: PathBuf) -> Self {
        Layout { root }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }

    pub(crate) fn algorithm_dir(&self, algorithm: &str) -> PathBuf {
        self.root.join("blobs").join(algorithm)
    }

    /// `blobs/<algorithm>/<hex>`; the digest is validated, so it cannot escape the root.
    pub(crate) fn blob_path(&self, digest: &ValidDigest) -> PathBuf {
        // One allocation: this runs for every exists, fetch and push.
        let mut path = PathBuf::with_capacity(
            self.root.as_os_str().len() + "/blobs/".len() + digest.as_str().len() + 1,
        );
        path.push(&self.root);
        path.push("blobs");
        path.push(digest.algorithm().name());
        path.push(digest.hex());
        path
    }

    pub(crate) fn ingest_dir(&self) -> PathBuf {
        self.root.join("ingest")
    }

    pub(crate) fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    pub(crate) fn layout_path(&self) -> PathBuf {
        self.root.join("oci-layout")
    }
}

#[derive(Deserialize)]
struct LayoutFile {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

/// Checks the content of an `oci-layout` file named `path`.
///
/// Errors: `InvalidLayout` when it is not JSON with an `imageLayoutVersion` string,
/// `UnsupportedVersion` for any version other than "1.0.0".
pub(crate) fn check_layout_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let parsed: LayoutFile = serde_json::from_slice(bytes).map_err(|e| Error::InvalidLayout {
        path: path.to_path_buf(),
        reason: format!("not an oci-layout file: {e}"),
    })?;
    if parsed.image_layout_version != LAYOUT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: path.to_path_buf(),
            version: parsed.image_layout_version,
        });
    }
    Ok(())
}

/// Makes `root` absolute, creates it and `blobs/` if missing, creates or checks `oci-layout`.
/// Blocking. Besides the layout, returns a note when `oci-layout` was missing from a directory
/// that already held an `index.json` (a layout other tools refuse; `fsck` reports the note).
///
/// Errors: `InvalidLayout` when `root` exists but is not a directory (a tar archive, say), or
/// for a bad `oci-layout`; `UnsupportedVersion`; `Io` naming the path.
pub(crate) fn prepare_root(root: &Path, durable: bool) -> Result<(Layout, Option<String>)> {
    let absolute = std::path::absolute(root)
        .map_err(|e| Error::io(format!("making {} absolute", root.display()), e))?;
    if let Ok(meta) = std::fs::metadata(&absolute) {
        if !meta.is_dir() {
            let what = if meta.is_file() {
                "a file"
            } else {
                "not a directory"
            };
            return Err(Error::InvalidLayout {
                path: absolute,
                reason: format!(
                    "is {what}, not a layout directory (a tar archive of a layout opens, \
                     read-only, with ReadOnlyStore::open)"
                ),
            });
        }
    }
    let layout = Layout::new(absolute);
    let blobs = layout.blobs_dir();
    fsutil::ensure_dir(&blobs, durable)
        .map_err(|e| Error::io(format!("creating {}", blobs.display()), e))?;
    refuse_symlinked_dirs(&layout)?;
    let layout_path = layout.layout_path();
    let mut note = None;
    match std::fs::read(&layout_path) {
        Ok(bytes) => check_layout_bytes(&layout_path, &bytes)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let had_index = layout.index_path().exists();
            let created = fsutil::write_if_absent(&layout_path, LAYOUT_FILE_BYTES, durable)
                .map_err(|e| Error::io(format!("creating {}", layout_path.display()), e))?;
            if created && had_index {
                note = Some(format!(
                    "{}: was missing although index.json existed (umoci and oci-image-tool \
                     refuse such a layout); opening the store created it",
                    layout_path.display()
                ));
            }
            // Another process may have created it meanwhile; whatever is there must be valid.
            let bytes = std::fs::read(&layout_path)
                .map_err(|e| Error::io(format!("reading {}", layout_path.display()), e))?;
            check_layout_bytes(&layout_path, &bytes)?;
        }
        Err(e) => return Err(Error::io(format!("reading {}", layout_path.display()), e)),
    }
    Ok((layout, note))
}

/// Refuses a layout whose `blobs/` or `blobs/<algorithm>/` is a symbolic link: blob paths are
/// built under them, and a link would lead reads and deletes outside the root.
pub(crate) fn refuse_symlinked_dirs(layout: &Layout) -> Result<()> {
    let mut dirs = vec![layout.blobs_dir()];
    for algorithm in store_core::digest::Algorithm::ALL {
        dirs.push(layout.algorithm_dir(algorithm.name()));
    }
    for dir in dirs {
        if let Ok(meta) = std::fs::symlink_metadata(&dir) {
            if meta.file_type().is_symlink() {
                return Err(Error::InvalidLayout {
                    path: dir,
                    reason: "is a symbolic link; blob directories must be real directories".into(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_core::ErrorKind;

    #[test]
    fn layout_versions() {
        let p = Path::new("/x/oci-layout");
        check_layout_bytes(p, br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let err = check_layout_bytes(p, br#"{"imageLayoutVersion":"1.0.1"}"#).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnsupportedVersion);
        assert!(err.to_string().contains("1.0.1"));
        for bad in [&b""[..], b"not json", b"{}", br#"{"imageLayoutVersion":1}"#] {
            let err = check_layout_bytes(p, bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidLayout);
            assert!(err.to_string().contains("/x/oci-layout"));
        }
    }
}
