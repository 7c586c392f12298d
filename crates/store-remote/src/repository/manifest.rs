//! Writing manifests: push by digest, tag by pushing the bytes under the tag, delete, untag.

use super::fetch::{check_bytes, is_manifest_desc};
use super::{Repository, REFERRERS_API, REFERRERS_TAG_SCHEMA, REFERRERS_UNKNOWN};
use crate::client::{check, error_of, header, Body};
use bytes::Bytes;
use oci_spec::image::Descriptor;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use store_core::content::BoxReader;
use store_core::descriptor::{media_type_str, validate};
use store_core::digest::ValidDigest;
use store_core::manifest::ManifestParts;
use store_core::{Error, ErrorKind, Result};
use tokio::io::AsyncReadExt;

impl Repository {
    /// PUTs manifest `body` (already checked against `desc`) under `reference` (its digest or
    /// a tag) and checks the digest the registry computed. Returns whether the registry said it
    /// handled the subject itself (`OCI-Subject`).
    pub(crate) async fn put_manifest(
        &self,
        desc: &Descriptor,
        digest: &ValidDigest,
        body: Bytes,
        reference: &str,
    ) -> Result<bool> {
        let url = self.url(&format!("manifests/{reference}"))?;
        let call = self
            .call(Method::PUT, url, "pull,push")
            .header(CONTENT_TYPE, media_type_str(desc.media_type()))
            .body(Body::Bytes(body));
        let response = check(self.client.send(call).await?, &Method::PUT).await?;
        if let Some(returned) = header(&response, "docker-content-digest") {
            let returned = returned.trim();
            // A registry names manifests by sha256 even when pushed by another algorithm.
            let same_algorithm = returned.starts_with(digest.algorithm().name());
            if same_algorithm && returned != digest.as_str() {
                return Err(Error::mismatch(
                    digest,
                    format!("the registry stored the manifest as {returned}"),
                ));
            }
        }
        Ok(header(&response, "oci-subject").is_some())
    }

    /// Reads the body of manifest `expected` from `content`, bounded by `max_metadata_bytes`
    /// (one byte past its size, so that a longer body fails the check that follows).
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit`, the reader's errors.
    pub(crate) async fn read_manifest_body(
        &self,
        expected: &Descriptor,
        content: BoxReader,
    ) -> Result<Bytes> {
        let digest = validate(expected)?;
        self.refuse_oversized_manifest(&digest, expected.size())?;
        let mut body = Vec::with_capacity(expected.size() as usize);
        content
            .take(expected.size() + 1)
            .read_to_end(&mut body)
            .await
            .map_err(|e| store_core::error_from_io(e, format!("reading {digest} to push")))?;
        Ok(body.into())
    }

    /// Pushes a manifest whose whole body is `body`, by digest or under `tag`, keeping the
    /// referrers tag index of its subject when the registry has no referrers API.
    pub(crate) async fn push_manifest(
        &self,
        expected: &Descriptor,
        body: Bytes,
        tag: Option<&str>,
    ) -> Result<()> {
        let digest = validate(expected)?;
        check_bytes(&body, expected.size(), &digest)?;
        let media_type = media_type_str(expected.media_type()).to_string();
        let parts = ManifestParts::parse(digest.as_str(), &media_type, &body)?;
        let handled = self
            .put_manifest(expected, &digest, body, tag.unwrap_or(digest.as_str()))
            .await?;
        if let Some(subject) = parts.subject {
            if handled {
                self.set_referrers_state(REFERRERS_API);
            } else if self.referrers_state() != REFERRERS_API {
                let mut referrer = store_core::descriptor::plain(expected);
                referrer.set_artifact_type(
                    parts
                        .artifact_type
                        .clone()
                        .or_else(|| {
                            parts
                                .config
                                .as_ref()
                                .map(|c| media_type_str(c.media_type()).to_string())
                        })
                        .map(|t| oci_spec::image::MediaType::from(t.as_str())),
                );
                referrer.set_annotations(parts.annotations.clone());
                self.update_tag_index(&subject, Some(referrer), None)
                    .await?;
            }
        }
        Ok(())
    }

    pub(crate) async fn tag_impl(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let digest = validate(desc)?;
        let Some(wanted) = self.tag_target(desc, &digest, reference)? else {
            // Tagging by its own digest: the manifest must be there.
            return if self.exists_impl(desc).await? {
                Ok(())
            } else {
                Err(Error::not_found(&digest))
            };
        };
        let body = self.fetch_manifest_bytes(desc, &digest).await?;
        self.put_manifest(desc, &digest, body, &wanted).await?;
        Ok(())
    }

    /// The tag `reference` sets on `desc` (whose digest is `digest`) in this repository, or
    /// `None` when it is `desc`'s own digest (nothing to set). Makes no request.
    ///
    /// Errors: `MissingReference`, `InvalidReference` (malformed, another repository, another
    /// content's digest), `Unsupported` for content that is not a manifest.
    pub(crate) fn tag_target(
        &self,
        desc: &Descriptor,
        digest: &ValidDigest,
        reference: &str,
    ) -> Result<Option<String>> {
        store_core::reference::require_reference("tag", reference)?;
        let wanted = match self.reference_in_repo(reference) {
            // A digest the registry cannot address names nothing to resolve, but as the name
            // to set it is no tag either.
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(Error::InvalidReference {
                    reference: reference.to_string(),
                    reason: "neither a tag nor a digest the registry addresses".into(),
                })
            }
            other => other?,
        };
        if ValidDigest::parse(&wanted).is_ok() {
            if wanted != digest.as_str() {
                return Err(Error::InvalidReference {
                    reference: reference.to_string(),
                    reason: format!("a digest reference must be the content's own digest {digest}"),
                });
            }
            return Ok(None);
        }
        if !is_manifest_desc(desc) {
            return Err(Error::unsupported(format!(
                "a registry tags manifests only, not {} ({})",
                digest,
                media_type_str(desc.media_type())
            )));
        }
        Ok(Some(wanted))
    }

    pub(crate) async fn delete_impl(&self, target: &Descriptor) -> Result<()> {
        let digest = validate(target)?;
        if !is_manifest_desc(target) {
            let url = self.url(&format!("blobs/{digest}"))?;
            let call = self.call(Method::DELETE, url, "delete");
            let response = self.client.send(call).await?;
            return check(response, &Method::DELETE).await.map(drop);
        }
        // The subject must be known before the manifest goes, to update its tag index.
        let subject = if self.referrers_state() != REFERRERS_API {
            match self.fetch_manifest_bytes(target, &digest).await {
                Ok(body) => ManifestParts::parse(
                    digest.as_str(),
                    media_type_str(target.media_type()),
                    &body,
                )
                .ok()
                .and_then(|p| p.subject),
                Err(err) if err.kind() == ErrorKind::NotFound => return Err(err),
                Err(_) => None,
            }
        } else {
            None
        };
        let url = self.url(&format!("manifests/{digest}"))?;
        let call = self.call(Method::DELETE, url, "delete");
        check(self.client.send(call).await?, &Method::DELETE).await?;
        if let Some(subject) = subject {
            if self.referrers_state() == REFERRERS_UNKNOWN {
                self.probe_referrers_api(&subject).await?;
            }
            if self.referrers_state() == REFERRERS_TAG_SCHEMA {
                self.update_tag_index(&subject, None, Some(digest.as_str()))
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes a tag: the distribution spec's `DELETE /manifests/<tag>`, which many registries
    /// (distribution 2.8 among them) refuse; that refusal is `Unsupported`.
    pub(crate) async fn untag_impl(&self, reference: &str) -> Result<()> {
        store_core::reference::require_reference("untag", reference)?;
        let wanted = self.reference_in_repo(reference)?;
        if ValidDigest::parse(&wanted).is_ok() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "untag takes a tag, not a digest".into(),
            });
        }
        let url = self.url(&format!("manifests/{wanted}"))?;
        let call = self.call(Method::DELETE, url, "delete");
        let response = self.client.send(call).await?;
        match response.status() {
            status if status.is_success() => Ok(()),
            // 2.8 parses the tag as a digest and answers DIGEST_INVALID; others say 405.
            StatusCode::BAD_REQUEST | StatusCode::METHOD_NOT_ALLOWED => {
                let err = error_of(response, &Method::DELETE).await;
                Err(Error::unsupported(format!(
                    "the registry does not delete tags ({err})"
                )))
            }
            _ => Err(error_of(response, &Method::DELETE).await),
        }
    }
}
