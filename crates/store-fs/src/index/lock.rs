//! The cross-process lock on `index.json.lock`: an exclusive `flock`, the same file buildkit's OCI
//! index writer locks, so writers of both kinds take turns. The lock dies with its process, so a
//! stale lock file left by a killed process blocks nobody.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use store_core::{Error, Result};

/// The name of the lock file beside `index.json`.
pub const LOCK_FILE: &str = "index.json.lock";

/// Holds the exclusive lock until dropped.
#[derive(Debug)]
pub(crate) struct IndexLock {
    _file: File,
}

impl IndexLock {
    /// Blocks until the exclusive lock on `<root>/index.json.lock` is held (creating the file
    /// if needed). Blocking: run it on the blocking pool.
    ///
    /// Errors: `Io` naming the lock file (e.g. a read-only layout directory).
    pub(crate) fn acquire(root: &Path) -> Result<IndexLock> {
        let (path, file) = open_lock_file(root)?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(IndexLock { _file: file })
    }

    /// Takes the exclusive lock if nobody holds it; `None` when another holder has it. Does not
    /// wait for the lock (opening the file is the only blocking part).
    ///
    /// Errors: `Io` naming the lock file.
    pub(crate) fn try_acquire(root: &Path) -> Result<Option<IndexLock>> {
        let (path, file) = open_lock_file(root)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(IndexLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

/// Opens (creating it if needed) `<root>/index.json.lock`.
fn open_lock_file(root: &Path) -> Result<(std::path::PathBuf, File)> {
    let path = root.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Error::io(format!("opening the lock file {}", path.display()), e))?;
    Ok((path, file))
}
