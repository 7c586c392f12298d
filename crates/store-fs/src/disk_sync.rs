//! Keeping the in-memory index and `index.json` in step when several processes share a layout.
//!
//! Every write holds the exclusive lock on `index.json.lock`, re-reads `index.json`, and when
//! another writer changed it since we last read or wrote it, merges three ways (see
//! [`crate::merge`]) and takes their changes into memory before writing the result. The
//! comparison is on the bytes (a few tens of µs for a large index), which, unlike size and mtime,
//! cannot be fooled by a fast rewrite that reuses an inode.

use crate::fsutil;
use crate::index_file::parse_index;
use crate::index_state::Entries;
use crate::lock::IndexLock;
use crate::merge;
use crate::shared::Shared;
use oci_spec::image::Descriptor;
use std::io;
use store_core::{Error, Result};

/// What we last read from or wrote to `index.json`.
#[derive(Debug, Default)]
pub(crate) struct DiskView {
    /// Its entries by key: the base of the next merge. `None` after our own write: they are
    /// then what `bytes` says, and are parsed back from them only when another writer changed
    /// the file (keeping a copy of every entry at each write cost more than the write itself).
    pub(crate) base: Option<Entries>,
    /// Its bytes, to tell whether another writer changed it.
    pub(crate) bytes: Vec<u8>,
}

impl DiskView {
    /// The entries `bytes` holds, as [`merge::keyed`] keys them.
    fn base(&mut self, path: &std::path::Path) -> Entries {
        match self.base.take() {
            Some(base) => base,
            // Bytes we wrote ourselves always parse; nothing read or written yet is empty.
            None => parse_index(path, &self.bytes)
                .map(|doc| merge::keyed(&doc))
                .unwrap_or_default(),
        }
    }
}

impl Shared {
    fn disk(&self) -> std::sync::MutexGuard<'_, DiskView> {
        self.disk.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The size of `index.json` as we last read or wrote it.
    pub(crate) fn last_index_len(&self) -> usize {
        self.disk().bytes.len()
    }

    /// Records what was just loaded from `index.json`.
    pub(crate) fn remember_disk(&self, base: Entries, bytes: Vec<u8>) {
        *self.disk() = DiskView {
            base: Some(base),
            bytes,
        };
    }

    /// Takes the changes another writer made to `index.json` into memory. Call with the index
    /// lock held. Blocking. Returns the descriptors learnt, for the caller to index into the
    /// graph.
    ///
    /// Errors: `Io` reading; `InvalidLayout` when `index.json` no longer parses.
    pub(crate) fn absorb_locked(&self, _lock: &IndexLock) -> Result<Vec<Descriptor>> {
        let path = self.layout().index_path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            // Removed behind our back: the next write recreates it from what we hold.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let mut disk = self.disk();
        if bytes == disk.bytes {
            return Ok(Vec::new());
        }
        let doc = parse_index(&path, &bytes)?;
        let theirs = merge::keyed(&doc);
        let ours = self.index.entries();
        let base = disk.base(&path);
        let merged = merge::merge(&base, &ours, &theirs);
        let mut learnt = Vec::new();
        {
            let live = self.index.entries();
            let keys: std::collections::BTreeSet<&String> =
                ours.keys().chain(merged.keys()).collect();
            for key in keys {
                let (was, now) = (ours.get(key), merged.get(key));
                // Their change wins only where we did not change the key meanwhile.
                if was == now || live.get(key) != was {
                    continue;
                }
                match now {
                    Some(entry) => learnt.extend(self.index.adopt(key, entry)),
                    None => self.index.drop_key(key),
                }
            }
        }
        self.index.set_top(doc.top);
        *disk = DiskView {
            base: Some(theirs),
            bytes,
        };
        Ok(learnt)
    }

    /// Writes what we hold to `index.json` (after absorbing other writers' changes). Call with
    /// the index lock held. Blocking. A write whose bytes equal what is on disk is skipped.
    ///
    /// Errors: `Io` (the previous `index.json` stays intact).
    pub(crate) fn write_locked(&self, _lock: &IndexLock) -> Result<()> {
        let bytes = self.index.encode_current();
        let mut disk = self.disk();
        if bytes == disk.bytes {
            return Ok(());
        }
        let path = self.layout().index_path();
        fsutil::atomic_write(&path, &bytes, self.durable)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        *disk = DiskView { base: None, bytes };
        Ok(())
    }

    /// Takes the index lock (blocking).
    pub(crate) fn lock_index(&self) -> Result<IndexLock> {
        IndexLock::acquire(self.layout().root())
    }
}
