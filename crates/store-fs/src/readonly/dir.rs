//! Reading the layout files of a layout directory opened read-only: never through a symbolic
//! link, never a file that is not regular, never more than a given size.

use crate::fsutil;
use std::io::{self, Read};
use std::path::Path;
use store_core::{Error, Result};

/// Reads the file at `path` without following a symbolic link; `None` when it does not exist.
/// Blocking.
///
/// Errors: `InvalidLayout` naming the path when it is a symbolic link or not a regular file;
/// `SizeExceedsLimit` naming it when it is larger than `limit`; `Io`.
pub(crate) fn read_layout_file(path: &Path, limit: Option<u64>) -> Result<Option<Vec<u8>>> {
    let invalid = |reason: String| Error::InvalidLayout {
        path: path.to_path_buf(),
        reason,
    };
    let file = match fsutil::open_nofollow(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(invalid(
                "is a symbolic link, which is never followed".into(),
            ))
        }
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let meta = file
        .metadata()
        .map_err(|e| Error::io(format!("inspecting {}", path.display()), e))?;
    if !meta.is_file() {
        return Err(invalid("is not a regular file".into()));
    }
    if let Some(limit) = limit {
        if meta.len() > limit {
            return Err(Error::SizeExceedsLimit {
                what: path.display().to_string(),
                size: meta.len(),
                limit,
            });
        }
    }
    let mut out = Vec::with_capacity(meta.len().min(1 << 20) as usize);
    let mut file = file;
    file.read_to_end(&mut out)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    Ok(Some(out))
}
