//! Reading: verified streaming fetch, exists, and resolve by HEAD.

use super::{Repository, MANIFEST_ACCEPT};
use crate::client::{check, content_length, error_of, header, read_bounded, remote_error};
use futures::TryStreamExt;
use oci_spec::image::{Descriptor, MediaType};
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use store_core::content::VerifyReader;
use store_core::content::{BoxReader, FetchedBody};
use store_core::descriptor::{is_manifest_type, media_type_str, validate};
use store_core::digest::{digest_string, ValidDigest};
use store_core::{Error, ErrorKind, Result};
use tokio_util::io::StreamReader;

/// Blobs from this size on are hashed on a thread of their own while they stream; smaller
/// ones inline (a thread hand-off costs more than hashing them).
const PARALLEL_HASH_FROM: u64 = 4 << 20;

/// Whether `desc` is read from the manifests endpoint rather than the blobs one.
pub(crate) fn is_manifest_desc(desc: &Descriptor) -> bool {
    is_manifest_type(media_type_str(desc.media_type()))
}

/// The media type of a `Content-Type` header value, without parameters.
fn bare_media_type(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

impl Repository {
    pub(crate) async fn fetch_impl(&self, target: &Descriptor) -> Result<BoxReader> {
        Ok(self.fetch_body(target).await?.into_reader())
    }

    /// The content of `target`, checking itself against its size and digest: a manifest read
    /// whole, a big blob as the chunks of the response, a small one as a reader.
    pub(crate) async fn fetch_body(&self, target: &Descriptor) -> Result<FetchedBody> {
        let digest = validate(target)?;
        if is_manifest_desc(target) {
            let body = self.fetch_manifest_bytes(target, &digest).await?;
            return Ok(FetchedBody::Reader(store_core::content::reader_from_bytes(
                body,
            )));
        }
        let url = self.url(&format!("blobs/{digest}"))?;
        let response = self
            .client
            .send(self.call(Method::GET, url.clone(), "pull"))
            .await?;
        let response = check(response, &Method::GET).await?;
        if let Some(length) = content_length(&response) {
            if length != target.size() {
                return Err(Error::mismatch(
                    &digest,
                    format!(
                        "the registry sends {length} bytes, the descriptor says {}",
                        target.size()
                    ),
                ));
            }
        }
        if target.size() >= PARALLEL_HASH_FROM {
            return Ok(FetchedBody::Chunks(crate::verify::verified(
                Box::pin(response.bytes_stream()),
                digest,
                target.size(),
            )));
        }
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        let reader = VerifyReader::with_digest(StreamReader::new(stream), digest, target.size());
        Ok(FetchedBody::Reader(Box::pin(reader)))
    }

    /// Refuses manifest `digest` of `size` bytes above `max_metadata_bytes`, before any of it
    /// is read.
    ///
    /// Errors: `SizeExceedsLimit`.
    pub(crate) fn refuse_oversized_manifest(&self, digest: &ValidDigest, size: u64) -> Result<()> {
        let limit = self.client.options().max_metadata_bytes;
        if size > limit {
            return Err(Error::SizeExceedsLimit {
                what: digest.to_string(),
                size,
                limit,
            });
        }
        Ok(())
    }

    /// The manifest `target`, read whole (at most `max_metadata_bytes`), checked against its
    /// size, digest and media type.
    pub(crate) async fn fetch_manifest_bytes(
        &self,
        target: &Descriptor,
        digest: &ValidDigest,
    ) -> Result<bytes::Bytes> {
        self.refuse_oversized_manifest(digest, target.size())?;
        let url = self.url(&format!("manifests/{digest}"))?;
        let expected_type = media_type_str(target.media_type()).to_string();
        let call = self
            .call(Method::GET, url.clone(), "pull")
            .header(ACCEPT, &format!("{expected_type}, {MANIFEST_ACCEPT}"));
        let response = check(self.client.send(call).await?, &Method::GET).await?;
        if let Some(got) = header(&response, "content-type").map(bare_media_type) {
            if !got.is_empty() && got != expected_type {
                return Err(Error::mismatch(
                    digest,
                    format!("the registry serves it as {got}, the descriptor says {expected_type}"),
                ));
            }
        }
        let limit = self.client.options().max_metadata_bytes;
        let body = read_bounded(response, limit, &Method::GET, &url).await?;
        check_bytes(&body, target.size(), digest)?;
        Ok(body)
    }

    pub(crate) async fn exists_impl(&self, target: &Descriptor) -> Result<bool> {
        let digest = validate(target)?;
        let (path, accept) = if is_manifest_desc(target) {
            (format!("manifests/{digest}"), Some(MANIFEST_ACCEPT))
        } else {
            (format!("blobs/{digest}"), None)
        };
        let url = self.url(&path)?;
        let mut call = self.call(Method::HEAD, url, "pull");
        if let Some(accept) = accept {
            call = call.header(ACCEPT, accept);
        }
        let response = self.client.send(call).await?;
        match response.status() {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(error_of(response, &Method::HEAD).await),
        }
    }

    /// The descriptor of the blob `digest` (a layer or config, not a manifest), from a HEAD of
    /// `/v2/<name>/blobs/<digest>`: media type `application/octet-stream` (a registry does not
    /// know a blob's type), the size the registry gives as `Content-Length`, and `digest`.
    /// `resolve` only reaches manifests, which is what tags and manifest digests name; this is
    /// its counterpart for blobs, so that a blob can be fetched knowing only its digest.
    ///
    /// Errors: [`ErrorKind::InvalidReference`] for text that is not a digest;
    /// [`ErrorKind::NotFound`] when the registry does not have the blob (404) or cannot
    /// address the digest's algorithm; [`ErrorKind::Unauthorized`], [`ErrorKind::Denied`],
    /// [`ErrorKind::TooManyRequests`] or [`ErrorKind::Backend`] as for any request;
    /// [`ErrorKind::Mismatch`] when the registry's `Docker-Content-Digest` names another blob;
    /// [`ErrorKind::Backend`] when the answer has no usable `Content-Length`.
    pub async fn blob_descriptor(&self, digest: &str) -> Result<Descriptor> {
        if ValidDigest::parse(digest).is_err() && looks_like_digest(digest) {
            return Err(Error::not_found(format!("{}@{digest}", self.name)));
        }
        let digest = ValidDigest::parse(digest).map_err(|_| Error::InvalidReference {
            reference: digest.chars().take(300).collect(),
            reason: "not a digest".into(),
        })?;
        let url = self.url(&format!("blobs/{digest}"))?;
        let call = self.call(Method::HEAD, url.clone(), "pull");
        let response = check(self.client.send(call).await?, &Method::HEAD).await?;
        if let Some(answered) = header(&response, "docker-content-digest")
            .and_then(|d| ValidDigest::parse(d.trim()).ok())
        {
            if answered.algorithm() == digest.algorithm() && answered.as_str() != digest.as_str() {
                return Err(Error::mismatch(
                    &digest,
                    format!("the registry answers with {answered}"),
                ));
            }
        }
        let size = content_length(&response).ok_or_else(|| {
            remote_error(
                ErrorKind::Backend,
                &Method::HEAD,
                &url,
                Some(response.status().as_u16()),
                String::new(),
                "the registry gives no Content-Length for the blob".into(),
            )
        })?;
        Ok(Descriptor::new(
            MediaType::Other("application/octet-stream".into()),
            size,
            digest.to_oci(),
        ))
    }

    /// Resolves a tag or digest (or a whole reference naming this repository) to the
    /// manifest's descriptor.
    pub(crate) async fn resolve_impl(&self, reference: &str) -> Result<Descriptor> {
        store_core::reference::require_reference("resolve", reference)?;
        let wanted = self.reference_in_repo(reference)?;
        let url = self.url(&format!("manifests/{wanted}"))?;
        let head = || {
            self.call(Method::HEAD, url.clone(), "pull")
                .header(ACCEPT, MANIFEST_ACCEPT)
        };
        let response = if ValidDigest::is_valid(&wanted) {
            // distribution 2.8 answers a manifest HEAD naming a blob with 500: ask once, and
            // only when the digest is no blob here treat the 500 as a fault worth the retries
            // (retrying a blob's 500 would cost seconds of backoff for a plain "not found").
            let response = self
                .client
                .send(head().without_server_error_retries())
                .await?;
            if !response.status().is_server_error() {
                response
            } else if self.names_a_blob(&wanted).await {
                return Err(Error::not_found(format!(
                    "{}@{wanted} (a blob; a registry resolves manifests only)",
                    self.name
                )));
            } else {
                self.client.send(head()).await?
            }
        } else {
            self.client.send(head()).await?
        };
        let response = check(response, &Method::HEAD).await?;
        let limit = self.client.options().max_metadata_bytes;
        let media_type = header(&response, "content-type")
            .map(bare_media_type)
            .unwrap_or("")
            .to_string();
        let size = content_length(&response);
        let header_digest = header(&response, "docker-content-digest")
            .and_then(|d| ValidDigest::parse(d.trim()).ok());
        let wanted_digest = ValidDigest::parse(&wanted).ok();
        if let Some(size) = size {
            if size > limit {
                return Err(Error::SizeExceedsLimit {
                    what: format!("{}@{wanted}", self.name),
                    size,
                    limit,
                });
            }
        }
        let (digest, size, media_type) = match (header_digest, size) {
            (Some(digest), Some(size)) if !media_type.is_empty() => (digest, size, media_type),
            _ => {
                // No usable digest header: read the manifest (bounded) and hash it ourselves.
                let call = self
                    .call(Method::GET, url.clone(), "pull")
                    .header(ACCEPT, MANIFEST_ACCEPT);
                let response = check(self.client.send(call).await?, &Method::GET).await?;
                let media_type = header(&response, "content-type")
                    .map(bare_media_type)
                    .unwrap_or("")
                    .to_string();
                let body = read_bounded(response, limit, &Method::GET, &url).await?;
                let algorithm = wanted_digest
                    .as_ref()
                    .map_or(store_core::digest::Algorithm::Sha256, |d| d.algorithm());
                let digest = ValidDigest::parse(&digest_string(algorithm, &body))?;
                let media_type = if media_type.is_empty() {
                    sniff_media_type(&body).ok_or_else(|| {
                        remote_error(
                            ErrorKind::InvalidManifest,
                            &Method::GET,
                            &url,
                            Some(200),
                            String::new(),
                            "the manifest has neither a Content-Type nor a mediaType".into(),
                        )
                    })?
                } else {
                    media_type
                };
                (digest, body.len() as u64, media_type)
            }
        };
        if let Some(wanted) = &wanted_digest {
            if wanted.as_str() != digest.as_str() && wanted.algorithm() == digest.algorithm() {
                return Err(Error::mismatch(
                    wanted,
                    format!("the registry answers with {digest}"),
                ));
            }
        }
        let digest = match wanted_digest {
            Some(wanted) if wanted.algorithm() != digest.algorithm() => wanted,
            _ => digest,
        };
        Ok(Descriptor::new(
            MediaType::from(media_type.as_str()),
            size,
            digest.to_oci(),
        ))
    }

    /// Whether `reference` is the digest of a blob of this repository. distribution 2.8
    /// answers a manifest request for a blob's digest with HTTP 500 (it reads the blob as a
    /// manifest and fails to parse it), which is no server fault but a digest naming no
    /// manifest.
    async fn names_a_blob(&self, reference: &str) -> bool {
        ValidDigest::is_valid(reference) && self.blob_descriptor(reference).await.is_ok()
    }

    /// The tag or digest part of `reference` when it names this repository (a bare tag or
    /// digest, or `registry/name[:tag][@digest]`).
    pub(crate) fn reference_in_repo(&self, reference: &str) -> Result<String> {
        if ValidDigest::is_valid(reference) || crate::reference::is_valid_tag(reference) {
            return Ok(reference.to_string());
        }
        if looks_like_digest(reference) {
            // A digest of an algorithm the registry cannot address names nothing stored there.
            return Err(Error::not_found(format!("{}@{reference}", self.name)));
        }
        let parsed = crate::reference::Reference::parse(reference)?;
        if parsed.registry != self.registry || parsed.repository != self.name {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: format!(
                    "names another repository than {}/{}",
                    self.registry, self.name
                ),
            });
        }
        match (parsed.digest, parsed.tag) {
            (Some(digest), _) => Ok(digest),
            (None, Some(tag)) => Ok(tag),
            (None, None) => Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "names no tag or digest".into(),
            }),
        }
    }
}

/// `alg:encoded` without a `/`: meant as a digest, even if not a valid one.
fn looks_like_digest(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((alg, rest)) => {
            !alg.is_empty()
                && !reference.contains('/')
                && !rest.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+._-".contains(&b))
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        }
        None => false,
    }
}

/// Checks `body` against `size` and `digest`.
pub(crate) fn check_bytes(body: &[u8], size: u64, digest: &ValidDigest) -> Result<()> {
    if body.len() as u64 != size {
        return Err(Error::mismatch(
            digest,
            format!("{} bytes where the descriptor says {size}", body.len()),
        ));
    }
    let got = digest_string(digest.algorithm(), body);
    if got != digest.as_str() {
        return Err(Error::mismatch(digest, format!("the bytes hash to {got}")));
    }
    Ok(())
}

/// The `mediaType` field of a manifest body, for a registry that sends no `Content-Type`.
fn sniff_media_type(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Sniff {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Sniff>(body).ok()?.media_type
}
