//! What a [`crate::Store`] holds, without its locks and policies: the blobs in the bucket, the
//! in-memory index and predecessor graph, and the `index.json` object they are saved to.

use crate::absent::RecentlyAbsent;
use crate::blob::Blobs;
use crate::index::RemoteIndex;
use crate::stored::RecentlyStored;
use async_trait::async_trait;
use autosave::Flush;
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::sync::Arc;
use store_core::content::BoxReader;
use store_core::descriptor::{
    self, is_manifest, MAX_MANIFEST_SIZE, OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use store_core::graph::MemoryGraph;
use store_core::manifest::ManifestParts;
use store_core::{Error, ErrorKind, Fetcher, Result};
use store_fs::index_model::IndexModel;

/// Refuses a manifest (by media type) larger than [`MAX_MANIFEST_SIZE`].
///
/// Errors: `SizeExceedsLimit` naming the manifest.
pub(crate) fn refuse_oversized_manifest(desc: &Descriptor) -> Result<()> {
    if is_manifest(desc) && desc.size() > MAX_MANIFEST_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: format!("manifest {}", desc.digest()),
            size: desc.size(),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    Ok(())
}

/// Everything a store knows.
#[derive(Debug)]
pub(crate) struct Contents {
    pub(crate) blobs: Blobs,
    /// What `exists` just found absent (see [`RecentlyAbsent`]).
    pub(crate) absent: RecentlyAbsent,
    /// What this store has just put (see [`RecentlyStored`]).
    pub(crate) stored: RecentlyStored,
    pub(crate) model: IndexModel,
    pub(crate) graph: MemoryGraph,
    pub(crate) remote: RemoteIndex,
}

impl Contents {
    /// Writes the in-memory index to `index.json` by compare-and-swap, first taking in what
    /// other writers changed; manifests learnt that way are indexed into the graph.
    ///
    /// Errors: `Backend`; `InvalidLayout` when another writer left an unparsable `index.json`.
    pub(crate) async fn write_index(&self) -> Result<()> {
        let learnt = self.remote.write(&self.model).await?;
        self.learn_all(&learnt).await;
        Ok(())
    }

    /// Indexes manifests another writer referenced; one that cannot be read is left out of the
    /// graph (its tag still resolves).
    pub(crate) async fn learn_all(&self, descs: &[Descriptor]) {
        for desc in descs {
            let _ = self.learn(desc).await;
        }
    }

    /// Makes sure a manifest in the bucket is in the graph.
    ///
    /// Errors: fetch or parse errors of the manifest.
    pub(crate) async fn learn(&self, desc: &Descriptor) -> Result<()> {
        if is_manifest(desc) && !self.graph.contains(desc.digest().as_ref()) {
            self.graph.index_all(self, desc).await?;
        }
        Ok(())
    }

    /// The `subject` of the manifest `desc`, if it is an OCI manifest, index or artifact
    /// manifest that has one. A manifest whose blob is missing has none.
    ///
    /// Errors: `Mismatch`, `InvalidManifest`, `Backend` reading a present manifest.
    pub(crate) async fn subject_of(&self, desc: &Descriptor) -> Result<Option<String>> {
        let media_type = desc.media_type().as_ref();
        if !matches!(media_type, OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST) {
            return Ok(None);
        }
        let body = match self.read_manifest(desc).await {
            Ok(body) => body,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let parts = ManifestParts::parse(desc.digest().as_ref(), media_type, &body)?;
        Ok(parts.subject.map(|s| s.digest().to_string()))
    }

    /// A manifest body, verified and bounded.
    ///
    /// Errors: `SizeExceedsLimit`, `NotFound`, `Mismatch`, `Backend`.
    pub(crate) async fn read_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        let digest = descriptor::validate(desc)?;
        refuse_oversized_manifest(desc)?;
        self.blobs.read_all(&digest, desc.size()).await
    }
}

#[async_trait]
impl Fetcher for Contents {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        self.blobs.open(&digest, target.size()).await
    }
}

/// Writes the in-memory index to `index.json` when the autosave engine says so.
pub(crate) struct IndexFlusher(pub(crate) Arc<Contents>);

#[async_trait]
impl Flush for IndexFlusher {
    type Error = Error;

    async fn flush(&self) -> Result<()> {
        self.0.write_index().await
    }
}
