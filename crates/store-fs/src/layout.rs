//! The layout on disk: its directory handles, where things live under the root, and the
//! `oci-layout` file.
//!
//! The root is opened once (following a link: the user chose the path) and everything below it
//! is reached from that handle, one component at a time, never through a symbolic link: `blobs/`,
//! `blobs/<alg>/` and `ingest/` are opened with `O_NOFOLLOW` and their handles kept for the life
//! of the store, so a directory swapped for a link afterwards is never followed either (the store
//! keeps using the directory it opened). A link, or anything but a directory, where one of them
//! should be is refused with `InvalidLayout` naming it.

use crate::fsutil::{self, FileKind, ReadOutcome};
use serde::Deserialize;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use store_core::digest::{Algorithm, ValidDigest};
use store_core::{Error, Result};

/// The only `imageLayoutVersion` the OCI image spec defines.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// The bytes written to a new `oci-layout` file.
pub(crate) const LAYOUT_FILE_BYTES: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The name of the layout file.
pub(crate) const LAYOUT_FILE: &str = "oci-layout";
/// The name of the index file.
pub(crate) const INDEX_FILE: &str = "index.json";
/// The largest `oci-layout` file read (its one field fits in a few dozen bytes).
pub(crate) const LAYOUT_FILE_LIMIT_BYTES: u64 = 64 << 10;

/// Why a link or a non-directory is refused where a layout directory should be.
const NEVER_FOLLOWED: &str = "the store never follows a symbolic link inside the layout";

/// One layout directory: its path (for messages) and its directory handles. Clones share the
/// handles.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    dirs: Arc<Dirs>,
}

#[derive(Debug)]
struct Dirs {
    root: PathBuf,
    fd: OwnedFd,
    blobs: OnceLock<OwnedFd>,
    algorithms: [OnceLock<OwnedFd>; Algorithm::ALL.len()],
    ingest: OnceLock<OwnedFd>,
}

/// Whether a directory missing on disk is created (and, when durable, its parent fsynced).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Create {
    /// A missing directory is reported as `None`.
    No,
    /// A missing directory is created; `durable` says whether its parent is fsynced after.
    Yes { durable: bool },
}

impl Layout {
    /// Opens the layout directory `root` (absolute), following a link there.
    ///
    /// Errors: `NotFound`; `InvalidLayout` when it is not a directory; `Io`.
    pub(crate) fn open(root: PathBuf) -> Result<Layout> {
        let fd = match fsutil::open_dir(&root) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::not_found(root.display()))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                return Err(Error::InvalidLayout {
                    path: root,
                    reason: "is not a directory".into(),
                })
            }
            Err(e) => return Err(Error::io(format!("opening {}", root.display()), e)),
        };
        Ok(Layout {
            dirs: Arc::new(Dirs {
                root,
                fd,
                blobs: OnceLock::new(),
                algorithms: Default::default(),
                ingest: OnceLock::new(),
            }),
        })
    }

    /// The absolute root, for messages.
    pub(crate) fn root(&self) -> &Path {
        &self.dirs.root
    }

    /// The handle of the root directory.
    pub(crate) fn root_fd(&self) -> BorrowedFd<'_> {
        self.dirs.fd.as_fd()
    }

    /// The path of `name` under the root, for messages.
    pub(crate) fn path_of(&self, name: &str) -> PathBuf {
        self.dirs.root.join(name)
    }

    /// `blobs/<algorithm>` under the root, for messages.
    pub(crate) fn algorithm_path(&self, algorithm: Algorithm) -> PathBuf {
        self.dirs.root.join("blobs").join(algorithm.name())
    }

    /// `blobs/<algorithm>/<hex>` under the root, for messages; the digest is validated, so it
    /// cannot escape the root.
    pub(crate) fn blob_path(&self, digest: &ValidDigest) -> PathBuf {
        self.algorithm_path(digest.algorithm()).join(digest.hex())
    }

    /// `ingest/` under the root, for messages.
    pub(crate) fn ingest_path(&self) -> PathBuf {
        self.dirs.root.join("ingest")
    }

    /// The handle of `blobs/`, opened (or created) once; `None` when it is missing and `create`
    /// is [`Create::No`].
    ///
    /// Errors: `InvalidLayout` naming it when it is a symbolic link or not a directory; `Io`.
    pub(crate) fn blobs_dir(&self, create: Create) -> Result<Option<BorrowedFd<'_>>> {
        self.cached_dir(&self.dirs.blobs, self.root_fd(), "blobs", create)
    }

    /// The handle of `blobs/<algorithm>/`, opened (or created, with `blobs/`) once; `None` when
    /// it is missing and `create` is [`Create::No`]. While it is missing every call tries to
    /// open it again (one syscall): another process may create it.
    ///
    /// Errors: `InvalidLayout` naming it (or `blobs/`) when it is a symbolic link or not a
    /// directory; `Io`.
    pub(crate) fn algorithm_dir(
        &self,
        algorithm: Algorithm,
        create: Create,
    ) -> Result<Option<BorrowedFd<'_>>> {
        let slot = &self.dirs.algorithms[algorithm_slot(algorithm)];
        if let Some(fd) = slot.get() {
            return Ok(Some(fd.as_fd()));
        }
        let Some(blobs) = self.blobs_dir(create)? else {
            return Ok(None);
        };
        let name = format!("blobs/{}", algorithm.name());
        self.cached_dir(slot, blobs, &name, create)
    }

    /// The handle of `ingest/`, opened (or created) once; `None` when it is missing and `create`
    /// is [`Create::No`].
    ///
    /// Errors: `InvalidLayout` naming it when it is a symbolic link or not a directory; `Io`.
    pub(crate) fn ingest_dir(&self, create: Create) -> Result<Option<BorrowedFd<'_>>> {
        self.cached_dir(&self.dirs.ingest, self.root_fd(), "ingest", create)
    }

    /// The cached handle of the directory `relative` (its last component opened in `parent`).
    fn cached_dir<'a>(
        &'a self,
        slot: &'a OnceLock<OwnedFd>,
        parent: BorrowedFd<'_>,
        relative: &str,
        create: Create,
    ) -> Result<Option<BorrowedFd<'a>>> {
        if let Some(fd) = slot.get() {
            return Ok(Some(fd.as_fd()));
        }
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let path = self.path_of(relative);
        let refused = |e: io::Error| self.refuse_dir(parent, name, &path, e);
        let fd = match fsutil::open_dir_at(parent, name) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Create::Yes { durable } = create else {
                    return Ok(None);
                };
                match fsutil::mkdir_at(parent, name) {
                    Ok(()) if durable => fsutil::sync_fd(parent).map_err(|e| {
                        Error::io(format!("syncing the parent of {}", path.display()), e)
                    })?,
                    Ok(()) => {}
                    // Created meanwhile by another writer (or a link planted: refused below).
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    Err(e) => return Err(Error::io(format!("creating {}", path.display()), e)),
                }
                fsutil::open_dir_at(parent, name).map_err(refused)?
            }
            Err(e) => return Err(refused(e)),
        };
        // A racing opener's handle is dropped: both name the same directory.
        let _ = slot.set(fd);
        Ok(slot.get().map(|fd| fd.as_fd()))
    }

    /// The error for a layout directory that could not be opened: `InvalidLayout` when it is a
    /// link or not a directory, `Io` otherwise.
    fn refuse_dir(&self, parent: BorrowedFd<'_>, name: &str, path: &Path, e: io::Error) -> Error {
        if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) {
            let what = match fsutil::stat_at(parent, name) {
                Ok(st) => st.kind.describe(),
                Err(_) => "not a directory",
            };
            return Error::InvalidLayout {
                path: path.to_path_buf(),
                reason: format!("is {what}, not a directory; {NEVER_FOLLOWED}"),
            };
        }
        Error::io(format!("opening {}", path.display()), e)
    }

    /// Opens the layout directories that exist (`blobs/`, `blobs/<alg>/` and, with `ingest`,
    /// `ingest/`), so that a link or non-directory there is refused now and the handles are
    /// kept.
    ///
    /// Errors: `InvalidLayout` naming the first one that is a link or not a directory; `Io`.
    pub(crate) fn open_dirs(&self, ingest: bool) -> Result<()> {
        for algorithm in Algorithm::ALL {
            self.algorithm_dir(algorithm, Create::No)?;
        }
        if ingest {
            self.ingest_dir(Create::No)?;
        }
        Ok(())
    }

    /// Refuses `name` in the root when it exists but is not a regular file (a symbolic link, a
    /// FIFO...): one `lstat`.
    ///
    /// Errors: `InvalidLayout` naming it; `Io`.
    pub(crate) fn refuse_special_file(&self, name: &str) -> Result<()> {
        match fsutil::stat_at(self.root_fd(), name) {
            Ok(st) if st.kind == FileKind::Regular => Ok(()),
            Ok(st) => Err(not_regular(&self.path_of(name), st.kind)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                format!("inspecting {}", self.path_of(name).display()),
                e,
            )),
        }
    }

    /// Reads the file `name` of the root whole, never through a symbolic link, never a file
    /// that is not regular, never more than `limit` bytes; `None` when it does not exist.
    /// Blocking.
    ///
    /// Errors: `InvalidLayout` naming the file when it is a symbolic link or not a regular file;
    /// `SizeExceedsLimit` naming it when it is larger than `limit`; `Io`.
    pub(crate) fn read_file(&self, name: &str, limit: Option<u64>) -> Result<Option<Vec<u8>>> {
        read_file_in(self.root_fd(), &self.path_of(name), name, limit)
    }
}

/// Reads the file `name` of `dir` (whose path, for messages, is `path`) like
/// [`Layout::read_file`].
pub(crate) fn read_file_in(
    dir: BorrowedFd<'_>,
    path: &Path,
    name: &str,
    limit: Option<u64>,
) -> Result<Option<Vec<u8>>> {
    match fsutil::read_file_at(dir, name, limit) {
        Ok(ReadOutcome::Bytes(bytes)) => Ok(Some(bytes)),
        Ok(ReadOutcome::Missing) => Ok(None),
        Ok(ReadOutcome::Not(kind)) => Err(not_regular(path, kind)),
        Ok(ReadOutcome::TooBig(len)) => Err(Error::SizeExceedsLimit {
            what: path.display().to_string(),
            size: len,
            limit: limit.unwrap_or_default(),
        }),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// `InvalidLayout` for a file of the layout that is `kind` rather than a regular file.
pub(crate) fn not_regular(path: &Path, kind: FileKind) -> Error {
    let reason = if kind == FileKind::Symlink {
        format!("is a symbolic link; {NEVER_FOLLOWED}")
    } else {
        format!(
            "is {}, not a regular file; it is never opened for reading",
            kind.describe()
        )
    };
    Error::InvalidLayout {
        path: path.to_path_buf(),
        reason,
    }
}

/// The index of `algorithm` in [`Algorithm::ALL`].
fn algorithm_slot(algorithm: Algorithm) -> usize {
    Algorithm::ALL
        .iter()
        .position(|a| *a == algorithm)
        .unwrap_or_default()
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

/// Makes `root` absolute, creates it and `blobs/` if missing, creates or checks `oci-layout`,
/// and opens the layout directories, refusing links where they or the layout files should be.
/// Blocking. Besides the layout, returns a note when `oci-layout` was missing from a directory
/// that already held an `index.json` (a layout other tools refuse; `fsck` reports the note).
///
/// Errors: `InvalidLayout` when `root` exists but is not a directory (a tar archive, say), for a
/// bad `oci-layout`, or naming `blobs/`, `blobs/<alg>/`, `ingest/`, `index.json`,
/// `index.json.lock` or `oci-layout` when it is a symbolic link or of the wrong type (a FIFO
/// where a file should be, say); `UnsupportedVersion`; `Io` naming the path.
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
    fsutil::ensure_dir(&absolute, durable)
        .map_err(|e| Error::io(format!("creating {}", absolute.display()), e))?;
    let layout = Layout::open(absolute)?;
    layout.blobs_dir(Create::Yes { durable })?;
    layout.open_dirs(true)?;
    for name in [INDEX_FILE, crate::index::lock::LOCK_FILE] {
        layout.refuse_special_file(name)?;
    }
    let layout_path = layout.path_of(LAYOUT_FILE);
    let mut note = None;
    match layout.read_file(LAYOUT_FILE, Some(LAYOUT_FILE_LIMIT_BYTES))? {
        Some(bytes) => check_layout_bytes(&layout_path, &bytes)?,
        None => {
            let had_index = match fsutil::stat_at(layout.root_fd(), INDEX_FILE) {
                Ok(_) => true,
                Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                Err(e) => {
                    let path = layout.path_of(INDEX_FILE);
                    return Err(Error::io(format!("inspecting {}", path.display()), e));
                }
            };
            let created =
                fsutil::write_if_absent(layout.root_fd(), LAYOUT_FILE, LAYOUT_FILE_BYTES, durable)
                    .map_err(|e| Error::io(format!("creating {}", layout_path.display()), e))?;
            if created && had_index {
                note = Some(format!(
                    "{}: was missing although index.json existed (umoci and oci-image-tool \
                     refuse such a layout); opening the store created it",
                    layout_path.display()
                ));
            }
            // Another process may have created it meanwhile; whatever is there must be valid.
            let bytes = layout
                .read_file(LAYOUT_FILE, Some(LAYOUT_FILE_LIMIT_BYTES))?
                .ok_or_else(|| Error::InvalidLayout {
                    path: layout_path.clone(),
                    reason: "removed while the store was opening".into(),
                })?;
            check_layout_bytes(&layout_path, &bytes)?;
        }
    }
    Ok((layout, note))
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_core::ErrorKind;

    #[test]
    fn layout_directories_that_are_links_are_refused_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("blobs")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("ingest")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("blobs/sha512")).unwrap();
        let layout = Layout::open(dir.path().to_path_buf()).unwrap();
        let err = layout
            .ingest_dir(Create::Yes { durable: false })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidLayout);
        assert!(err.to_string().contains("ingest: "), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let err = layout
            .algorithm_dir(Algorithm::Sha512, Create::No)
            .unwrap_err();
        assert!(err.to_string().contains("blobs/sha512"), "{err}");
        // Missing and not created: none; created on demand: a real directory in the layout.
        assert!(layout
            .algorithm_dir(Algorithm::Sha384, Create::No)
            .unwrap()
            .is_none());
        assert!(layout
            .algorithm_dir(Algorithm::Sha256, Create::Yes { durable: true })
            .unwrap()
            .is_some());
        assert!(dir.path().join("blobs/sha256").is_dir());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    }

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
