//! Where each part of the layout lives in the bucket: `<prefix>/oci-layout`,
//! `<prefix>/index.json`, `<prefix>/blobs/<alg>/<hex>`, and `<prefix>/ingest/` for the probe
//! objects of the open check.

use object_store::path::Path;
use store_core::digest::ValidDigest;

/// The keys of one layout, and the name of the service for messages.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: Path,
    service: String,
}

impl Keys {
    /// The keys under `prefix` on the service named `service` (its `Display`).
    pub(crate) fn new(service: String, prefix: Path) -> Self {
        Keys { prefix, service }
    }

    fn child(&self, part: &str) -> Path {
        self.prefix.clone().join(part)
    }

    /// The prefix itself.
    pub(crate) fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// `<prefix>/oci-layout`.
    pub(crate) fn layout(&self) -> Path {
        self.child("oci-layout")
    }

    /// `<prefix>/index.json`.
    pub(crate) fn index(&self) -> Path {
        self.child("index.json")
    }

    /// `<prefix>/blobs/`.
    pub(crate) fn blobs(&self) -> Path {
        self.child("blobs")
    }

    /// `<prefix>/ingest/`.
    pub(crate) fn ingest(&self) -> Path {
        self.child("ingest")
    }

    /// `<prefix>/blobs/<alg>/<hex>`.
    pub(crate) fn blob(&self, digest: &ValidDigest) -> Path {
        self.blobs()
            .join(digest.algorithm().name())
            .join(digest.hex())
    }

    /// The digest a key under `blobs/` names, if it is `blobs/<alg>/<hex>` with a valid digest.
    pub(crate) fn digest_of(&self, key: &Path) -> Option<ValidDigest> {
        let rest: Vec<_> = key.prefix_match(&self.blobs())?.collect();
        match rest.as_slice() {
            [alg, hex] => ValidDigest::parse(&format!("{}:{}", alg.as_ref(), hex.as_ref())).ok(),
            _ => None,
        }
    }

    /// A key as messages name it: `<service>/<key>`.
    pub(crate) fn name(&self, key: &Path) -> String {
        format!("{}/{}", self.service.trim_end_matches('/'), key)
    }
}
