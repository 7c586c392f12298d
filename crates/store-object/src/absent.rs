//! Digests an `exists` has just found absent, so that the push that follows it (what a copy
//! does for every node it transfers) need not ask the service a second time.

use std::collections::HashSet;
use std::sync::Mutex;

/// How many digests are remembered; past that the memo starts over (a forgotten digest only
/// costs its push one existence check).
const REMEMBERED: usize = 4096;

/// Digests found absent and not pushed since, each answering one push.
#[derive(Debug, Default)]
pub(crate) struct RecentlyAbsent(Mutex<HashSet<String>>);

impl RecentlyAbsent {
    /// Remembers that `digest` was just found absent.
    pub(crate) fn note(&self, digest: &str) {
        let mut absent = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if absent.len() >= REMEMBERED {
            absent.clear();
        }
        absent.insert(digest.to_string());
    }

    /// Forgets `digest` (found present); returns whether it was remembered as absent, which
    /// only the first push of it after the `exists` is told.
    pub(crate) fn take(&self, digest: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_noted_absent_answers_one_take() {
        let memo = RecentlyAbsent::default();
        assert!(!memo.take("sha256:a"));
        memo.note("sha256:a");
        assert!(memo.take("sha256:a"));
        assert!(!memo.take("sha256:a"), "only the first push is told");
        for n in 0..REMEMBERED + 1 {
            memo.note(&format!("sha256:{n}"));
        }
        assert!(
            memo.0.lock().unwrap().len() <= REMEMBERED,
            "the memo stays bounded"
        );
    }
}
