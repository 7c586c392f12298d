//! Descriptor helpers: media types, identity, validation and the `ref.name` annotation.
//!
//! `Descriptor == Descriptor` compares every field; the store's identities are narrower: storage and
//! the graph key by digest, tags and referrers compare media type + digest + size.

use crate::digest::ValidDigest;
use crate::error::{Error, Result};
use oci_spec::image::{Descriptor, MediaType};

/// The OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// The withdrawn OCI artifact manifest media type (image-spec 1.1 release candidates).
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
/// The Docker image manifest, schema 2.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// The OCI image config media type.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The Docker image config media type.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// The media type of content whose type is not known.
pub const OCTET_STREAM: &str = "application/octet-stream";
/// The annotation that names a tag in `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The largest blob size a descriptor may claim (2^48 bytes, 256 TiB). Larger claims are refused
/// with `SizeExceedsLimit` before anything is read or allocated.
pub const MAX_BLOB_SIZE: u64 = 1 << 48;

/// The largest manifest or index body that is parsed (4 MiB), as registries commonly enforce.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;

/// Whether `media_type` is one of the five manifest types (OCI manifest, index and artifact
/// manifest, Docker manifest and manifest list), whose bodies are parsed for successors.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST
    )
}

/// Whether `desc` describes a manifest (see [`is_manifest_type`]).
pub fn is_manifest(desc: &Descriptor) -> bool {
    is_manifest_type(desc.media_type().as_ref())
}

/// Whether a layer media type marks foreign (non-distributable) content that copies skip.
pub fn is_foreign_layer(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

/// The descriptor's digest as a string (the key of storage and graph).
pub fn digest_key(desc: &Descriptor) -> &str {
    desc.digest().as_ref()
}

/// Whether two descriptors name the same content the way tags and referrers compare it:
/// same media type, digest and size (annotations, platform and the rest ignored).
pub fn same_content(a: &Descriptor, b: &Descriptor) -> bool {
    a.size() == b.size() && a.digest() == b.digest() && a.media_type() == b.media_type()
}

/// The plain form of `desc`: only media type, digest and size.
pub fn plain(desc: &Descriptor) -> Descriptor {
    Descriptor::new(
        desc.media_type().clone(),
        desc.size(),
        desc.digest().clone(),
    )
}

/// A copy of `desc` without the `ref.name` annotation; the annotation map is dropped when that
/// was its only key.
pub fn without_ref_name(desc: &Descriptor) -> Descriptor {
    let mut out = desc.clone();
    if let Some(annotations) = out.annotations().as_ref() {
        if annotations.contains_key(REF_NAME) {
            let mut annotations = annotations.clone();
            annotations.remove(REF_NAME);
            out.set_annotations(if annotations.is_empty() {
                None
            } else {
                Some(annotations)
            });
        }
    }
    out
}

/// Checks that `desc` can name stored content: a valid digest and a size within [`MAX_BLOB_SIZE`].
///
/// Errors: `InvalidDigest`, `SizeExceedsLimit`.
pub fn validate(desc: &Descriptor) -> Result<ValidDigest> {
    let digest = ValidDigest::from_digest(desc.digest())?;
    if desc.size() > MAX_BLOB_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: digest.to_string(),
            size: desc.size(),
            limit: MAX_BLOB_SIZE,
        });
    }
    Ok(digest)
}

/// The media type as a string.
pub fn media_type_str(media_type: &MediaType) -> &str {
    media_type.as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::sha256_of;
    use std::collections::HashMap;

    #[test]
    fn strips_only_the_ref_name() {
        let mut desc = Descriptor::new(MediaType::ImageManifest, 3, sha256_of(b"abc"));
        desc.set_annotations(Some(HashMap::from([
            (REF_NAME.to_string(), "v1".to_string()),
            ("other".to_string(), "x".to_string()),
        ])));
        let stripped = without_ref_name(&desc);
        let annotations = stripped.annotations().as_ref().unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations["other"], "x");

        desc.set_annotations(Some(HashMap::from([(REF_NAME.to_string(), String::new())])));
        assert!(without_ref_name(&desc).annotations().is_none());
    }

    #[test]
    fn identity_ignores_annotations_but_not_media_type() {
        let a = Descriptor::new(MediaType::ImageManifest, 3, sha256_of(b"abc"));
        let mut b = a.clone();
        b.set_annotations(Some(HashMap::from([("k".into(), "v".into())])));
        assert!(same_content(&a, &b));
        let c = Descriptor::new(MediaType::ImageIndex, 3, sha256_of(b"abc"));
        assert!(!same_content(&a, &c));
    }

    #[test]
    fn refuses_absurd_sizes() {
        let desc = Descriptor::new(MediaType::ImageLayer, 1 << 62, sha256_of(b"abc"));
        assert_eq!(
            validate(&desc).unwrap_err().kind(),
            crate::ErrorKind::SizeExceedsLimit
        );
    }
}
