//! Content in flight: which blobs pushes (and `exists` checks that found them) touched recently,
//! so that a delete's cascade can tell a layer an image still on its way needs from one its
//! deleted manifest left behind. A copy pushes (or finds) every layer first and its manifest
//! last; until the manifest arrives, nothing in the graph says the layers are wanted.
//!
//! In this process the order is exact: every touch takes the next number of a sequence, so no
//! clock granularity can make two touches look simultaneous. Across processes the blob file's
//! modification time stands in for it: a push that finds its blob already stored refreshes the
//! file's time, which `gc` of any process also reads as "young".

use crate::blob::Blobs;
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};
use store_core::digest::ValidDigest;
use store_core::SharedDescriptor;

/// When and in which order a digest was last touched by this process.
#[derive(Debug, Clone, Copy)]
struct Touch {
    seq: u64,
    at: Instant,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    by_digest: HashMap<String, Touch>,
    /// How many entries were left by the last prune: the map is pruned again once it doubles,
    /// so memory stays bounded by the touches of about one grace period.
    after_prune: usize,
}

/// The blobs this process touched within the grace period.
#[derive(Debug)]
pub(crate) struct Touches {
    grace: Duration,
    state: Mutex<State>,
}

impl Touches {
    /// Touches kept for `grace`; with a zero grace nothing is recorded (nothing is ever spared).
    pub(crate) fn new(grace: Duration) -> Self {
        Touches {
            grace,
            state: Mutex::new(State::default()),
        }
    }

    /// Whether touches are recorded at all (the grace period is not zero).
    pub(crate) fn is_on(&self) -> bool {
        !self.grace.is_zero()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The map holds hints only; a panic elsewhere cannot make it unsafe to keep using.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that a push, a commit or an `exists` check touched `digest` now.
    pub(crate) fn touch(&self, digest: &str) {
        if self.grace.is_zero() {
            return;
        }
        let mut state = self.state();
        state.next += 1;
        let touch = Touch {
            seq: state.next,
            at: Instant::now(),
        };
        state.by_digest.insert(digest.to_string(), touch);
        if state.by_digest.len() > 1024 && state.by_digest.len() > 2 * state.after_prune {
            prune_locked(&mut state, self.grace);
        }
    }

    /// Forgets touches older than the grace period.
    pub(crate) fn prune(&self) {
        prune_locked(&mut self.state(), self.grace);
    }

    /// The digests touched within the grace period.
    pub(crate) fn recent(&self) -> Vec<String> {
        let state = self.state();
        state
            .by_digest
            .iter()
            .filter(|(_, touch)| touch.at.elapsed() < self.grace)
            .map(|(digest, _)| digest.clone())
            .collect()
    }

    fn seq(&self, digest: &str) -> Option<u64> {
        let state = self.state();
        let touch = state.by_digest.get(digest)?;
        (touch.at.elapsed() < self.grace).then_some(touch.seq)
    }

    /// The judge of one delete's cascade over the blobs of `blobs`.
    pub(crate) fn sparer<'a>(&'a self, blobs: &'a Blobs) -> Sparer<'a> {
        Sparer {
            touches: self,
            blobs,
            parent_times: HashMap::new(),
        }
    }
}

/// Decides, for one delete, which blobs its cascade spares; remembers the parents' file times it
/// read (a manifest's layers share it as their parent).
pub(crate) struct Sparer<'a> {
    touches: &'a Touches,
    blobs: &'a Blobs,
    parent_times: HashMap<String, Option<SystemTime>>,
}

impl Sparer<'_> {
    /// Whether anything can be spared at all (the grace period is not zero).
    pub(crate) fn is_on(&self) -> bool {
        self.touches.is_on()
    }

    /// Whether the cascade must spare `child`, which it would otherwise remove because every
    /// one of its predecessors, `parents`, is being deleted: spared when a push (or an `exists`
    /// that found it) touched it after every one of them was pushed, less than the grace period
    /// ago. Between touches of this process the order is exact; otherwise (or when another
    /// process may have touched it since) it is read from the files' modification times, a tie
    /// sparing `child` only when this process touched it and not the parent (sparing costs only
    /// space until `gc`).
    pub(crate) fn spares(&mut self, child: &ValidDigest, parents: &[SharedDescriptor]) -> bool {
        let touches = self.touches;
        if !touches.is_on() {
            return false;
        }
        let child_seq = touches.seq(child.as_str());
        let child_time = mtime(&self.blobs.path(child));
        if child_seq.is_none() && child_time.is_none_or(|time| age(time) >= touches.grace) {
            // Older than the grace period, or already gone: nothing to protect.
            return false;
        }
        parents.iter().all(|parent| {
            let key = parent.digest().as_ref();
            let parent_seq = touches.seq(key);
            if let (Some(child), Some(parent)) = (child_seq, parent_seq) {
                if child > parent {
                    return true;
                }
            }
            let blobs = self.blobs;
            let parent_time = *self
                .parent_times
                .entry(key.to_string())
                .or_insert_with(|| parent_mtime(blobs, parent));
            match (child_time, parent_time) {
                (Some(child), Some(parent)) if child_seq.is_some() && parent_seq.is_none() => {
                    child >= parent
                }
                (Some(child), Some(parent)) => child > parent,
                // A parent whose file cannot be read: nothing says the child is older.
                _ => true,
            }
        })
    }
}

fn prune_locked(state: &mut State, grace: Duration) {
    state
        .by_digest
        .retain(|_, touch| touch.at.elapsed() < grace);
    state.after_prune = state.by_digest.len();
}

/// The modification time of the blob file of `desc`, if it can be read.
fn parent_mtime(blobs: &Blobs, desc: &Descriptor) -> Option<SystemTime> {
    let digest = ValidDigest::from_digest(desc.digest()).ok()?;
    mtime(&blobs.path(&digest))
}

/// The modification time of the file at `path` (never following a link), if it can be read.
fn mtime(path: &Path) -> Option<SystemTime> {
    fs::symlink_metadata(path).ok()?.modified().ok()
}

fn age(time: SystemTime) -> Duration {
    SystemTime::now()
        .duration_since(time)
        .unwrap_or(Duration::ZERO)
}

/// Sets the modification time of the blob file at `path` to now (never following a link), so
/// that other processes' `gc` and delete see it as young. Best effort: a read-only layout, a
/// file of another user or a file removed meanwhile is left as it is.
pub(crate) fn refresh_mtime(path: &Path) {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; a null `times`
    // means "now" for both timestamps.
    let _ = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c_path.as_ptr(),
            std::ptr::null(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    // Miri has neither futimens (to age the file) nor utimensat (the call under test).
    #[test]
    #[cfg_attr(miri, ignore)]
    fn refresh_mtime_makes_an_old_blob_young_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let blob = dir.path().join("blob");
        fs::write(&blob, b"x").unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"y").unwrap();
        for path in [&blob, &target] {
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        refresh_mtime(&blob);
        refresh_mtime(&link);
        refresh_mtime(&dir.path().join("absent"));
        assert!(age(mtime(&blob).unwrap()) < Duration::from_secs(60));
        assert!(
            age(mtime(&target).unwrap()) >= Duration::from_secs(3000),
            "the link's target was touched"
        );
    }
}
