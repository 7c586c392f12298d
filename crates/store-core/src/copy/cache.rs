//! The copy's memory of the bodies it fetched from the source, and the caching view of the
//! source that fills it.
//!
//! A manifest is fetched once to find its successors and pushed from memory once they are in
//! the destination; the body is dropped when its node is done. Every body is verified (size and
//! digest) when it is fetched, and no body larger than the limit is fetched.

use crate::content::{fetch_all, reader_from_bytes, BoxReader};
use crate::descriptor::digest_key;
use crate::error::{Error, Result, Side};
use crate::traits::{Fetcher, PredecessorFinder, ReadOnlyStorage, Resolver};
use crate::SharedDescriptor;
use async_trait::async_trait;
use bytes::Bytes;
use oci_spec::image::Descriptor;
use std::collections::HashMap;
use std::sync::Mutex;

/// Bodies fetched from the source, keyed by digest.
pub(crate) struct MetadataCache {
    limit: u64,
    bodies: Mutex<HashMap<String, Bytes>>,
}

impl MetadataCache {
    /// An empty cache refusing bodies larger than `limit` bytes.
    pub(crate) fn new(limit: u64) -> Self {
        MetadataCache {
            limit,
            bodies: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        // The map holds plain values that are valid after any panic: take a poisoned lock over.
        self.bodies.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached body of `desc`, if any.
    pub(crate) fn get(&self, desc: &Descriptor) -> Option<Bytes> {
        self.lock().get(digest_key(desc)).cloned()
    }

    /// Removes and returns the cached body of `desc`, if any.
    pub(crate) fn take(&self, desc: &Descriptor) -> Option<Bytes> {
        self.lock().remove(digest_key(desc))
    }

    fn insert(&self, desc: &Descriptor, body: Bytes) {
        self.lock().insert(digest_key(desc).to_string(), body);
    }

    /// The body of `desc`: from memory, or fetched (verified) from `src` and kept.
    ///
    /// Errors, as source errors: `SizeExceedsLimit` for a body larger than the limit (nothing
    /// is fetched), those of [`fetch_all`].
    pub(crate) async fn body(
        &self,
        src: &(impl Fetcher + ?Sized),
        desc: &Descriptor,
    ) -> Result<Bytes> {
        if let Some(body) = self.get(desc) {
            return Ok(body);
        }
        if desc.size() > self.limit {
            return Err(Error::SizeExceedsLimit {
                what: format!("{} ({}) held in memory", desc.digest(), desc.media_type()),
                size: desc.size(),
                limit: self.limit,
            }
            .in_copy(Side::Source, "fetch"));
        }
        let body = fetch_all(src, desc)
            .await
            .map_err(|e| e.in_copy(Side::Source, "fetch"))?;
        self.insert(desc, body.clone());
        Ok(body)
    }
}

/// The source seen through the cache: fetches are served from memory or fetched once and kept;
/// every other call goes to the source unchanged.
pub(crate) struct CachingSource<'a, S: ?Sized> {
    src: &'a S,
    cache: &'a MetadataCache,
}

impl<'a, S: ?Sized> CachingSource<'a, S> {
    pub(crate) fn new(src: &'a S, cache: &'a MetadataCache) -> Self {
        CachingSource { src, cache }
    }
}

#[async_trait]
impl<S: Fetcher + ?Sized> Fetcher for CachingSource<'_, S> {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        Ok(reader_from_bytes(self.cache.body(self.src, target).await?))
    }
}

#[async_trait]
impl<S: ReadOnlyStorage + ?Sized> ReadOnlyStorage for CachingSource<'_, S> {
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        if self.cache.get(target).is_some() {
            return Ok(true);
        }
        self.src.exists(target).await
    }
}

#[async_trait]
impl<S: Resolver + ?Sized> Resolver for CachingSource<'_, S> {
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        self.src.resolve(reference).await
    }
}

#[async_trait]
impl<S: PredecessorFinder + ?Sized> PredecessorFinder for CachingSource<'_, S> {
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        self.src.predecessors(node).await
    }
}
