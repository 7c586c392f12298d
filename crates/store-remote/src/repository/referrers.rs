//! Referrers: the referrers API when the registry has it, else the referrers tag schema (an
//! index tagged `<alg>-<hex>` listing the manifests whose `subject` is that digest).

use super::{Repository, MANIFEST_ACCEPT, REFERRERS_API, REFERRERS_TAG_SCHEMA};
use crate::client::{check, error_of, header, read_bounded, Body};
use crate::wire;
use oci_spec::image::Descriptor;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use store_core::descriptor::{validate, OCI_INDEX};
use store_core::digest::{digest_string, ValidDigest};
use store_core::{Error, ErrorKind, Result};

#[derive(Deserialize)]
struct IndexBody {
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// The tag the referrers tag schema stores `digest`'s referrers under: `<alg>-<hex>`.
pub fn referrers_tag(digest: &ValidDigest) -> String {
    let mut tag = format!("{}-{}", digest.algorithm().name(), digest.hex());
    tag.truncate(128);
    tag
}

impl Repository {
    /// The manifests whose `subject` is `subject`, optionally only those of `artifact_type`:
    /// from the referrers API (every page), else from the referrers tag schema.
    ///
    /// Errors: `InvalidDigest` for a malformed digest; the registry's errors (`Unauthorized`,
    /// `Denied`, ...) otherwise. An unknown subject has no referrers (an empty list).
    pub async fn referrers(
        &self,
        subject: &Descriptor,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>> {
        let digest = validate(subject)?;
        if self.referrers_state() != REFERRERS_TAG_SCHEMA {
            if let Some(found) = self.referrers_from_api(&digest, artifact_type).await? {
                return Ok(found);
            }
        }
        let mut found = self.read_tag_index(&digest).await?.1;
        if let Some(wanted) = artifact_type {
            found.retain(|d| {
                d.artifact_type().as_ref().map(|t| t.to_string()).as_deref() == Some(wanted)
            });
        }
        Ok(found)
    }

    /// Asks the referrers API; `None` (and the tag schema from now on) when the registry has
    /// none.
    async fn referrers_from_api(
        &self,
        digest: &ValidDigest,
        artifact_type: Option<&str>,
    ) -> Result<Option<Vec<Descriptor>>> {
        let mut url = self.url(&format!("referrers/{digest}"))?;
        if let Some(wanted) = artifact_type {
            url.query_pairs_mut().append_pair("artifactType", wanted);
        }
        let limit = self.client.options().max_metadata_bytes;
        let mut out = Vec::new();
        let mut filtered_by_server = false;
        for page in 0..10_000 {
            let call = self
                .call(Method::GET, url.clone(), "pull")
                .header(ACCEPT, OCI_INDEX);
            let response = self.client.send(call).await?;
            let status = response.status();
            if page == 0
                && (status == StatusCode::NOT_FOUND
                    || status == StatusCode::METHOD_NOT_ALLOWED
                    || status == StatusCode::BAD_REQUEST)
            {
                self.set_referrers_state(REFERRERS_TAG_SCHEMA);
                return Ok(None);
            }
            let response = check(response, &Method::GET).await?;
            let content_type = header(&response, CONTENT_TYPE.as_str()).unwrap_or("");
            if page == 0 && !content_type.starts_with(OCI_INDEX) {
                // Something answered 200 that is not the referrers API (a catch-all proxy).
                self.set_referrers_state(REFERRERS_TAG_SCHEMA);
                return Ok(None);
            }
            filtered_by_server |= header(&response, "oci-filters-applied")
                .is_some_and(|f| f.split(',').any(|f| f.trim() == "artifactType"));
            let next = header(&response, "link").and_then(|l| wire::next_link(l, &url));
            let body = read_bounded(response, limit, &Method::GET, &url).await?;
            let index: IndexBody =
                serde_json::from_slice(&body).map_err(|e| Error::InvalidManifest {
                    digest: format!("referrers of {digest}"),
                    media_type: OCI_INDEX.into(),
                    reason: e.to_string(),
                })?;
            out.extend(index.manifests.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        self.set_referrers_state(REFERRERS_API);
        if let (Some(wanted), false) = (artifact_type, filtered_by_server) {
            out.retain(|d| {
                d.artifact_type().as_ref().map(|t| t.to_string()).as_deref() == Some(wanted)
            });
        }
        Ok(Some(out))
    }

    /// Learns whether the registry has the referrers API, by asking it about `subject`.
    pub(crate) async fn probe_referrers_api(&self, subject: &Descriptor) -> Result<()> {
        let digest = validate(subject)?;
        self.referrers_from_api(&digest, None).await.map(drop)
    }

    /// The referrers tag index of `digest`: its descriptor (if the tag exists) and entries.
    async fn read_tag_index(
        &self,
        digest: &ValidDigest,
    ) -> Result<(Option<ValidDigest>, Vec<Descriptor>)> {
        let tag = referrers_tag(digest);
        let url = self.url(&format!("manifests/{tag}"))?;
        let call = self
            .call(Method::GET, url.clone(), "pull")
            .header(ACCEPT, &format!("{OCI_INDEX}, {MANIFEST_ACCEPT}"));
        let response = self.client.send(call).await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok((None, Vec::new()));
        }
        if !response.status().is_success() {
            return Err(error_of(response, &Method::GET).await);
        }
        let limit = self.client.options().max_metadata_bytes;
        let body = read_bounded(response, limit, &Method::GET, &url).await?;
        let own = ValidDigest::parse(&digest_string(digest.algorithm(), &body)).ok();
        let index: IndexBody =
            serde_json::from_slice(&body).map_err(|e| Error::InvalidManifest {
                digest: tag.clone(),
                media_type: OCI_INDEX.into(),
                reason: e.to_string(),
            })?;
        Ok((own, index.manifests.unwrap_or_default()))
    }

    /// Adds `add` to and/or removes `remove` from the referrers tag index of `subject`, then
    /// deletes the index it replaces (where the registry allows deletes). An index left with
    /// no referrers is deleted, and its tag with it, rather than replaced by an empty one (as
    /// oras-go does): every empty index has the same bytes, so deleting one, once its subject
    /// has a referrer again, would delete every other subject's empty index and any tag on
    /// the same bytes. Only a registry that refuses the delete gets an empty index, so that the
    /// tag lists nothing that is gone.
    pub(crate) async fn update_tag_index(
        &self,
        subject: &Descriptor,
        add: Option<Descriptor>,
        remove: Option<&str>,
    ) -> Result<()> {
        let digest = validate(subject)?;
        let _serialised = self.tag_index_lock.lock().await;
        let (old, mut entries) = self.read_tag_index(&digest).await?;
        let before = entries.len();
        if let Some(remove) = remove {
            entries.retain(|d| d.digest().to_string() != remove);
        }
        let mut changed = entries.len() != before;
        if let Some(add) = add {
            if !entries.iter().any(|d| d.digest() == add.digest()) {
                entries.push(add);
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
        if let (true, Some(old)) = (entries.is_empty(), &old) {
            // distribution deletes the tags of a deleted manifest.
            match self.delete_manifest_digest(old).await {
                Ok(()) => return Ok(()),
                Err(err) if err.kind() == ErrorKind::NotFound => return Ok(()),
                Err(err) if matches!(err.kind(), ErrorKind::Unsupported | ErrorKind::Denied) => {}
                Err(err) => return Err(err),
            }
        }
        let body = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": entries,
        }))
        .map_err(|e| Error::backend("serialising a referrers index", e))?;
        let body = bytes::Bytes::from(body);
        let new_digest = ValidDigest::parse(&digest_string(digest.algorithm(), &body))?;
        let tag = referrers_tag(&digest);
        let url = self.url(&format!("manifests/{tag}"))?;
        let call = self
            .call(Method::PUT, url, "pull,push")
            .header(CONTENT_TYPE, OCI_INDEX)
            .body(Body::Bytes(body));
        check(self.client.send(call).await?, &Method::PUT).await?;
        if let Some(old) = old.filter(|old| old.as_str() != new_digest.as_str()) {
            // The replaced index is garbage; a registry that refuses deletes keeps it untagged.
            match self.delete_manifest_digest(&old).await {
                Err(err)
                    if !matches!(
                        err.kind(),
                        ErrorKind::Unsupported | ErrorKind::NotFound | ErrorKind::Denied
                    ) =>
                {
                    return Err(err)
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// `DELETE /manifests/<digest>`.
    ///
    /// Errors: the registry's, as their kinds (`NotFound`, `Unsupported` where deletes are
    /// off, `Denied`, ...).
    async fn delete_manifest_digest(&self, digest: &ValidDigest) -> Result<()> {
        let url = self.url(&format!("manifests/{digest}"))?;
        let call = self.call(Method::DELETE, url, "delete");
        let response = self.client.send(call).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(error_of(response, &Method::DELETE).await)
        }
    }
}
