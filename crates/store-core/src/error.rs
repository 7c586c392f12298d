//! The one error type of ocistore and the fieldless kind callers match on.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// The result type of every fallible ocistore operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, without the details: match on this (`err.kind() == ErrorKind::NotFound`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The content, tag or file asked for does not exist.
    NotFound,
    /// The content is already stored; nothing was written.
    AlreadyExists,
    /// An empty reference was given where one is required.
    MissingReference,
    /// A reference that is not a valid tag, or a digest where a tag is required.
    InvalidReference,
    /// A digest that is malformed or uses an unsupported algorithm.
    InvalidDigest,
    /// Content does not match its descriptor: wrong digest, too short, or trailing data.
    Mismatch,
    /// A size beyond what the operation accepts.
    SizeExceedsLimit,
    /// A manifest or index body that does not parse as its media type.
    InvalidManifest,
    /// A bad `oci-layout`, `index.json` or layout archive.
    InvalidLayout,
    /// An `oci-layout` whose `imageLayoutVersion` is not supported.
    UnsupportedVersion,
    /// An operation or media type this store does not support.
    Unsupported,
    /// An operating-system I/O failure.
    Io,
    /// A failure of a store's own machinery (a database, a remote service, a custom backend) that
    /// fits none of the kinds above; see [`Error::backend`].
    Backend,
    /// A remote service needs credentials that were not given or were refused (HTTP 401).
    Unauthorized,
    /// A remote service knows who is asking and refuses the operation (HTTP 403).
    Denied,
    /// A remote service asks to slow down (HTTP 429) and kept doing so through the retries.
    TooManyRequests,
}

/// Which side of a copy an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The target content is read from.
    Source,
    /// The target content is written to.
    Destination,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Source => "source",
            Side::Destination => "destination",
        })
    }
}

/// Every error of ocistore. Each variant says what it concerns (digest, reference, path) and why;
/// [`Error::kind`] gives the fieldless [`ErrorKind`] to match on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorKind::NotFound`]. `what` names the digest, reference or path.
    #[error("{what}: not found")]
    NotFound {
        /// The digest, reference or path that was looked for.
        what: String,
    },
    /// See [`ErrorKind::AlreadyExists`].
    #[error("{what}: already exists")]
    AlreadyExists {
        /// The digest or name that already exists.
        what: String,
    },
    /// See [`ErrorKind::MissingReference`].
    #[error("missing reference: {operation} needs a non-empty reference")]
    MissingReference {
        /// The operation that was called with an empty reference.
        operation: &'static str,
    },
    /// See [`ErrorKind::InvalidReference`].
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference {
        /// The tag or reference string as given.
        reference: String,
        /// Why it was refused.
        reason: String,
    },
    /// See [`ErrorKind::InvalidDigest`].
    #[error("invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
        /// Why it was refused.
        reason: String,
    },
    /// See [`ErrorKind::Mismatch`].
    #[error("{digest}: content does not match its descriptor: {reason}")]
    Mismatch {
        /// The digest the content was expected to have.
        digest: String,
        /// What differed (size, digest, trailing data).
        reason: String,
    },
    /// See [`ErrorKind::SizeExceedsLimit`].
    #[error("{what}: size {size} exceeds the limit of {limit} bytes")]
    SizeExceedsLimit {
        /// The digest or content concerned.
        what: String,
        /// The size claimed or reached.
        size: u64,
        /// The limit in force.
        limit: u64,
    },
    /// See [`ErrorKind::InvalidManifest`].
    #[error("{digest}: not a valid {media_type}: {reason}")]
    InvalidManifest {
        /// The manifest's digest.
        digest: String,
        /// The media type it was parsed as.
        media_type: String,
        /// The parse error.
        reason: String,
    },
    /// See [`ErrorKind::InvalidLayout`].
    #[error("{}: invalid OCI image layout: {reason}", path.display())]
    InvalidLayout {
        /// The file or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// See [`ErrorKind::UnsupportedVersion`].
    #[error("{}: unsupported image layout version {version:?} (supported: \"1.0.0\")", path.display())]
    UnsupportedVersion {
        /// The `oci-layout` file.
        path: PathBuf,
        /// The version it declares.
        version: String,
    },
    /// See [`ErrorKind::Unsupported`].
    #[error("unsupported: {what}")]
    Unsupported {
        /// What is not supported, and for what.
        what: String,
    },
    /// See [`ErrorKind::Io`].
    #[error("{context}: {source}")]
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// An OCI type could not be built, serialized or parsed by `oci_spec` (a builder missing a
    /// required field, JSON that is not the type); see the `From<OciSpecError>` impl. Its kind is
    /// [`ErrorKind::InvalidManifest`].
    #[error("OCI spec: {reason}")]
    Spec {
        /// What `oci_spec` reported, with its causes.
        reason: String,
    },
    /// See [`ErrorKind::Backend`] and [`Error::backend`].
    #[error("{what}: {source}")]
    Backend {
        /// What the backend was doing, naming the digest, reference or resource.
        what: String,
        /// The backend's own error, shared so that the error stays cloneable.
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A request to a remote service (a registry) that failed: the kind says how, the rest says
    /// which request and what the service answered. `url` never carries credentials.
    #[error("{method} {url}: {}", remote_reason(*status, code, message))]
    Remote {
        /// What the failure means for the caller.
        kind: ErrorKind,
        /// The HTTP method.
        method: String,
        /// The URL asked for, without userinfo or query secrets.
        url: String,
        /// The HTTP status, or `None` when no response came (a connection or protocol failure).
        status: Option<u16>,
        /// The service's error code (`MANIFEST_UNKNOWN`, `DENIED`, ...), empty when none was given.
        code: String,
        /// The service's error message, or what went wrong on the way.
        message: String,
    },
    /// An error of one side of a copy; its kind is the kind of `source`.
    #[error("copy: {operation} on the {side} failed: {source}")]
    Copy {
        /// Which target failed.
        side: Side,
        /// The operation that failed (`fetch`, `push`, `exists`, `tag`, ...).
        operation: &'static str,
        /// The underlying error.
        #[source]
        source: Box<Error>,
    },
}

/// A copy of an error, for errors shared by many callers (one failed index write reported to
/// every caller it covered). An `Io` error's copy keeps the OS error kind and message.
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::NotFound { what } => Error::NotFound { what: what.clone() },
            Error::AlreadyExists { what } => Error::AlreadyExists { what: what.clone() },
            Error::MissingReference { operation } => Error::MissingReference { operation },
            Error::InvalidReference { reference, reason } => Error::InvalidReference {
                reference: reference.clone(),
                reason: reason.clone(),
            },
            Error::InvalidDigest { digest, reason } => Error::InvalidDigest {
                digest: digest.clone(),
                reason: reason.clone(),
            },
            Error::Mismatch { digest, reason } => Error::Mismatch {
                digest: digest.clone(),
                reason: reason.clone(),
            },
            Error::SizeExceedsLimit { what, size, limit } => Error::SizeExceedsLimit {
                what: what.clone(),
                size: *size,
                limit: *limit,
            },
            Error::InvalidManifest {
                digest,
                media_type,
                reason,
            } => Error::InvalidManifest {
                digest: digest.clone(),
                media_type: media_type.clone(),
                reason: reason.clone(),
            },
            Error::InvalidLayout { path, reason } => Error::InvalidLayout {
                path: path.clone(),
                reason: reason.clone(),
            },
            Error::UnsupportedVersion { path, version } => Error::UnsupportedVersion {
                path: path.clone(),
                version: version.clone(),
            },
            Error::Unsupported { what } => Error::Unsupported { what: what.clone() },
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Spec { reason } => Error::Spec {
                reason: reason.clone(),
            },
            Error::Backend { what, source } => Error::Backend {
                what: what.clone(),
                source: Arc::clone(source),
            },
            Error::Remote {
                kind,
                method,
                url,
                status,
                code,
                message,
            } => Error::Remote {
                kind: *kind,
                method: method.clone(),
                url: url.clone(),
                status: *status,
                code: code.clone(),
                message: message.clone(),
            },
            Error::Copy {
                side,
                operation,
                source,
            } => Error::Copy {
                side: *side,
                operation,
                source: source.clone(),
            },
        }
    }
}

impl Error {
    /// The fieldless kind of this error, to match on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::MissingReference { .. } => ErrorKind::MissingReference,
            Error::InvalidReference { .. } => ErrorKind::InvalidReference,
            Error::InvalidDigest { .. } => ErrorKind::InvalidDigest,
            Error::Mismatch { .. } => ErrorKind::Mismatch,
            Error::SizeExceedsLimit { .. } => ErrorKind::SizeExceedsLimit,
            Error::InvalidManifest { .. } => ErrorKind::InvalidManifest,
            Error::InvalidLayout { .. } => ErrorKind::InvalidLayout,
            Error::UnsupportedVersion { .. } => ErrorKind::UnsupportedVersion,
            Error::Unsupported { .. } => ErrorKind::Unsupported,
            Error::Io { .. } => ErrorKind::Io,
            Error::Spec { .. } => ErrorKind::InvalidManifest,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::Remote { kind, .. } => *kind,
            Error::Copy { source, .. } => source.kind(),
        }
    }

    /// The side of a copy this error came from; `None` for errors raised outside a copy.
    pub fn side(&self) -> Option<Side> {
        match self {
            Error::Copy { side, .. } => Some(*side),
            _ => None,
        }
    }

    /// A [`Error::NotFound`] for `what`.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Error::NotFound {
            what: what.to_string(),
        }
    }

    /// A [`Error::AlreadyExists`] for `what`.
    pub fn already_exists(what: impl fmt::Display) -> Self {
        Error::AlreadyExists {
            what: what.to_string(),
        }
    }

    /// A [`Error::Mismatch`] for `digest` with `reason`.
    pub fn mismatch(digest: impl fmt::Display, reason: impl Into<String>) -> Self {
        Error::Mismatch {
            digest: digest.to_string(),
            reason: reason.into(),
        }
    }

    /// A [`Error::Io`] whose context names what was being done to which path.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A [`Error::Unsupported`] for `what`.
    pub fn unsupported(what: impl Into<String>) -> Self {
        Error::Unsupported { what: what.into() }
    }

    /// A [`Error::Backend`] (kind [`ErrorKind::Backend`]) for a failure of a store's own
    /// machinery: `what` says what was being done to which digest or reference, `source` is the
    /// backend's error (kept as the [`std::error::Error::source`] of the result).
    ///
    /// Use it for failures no other kind describes (a lost connection, a database error); report
    /// absent content with [`Error::not_found`] and operating-system I/O with [`Error::io`], so
    /// that callers (and copy) can tell them apart.
    pub fn backend(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Backend {
            what: what.into(),
            source: Arc::new(source),
        }
    }

    /// Wraps this error as the failure of `operation` on `side` of a copy, keeping its kind.
    /// An error that already names its side is returned unchanged.
    pub fn in_copy(self, side: Side, operation: &'static str) -> Self {
        match self {
            already @ Error::Copy { .. } => already,
            other => Error::Copy {
                side,
                operation,
                source: Box::new(other),
            },
        }
    }
}

/// The tail of a [`Error::Remote`] message: the status, then the service's code and message.
fn remote_reason(status: Option<u16>, code: &str, message: &str) -> String {
    let mut out = match status {
        Some(status) => format!("HTTP {status}"),
        None => "no response".to_string(),
    };
    if !code.is_empty() {
        out.push_str(": ");
        out.push_str(code);
    }
    if !message.is_empty() {
        out.push_str(": ");
        out.push_str(message);
    }
    out
}

/// `oci_spec`'s I/O errors become [`Error::Io`] (kind `Io`); every other one (a builder missing
/// a required field, JSON that does not (de)serialize as the type) becomes [`Error::Spec`], of
/// kind [`ErrorKind::InvalidManifest`], whose reason carries the whole chain of causes.
impl From<oci_spec::OciSpecError> for Error {
    fn from(err: oci_spec::OciSpecError) -> Self {
        match err {
            oci_spec::OciSpecError::Io(source) => Error::Io {
                context: "oci_spec".into(),
                source,
            },
            other => {
                let mut reason = other.to_string();
                let mut cause = std::error::Error::source(&other);
                while let Some(inner) = cause {
                    reason.push_str(": ");
                    reason.push_str(&inner.to_string());
                    cause = inner.source();
                }
                Error::Spec { reason }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_errors_keep_their_kind_and_name_their_side() {
        let err = Error::not_found("sha256:abc").in_copy(Side::Destination, "push");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert_eq!(err.side(), Some(Side::Destination));
        let text = err.to_string();
        assert!(text.contains("destination"), "{text}");
        assert!(text.contains("push"), "{text}");
        assert!(text.contains("sha256:abc"), "{text}");
        // Wrapping twice keeps the innermost side.
        let again = err.in_copy(Side::Source, "fetch");
        assert_eq!(again.side(), Some(Side::Destination));
        assert_eq!(Error::not_found("x").side(), None);
    }

    #[test]
    fn every_error_names_what_it_concerns() {
        let err = Error::InvalidLayout {
            path: PathBuf::from("/tmp/x/index.json"),
            reason: "empty file".into(),
        };
        assert!(err.to_string().contains("/tmp/x/index.json"));
        assert_eq!(err.kind(), ErrorKind::InvalidLayout);
    }

    #[test]
    fn oci_spec_errors_convert_with_their_causes() {
        let missing = oci_spec::image::ImageManifestBuilder::default()
            .schema_version(2u32)
            .build()
            .unwrap_err();
        let err = Error::from(missing);
        assert_eq!(err.kind(), ErrorKind::InvalidManifest);
        assert!(err.to_string().contains("config"), "{err}");

        let bad_json: Result<oci_spec::image::ImageManifest, oci_spec::OciSpecError> =
            oci_spec::image::ImageManifest::from_reader(&b"{\"schemaVersion\": \"two\"}"[..]);
        let err = Error::from(bad_json.unwrap_err());
        assert_eq!(err.kind(), ErrorKind::InvalidManifest);
        // The cause (serde's message) is kept, not only oci_spec's "serde failed".
        assert!(err.to_string().contains("expected u32"), "{err}");

        let io = oci_spec::OciSpecError::Io(std::io::Error::other("disk gone"));
        let err = Error::from(io);
        assert_eq!(err.kind(), ErrorKind::Io);
        assert!(err.to_string().contains("disk gone"), "{err}");
    }

    #[test]
    fn remote_errors_carry_their_kind_request_and_answer() {
        let err = Error::Remote {
            kind: ErrorKind::Denied,
            method: "PUT".into(),
            url: "https://r.example/v2/a/manifests/v1".into(),
            status: Some(403),
            code: "DENIED".into(),
            message: "requested access to the resource is denied".into(),
        };
        assert_eq!(err.kind(), ErrorKind::Denied);
        assert_eq!(
            err.to_string(),
            "PUT https://r.example/v2/a/manifests/v1: HTTP 403: DENIED: requested access to the resource is denied"
        );
        let copy = err.clone().in_copy(Side::Destination, "push");
        assert_eq!(copy.kind(), ErrorKind::Denied);
        let lost = Error::Remote {
            kind: ErrorKind::Backend,
            method: "GET".into(),
            url: "http://127.0.0.1:1/v2/".into(),
            status: None,
            code: String::new(),
            message: "connection refused".into(),
        };
        assert_eq!(
            lost.to_string(),
            "GET http://127.0.0.1:1/v2/: no response: connection refused"
        );
    }

    #[test]
    fn backend_errors_keep_their_source_and_survive_clone() {
        #[derive(Debug)]
        struct Lost;
        impl fmt::Display for Lost {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("connection lost")
            }
        }
        impl std::error::Error for Lost {}

        let err = Error::backend("fetching sha256:abc from the bucket", Lost);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(
            err.to_string(),
            "fetching sha256:abc from the bucket: connection lost"
        );
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("connection lost"));
        let copy = err.clone().in_copy(Side::Source, "fetch");
        assert_eq!(copy.kind(), ErrorKind::Backend);
        assert!(copy.to_string().contains("connection lost"), "{copy}");
    }
}
