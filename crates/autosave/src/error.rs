//! The error of this crate.

use std::fmt;
use std::sync::Arc;

/// Why a change could not be confirmed as saved. `E` is the [`Flush::Error`](crate::Flush::Error)
/// of the flushed thing.
pub enum Error<E> {
    /// The flush that covered this change failed with this error. Every caller whose change that
    /// flush covered gets the same `Arc`. The change stays pending (the engine is still dirty) and
    /// a later flush retries it.
    Flush(Arc<E>),
    /// The background flusher task is gone before it could save this change: the engine was
    /// closed or dropped, the flush panicked, or the tokio runtime shut down.
    Stopped,
}

impl<E> Error<E> {
    /// The flush error, or `None` for [`Error::Stopped`].
    pub fn flush_error(&self) -> Option<&Arc<E>> {
        match self {
            Error::Flush(e) => Some(e),
            Error::Stopped => None,
        }
    }
}

impl<E> Clone for Error<E> {
    fn clone(&self) -> Self {
        match self {
            Error::Flush(e) => Error::Flush(Arc::clone(e)),
            Error::Stopped => Error::Stopped,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flush(e) => f.debug_tuple("Flush").field(e).finish(),
            Error::Stopped => f.write_str("Stopped"),
        }
    }
}

impl<E: fmt::Display> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flush(e) => write!(f, "flush failed: {e}"),
            Error::Stopped => f.write_str("the autosave flusher has stopped"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Flush(e) => Some(&**e),
            Error::Stopped => None,
        }
    }
}
