//! Keeping the in-memory index and `index.json` in step when several processes share a layout.
//!
//! Every write holds the exclusive lock on `index.json.lock`, re-reads `index.json`, and when
//! another writer changed it since we last read or wrote it, merges three ways (see
//! [`super::merge`]) and takes their changes into memory before writing the result. The
//! comparison is on the bytes (a few tens of µs for a large index), which, unlike size and mtime,
//! cannot be fooled by a fast rewrite that reuses an inode.

use super::codec::{check_index_size, parse_index, IndexDocument, MAX_INDEX_JSON_SIZE};
use super::lock::IndexLock;
use super::merge;
use super::state::{Entries, IndexState};
use crate::fsutil::{self, Identity};
use crate::layout::{Layout, INDEX_FILE};
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use store_core::{Error, Result};

/// One layout's `index.json` on disk, and what we last read from or wrote to it.
#[derive(Debug)]
pub(crate) struct IndexFile {
    layout: Layout,
    /// `index.json`'s path, for messages.
    path: PathBuf,
    durable: bool,
    view: Mutex<DiskView>,
}

/// What we last read from or wrote to `index.json`.
#[derive(Debug, Default)]
struct DiskView {
    /// Its entries by key: the base of the next merge. `None` after a load or our own write:
    /// they are then what `bytes` says, and are parsed back from them only when another writer
    /// changed the file (keeping a copy of every entry cost more memory than the index itself,
    /// and more time at each write than the write).
    base: Option<Entries>,
    /// Its bytes, to tell whether another writer changed it. After a load, the entries read
    /// are slices of them: one copy serves both (after our next write, the entries still as read
    /// keep the loaded bytes alive beside these: two copies at most).
    bytes: Bytes,
    /// The file we last wrote, kept open, and its identity just after it became `index.json`.
    written: Option<(File, Identity)>,
    /// The buffer of the write before the last one, to encode the next write into.
    spare: Vec<u8>,
}

impl DiskView {
    /// The entries `bytes` holds, as [`merge::keyed`] keys them.
    fn base(&mut self, path: &Path) -> Entries {
        match self.base.take() {
            Some(base) => base,
            // Bytes we wrote ourselves always parse; nothing read or written yet is empty.
            None => parse_index(path, &self.bytes)
                .map(|doc| merge::keyed(&doc))
                .unwrap_or_default(),
        }
    }
}

impl IndexFile {
    /// The `index.json` of `layout`; `durable` says whether writes are fsynced.
    pub(crate) fn new(layout: &Layout, durable: bool) -> Self {
        IndexFile {
            layout: layout.clone(),
            path: layout.path_of(INDEX_FILE),
            durable,
            view: Mutex::default(),
        }
    }

    fn view(&self) -> MutexGuard<'_, DiskView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether writes are fsynced.
    pub(crate) fn is_durable(&self) -> bool {
        self.durable
    }

    /// Reads and parses `index.json`; `None` when it does not exist. Returns the bytes too.
    /// Blocking.
    ///
    /// Errors: `InvalidLayout` (empty, not JSON, a bad entry; a symbolic link or anything but a
    /// regular file, never followed or read), `SizeExceedsLimit` beyond
    /// [`super::codec::MAX_INDEX_JSON_SIZE`] (not read), `Io`.
    pub(crate) fn read(&self) -> Result<Option<(IndexDocument, Bytes)>> {
        match self
            .layout
            .read_file(INDEX_FILE, Some(MAX_INDEX_JSON_SIZE))?
        {
            Some(bytes) => {
                let bytes = Bytes::from(bytes);
                parse_index(&self.path, &bytes).map(|doc| Some((doc, bytes)))
            }
            None => Ok(None),
        }
    }

    /// Creates `index.json` holding `bytes` unless it exists. Blocking.
    ///
    /// Errors: `Io` naming the file.
    pub(crate) fn create_if_absent(&self, bytes: &[u8]) -> Result<()> {
        fsutil::write_if_absent(self.layout.root_fd(), INDEX_FILE, bytes, self.durable)
            .map(|_| ())
            .map_err(|e| Error::io(format!("creating {}", self.path.display()), e))
    }

    /// Records that `bytes` is what `index.json` holds now. The entries are parsed back from
    /// them only when another writer changes the file (keeping them keyed meanwhile would cost
    /// a second copy of every entry).
    pub(crate) fn remember(&self, bytes: Bytes) {
        *self.view() = DiskView {
            base: None,
            bytes,
            written: None,
            spare: Vec::new(),
        };
    }

    /// The size of `index.json` as we last read or wrote it.
    pub(crate) fn last_len(&self) -> usize {
        self.view().bytes.len()
    }

    /// Takes the cross-process lock, waiting for it. Blocking.
    ///
    /// Errors: `InvalidLayout` when the lock file is a symbolic link or not a regular file;
    /// `Io` naming it.
    pub(crate) fn lock(&self) -> Result<IndexLock> {
        IndexLock::acquire(&self.layout)
    }

    /// Takes the cross-process lock if nobody holds it (`None` otherwise), without waiting.
    ///
    /// Errors: those of [`IndexFile::lock`].
    pub(crate) fn try_lock(&self) -> Result<Option<IndexLock>> {
        IndexLock::try_acquire(&self.layout)
    }

    /// Takes the changes another writer made to `index.json` into `index`. Call with the lock
    /// held. Blocking. Returns the descriptors learnt, for the caller to index into the graph.
    ///
    /// Errors: `Io` reading; `InvalidLayout` when `index.json` no longer parses, or is now a
    /// symbolic link or not a regular file; `SizeExceedsLimit` when it grew beyond
    /// [`super::codec::MAX_INDEX_JSON_SIZE`].
    pub(crate) fn absorb_locked(
        &self,
        _lock: &IndexLock,
        index: &IndexState,
    ) -> Result<Vec<Descriptor>> {
        let path = &self.path;
        if self.is_ours_still() {
            return Ok(Vec::new());
        }
        let Some(bytes) = self
            .layout
            .read_file(INDEX_FILE, Some(MAX_INDEX_JSON_SIZE))?
        else {
            // Removed behind our back: the next write recreates it from what we hold.
            return Ok(Vec::new());
        };
        let mut disk = self.view();
        if *bytes == *disk.bytes {
            return Ok(Vec::new());
        }
        let bytes = Bytes::from(bytes);
        let doc = parse_index(path, &bytes)?;
        let theirs = merge::keyed(&doc);
        let ours = index.entries();
        let base = disk.base(path);
        let merged = merge::merge(&base, &ours, &theirs);
        let mut learnt = Vec::new();
        {
            let live = index.entries();
            let keys: std::collections::BTreeSet<&String> =
                ours.keys().chain(merged.keys()).collect();
            for key in keys {
                let (was, now) = (ours.get(key), merged.get(key));
                // Their change wins only where we did not change the key meanwhile.
                if was == now || live.get(key) != was {
                    continue;
                }
                match now {
                    Some(entry) => learnt.extend(index.adopt(key, entry)),
                    None => index.drop_key(key),
                }
            }
            // A tag dropped above leaves its digest in memory, where it now shows as an
            // untagged entry; when the merge has no such entry either, the other writer deleted
            // the manifest (a delete removes every reference), and keeping the entry would bring
            // back a manifest whose files it unlinked.
            for (key, entry) in index.entries() {
                if entry.untagged && !ours.contains_key(&key) && !merged.contains_key(&key) {
                    index.drop_key(&key);
                }
            }
        }
        index.set_top(doc.top);
        let spare = std::mem::take(&mut disk.spare);
        *disk = DiskView {
            base: Some(theirs),
            bytes,
            written: None,
            spare,
        };
        Ok(learnt)
    }

    /// Whether `index.json` is still the file we last wrote, unchanged (see the module
    /// documentation); `false` when unsure.
    fn is_ours_still(&self) -> bool {
        let disk = self.view();
        let Some((_, identity)) = &disk.written else {
            return false;
        };
        fsutil::stat_at(self.layout.root_fd(), INDEX_FILE)
            .is_ok_and(|now| now.identity == *identity)
    }

    /// Writes what `index` holds to `index.json` (after absorbing other writers' changes). Call
    /// with the lock held. Blocking. A write whose bytes equal what is on disk is skipped.
    ///
    /// Errors: `SizeExceedsLimit` when the bytes would exceed [`super::codec::MAX_INDEX_JSON_SIZE`]; `Io`
    /// (the previous `index.json` stays intact in both cases).
    pub(crate) fn write_locked(&self, _lock: &IndexLock, index: &IndexState) -> Result<()> {
        let mut disk = self.view();
        let mut bytes = std::mem::take(&mut disk.spare);
        index.encode_current_into(&mut bytes);
        check_index_size(&self.path, bytes.len() as u64)?;
        if *bytes == *disk.bytes {
            disk.spare = bytes;
            return Ok(());
        }
        let file = fsutil::atomic_write(self.layout.root_fd(), INDEX_FILE, &bytes, self.durable)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        // Without its identity the next write reads the file back, as after a load.
        let written = fsutil::stat_fd(file.as_fd())
            .ok()
            .map(|st| (file, st.identity));
        let before = std::mem::replace(
            &mut *disk,
            DiskView {
                base: None,
                bytes: Bytes::from(bytes),
                written,
                spare: Vec::new(),
            },
        );
        // The bytes written before are ours alone unless entries read from them still hold
        // slices (after a load): then they stay with those entries.
        if let Ok(old) = before.bytes.try_into_mut() {
            disk.spare = old.into();
        }
        // The file we wrote before is unlinked now: its close frees it, off this thread.
        if let Some((file, _)) = before.written {
            fsutil::close_later(file);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;
    use store_core::content::descriptor_from_bytes;

    fn writer(dir: &Path) -> (IndexFile, IndexState) {
        let layout = Layout::open(dir.to_path_buf()).unwrap();
        (IndexFile::new(&layout, false), IndexState::default())
    }

    fn write(file: &IndexFile, index: &IndexState) -> Vec<Descriptor> {
        let lock = file.lock().unwrap();
        let learnt = file.absorb_locked(&lock, index).unwrap();
        file.write_locked(&lock, index).unwrap();
        learnt
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn a_same_size_rewrite_by_another_writer_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let (ours, our_index) = writer(dir.path());
        let (theirs, their_index) = writer(dir.path());
        let (a, b) = (
            descriptor_from_bytes(MediaType::ImageManifest, b"a"),
            descriptor_from_bytes(MediaType::ImageManifest, b"b"),
        );
        let _ = our_index.tag(a.clone(), "v1");
        assert!(write(&ours, &our_index).is_empty());
        // Another writer that takes the lock: same entries but another tag of the same length,
        // so the file keeps its size; written right away, within one tick of the clock.
        assert_eq!(write(&theirs, &their_index).len(), 1);
        let _ = their_index.untag("v1");
        let _ = their_index.tag(b.clone(), "v2");
        write(&theirs, &their_index);
        // Our next write must take their change in, not write over it.
        let _ = our_index.tag(a.clone(), "v3");
        write(&ours, &our_index);
        let on_disk =
            String::from_utf8(std::fs::read(dir.path().join(INDEX_FILE)).unwrap()).unwrap();
        assert!(on_disk.contains("\"v2\""), "their tag survives: {on_disk}");
        assert!(on_disk.contains("\"v3\""), "ours is added: {on_disk}");
        assert!(
            !on_disk.contains("\"v1\""),
            "their untag survives: {on_disk}"
        );
        // And a write with nothing new from them needs no read: still the same result.
        let _ = our_index.tag(b, "v4");
        write(&ours, &our_index);
        let on_disk =
            String::from_utf8(std::fs::read(dir.path().join(INDEX_FILE)).unwrap()).unwrap();
        for tag in ["v2", "v3", "v4"] {
            assert!(on_disk.contains(&format!("\"{tag}\"")), "{tag}: {on_disk}");
        }
    }
}
