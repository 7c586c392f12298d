//! Blob upload: one `PUT` for small blobs of known size, `PATCH` chunks for large ones, and
//! cross-repository mount with a fallback to an upload. Never more than one chunk in memory;
//! the upload is finished (and the blob made visible) only after the bytes matched the digest.

use super::Repository;
use crate::client::{check, header, remote_error, Body};
use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use oci_spec::image::Descriptor;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use store_core::content::BoxReader;
use store_core::descriptor::validate;
use store_core::digest::{Hasher, ValidDigest};
use store_core::{Error, ErrorKind, Result};
use tokio::io::AsyncReadExt;
use url::Url;

/// Gives the content of a blob when a mount falls back to an upload.
pub type ContentSource = Box<dyn FnOnce() -> BoxFuture<'static, Result<BoxReader>> + Send>;

/// An upload session: where to send the next request, and the registry's chunk minimum.
struct Session {
    location: Url,
    min_chunk: u64,
}

impl Repository {
    pub(crate) async fn push_blob(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let digest = validate(expected)?;
        let url = self.url("blobs/uploads/")?;
        let call = self.call(Method::POST, url, "pull,push");
        let session = self.open_session(call).await?.ok_or_else(|| {
            Error::backend(
                format!("starting the upload of {digest}"),
                std::io::Error::other("the registry answered 201 without an upload"),
            )
        })?;
        self.upload(session, expected, &digest, content).await
    }

    /// Mounts blob `desc` from repository `from` of the same registry; when the registry
    /// answers with an upload session instead (202), uploads the content `source` gives.
    ///
    /// Errors: `Unsupported` when the registry did not mount and there is no `source`; the
    /// registry's errors; `Mismatch` when the uploaded content does not match `desc`.
    pub async fn mount(
        &self,
        desc: &Descriptor,
        from: &str,
        source: Option<ContentSource>,
    ) -> Result<()> {
        let (digest, session) = self.request_mount(desc, from).await?;
        let Some(session) = session else {
            return Ok(());
        };
        let Some(source) = source else {
            self.cancel(&session.location).await;
            return Err(Error::unsupported(format!(
                "the registry did not mount {digest} from {from}, and no content was given"
            )));
        };
        let content = source().await?;
        self.upload(session, desc, &digest, content).await
    }

    /// Mounts blob `desc` from repository `from` of the same registry: `true` when mounted,
    /// `false` when the registry declined (the upload session it opened instead is cancelled).
    ///
    /// Errors: `InvalidDigest`, `InvalidReference` for a bad repository name, the registry's.
    pub(crate) async fn try_mount(&self, desc: &Descriptor, from: &str) -> Result<bool> {
        let (_, session) = self.request_mount(desc, from).await?;
        match session {
            None => Ok(true),
            Some(session) => {
                self.cancel(&session.location).await;
                Ok(false)
            }
        }
    }

    /// Sends the mount request for `desc` from `from`: the session the registry opened when
    /// it did not mount.
    async fn request_mount(
        &self,
        desc: &Descriptor,
        from: &str,
    ) -> Result<(ValidDigest, Option<Session>)> {
        let digest = validate(desc)?;
        if !crate::reference::is_valid_repository(from) {
            return Err(Error::InvalidReference {
                reference: from.chars().take(300).collect(),
                reason: "not a valid repository name".into(),
            });
        }
        let mut url = self.url("blobs/uploads/")?;
        url.query_pairs_mut()
            .append_pair("mount", digest.as_str())
            .append_pair("from", from);
        let scope = format!("{} repository:{from}:pull", self.scope("pull,push"));
        let call = crate::client::Call::new(Method::POST, url, &self.registry, scope);
        Ok((digest, self.open_session(call).await?))
    }

    /// Sends the POST that opens an upload: `None` when the registry answered 201 (a mount
    /// done), else the session it opened.
    async fn open_session(&self, call: crate::client::Call) -> Result<Option<Session>> {
        let response = check(self.client.send(call).await?, &Method::POST).await?;
        if response.status() == StatusCode::CREATED {
            return Ok(None);
        }
        let location = self.location(&response, &Method::POST)?;
        let min_chunk = header(&response, "oci-chunk-min-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        Ok(Some(Session {
            location,
            min_chunk,
        }))
    }

    fn location(&self, response: &reqwest::Response, method: &Method) -> Result<Url> {
        let value = header(response, LOCATION.as_str()).ok_or_else(|| {
            remote_error(
                ErrorKind::Backend,
                method,
                response.url(),
                Some(response.status().as_u16()),
                String::new(),
                "the upload answer has no Location".into(),
            )
        })?;
        response.url().join(value).map_err(|e| {
            remote_error(
                ErrorKind::Backend,
                method,
                response.url(),
                Some(response.status().as_u16()),
                String::new(),
                format!("the upload Location is not a URL: {e}"),
            )
        })
    }

    async fn upload(
        &self,
        session: Session,
        expected: &Descriptor,
        digest: &ValidDigest,
        mut content: BoxReader,
    ) -> Result<()> {
        let size = expected.size();
        let opts = self.client.options();
        if size <= opts.monolithic_limit {
            // Read one byte more than announced, to tell trailing data from the end.
            let mut data = Vec::with_capacity(size as usize);
            let read = (&mut content).take(size + 1).read_to_end(&mut data).await;
            if let Err(err) = read {
                self.cancel(&session.location).await;
                return Err(store_core::error_from_io(
                    err,
                    format!("reading {digest} to push"),
                ));
            }
            if let Err(err) = super::fetch::check_bytes(&data, size, digest) {
                self.cancel(&session.location).await;
                return Err(err);
            }
            return self
                .finish(session.location, digest, Bytes::from(data))
                .await;
        }
        let chunk = opts.chunk_size.max(session.min_chunk).max(1);
        let mut location = session.location;
        let mut hasher: Hasher = digest.algorithm().hasher();
        let mut sent: u64 = 0;
        loop {
            let mut buf =
                BytesMut::with_capacity(chunk.min(size.saturating_sub(sent) + 1) as usize);
            let read = (&mut content).take(chunk).read_buf_to_end(&mut buf).await;
            if let Err(err) = read {
                self.cancel(&location).await;
                return Err(store_core::error_from_io(
                    err,
                    format!("reading {digest} to push"),
                ));
            }
            if buf.is_empty() {
                break;
            }
            hasher.update(&buf);
            let start = sent;
            sent += buf.len() as u64;
            if sent > size {
                self.cancel(&location).await;
                return Err(Error::mismatch(
                    digest,
                    format!("more than the {size} bytes announced"),
                ));
            }
            let call = self
                .call(Method::PATCH, location.clone(), "pull,push")
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_LENGTH, &buf.len().to_string())
                .header(
                    reqwest::header::CONTENT_RANGE,
                    &format!("{start}-{}", sent - 1),
                )
                .body(Body::Bytes(buf.freeze()));
            let response = match self.client.send(call).await {
                Ok(response) => response,
                Err(err) => {
                    self.cancel(&location).await;
                    return Err(err);
                }
            };
            let response = match check(response, &Method::PATCH).await {
                Ok(response) => response,
                Err(err) => {
                    self.cancel(&location).await;
                    return Err(err);
                }
            };
            location = self.location(&response, &Method::PATCH)?;
        }
        let actual = hasher.finish();
        if sent != size || actual != digest.as_str() {
            self.cancel(&location).await;
            return Err(Error::mismatch(
                digest,
                format!("{sent} bytes hashing to {actual}, expected {size} bytes"),
            ));
        }
        self.finish(location, digest, Bytes::new()).await
    }

    /// The closing `PUT ?digest=`, with the last bytes (or none).
    async fn finish(&self, mut location: Url, digest: &ValidDigest, data: Bytes) -> Result<()> {
        location
            .query_pairs_mut()
            .append_pair("digest", digest.as_str());
        let call = self
            .call(Method::PUT, location, "pull,push")
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, &data.len().to_string())
            .body(Body::Bytes(data));
        check(self.client.send(call).await?, &Method::PUT).await?;
        Ok(())
    }

    /// Abandons an upload session; failures are ignored (the registry expires sessions).
    async fn cancel(&self, location: &Url) {
        let call = self.call(Method::DELETE, location.clone(), "pull,push");
        let _ = self.client.send(call).await;
    }
}

/// `read_to_end` into a `BytesMut`.
trait ReadBufToEnd {
    async fn read_buf_to_end(&mut self, buf: &mut BytesMut) -> std::io::Result<usize>;
}

impl<R: tokio::io::AsyncRead + Unpin> ReadBufToEnd for R {
    async fn read_buf_to_end(&mut self, buf: &mut BytesMut) -> std::io::Result<usize> {
        let mut total = 0;
        loop {
            if buf.capacity() == buf.len() {
                buf.reserve(64 * 1024);
            }
            let n = self.read_buf(buf).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    }
}
