//! The autosave policy: when changes are written.

use std::time::Duration;

/// When the changes recorded by an [`AutoSaver`](crate::AutoSaver) are flushed.
///
/// Whatever the policy, [`AutoSaver::flush_now`](crate::AutoSaver::flush_now) and
/// [`AutoSaver::close`](crate::AutoSaver::close) flush at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AutoSave {
    /// Every change is flushed before [`AutoSaver::changed`](crate::AutoSaver::changed)
    /// resolves. Changes recorded while a flush is running are written together by the next
    /// flush (group commit), so N concurrent changes cost far fewer than N flushes.
    /// After a failed flush nothing retries on its own: the next change (or an explicit flush)
    /// does, and writes everything still unsaved. The default.
    #[default]
    Always,
    /// Nothing is flushed until [`AutoSaver::flush_now`](crate::AutoSaver::flush_now) or
    /// [`AutoSaver::close`](crate::AutoSaver::close) (or a best-effort flush when the engine
    /// is dropped).
    Manual,
    /// Changes are flushed at most this long after the first change that is not yet saved;
    /// changes recorded in the meantime ride along in the same flush.
    /// [`AutoSaver::changed`](crate::AutoSaver::changed) resolves at once, so a failed debounced
    /// flush is only counted in [`AutoSaver::failed_flushes`](crate::AutoSaver::failed_flushes);
    /// the changes stay unsaved until the next change starts a new window, or an explicit flush.
    Debounce(Duration),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_always() {
        assert_eq!(AutoSave::default(), AutoSave::Always);
    }

    #[test]
    fn is_copy_and_comparable() {
        let a = AutoSave::Debounce(Duration::from_millis(50));
        let b = a;
        assert_eq!(a, b);
        assert_ne!(a, AutoSave::Manual);
        assert_eq!(format!("{:?}", AutoSave::Manual), "Manual");
    }
}
