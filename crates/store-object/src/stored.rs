//! Blobs this store has just put, so that tagging one right after pushing it (how images are
//! published: push, then tag) need not ask the service whether it is there.
//!
//! Trusting the memo is safe for as long as nothing may remove the object: another store's gc
//! spares objects younger than its grace period (judged by their last-modified time, which is
//! no later than the moment noted here), and this store's own delete and gc forget what they
//! may remove. So an entry is trusted for half the grace period and never past
//! [`TRUSTED_FOR_AT_MOST`]; with no grace period it is never trusted. What remains is the race
//! every tag has with another store's explicit delete of the very blob it tags (between the
//! check and the `index.json` write), held to that short window.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How many blobs are remembered; past that the memo starts over (a forgotten blob only costs
/// its tag one existence check).
const REMEMBERED: usize = 4096;

/// The longest an entry is trusted, whatever the grace period.
pub(crate) const TRUSTED_FOR_AT_MOST: Duration = Duration::from_secs(10);

/// Digests put by this store, each with its size and when its put completed.
#[derive(Debug, Default)]
pub(crate) struct RecentlyStored(Mutex<HashMap<String, (u64, Instant)>>);

impl RecentlyStored {
    /// Remembers that a put of `digest` with `size` bytes completed at `at`.
    pub(crate) fn note(&self, digest: &str, size: u64, at: Instant) {
        let mut stored = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if stored.len() >= REMEMBERED {
            stored.clear();
        }
        stored.insert(digest.to_string(), (size, at));
    }

    /// Whether `digest` with `size` bytes was put by this store at most `window` before `now`.
    pub(crate) fn is_fresh(&self, digest: &str, size: u64, window: Duration, now: Instant) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(digest)
            .is_some_and(|&(stored_size, at)| {
                stored_size == size && now.saturating_duration_since(at) < window
            })
    }

    /// Forgets `digest` (about to be removed).
    pub(crate) fn forget(&self, digest: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest);
    }

    /// Forgets everything (a gc may remove any of it).
    pub(crate) fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// How long an entry is trusted under a gc grace period of `grace`.
pub(crate) fn trust_window(grace: Duration) -> Duration {
    (grace / 2).min(TRUSTED_FOR_AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_is_trusted_within_its_window_for_its_size_only() {
        let memo = RecentlyStored::default();
        let at = Instant::now();
        let window = Duration::from_secs(5);
        assert!(!memo.is_fresh("sha256:a", 3, window, at), "never put");
        memo.note("sha256:a", 3, at);
        assert!(memo.is_fresh("sha256:a", 3, window, at));
        assert!(memo.is_fresh("sha256:a", 3, window, at + Duration::from_secs(4)));
        assert!(
            !memo.is_fresh("sha256:a", 3, window, at + window),
            "window over"
        );
        assert!(!memo.is_fresh("sha256:a", 4, window, at), "another size");
        memo.forget("sha256:a");
        assert!(!memo.is_fresh("sha256:a", 3, window, at), "forgotten");
        memo.note("sha256:b", 1, at);
        memo.clear();
        assert!(!memo.is_fresh("sha256:b", 1, window, at), "cleared");
        for n in 0..REMEMBERED + 1 {
            memo.note(&format!("sha256:{n}"), 1, at);
        }
        assert!(memo.0.lock().unwrap().len() <= REMEMBERED, "bounded");
    }

    #[test]
    fn the_window_is_half_the_grace_period_and_at_most_the_cap() {
        assert_eq!(trust_window(Duration::ZERO), Duration::ZERO);
        assert_eq!(trust_window(Duration::from_secs(4)), Duration::from_secs(2));
        assert_eq!(
            trust_window(Duration::from_secs(24 * 3600)),
            TRUSTED_FOR_AT_MOST
        );
        let memo = RecentlyStored::default();
        let at = Instant::now();
        memo.note("sha256:a", 3, at);
        assert!(
            !memo.is_fresh("sha256:a", 3, trust_window(Duration::ZERO), at),
            "no grace period, no trust"
        );
    }
}
