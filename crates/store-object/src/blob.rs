//! Blobs in the bucket: pushed content verified before it becomes visible, and reads that verify.
//!
//! Publishing, chosen to avoid a copy: content up to [`WHOLE_LIMIT`] is read and verified in
//! memory, then written with one `put` (`PutMode::Create` when the service has conditional
//! writes, so concurrent pushers of one digest see one winner). Bigger content streams into a
//! multipart upload *at its final key*, hashed as it goes; the upload is completed only once
//! size, trailing data and digest check out, and aborted otherwise. Object stores have no
//! rename, and an uncompleted multipart upload is invisible, so this publishes without the
//! copy-then-delete a staging key would cost. Two concurrent big pushes of one digest both
//! complete with the same bytes (content addressing makes that harmless). A push that fails or
//! whose future is dropped aborts its upload (a guard spawns the abort); only a process that
//! dies mid-upload leaves parts behind, invisible, for the service's lifecycle rule
//! (`AbortIncompleteMultipartUpload` on S3) to reclaim.

use crate::error::from_service;
use crate::keys::Keys;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::sync::Arc;
use store_core::content::{BoxReader, VerifyReader};
use store_core::digest::ValidDigest;
use store_core::{error_from_io, Error, ErrorKind, Result};
use tokio::io::AsyncReadExt;

/// Content up to this size is verified in memory and written with one `put`.
pub(crate) const WHOLE_LIMIT: u64 = 8 << 20;

/// The part size of multipart uploads (S3 wants at least 5 MiB but the last).
const PART_BYTES: usize = 16 << 20;

/// Parts uploading at once per push.
const PARTS_IN_FLIGHT: usize = 4;

/// The blobs of one layout in one bucket.
#[derive(Debug, Clone)]
pub(crate) struct Blobs {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) keys: Keys,
    /// Whether `put` may use `PutMode::Create`.
    pub(crate) conditional: bool,
}

impl Blobs {
    /// The size of the blob `digest`, or `None` when absent.
    ///
    /// Errors: `Backend` naming the object (refused credentials, service gone...).
    pub(crate) async fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        let key = self.keys.blob(digest);
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(from_service("checking", &self.keys.name(&key), e)),
        }
    }

    /// Opens the blob `digest` for reading: a stream wrapped in a [`VerifyReader`], so the
    /// reader fails with `Mismatch` at the end if the bytes do not match `digest` and `size`.
    ///
    /// Errors: `NotFound` naming the digest; `Backend` naming the object.
    pub(crate) async fn open(&self, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
        let key = self.keys.blob(digest);
        let name = self.keys.name(&key);
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::not_found(digest));
            }
            Err(e) => return Err(from_service("reading", &name, e)),
        };
        if got.meta.size != size {
            return Err(Error::mismatch(
                digest,
                format!(
                    "the object {name} has {} bytes, the descriptor says {size}",
                    got.meta.size
                ),
            ));
        }
        let stream = got
            .into_stream()
            .map_err(move |e| std::io::Error::other(format!("reading {name}: {e}")));
        let reader = tokio_util::io::StreamReader::new(stream);
        Ok(Box::pin(VerifyReader::with_digest(
            reader,
            digest.clone(),
            size,
        )))
    }

    /// Reads the whole blob, verified.
    ///
    /// Errors: those of [`Blobs::open`]; `Mismatch` for bytes that do not match.
    pub(crate) async fn read_all(&self, digest: &ValidDigest, size: u64) -> Result<Bytes> {
        let mut reader = self.open(digest, size).await?;
        let mut out = Vec::with_capacity(size.min(WHOLE_LIMIT) as usize);
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| error_from_io(e, format!("reading {digest}")))?;
        Ok(Bytes::from(out))
    }

    /// Writes verified `bytes` as the blob `digest`.
    ///
    /// Errors: `AlreadyExists` when another writer published it first; `Backend`.
    pub(crate) async fn put_whole(&self, digest: &ValidDigest, bytes: Bytes) -> Result<()> {
        let key = self.keys.blob(digest);
        let mode = if self.conditional {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.store
            .put_opts(&key, PutPayload::from_bytes(bytes), opts)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                object_store::Error::AlreadyExists { .. } => Error::already_exists(digest),
                e => from_service("writing", &self.keys.name(&key), e),
            })
    }

    /// Streams `content` into a multipart upload at the blob's key, completing it only once
    /// `content` proved to be `size` bytes hashing to `digest`.
    ///
    /// Errors: `Mismatch` (the upload is aborted); `Backend` naming the object; reader errors.
    pub(crate) async fn put_stream(
        &self,
        digest: &ValidDigest,
        size: u64,
        content: BoxReader,
    ) -> Result<()> {
        let key = self.keys.blob(digest);
        let name = self.keys.name(&key);
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| from_service("starting an upload of", &name, e))?;
        let mut guard = AbortGuard(Some(WriteMultipart::new_with_chunk_size(
            upload, PART_BYTES,
        )));
        let mut reader = VerifyReader::with_digest(content, digest.clone(), size);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    guard.abort().await;
                    return Err(error_from_io(e, format!("reading the content of {digest}")));
                }
            };
            if n == 0 {
                break;
            }
            let Some(writer) = guard.0.as_mut() else {
                break;
            };
            if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
                guard.abort().await;
                return Err(from_service("uploading", &name, e));
            }
            writer.write(&buf[..n]);
        }
        // The reader reached its end: size, trailing data and digest are verified.
        let Some(writer) = guard.0.take() else {
            return Err(Error::backend(
                format!("uploading {name}"),
                std::io::Error::other("the upload was already finished"),
            ));
        };
        writer
            .finish()
            .await
            .map(|_| ())
            .map_err(|e| from_service("completing the upload of", &name, e))
    }

    /// Removes the blob `digest`; an absent one is `NotFound`.
    ///
    /// Errors: `NotFound`, `Backend` naming the object.
    pub(crate) async fn remove(&self, digest: &ValidDigest) -> Result<()> {
        let key = self.keys.blob(digest);
        match self.store.delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let err = from_service("deleting", &self.keys.name(&key), e);
                if err.kind() == ErrorKind::NotFound {
                    Err(Error::not_found(digest))
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// Aborts a multipart upload that was not finished: awaited on a failure, spawned when the push
/// future is dropped (cancelled).
struct AbortGuard(Option<WriteMultipart>);

impl AbortGuard {
    async fn abort(&mut self) {
        if let Some(writer) = self.0.take() {
            // The push already failed; an abort that fails too leaves only invisible parts.
            let _ = writer.abort().await;
        }
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(writer) = self.0.take() {
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = writer.abort().await;
                });
            }
        }
    }
}
