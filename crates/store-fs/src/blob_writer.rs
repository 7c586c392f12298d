//! [`BlobWriter`]: write content whose digest is not known in advance (a layer being built or
//! compressed on the fly), then commit it under its sha256 digest.

use crate::blob::spawn_blocking;
use crate::fsutil;
use crate::store::Store;
use oci_spec::image::{Descriptor, MediaType};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use store_core::descriptor::is_manifest;
use store_core::digest::{Algorithm, Hasher, ValidDigest};
use store_core::manifest::parse_successors;
use store_core::{Error, ErrorKind, Result};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A staging file in `ingest/` that hashes what is written to it. [`BlobWriter::commit`]
/// publishes it under its sha256 digest; dropping it uncommitted removes the file.
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    hasher: Option<Hasher>,
    size: u64,
    media_type: MediaType,
    shared: Arc<crate::shared::Shared>,
    committed: bool,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("path", &self.path)
            .field("size", &self.size)
            .finish()
    }
}

impl Store {
    /// Starts writing a blob of `media_type` whose digest is computed as it is written.
    ///
    /// Errors: `Io` creating the staging file.
    pub async fn blob_writer(&self, media_type: MediaType) -> Result<BlobWriter> {
        let ingest = self.shared.layout().ingest_dir();
        let durable = self.shared.durable;
        let path = ingest.join(fsutil::unique_name("writer-"));
        let staging = path.clone();
        let file = spawn_blocking(move || {
            fsutil::ensure_dir(&ingest, durable)
                .map_err(|e| Error::io(format!("creating {}", ingest.display()), e))?;
            fsutil::create_new(&staging)
                .map_err(|e| Error::io(format!("creating {}", staging.display()), e))
        })
        .await?;
        Ok(BlobWriter {
            file: Some(tokio::fs::File::from_std(file)),
            path,
            hasher: Some(Algorithm::Sha256.hasher()),
            size: 0,
            media_type,
            shared: Arc::clone(&self.shared),
            committed: false,
        })
    }
}

impl BlobWriter {
    /// Finishes the blob: flushes (and, when durable, fsyncs) it, publishes it as
    /// `blobs/sha256/<hex>` and returns its descriptor. Content already stored under that digest
    /// is left as it is (same digest, same bytes). A manifest media type is parsed and indexed.
    ///
    /// Errors: `Io`; `InvalidManifest` for a manifest media type whose body does not parse
    /// (nothing is published).
    pub async fn commit(mut self) -> Result<Descriptor> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| Error::io("committing a blob", io::Error::other("already closed")))?;
        file.flush()
            .await
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        if self.shared.durable {
            file.sync_all()
                .await
                .map_err(|e| Error::io(format!("syncing {}", self.path.display()), e))?;
        }
        drop(file);
        let digest_text = self.hasher.take().map(Hasher::finish).unwrap_or_default();
        let digest = ValidDigest::parse(&digest_text)?;
        let desc = Descriptor::new(self.media_type.clone(), self.size, digest.to_oci());
        let shared = Arc::clone(&self.shared);
        let successors = if is_manifest(&desc) {
            let path = self.path.clone();
            let body = spawn_blocking(move || {
                fs::read(&path).map_err(|e| Error::io(format!("reading {}", path.display()), e))
            })
            .await?;
            Some(parse_successors(
                digest.as_str(),
                desc.media_type().as_ref(),
                &body,
            )?)
        } else {
            None
        };
        let staging = self.path.clone();
        let target = shared.blobs.path(&digest);
        let alg_dir = shared.layout().algorithm_dir(digest.algorithm().name());
        let durable = shared.durable;
        let published = spawn_blocking(move || {
            fsutil::ensure_dir(&alg_dir, durable)
                .map_err(|e| Error::io(format!("creating {}", alg_dir.display()), e))?;
            match fs::hard_link(&staging, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::already_exists(target.display()))
                }
                Err(e) => return Err(Error::io(format!("publishing {}", target.display()), e)),
            }
            if durable {
                fsutil::sync_dir(&alg_dir)
                    .map_err(|e| Error::io(format!("syncing {}", alg_dir.display()), e))?;
            }
            Ok(())
        })
        .await;
        match published {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        self.committed = true;
        let _ = fs::remove_file(&self.path);
        if let Some(successors) = successors {
            shared.graph.insert(&desc, successors);
            shared.index.tag_digest(&desc);
        } else {
            shared.graph.insert(&desc, Vec::new());
        }
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

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.path);
        }
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
