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
        let path = root.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(&path)
            .map_err(|e| Error::io(format!("opening the lock file {}", path.display()), e))?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(IndexLock { _file: file })
    }
}
