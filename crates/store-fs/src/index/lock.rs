//! The cross-process lock on `index.json.lock`: an exclusive `flock`, the same file buildkit's OCI
//! index writer locks, so writers of both kinds take turns. The lock dies with its process, so a
//! stale lock file left by a killed process blocks nobody.
//!
//! The lock file is opened in the layout's root handle without following a symbolic link
//! (`O_NOFOLLOW`) and without waiting (`O_NONBLOCK`); anything but a regular file there is
//! refused, so a planted link never makes the store create or lock a file outside the layout.

use crate::fsutil::{self, Opened};
use crate::layout::{self, Layout};
use std::fs::File;
use std::path::PathBuf;
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
    /// Errors: `InvalidLayout` naming the lock file when it is a symbolic link or not a regular
    /// file; `Io` naming it (e.g. a read-only layout directory).
    pub(crate) fn acquire(layout: &Layout) -> Result<IndexLock> {
        let (path, file) = open_lock_file(layout)?;
        file.lock()
            .map_err(|e| Error::io(format!("locking {}", path.display()), e))?;
        Ok(IndexLock { _file: file })
    }

    /// Takes the exclusive lock if nobody holds it; `None` when another holder has it. Does not
    /// wait for the lock (opening the file is the only blocking part).
    ///
    /// Errors: those of [`IndexLock::acquire`].
    pub(crate) fn try_acquire(layout: &Layout) -> Result<Option<IndexLock>> {
        let (path, file) = open_lock_file(layout)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(IndexLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::io(format!("locking {}", path.display()), e))
            }
        }
    }
}

/// Opens (creating it if needed) `<root>/index.json.lock`; returns its path too, for messages.
fn open_lock_file(layout: &Layout) -> Result<(PathBuf, File)> {
    let path = layout.path_of(LOCK_FILE);
    match fsutil::open_or_create_at(layout.root_fd(), LOCK_FILE) {
        Ok(Opened::File(file, _)) => Ok((path, file)),
        Ok(Opened::Not(kind)) => Err(layout::not_regular(&path, kind)),
        Err(e) => Err(Error::io(
            format!("opening the lock file {}", path.display()),
            e,
        )),
    }
}
