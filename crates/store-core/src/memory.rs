//! [`MemoryStore`]: a complete in-memory target, for tests and caches.
//!
//! It behaves like the OCI image layout store of `ocistore-fs` (same errors, same resolve, tag,
//! untag and delete semantics; both run the conformance suite of [`crate::testkit`]), except that
//! nothing is persisted and [`Deleter::delete`] removes exactly the content it is given: there is
//! no automatic garbage collection of the successors or referrers a deletion leaves behind.

use crate::content::BoxReader;
use crate::descriptor::{self, is_manifest_type, MAX_MANIFEST_SIZE, OCTET_STREAM};
use crate::digest::ValidDigest;
use crate::error::{Error, Result};
use crate::graph::MemoryGraph;
use crate::manifest;
use crate::reference;
use crate::resolver::MemoryResolver;
use crate::traits::{
    Deleter, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger,
    Untagger,
};
use crate::verify::{error_from_io, VerifyReader};
use crate::SharedDescriptor;
use async_trait::async_trait;
use bytes::Bytes;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use oci_spec::image::{Descriptor, MediaType};
use std::fmt;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tokio::io::AsyncReadExt;

/// How much of a claimed size a push reserves up front (1 MiB); the buffer grows as bytes
/// arrive, so a forged size never allocates.
const PREALLOCATE_LIMIT: u64 = 1 << 20;

#[derive(Default)]
struct Shared {
    /// Digest string → content.
    blobs: DashMap<String, Bytes>,
    /// Tags, plus one entry per pushed manifest under its own digest.
    resolver: MemoryResolver,
    /// The predecessor graph of everything pushed.
    graph: MemoryGraph,
    /// Makes a delete atomic: the final step of a push, a tag and an untag hold it shared, a
    /// delete holds it exclusively, so a delete never interleaves with them (a push of the same
    /// content cannot lose its digest entry, a tag cannot land on content being deleted). Only
    /// ever held over synchronous code, never across an await.
    gate: RwLock<()>,
}

/// An in-memory `GraphTarget + Deleter + Untagger + TagLister`.
///
/// Cloning is cheap and every clone shares the same content, tags and graph. All operations are
/// safe to call concurrently; a push verifies its content (size and digest) before storing it, and
/// of several concurrent pushes of one digest exactly one succeeds.
///
/// Deleting content removes the blob, every tag pointing at its digest and its node in the graph,
/// nothing else: `MemoryStore` has no automatic garbage collection.
#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The stored bytes of the content with `digest`, if present (the map guard is released
    /// before returning).
    fn blob(&self, digest: &ValidDigest) -> Option<Bytes> {
        self.shared
            .blobs
            .get(digest.as_str())
            .map(|entry| entry.value().clone())
    }

    fn shared_gate(&self) -> RwLockReadGuard<'_, ()> {
        // The gate guards no data, so a poisoned lock is simply taken over.
        self.shared.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    fn exclusive_gate(&self) -> RwLockWriteGuard<'_, ()> {
        self.shared.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    fn blob_size(&self, digest: &str) -> Option<u64> {
        self.shared
            .blobs
            .get(digest)
            .map(|entry| entry.value().len() as u64)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("blobs", &self.shared.blobs.len())
            .field("references", &self.shared.resolver.len())
            .field("nodes", &self.shared.graph.len())
            .finish()
    }
}

#[async_trait]
impl Fetcher for MemoryStore {
    /// A reader over the stored bytes of `target` (verified when they were pushed).
    ///
    /// Errors: `InvalidDigest` for a malformed or unsupported digest, `SizeExceedsLimit` for a
    /// size beyond [`descriptor::MAX_BLOB_SIZE`], `NotFound` (`"<digest>: not found"`) when absent.
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        match self.blob(&digest) {
            Some(data) => Ok(crate::content::reader_from_bytes(data)),
            None => Err(Error::not_found(&digest)),
        }
    }
}

#[async_trait]
impl Pusher for MemoryStore {
    /// Reads `content` through a [`VerifyReader`] and stores it under `expected`'s digest. A
    /// manifest (the five manifest media types) is parsed and its successors recorded in the
    /// graph, and it is tagged under its own digest string so that it resolves by digest.
    ///
    /// Errors, with nothing stored in every case: `InvalidDigest`, `SizeExceedsLimit` (a size
    /// beyond [`descriptor::MAX_BLOB_SIZE`], or a manifest larger than [`MAX_MANIFEST_SIZE`]),
    /// `AlreadyExists` (the content is stored already, or a concurrent push of the same digest
    /// won; `content` is then not read, or its bytes are dropped), `Mismatch` (content short,
    /// long or of another digest), `InvalidManifest` (a manifest body that does not parse), `Io`
    /// (the reader failed).
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        let digest = descriptor::validate(expected)?;
        if self.shared.blobs.contains_key(digest.as_str()) {
            return Err(Error::already_exists(&digest));
        }
        let media_type = expected.media_type().as_ref();
        let is_manifest = is_manifest_type(media_type);
        if is_manifest && expected.size() > MAX_MANIFEST_SIZE {
            return Err(Error::SizeExceedsLimit {
                what: format!("manifest {digest}"),
                size: expected.size(),
                limit: MAX_MANIFEST_SIZE,
            });
        }

        let mut verified = VerifyReader::with_digest(content, digest.clone(), expected.size());
        // `min` keeps the value below 1 MiB, so the conversion to usize is lossless.
        let mut data = Vec::with_capacity(expected.size().min(PREALLOCATE_LIMIT) as usize);
        verified
            .read_to_end(&mut data)
            .await
            .map_err(|e| error_from_io(e, format!("reading the content of {digest}")))?;
        let data = Bytes::from(data);

        let successors = if is_manifest {
            manifest::parse_successors(digest.as_str(), media_type, &data)?
        } else {
            Vec::new()
        };

        let _gate = self.shared_gate();
        match self.shared.blobs.entry(digest.as_str().to_string()) {
            Entry::Occupied(_) => return Err(Error::already_exists(&digest)),
            Entry::Vacant(slot) => {
                slot.insert(data);
            }
        }
        self.shared.graph.insert(expected, successors);
        if is_manifest {
            self.shared
                .resolver
                .tag(descriptor::plain(expected), digest.as_str());
        }
        Ok(())
    }
}

#[async_trait]
impl ReadOnlyStorage for MemoryStore {
    /// Whether content with `target`'s digest is stored (size and media type are not compared).
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit` (see [`descriptor::validate`]); never
    /// `NotFound`.
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        let digest = descriptor::validate(target)?;
        Ok(self.shared.blobs.contains_key(digest.as_str()))
    }
}

#[async_trait]
impl Resolver for MemoryStore {
    /// The descriptor `reference` names: a tag gives the full descriptor it was tagged with; the
    /// digest of a pushed manifest (or of tagged content) gives its plain descriptor (media type,
    /// digest, size); the digest of any other stored blob gives an `application/octet-stream`
    /// descriptor with the blob's size.
    ///
    /// Errors: `MissingReference` for an empty reference; `NotFound` for an unknown tag, an
    /// absent digest, or a string that is neither.
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        reference::require_reference("resolve", reference)?;
        if let Some(desc) = self.shared.resolver.resolve(reference) {
            return Ok(if reference == desc.digest().as_ref() {
                descriptor::plain(&desc).into()
            } else {
                desc
            });
        }
        if let Ok(digest) = ValidDigest::parse(reference) {
            if let Some(size) = self.blob_size(digest.as_str()) {
                return Ok(SharedDescriptor::new(Descriptor::new(
                    MediaType::from(OCTET_STREAM),
                    size,
                    digest.to_oci(),
                )));
            }
        }
        Err(Error::not_found(reference))
    }
}

#[async_trait]
impl Tagger for MemoryStore {
    /// Points the tag `reference` at `desc` (moving it if it pointed elsewhere) and records `desc`
    /// (without its `ref.name` annotation) under its own digest, so it resolves by digest too.
    /// The descriptor is stored as given, annotations included.
    ///
    /// Errors: `MissingReference` (empty reference), `InvalidDigest`, `SizeExceedsLimit`,
    /// `InvalidReference` (not in the image-spec `ref.name` grammar, see
    /// [`reference::validate_tag`], or a digest other than `desc`'s), `NotFound` (content
    /// absent), `Mismatch` (the stored content's size differs from `desc.size()`).
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        let digest = reference::check_tagging(desc, reference)?;
        let _gate = self.shared_gate();
        reference::require_stored(desc, &digest, self.blob_size(digest.as_str()))?;
        let resolver = &self.shared.resolver;
        resolver.tag(descriptor::without_ref_name(desc), digest.as_str());
        if reference != digest.as_str() {
            resolver.tag(desc.clone(), reference);
        }
        Ok(())
    }
}

#[async_trait]
impl Untagger for MemoryStore {
    /// Removes the tag `reference`; the content, and its entry under its own digest, stay.
    ///
    /// Errors: `MissingReference` (empty), `NotFound` (unknown reference), `InvalidReference`
    /// (a digest entry, which only deleting the content removes).
    async fn untag(&self, reference: &str) -> Result<()> {
        reference::require_reference("untag", reference)?;
        let _gate = self.shared_gate();
        let Some(desc) = self.shared.resolver.resolve(reference) else {
            return Err(Error::not_found(reference));
        };
        if reference == desc.digest().as_ref() {
            return Err(Error::InvalidReference {
                reference: reference.to_string(),
                reason: "a digest is not a tag; delete the content to remove it".into(),
            });
        }
        self.shared.resolver.untag(reference);
        Ok(())
    }
}

#[async_trait]
impl TagLister for MemoryStore {
    /// Every tag (digest entries left out) in ascending byte order, strictly after `last`.
    ///
    /// Errors: none.
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        Ok(self.shared.resolver.tags(last))
    }
}

#[async_trait]
impl PredecessorFinder for MemoryStore {
    /// Every stored node whose body lists `node` (by digest): the manifests and indexes that
    /// contain it and the referrers whose subject it is, in digest order.
    ///
    /// Errors: none; an unknown or malformed node has no predecessors.
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        Ok(self.shared.graph.predecessors(node))
    }
}

#[async_trait]
impl Deleter for MemoryStore {
    /// Removes the content with `target`'s digest, every reference (tags and digest entry)
    /// pointing at that digest, and its node in the graph. Successors and referrers are left in
    /// place (no automatic garbage collection).
    ///
    /// Errors: `InvalidDigest`, `SizeExceedsLimit`, `NotFound` when the content is absent.
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        let digest = descriptor::validate(target)?;
        let _gate = self.exclusive_gate();
        if self.shared.blobs.remove(digest.as_str()).is_none() {
            return Err(Error::not_found(&digest));
        }
        for reference in self.shared.resolver.refs_of(digest.as_str()) {
            self.shared.resolver.untag(&reference);
        }
        self.shared.graph.remove(target);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{descriptor_from_bytes, fetch_all, push_bytes, reader_from_bytes};
    use crate::descriptor::{
        DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_BLOB_SIZE, OCI_ARTIFACT_MANIFEST, OCI_INDEX,
        OCI_MANIFEST,
    };
    use crate::manifest::ManifestParts;
    use crate::ErrorKind;
    use oci_spec::image::Digest;
    use std::str::FromStr;

    const ABSURD: u64 = 1 << 62;

    fn malformed() -> Vec<Digest> {
        [
            "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            "foo:bar",
            "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
        ]
        .iter()
        .map(|text| Digest::from_str(text).unwrap())
        .collect()
    }

    fn layer(data: &[u8]) -> Descriptor {
        descriptor_from_bytes(MediaType::ImageLayer, data)
    }

    fn kind<T: fmt::Debug>(result: Result<T>) -> ErrorKind {
        match result {
            Ok(value) => panic!("expected an error, got {value:?}"),
            Err(err) => err.kind(),
        }
    }

    fn kind_of_reader(result: Result<BoxReader>) -> ErrorKind {
        match result {
            Ok(_) => panic!("expected an error, got a reader"),
            Err(err) => err.kind(),
        }
    }

    #[tokio::test]
    async fn malformed_digests_are_typed_errors_everywhere() {
        let store = MemoryStore::new();
        for digest in malformed() {
            let desc = Descriptor::new(MediaType::ImageManifest, 2, digest.clone());
            let text = digest.to_string();
            let err = push_bytes(&store, &desc, &b"{}"[..]).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidDigest, "{err}");
            assert!(err.to_string().contains(&text), "{err}");
            assert_eq!(
                kind_of_reader(store.fetch(&desc).await),
                ErrorKind::InvalidDigest
            );
            assert_eq!(kind(store.exists(&desc).await), ErrorKind::InvalidDigest);
            assert_eq!(kind(store.tag(&desc, "v1").await), ErrorKind::InvalidDigest);
            assert_eq!(kind(store.delete(&desc).await), ErrorKind::InvalidDigest);
            assert_eq!(kind(store.resolve(&text).await), ErrorKind::NotFound);
            assert_eq!(kind(store.untag(&text).await), ErrorKind::NotFound);
            assert!(store.predecessors(&desc).await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn empty_references_are_missing_references() {
        let store = MemoryStore::new();
        let desc = layer(b"x");
        push_bytes(&store, &desc, &b"x"[..]).await.unwrap();
        assert_eq!(kind(store.resolve("").await), ErrorKind::MissingReference);
        assert_eq!(
            kind(store.tag(&desc, "").await),
            ErrorKind::MissingReference
        );
        assert_eq!(kind(store.untag("").await), ErrorKind::MissingReference);
        // An empty `last` is not an error: every tag comes after "".
        store.tag(&desc, "t").await.unwrap();
        assert_eq!(store.tags(Some("")).await.unwrap(), ["t"]);
        // The empty reference is checked before the descriptor.
        let bad = Descriptor::new(MediaType::ImageLayer, 1, malformed().remove(0));
        assert_eq!(kind(store.tag(&bad, "").await), ErrorKind::MissingReference);
    }

    /// A reader that fails the test's expectations if it is ever read.
    fn unreadable() -> BoxReader {
        struct Unreadable;
        impl tokio::io::AsyncRead for Unreadable {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
                _: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready(Err(std::io::Error::other("this reader must not be read")))
            }
        }
        Box::pin(Unreadable)
    }

    #[tokio::test]
    async fn absurd_sizes_are_refused_without_reading_or_allocating() {
        let store = MemoryStore::new();
        let mut desc = layer(b"abc");
        desc.set_size(ABSURD);
        assert_eq!(
            kind(store.push(&desc, unreadable()).await),
            ErrorKind::SizeExceedsLimit
        );
        assert_eq!(
            kind_of_reader(store.fetch(&desc).await),
            ErrorKind::SizeExceedsLimit
        );
        assert_eq!(kind(store.exists(&desc).await), ErrorKind::SizeExceedsLimit);
        assert_eq!(kind(store.delete(&desc).await), ErrorKind::SizeExceedsLimit);
        assert!(store.predecessors(&desc).await.unwrap().is_empty());

        // Stored content tagged with a forged size.
        push_bytes(&store, &layer(b"abc"), &b"abc"[..])
            .await
            .unwrap();
        assert_eq!(
            kind(store.tag(&desc, "v1").await),
            ErrorKind::SizeExceedsLimit
        );
        desc.set_size(MAX_BLOB_SIZE);
        assert_eq!(kind(store.tag(&desc, "v1").await), ErrorKind::Mismatch);
        assert!(store.tags(None).await.unwrap().is_empty());

        // Sizes within the blob limit but far beyond the content end in Mismatch; the push
        // reserves at most 1 MiB, so this does not try to allocate 256 TiB.
        let mut big = layer(b"def");
        big.set_size(MAX_BLOB_SIZE);
        assert_eq!(
            kind(push_bytes(&store, &big, &b"def"[..]).await),
            ErrorKind::Mismatch
        );
        assert!(!store.exists(&layer(b"def")).await.unwrap());

        // A manifest beyond the manifest limit is refused before it is read.
        let mut manifest = descriptor_from_bytes(MediaType::ImageManifest, b"{}");
        manifest.set_size(MAX_MANIFEST_SIZE + 1);
        assert_eq!(
            kind(store.push(&manifest, unreadable()).await),
            ErrorKind::SizeExceedsLimit
        );
    }

    #[tokio::test]
    async fn manifests_that_are_not_json_are_invalid_and_not_stored() {
        let store = MemoryStore::new();
        for media_type in [
            OCI_MANIFEST,
            OCI_INDEX,
            OCI_ARTIFACT_MANIFEST,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ] {
            for body in [&b"not json"[..], b"", b"[1,2]", br#"{"layers":{}}"#] {
                let desc = descriptor_from_bytes(MediaType::from(media_type), body);
                let err = push_bytes(&store, &desc, body.to_vec()).await.unwrap_err();
                assert_eq!(
                    err.kind(),
                    ErrorKind::InvalidManifest,
                    "{media_type}: {err}"
                );
                assert!(err.to_string().contains(desc.digest().as_ref()), "{err}");
                assert!(!store.exists(&desc).await.unwrap());
                assert_eq!(
                    kind(store.resolve(desc.digest().as_ref()).await),
                    ErrorKind::NotFound
                );
            }
        }
        // The same bytes under a non-manifest media type are just a blob.
        let desc = descriptor_from_bytes(MediaType::ImageLayer, b"not json");
        push_bytes(&store, &desc, &b"not json"[..]).await.unwrap();
        assert_eq!(fetch_all(&store, &desc).await.unwrap(), &b"not json"[..]);
    }

    #[test]
    fn a_negative_size_cannot_be_parsed() {
        let digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let descriptor = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{digest}","size":-1}}"#
        );
        assert!(serde_json::from_str::<Descriptor>(&descriptor).is_err());
        let body = format!(r#"{{"schemaVersion":2,"layers":[{descriptor}]}}"#);
        let err = ManifestParts::parse(digest, OCI_MANIFEST, body.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidManifest);
        let index = format!(r#"{{"manifests":[{descriptor}]}}"#);
        let err = ManifestParts::parse(digest, OCI_INDEX, index.as_bytes()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidManifest);
    }

    #[tokio::test]
    async fn a_manifest_listing_a_negative_size_is_not_stored() {
        let store = MemoryStore::new();
        let body = br#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-5}]}"#;
        let desc = descriptor_from_bytes(MediaType::ImageManifest, body);
        assert_eq!(
            kind(push_bytes(&store, &desc, &body[..]).await),
            ErrorKind::InvalidManifest
        );
        assert!(!store.exists(&desc).await.unwrap());
    }

    #[tokio::test]
    async fn reader_failures_are_io_errors_and_store_nothing() {
        let store = MemoryStore::new();
        let desc = layer(b"abc");
        assert_eq!(kind(store.push(&desc, unreadable()).await), ErrorKind::Io);
        assert!(!store.exists(&desc).await.unwrap());
        store
            .push(&desc, reader_from_bytes(&b"abc"[..]))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn clones_share_state() {
        let store = MemoryStore::default();
        let clone = store.clone();
        let desc = layer(b"shared");
        push_bytes(&clone, &desc, &b"shared"[..]).await.unwrap();
        assert!(store.exists(&desc).await.unwrap());
        assert_eq!(
            format!("{store:?}"),
            "MemoryStore { blobs: 1, references: 0, nodes: 1 }"
        );
    }

    #[tokio::test]
    async fn delete_removes_tags_but_not_successors() {
        let store = MemoryStore::new();
        let config = descriptor_from_bytes(MediaType::ImageConfig, b"{}");
        push_bytes(&store, &config, &b"{}"[..]).await.unwrap();
        let body = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#,
            config.digest()
        );
        let manifest = descriptor_from_bytes(MediaType::ImageManifest, body.as_bytes());
        push_bytes(&store, &manifest, body.clone()).await.unwrap();
        store.tag(&manifest, "v1").await.unwrap();
        store.tag(&manifest, "v2").await.unwrap();
        assert_eq!(store.predecessors(&config).await.unwrap().len(), 1);

        store.delete(&manifest).await.unwrap();
        assert!(store.tags(None).await.unwrap().is_empty());
        assert_eq!(
            kind(store.resolve(manifest.digest().as_ref()).await),
            ErrorKind::NotFound
        );
        assert!(store.predecessors(&config).await.unwrap().is_empty());
        assert!(store.exists(&config).await.unwrap(), "no auto GC");
        // Pushing it again restores the digest entry and the edges.
        push_bytes(&store, &manifest, body).await.unwrap();
        assert_eq!(
            store.resolve(manifest.digest().as_ref()).await.unwrap(),
            descriptor::plain(&manifest)
        );
        assert_eq!(store.predecessors(&config).await.unwrap().len(), 1);
    }
}
