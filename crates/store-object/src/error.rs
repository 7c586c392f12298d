//! The errors of the service, as ocistore errors naming the object.

use object_store::Error as OsError;
use store_core::Error;

/// `err`, met while doing `what` to the object `name`: `NotFound` naming it when the service
/// says it is absent; `AlreadyExists` when it exists; otherwise a `Backend` error naming it and
/// keeping the service's error as its source (refused credentials, a lost connection, a
/// refused condition).
pub(crate) fn from_service(what: &str, name: &str, err: OsError) -> Error {
    match err {
        OsError::NotFound { .. } => Error::not_found(name),
        OsError::AlreadyExists { .. } => Error::already_exists(name),
        other => Error::backend(format!("{what} {name}"), other),
    }
}
