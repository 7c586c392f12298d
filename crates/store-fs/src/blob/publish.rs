//! Making verified content visible: a no-clobber hard link from `ingest/` to
//! `blobs/<alg>/<hex>`, the only way any blob appears, whoever wrote it (a push from memory, a
//! streamed push, a [`crate::BlobWriter`]). Both ends are reached through the layout's directory
//! handles, never through a symbolic link.
//!
//! Staging files are [`Staging`] guards: registered as in flight before the file is created (so
//! that `gc` of this store never sweeps one, whatever its age) and removed when the guard goes,
//! on every path, including a dropped future. A [`Ready`] blob is content verified and waiting
//! for its publish step, which the store runs under its gate together with the record.

use super::{algorithm_dir, ingest_dir, io_err, runs_inline, Blobs};
use crate::fsutil::{self, FileKind};
use crate::layout::{Create, Layout};
use bytes::Bytes;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The names of this store's staging files in `ingest/` that are still in use.
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashSet<String>>);

impl InFlight {
    fn names(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `name` (a file name in `ingest/`) is a staging file still in use.
    pub(crate) fn contains(&self, name: &OsStr) -> bool {
        name.to_str()
            .is_some_and(|name| self.names().contains(name))
    }
}

/// A staging file in `ingest/`, in flight until dropped; dropping it removes the staging name
/// (a blob published from it keeps its own name).
#[derive(Debug)]
pub(crate) struct Staging {
    layout: Layout,
    name: String,
    in_flight: Arc<InFlight>,
}

impl Staging {
    /// Registers a fresh name in the `ingest/` of `layout` (the file is not created).
    pub(crate) fn new(layout: &Layout, prefix: &str, in_flight: &Arc<InFlight>) -> Staging {
        let name = fsutil::unique_name(prefix);
        in_flight.names().insert(name.clone());
        Staging {
            layout: layout.clone(),
            name,
            in_flight: Arc::clone(in_flight),
        }
    }

    /// The staging file's name in `ingest/`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Where the staging file is, for messages.
    pub(crate) fn path(&self) -> PathBuf {
        self.layout.ingest_path().join(&self.name)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        // Removed before it is forgotten, so that gc never sees a file of ours as a stale one.
        remove_staging(&self.layout, &self.name);
        self.in_flight.names().remove(&self.name);
    }
}

/// Verified content waiting for its publish step ([`Ready::publish`]).
#[derive(Debug)]
pub(crate) struct Ready {
    layout: Layout,
    in_flight: Arc<InFlight>,
    content: Staged,
    digest: ValidDigest,
    durable: bool,
    size: u64,
}

/// Where verified content waits.
#[derive(Debug)]
enum Staged {
    /// In memory: written only in the publish step, to an unnamed file where the system has
    /// them, else to a staging file that never outlives that step.
    Bytes(Bytes),
    /// In a complete staging file.
    File(Staging),
}

impl Ready {
    /// Verified in-memory `bytes` of the blob `digest`.
    ///
    /// Errors: `InvalidLayout` when `ingest/` or `blobs/<alg>/` is a symbolic link or not a
    /// directory; `Io` creating them.
    pub(crate) fn from_bytes(blobs: &Blobs, digest: &ValidDigest, bytes: Bytes) -> Result<Ready> {
        blobs.prepare_dirs(Some(digest))?;
        let size = bytes.len() as u64;
        Ok(Ready {
            layout: blobs.layout().clone(),
            in_flight: blobs.in_flight(),
            content: Staged::Bytes(bytes),
            digest: digest.clone(),
            durable: blobs.is_durable(),
            size,
        })
    }

    /// The complete, verified (and, when durable, fsynced) staging file of `size` bytes of the
    /// blob `digest`.
    ///
    /// Errors: `InvalidLayout` when `blobs/<alg>/` is a symbolic link or not a directory; `Io`
    /// creating it.
    pub(crate) fn from_file(
        blobs: &Blobs,
        digest: &ValidDigest,
        staging: Staging,
        size: u64,
    ) -> Result<Ready> {
        blobs.prepare_dirs(Some(digest))?;
        Ok(Ready {
            layout: blobs.layout().clone(),
            in_flight: blobs.in_flight(),
            content: Staged::File(staging),
            digest: digest.clone(),
            durable: blobs.is_durable(),
            size,
        })
    }

    /// Whether [`Ready::publish`] is cheap enough for the calling (async) thread (see
    /// [`runs_inline`]); otherwise it belongs on the blocking pool.
    pub(crate) fn runs_inline(&self) -> bool {
        let written = match self.content {
            Staged::Bytes(_) => self.size,
            Staged::File(_) => 0,
        };
        runs_inline(written, self.durable)
    }

    /// Makes the blob visible at its path without replacing anything, fsyncing it and then
    /// its directory when durable. In-memory content is written to an unnamed file in
    /// `blobs/<alg>/` that is then named (`O_TMPFILE` and `linkat`: no staging name to create
    /// and remove, nothing left by a crash), else to a staging file in `ingest/` linked and
    /// removed as a streamed blob's is; a staging name is removed in every case. Blocking.
    ///
    /// Errors: those of [`publish`]; `Io` writing the file.
    pub(crate) fn publish(self) -> Result<()> {
        let (layout, digest, durable) = (&self.layout, &self.digest, self.durable);
        match self.content {
            Staged::File(staging) => publish(layout, staging.name(), digest, durable),
            Staged::Bytes(bytes) => {
                if publish_unnamed(layout, &bytes, digest, durable)? {
                    return Ok(());
                }
                publish_through_staging(layout, &self.in_flight, &bytes, digest, durable)
            }
        }
    }
}

/// Publishes in-memory content through a staging file in `ingest/`, removed in every case.
///
/// Errors: those of [`publish`]; `Io` creating or writing the staging file.
fn publish_through_staging(
    layout: &Layout,
    in_flight: &Arc<InFlight>,
    bytes: &[u8],
    digest: &ValidDigest,
    durable: bool,
) -> Result<()> {
    let staging = Staging::new(layout, "push-", in_flight);
    let ingest = ingest_dir(layout, durable)?;
    let path = staging.path();
    let mut file =
        fsutil::create_new_at(ingest, staging.name()).map_err(|e| io_err("creating", &path, e))?;
    write_out(&mut file, bytes, durable).map_err(|e| io_err("writing", &path, e))?;
    publish(layout, staging.name(), digest, durable)
}

/// `bytes` written to `file`, fsynced when `durable`.
fn write_out(file: &mut std::fs::File, bytes: &[u8], durable: bool) -> io::Result<()> {
    file.write_all(bytes)?;
    if durable {
        file.sync_all()?;
    }
    Ok(())
}

/// Publishes in-memory content through an unnamed file in `blobs/<alg>/`; `Ok(false)` when
/// the system has no unnamed files (nothing was written).
///
/// Errors: as [`publish`]; `Io` creating or writing the file.
fn publish_unnamed(
    layout: &Layout,
    bytes: &[u8],
    digest: &ValidDigest,
    durable: bool,
) -> Result<bool> {
    let target = algorithm_dir(layout, digest, durable)?;
    let path = layout.blob_path(digest);
    let Some(mut file) =
        fsutil::create_unnamed_in(target).map_err(|e| io_err("creating a file for", &path, e))?
    else {
        return Ok(false);
    };
    write_out(&mut file, bytes, durable).map_err(|e| io_err("writing", &path, e))?;
    match fsutil::link_unnamed_at(&file, target, digest.hex()) {
        Ok(true) => {}
        Ok(false) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(occupied(layout, target, digest))
        }
        Err(e) => return Err(io_err("publishing", &path, e)),
    }
    if durable {
        fsutil::sync_fd(target)
            .map_err(|e| io_err("syncing", &layout.algorithm_path(digest.algorithm()), e))?;
    }
    Ok(true)
}

/// Removes the staging file `name` from `ingest/`, if it is there.
pub(crate) fn remove_staging(layout: &Layout, name: &str) {
    if let Ok(Some(dir)) = layout.ingest_dir(Create::No) {
        let _ = fsutil::unlink_at(dir, name);
    }
}

/// Links the staging file `staging` of `ingest/` as the blob `digest` without replacing
/// anything there; when `durable`, fsyncs `blobs/<alg>/`. Blocking.
///
/// Errors: `AlreadyExists` (naming `digest`) when the blob is stored; `InvalidLayout` naming the
/// blob's path when something other than a regular file occupies it (a directory, a FIFO, a
/// symbolic link...), or naming a layout directory that is a link; `Io`.
fn publish(layout: &Layout, staging: &str, digest: &ValidDigest, durable: bool) -> Result<()> {
    let ingest = ingest_dir(layout, durable)?;
    let target = algorithm_dir(layout, digest, durable)?;
    match fsutil::link_at(ingest, staging, target, digest.hex()) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(occupied(layout, target, digest))
        }
        Err(e) => return Err(io_err("publishing", &layout.blob_path(digest), e)),
    }
    if durable {
        fsutil::sync_fd(target)
            .map_err(|e| io_err("syncing", &layout.algorithm_path(digest.algorithm()), e))?;
    }
    Ok(())
}

/// Why the link to the blob's path found something there: `AlreadyExists` for a blob file,
/// `InvalidLayout` saying what else is in the way (which `exists` does not count as the blob).
fn occupied(layout: &Layout, dir: std::os::fd::BorrowedFd<'_>, digest: &ValidDigest) -> Error {
    match fsutil::stat_at(dir, digest.hex()) {
        Ok(st) if st.kind != FileKind::Regular => Error::InvalidLayout {
            path: layout.blob_path(digest),
            reason: format!(
                "is {}, not a blob file: it occupies the path of {digest}, which cannot be \
                 stored until it is removed",
                st.kind.describe()
            ),
        },
        // A regular file, or gone again since: the blob was (or is being) stored by another
        // writer.
        _ => Error::already_exists(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::prepare_root;
    use store_core::content::descriptor_from_bytes;
    use store_core::spec::MediaType;

    fn digest_of(bytes: &[u8]) -> ValidDigest {
        ValidDigest::from_digest(descriptor_from_bytes(MediaType::ImageLayer, bytes).digest())
            .unwrap()
    }

    fn names_in(dir: &std::path::Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Both ways in-memory content is published (an unnamed file, and the staging file used
    /// where there are none) make the blob visible with its bytes, leave nothing in `ingest/`
    /// or beside the blob, and never replace a stored blob.
    #[test]
    fn in_memory_content_is_published_both_ways_and_leaves_nothing_behind() {
        for durable in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (layout, _) = prepare_root(dir.path(), durable).unwrap();
            let in_flight = Arc::new(InFlight::default());
            let (first, second) = (&b"unnamed"[..], &b"staged"[..]);
            let (a, b) = (digest_of(first), digest_of(second));

            let unnamed = publish_unnamed(&layout, first, &a, durable).unwrap();
            if !unnamed {
                publish_through_staging(&layout, &in_flight, first, &a, durable).unwrap();
            }
            publish_through_staging(&layout, &in_flight, second, &b, durable).unwrap();
            assert_eq!(std::fs::read(layout.blob_path(&a)).unwrap(), first);
            assert_eq!(std::fs::read(layout.blob_path(&b)).unwrap(), second);

            for way in 0..2 {
                let again = if way == 0 {
                    publish_unnamed(&layout, b"other bytes", &a, durable).map(|_| ())
                } else {
                    publish_through_staging(&layout, &in_flight, b"other bytes", &a, durable)
                };
                assert_eq!(
                    again.unwrap_err().kind(),
                    store_core::ErrorKind::AlreadyExists
                );
                assert_eq!(std::fs::read(layout.blob_path(&a)).unwrap(), first);
            }
            let mut blobs = vec![a.hex().to_string(), b.hex().to_string()];
            blobs.sort();
            assert_eq!(names_in(&dir.path().join("blobs/sha256")), blobs);
            assert!(names_in(&dir.path().join("ingest")).is_empty());
            assert!(in_flight.names().is_empty());
        }
    }
}
