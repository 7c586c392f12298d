//! Content helpers over the traits: descriptors from bytes, verified reads, successors, referrers.

use crate::descriptor::{
    self, is_manifest_type, same_content, MAX_MANIFEST_SIZE, OCI_ARTIFACT_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::digest::sha256_of;
use crate::error::{Error, Result};
use crate::manifest::ManifestParts;
use crate::traits::{Fetcher, Pusher, ReadOnlyGraphTarget};
use bytes::Bytes;
use oci_spec::image::{Descriptor, MediaType};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use crate::verify::{error_from_io, VerifyReader};

/// The reader type every fetch returns and every push takes.
pub type BoxReader = Pin<Box<dyn AsyncRead + Send + 'static>>;

/// The sha256 descriptor of `data` with `media_type`.
pub fn descriptor_from_bytes(media_type: MediaType, data: &[u8]) -> Descriptor {
    Descriptor::new(media_type, data.len() as u64, sha256_of(data))
}

/// A [`BoxReader`] over `data`.
pub fn reader_from_bytes(data: impl Into<Bytes>) -> BoxReader {
    Box::pin(std::io::Cursor::new(data.into()))
}

/// Pushes `data` as the content of `desc`.
///
/// Errors: those of [`Pusher::push`].
pub async fn push_bytes(
    target: &(impl Pusher + ?Sized),
    desc: &Descriptor,
    data: impl Into<Bytes>,
) -> Result<()> {
    target.push(desc, reader_from_bytes(data)).await
}

/// How much of a claimed size [`fetch_all`] reserves up front; the rest grows as bytes arrive, so
/// a forged size never allocates.
const PREALLOCATE_LIMIT: u64 = 1 << 20;

/// Fetches the whole content of `desc`, verifying size and digest.
///
/// Errors: those of [`Fetcher::fetch`], `InvalidDigest`, `SizeExceedsLimit` for a size beyond
/// [`descriptor::MAX_BLOB_SIZE`], `Mismatch` when the content differs from the descriptor.
pub async fn fetch_all(fetcher: &(impl Fetcher + ?Sized), desc: &Descriptor) -> Result<Bytes> {
    let digest = descriptor::validate(desc)?;
    let reader = fetcher.fetch(desc).await?;
    let mut verified = VerifyReader::with_digest(reader, digest, desc.size());
    let mut out = Vec::with_capacity(desc.size().min(PREALLOCATE_LIMIT) as usize);
    verified
        .read_to_end(&mut out)
        .await
        .map_err(|e| error_from_io(e, format!("reading {}", desc.digest())))?;
    Ok(Bytes::from(out))
}

/// Fetches a manifest body for parsing, refusing bodies above [`MAX_MANIFEST_SIZE`].
async fn fetch_manifest(fetcher: &(impl Fetcher + ?Sized), desc: &Descriptor) -> Result<Bytes> {
    if desc.size() > MAX_MANIFEST_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: format!("manifest {}", desc.digest()),
            size: desc.size(),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    fetch_all(fetcher, desc).await
}

/// The nodes `desc` points at, per its media type (see [`crate::manifest::ManifestParts::successors`]).
/// Non-manifest media types have none and are not fetched.
///
/// Errors: fetch errors, `Mismatch`, `SizeExceedsLimit` for a manifest over 4 MiB,
/// `InvalidManifest` when the body does not parse.
pub async fn successors(
    fetcher: &(impl Fetcher + ?Sized),
    desc: &Descriptor,
) -> Result<Vec<Descriptor>> {
    let media_type = desc.media_type().as_ref();
    if !is_manifest_type(media_type) {
        return Ok(Vec::new());
    }
    let body = fetch_manifest(fetcher, desc).await?;
    Ok(ManifestParts::parse(desc.digest().as_ref(), media_type, &body)?.successors(media_type))
}

/// The referrers of `desc` known to `graph`: its predecessors that are OCI image manifests,
/// indexes or artifact manifests whose `subject` is `desc` (same media type, digest and size).
/// Each comes back with its `artifactType` (for an image manifest without one, its config's media
/// type) and its annotations. With `artifact_type`, only referrers of that type are returned.
///
/// Errors: `Unsupported` when `desc` is not a manifest; fetch and parse errors of a predecessor.
pub async fn referrers(
    graph: &(impl ReadOnlyGraphTarget + ?Sized),
    desc: &Descriptor,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    if !is_manifest_type(desc.media_type().as_ref()) {
        return Err(Error::unsupported(format!(
            "referrers of {} ({}): only manifests have referrers",
            desc.digest(),
            desc.media_type()
        )));
    }
    let mut out = Vec::new();
    for predecessor in graph.predecessors(desc).await? {
        let media_type = predecessor.media_type().as_ref();
        if !matches!(media_type, OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST) {
            continue;
        }
        let body = fetch_manifest(graph, &predecessor).await?;
        let parts = ManifestParts::parse(predecessor.digest().as_ref(), media_type, &body)?;
        let Some(subject) = parts.subject.as_ref() else {
            continue;
        };
        if !same_content(subject, desc) {
            continue;
        }
        let kind = match (media_type, parts.artifact_type.clone()) {
            (_, Some(kind)) => Some(kind),
            (OCI_MANIFEST, None) => parts
                .config
                .as_ref()
                .map(|config| config.media_type().to_string()),
            _ => None,
        };
        if let Some(wanted) = artifact_type {
            if kind.as_deref() != Some(wanted) {
                continue;
            }
        }
        let mut referrer = descriptor::plain(&predecessor);
        if let Some(kind) = kind {
            referrer.set_artifact_type(Some(MediaType::from(kind.as_str())));
        }
        referrer.set_annotations(parts.annotations);
        out.push(referrer);
    }
    out.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
    Ok(out)
}
