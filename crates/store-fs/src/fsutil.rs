//! Small blocking file-system primitives: unique temp names, atomic replace, directory fsync,
//! and [`spawn_blocking`] to run them on the blocking pool.
//!
//! Everything here except [`spawn_blocking`] blocks. Callers usually run it on the blocking pool;
//! a few run it on the calling thread when it is only a handful of syscalls on cached data (the
//! blob module's `INLINE_IO_LIMIT_BYTES`, 64 KiB): reads of small blobs, and, when not durable,
//! writes of small blobs and of a small `index.json`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use store_core::{Error, Result};

/// Runs `f` on the blocking pool and flattens a join failure into `Io`.
pub(crate) async fn spawn_blocking<T, F>(f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::io("a blocking file operation", io::Error::other(e)))?
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other writer (in this or another process) will pick: pid, time and a counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}-{nanos:x}-{n}", std::process::id())
}

/// Creates a new file at `path` that must not exist yet, readable by everyone.
pub(crate) fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
}

/// Opens a file for reading without following a symbolic link in its last component, so a
/// link planted in the layout never leads a read outside it.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// fsyncs a directory, so that entries created or renamed in it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically: a temp file in the same directory, fsync (when
/// `durable`), rename over `path`, fsync of the directory (when `durable`). A crash of the
/// process at any point leaves either the old or the new content, never a torn file; when
/// `durable`, so does a crash of the machine.
///
/// Without `durable` the temp file is swapped with `path` (`renameat2(RENAME_EXCHANGE)`, where
/// the file system has it) and the old content then unlinked under the temp name. A plain rename
/// over an existing file makes ext4 start writing the new file out at once (its `auto_da_alloc`
/// safeguard for programs that do not fsync), and replacing a file whose blocks were allocated
/// frees them, which a `discard` mount turns into a synchronous trim: together ~150 µs per
/// write, 4–5× the cost of the write itself. The swap does neither while the data is still in
/// the page cache; the price is that a crash of the machine may leave `path` empty rather than
/// old or new, which is what not being durable allows.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(unique_name(&format!(".{name}.tmp-")));
    let result = (|| {
        write_new(&temp, bytes, durable)?;
        if !durable && rename_exchange(&temp, path)? {
            // `temp` now names the old content.
            let _ = fs::remove_file(&temp);
            return Ok(());
        }
        fs::rename(&temp, path)?;
        if durable {
            sync_dir(&dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Atomically swaps the files at `a` and `b`. Returns `Ok(false)`, having done nothing, when `b`
/// does not exist or the system or file system cannot swap.
#[cfg(target_os = "linux")]
fn rename_exchange(a: &Path, b: &Path) -> io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let (Ok(a), Ok(b)) = (
        CString::new(a.as_os_str().as_bytes()),
        CString::new(b.as_os_str().as_bytes()),
    ) else {
        return Ok(false);
    };
    // The raw syscall: libc wrappers for renameat2 are missing from older C libraries.
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EPERM) => {
            Ok(false)
        }
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_exchange(_a: &Path, _b: &Path) -> io::Result<bool> {
    Ok(false)
}

/// Writes `bytes` at `path` only if nothing is there yet (temp file + no-clobber link). Returns
/// `Ok(false)` when another writer got there first.
pub(crate) fn write_if_absent(path: &Path, bytes: &[u8], durable: bool) -> io::Result<bool> {
    let dir = parent_of(path);
    let temp = dir.join(unique_name(".new.tmp-"));
    let result = (|| {
        write_new(&temp, bytes, durable)?;
        let created = match fs::hard_link(&temp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(e),
        };
        fs::remove_file(&temp)?;
        if durable && created {
            sync_dir(&dir)?;
        }
        Ok(created)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Creates the new file `path` holding `bytes`, fsynced when `durable`, and closes it.
fn write_new(path: &Path, bytes: &[u8], durable: bool) -> io::Result<()> {
    let mut file = create_new(path)?;
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    Ok(())
}

/// The directory holding `path` (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` (and its parents) if missing; when `durable`, fsyncs the parent of every
/// directory it had to create.
pub(crate) fn ensure_dir(dir: &Path, durable: bool) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        if !parent.as_os_str().is_empty() {
            ensure_dir(parent, durable)?;
        }
    }
    match fs::create_dir(dir) {
        Ok(()) => {
            if durable {
                sync_dir(&parent_of(dir))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        atomic_write(&path, b"one", true).unwrap();
        atomic_write(&path, b"two", false).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn relaxed_replacement_swaps_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.json");
        // No file yet: the swap cannot apply, the rename does.
        atomic_write(&path, b"one", false).unwrap();
        for round in 0..3 {
            let body = format!("round {round}");
            atomic_write(&path, body.as_bytes(), false).unwrap();
            assert_eq!(fs::read(&path).unwrap(), body.as_bytes());
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        }
    }

    #[test]
    fn write_if_absent_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oci-layout");
        assert!(write_if_absent(&path, b"first", true).unwrap());
        assert!(!write_if_absent(&path, b"second", true).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
