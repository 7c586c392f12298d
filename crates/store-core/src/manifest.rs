//! Lenient parsing of manifest bodies: every field optional, so partial manifests still index.
//!
//! oci-spec's `ImageManifest` requires `config` and `layers` and its `ImageIndex` rejects
//! `"manifests": null`; the graph only needs the descriptors a body points at, so it reads them
//! through this struct instead.

use crate::descriptor::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::error::{Error, Result};
use oci_spec::image::Descriptor;
use serde::Deserialize;
use std::collections::HashMap;

/// The parts of any manifest-like body that ocistore reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestParts {
    /// The body's own `mediaType` field, if any.
    pub media_type: Option<String>,
    /// The `artifactType` field (image-spec 1.1).
    pub artifact_type: Option<String>,
    /// The config descriptor of an image manifest.
    pub config: Option<Descriptor>,
    /// The layers of an image manifest.
    pub layers: Option<Vec<Descriptor>>,
    /// The children of an index or manifest list.
    pub manifests: Option<Vec<Descriptor>>,
    /// The blobs of an artifact manifest.
    pub blobs: Option<Vec<Descriptor>>,
    /// The manifest this one refers to.
    pub subject: Option<Descriptor>,
    /// The body's annotations.
    pub annotations: Option<HashMap<String, String>>,
}

impl ManifestParts {
    /// Parses `body` as a manifest of `media_type` (named by `digest` in errors).
    ///
    /// Errors: `InvalidManifest` when the body is not a JSON object of descriptors.
    pub fn parse(digest: &str, media_type: &str, body: &[u8]) -> Result<ManifestParts> {
        serde_json::from_slice::<ManifestParts>(body).map_err(|e| Error::InvalidManifest {
            digest: digest.to_string(),
            media_type: media_type.to_string(),
            reason: e.to_string(),
        })
    }

    /// The successors a manifest of `media_type` has, in oras-go v2.6.2's order: OCI image
    /// manifest: subject, config, layers; OCI index: subject, manifests; artifact manifest:
    /// subject, blobs; Docker manifest: config, layers; Docker list: manifests; else none.
    pub fn successors(self, media_type: &str) -> Vec<Descriptor> {
        let mut out = Vec::new();
        match media_type {
            OCI_MANIFEST | DOCKER_MANIFEST => {
                if media_type == OCI_MANIFEST {
                    out.extend(self.subject);
                }
                out.extend(self.config);
                out.extend(self.layers.unwrap_or_default());
            }
            OCI_INDEX => {
                out.extend(self.subject);
                out.extend(self.manifests.unwrap_or_default());
            }
            DOCKER_MANIFEST_LIST => out.extend(self.manifests.unwrap_or_default()),
            OCI_ARTIFACT_MANIFEST => {
                out.extend(self.subject);
                out.extend(self.blobs.unwrap_or_default());
            }
            _ => {}
        }
        out
    }
}

/// The successors of a manifest body of `media_type`; empty for non-manifest media types.
///
/// Errors: `InvalidManifest` when a manifest body does not parse.
pub fn parse_successors(digest: &str, media_type: &str, body: &[u8]) -> Result<Vec<Descriptor>> {
    if !crate::descriptor::is_manifest_type(media_type) {
        return Ok(Vec::new());
    }
    Ok(ManifestParts::parse(digest, media_type, body)?.successors(media_type))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    const D3: &str = "sha256:3333333333333333333333333333333333333333333333333333333333333333";

    fn desc_json(media_type: &str, digest: &str) -> String {
        format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":1}}"#)
    }

    #[test]
    fn successors_follow_the_media_type() {
        let subject = desc_json(OCI_MANIFEST, D1);
        let config = desc_json("application/vnd.oci.image.config.v1+json", D2);
        let layer = desc_json("application/vnd.oci.image.layer.v1.tar", D3);
        let body = format!(
            r#"{{"schemaVersion":2,"subject":{subject},"config":{config},"layers":[{layer}]}}"#
        );
        let digests = |media_type: &str| -> Vec<String> {
            parse_successors("x", media_type, body.as_bytes())
                .unwrap()
                .iter()
                .map(|d| d.digest().to_string())
                .collect()
        };
        assert_eq!(digests(OCI_MANIFEST), [D1, D2, D3]);
        assert_eq!(digests(DOCKER_MANIFEST), [D2, D3]);
        assert!(digests("application/vnd.example+json").is_empty());

        let index = format!(r#"{{"subject":{subject},"manifests":[{config},{layer}]}}"#);
        let index_digests = |media_type: &str| -> Vec<String> {
            parse_successors("x", media_type, index.as_bytes())
                .unwrap()
                .iter()
                .map(|d| d.digest().to_string())
                .collect()
        };
        assert_eq!(index_digests(OCI_INDEX), [D1, D2, D3]);
        assert_eq!(index_digests(DOCKER_MANIFEST_LIST), [D2, D3]);

        let artifact = format!(r#"{{"subject":{subject},"blobs":[{layer}]}}"#);
        let got = parse_successors("x", OCI_ARTIFACT_MANIFEST, artifact.as_bytes()).unwrap();
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn partial_and_null_fields_are_tolerated() {
        let got = parse_successors("x", OCI_INDEX, br#"{"manifests":null}"#).unwrap();
        assert!(got.is_empty());
        let got = parse_successors("x", OCI_MANIFEST, br#"{"layers":[]}"#).unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn bodies_that_are_not_manifests_are_invalid() {
        for body in [&b"not json"[..], b"[]", b"42", b"", br#"{"layers":"x"}"#] {
            let err = parse_successors(D1, OCI_MANIFEST, body).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidManifest);
            assert!(err.to_string().contains(D1));
        }
        // A non-manifest media type is never parsed.
        assert!(parse_successors(D1, "text/plain", b"not json")
            .unwrap()
            .is_empty());
    }
}
