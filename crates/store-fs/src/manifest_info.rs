//! Facts read from manifest bodies on disk that the graph does not keep: the subject.

use crate::shared::Shared;
use oci_spec::image::Descriptor;
use store_core::descriptor::{OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use store_core::manifest::ManifestParts;
use store_core::{ErrorKind, Result};

/// The digest of the `subject` of the manifest `desc`, if it is an OCI manifest, index or
/// artifact manifest that has one. A manifest whose blob is missing has none.
///
/// Errors: `Mismatch`, `InvalidManifest`, `Io` reading a present manifest.
pub(crate) async fn subject_of(shared: &Shared, desc: &Descriptor) -> Result<Option<String>> {
    let media_type = desc.media_type().as_ref();
    if !matches!(media_type, OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST) {
        return Ok(None);
    }
    let body = match shared.read_manifest(desc).await {
        Ok(body) => body,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let parts = ManifestParts::parse(desc.digest().as_ref(), media_type, &body)?;
    Ok(parts.subject.map(|s| s.digest().to_string()))
}
