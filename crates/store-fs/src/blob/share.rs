//! Storing a blob by sharing another layout's file of it (a copy between two layouts on one file
//! system): a reflink, or when the caller allows it a hard link, made under a staging name in
//! `ingest/`, verified there unless the caller trusts the source, and then published like any
//! staged blob. Where neither applies, the caller streams the bytes and is told why.

use super::publish::Ready;
use super::read::digest_of_file;
use super::{io_err, Blobs};
use crate::fsutil;
use std::fs::File;
use std::io;
use store_core::copy::{FileSharing, ShareRequest, StoredAs};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// What [`share`] did: a staged blob ready to publish and how it was made, or why the bytes
/// must be streamed instead.
pub(crate) enum Shared {
    Ready(Ready, StoredAs),
    Stream(String),
}

/// Whether `e` says that the file system (or the pair of them) cannot do what was asked, so that
/// the next way is tried rather than the copy failed.
fn unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EOPNOTSUPP | libc::EXDEV | libc::EINVAL | libc::ENOTTY | libc::EPERM)
    ) || e.kind() == io::ErrorKind::Unsupported
}

/// Stages the blob `digest` of `size` bytes by sharing `source` (another layout's file of it),
/// as `request` allows. Blocking.
///
/// Errors: `Mismatch` when the source's file is not the blob (its size or, unless the request
/// trusts it, its hash); `Io` creating, cloning, linking or reading.
pub(crate) fn share(
    blobs: &Blobs,
    digest: &ValidDigest,
    size: u64,
    source: &File,
    request: &ShareRequest,
) -> Result<Shared> {
    let found = source
        .metadata()
        .map_err(|e| Error::io(format!("inspecting the source's file of {digest}"), e))?
        .len();
    if found != size {
        return Err(Error::mismatch(
            digest,
            format!("the source's file has {found} bytes, the descriptor says {size}"),
        ));
    }
    blobs.prepare_dirs(Some(digest))?;
    let ingest = blobs.ingest_dir()?;
    let durable = blobs.is_durable();

    let staging = blobs.stage("clone-");
    let path = staging.path();
    let clone = fsutil::create_new_readable_at(ingest, staging.name())
        .map_err(|e| io_err("creating", &path, e))?;
    let why_not_cloned = match fsutil::reflink(source, &clone) {
        Ok(()) => {
            if !request.trusted {
                verify(&clone, digest, size)?;
            }
            if durable {
                clone.sync_all().map_err(|e| io_err("syncing", &path, e))?;
            }
            let ready = Ready::from_file(blobs, digest, staging, size)?;
            return Ok(Shared::Ready(ready, StoredAs::Cloned));
        }
        Err(e) if unsupported(&e) => format!("no reflink here ({e})"),
        Err(e) => return Err(io_err("cloning the source's file to", &path, e)),
    };
    drop((clone, staging));

    if request.sharing != FileSharing::ReflinkOrHardLink {
        return Ok(Shared::Stream(why_not_cloned));
    }
    let staging = blobs.stage("link-");
    let path = staging.path();
    match fsutil::link_unnamed_at(source, ingest, staging.name()) {
        Ok(true) => {}
        Ok(false) => {
            return Ok(Shared::Stream(format!(
                "{why_not_cloned}; no /proc to hard-link through"
            )))
        }
        Err(e) if unsupported(&e) => {
            return Ok(Shared::Stream(format!(
                "{why_not_cloned}; no hard link either ({e})"
            )))
        }
        Err(e) => return Err(io_err("hard-linking the source's file as", &path, e)),
    }
    if !request.trusted {
        verify(source, digest, size)?;
    }
    if durable {
        source.sync_all().map_err(|e| io_err("syncing", &path, e))?;
    }
    let ready = Ready::from_file(blobs, digest, staging, size)?;
    Ok(Shared::Ready(ready, StoredAs::Linked))
}

/// Reads all of `file` and checks that it is `size` bytes hashing to `digest`.
///
/// Errors: `Mismatch` naming the digest; `Io` reading.
fn verify(file: &File, digest: &ValidDigest, size: u64) -> Result<()> {
    let (actual, len) = digest_of_file(file, digest.algorithm())
        .map_err(|e| Error::io(format!("reading the shared file of {digest}"), e))?;
    if len != size || actual != digest.as_str() {
        return Err(Error::mismatch(
            digest,
            format!("the source's file holds {len} bytes hashing to {actual}"),
        ));
    }
    Ok(())
}
