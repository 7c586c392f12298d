//! The harness's one error type.

use std::path::PathBuf;

/// Why a server of the harness could not be started or configured.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `docker-registry` is not installed and `OCISTORE_REQUIRE_INTEROP` is not `1`: the caller
    /// should skip its test (see [`crate::Skip`]).
    #[error("{0}")]
    Skipped(crate::Skip),
    /// `docker-registry` is not installed but `OCISTORE_REQUIRE_INTEROP=1` requires it.
    #[error(
        "docker-registry is not installed, and {}=1 requires it; {}",
        crate::REQUIRE_ENV,
        crate::INSTALL_HINT
    )]
    Required,
    /// The registry process did not start or did not answer `GET /v2/` in time.
    #[error("docker-registry did not become ready: {reason}\nits log ({log}):\n{stderr}")]
    NotReady {
        /// What went wrong (exit status or timeout).
        reason: String,
        /// Where its log is (inside the temporary directory, removed on drop).
        log: PathBuf,
        /// The registry's stderr.
        stderr: String,
    },
    /// A file or socket operation of the harness failed.
    #[error("{context}: {source}")]
    Io {
        /// What the harness was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Making the key, certificate or password hash failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl Error {
    /// An [`Error::Io`] saying what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this error means "skip the test" rather than "fail it".
    pub fn is_skip(&self) -> bool {
        matches!(self, Error::Skipped(_))
    }
}
