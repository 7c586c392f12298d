//! [`BlobWriter`]: write content whose digest is not known in advance (a layer being built or
//! compressed on the fly), then commit it under its sha256 digest.
//!
//! The writer only stages and hashes. Committing hands the staging file to a [`CommitStaged`]
//! (the store), which publishes and records it through the same code as a push.

use super::publish::Staging;
use super::{ingest_dir, Blobs};
use crate::fsutil::{self, spawn_blocking};
use async_trait::async_trait;
use oci_spec::image::{Descriptor, MediaType};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use store_core::digest::{Algorithm, Hasher, ValidDigest};
use store_core::{Error, Result};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// What a [`BlobWriter`] commits into.
#[async_trait]
pub(crate) trait CommitStaged: Send + Sync {
    /// Publishes the complete (and, when durable, fsynced) staging file `staging` (a file in
    /// `ingest/`) as the blob `desc` describes and records it, as a push of the same content would; the staging name
    /// is gone afterwards. Content already stored under that digest counts as committed.
    ///
    /// Errors: as a push of `desc` (`SizeExceedsLimit`, `InvalidManifest`, `Io`...), except
    /// that `AlreadyExists` is not one.
    async fn commit_staged(&self, staging: Staging, desc: &Descriptor) -> Result<()>;
}

/// A staging file in `ingest/` that hashes what is written to it. [`BlobWriter::commit`]
/// publishes it under its sha256 digest; dropping it uncommitted removes the file.
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    /// Removes the file when the writer goes uncommitted; in flight meanwhile, so gc spares it.
    staging: Option<Staging>,
    /// The staging file's path, for messages.
    path: PathBuf,
    hasher: Option<Hasher>,
    size: u64,
    media_type: MediaType,
    durable: bool,
    target: Arc<dyn CommitStaged>,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish()
    }
}

impl BlobWriter {
    /// Creates a staging file in the `ingest/` of `blobs` for content of `media_type`, to be
    /// committed into `target`.
    ///
    /// Errors: `InvalidLayout` when `ingest/` is a symbolic link or not a directory; `Io`
    /// creating `ingest/` or the staging file.
    pub(crate) async fn start(
        blobs: &Blobs,
        media_type: MediaType,
        target: Arc<dyn CommitStaged>,
    ) -> Result<BlobWriter> {
        let staging = blobs.stage("writer-");
        let path = staging.path();
        let layout = blobs.layout().clone();
        let durable = blobs.is_durable();
        let name = staging.name().to_string();
        let shown = path.clone();
        let file = spawn_blocking(move || {
            fsutil::create_new_at(ingest_dir(&layout, durable)?, &name)
                .map_err(|e| Error::io(format!("creating {}", shown.display()), e))
        })
        .await?;
        Ok(BlobWriter {
            file: Some(tokio::fs::File::from_std(file)),
            path,
            hasher: Some(Algorithm::Sha256.hasher()),
            size: 0,
            media_type,
            durable,
            target,
            staging: Some(staging),
        })
    }

    /// Finishes the blob: flushes (and, when durable, fsyncs) it, then publishes and records it
    /// exactly as a push of the same bytes would (a manifest media type is size-checked, parsed,
    /// indexed into the graph and recorded in `index.json` under the store's autosave policy),
    /// and returns its descriptor. Content already stored under that digest is left as it is
    /// (same digest, same bytes) and still recorded.
    ///
    /// Errors: `SizeExceedsLimit` for a manifest media type larger than
    /// [`store_core::descriptor::MAX_MANIFEST_SIZE`], `InvalidManifest` for one whose body does
    /// not parse (nothing is published in either case, and the staging file is removed); `Io`,
    /// including the failed save of `index.json` under `AutoSave::Always`.
    pub async fn commit(mut self) -> Result<Descriptor> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Error::io("committing a blob", io::Error::other("already closed")))?;
        file.flush()
            .await
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        if self.durable {
            file.sync_all()
                .await
                .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))?;
        }
        drop(file);
        let digest_text = self.hasher.take().map(Hasher::finish).unwrap_or_default();
        let digest = ValidDigest::parse(&digest_text)?;
        let desc = Descriptor::new(self.media_type.clone(), self.size, digest.to_oci());
        let staging = self
            .staging
            .take()
            .ok_or_else(|| Error::io("committing a blob", io::Error::other("already closed")))?;
        self.target.commit_staged(staging, &desc).await?;
        Ok(desc)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
}

impl AsyncWrite for BlobWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(file) = this.file.as_mut() else {
            return Poll::Ready(Err(io::Error::other("the blob writer is closed")));
        };
        let n = ready!(Pin::new(file).poll_write(cx, buf))?;
        if let Some(hasher) = this.hasher.as_mut() {
            hasher.update(&buf[..n]);
        }
        this.size += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file.as_mut() {
            Some(file) => Pin::new(file).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.file.as_mut() {
            Some(file) => Pin::new(file).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
