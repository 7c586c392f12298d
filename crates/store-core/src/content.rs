//! Content helpers over the traits: descriptors from bytes, verified reads, successors, a graph
//! walk, referrers, and pushing a whole image or artifact built by hand.

use crate::descriptor::{
    self, is_manifest_type, same_content, without_ref_name, MAX_MANIFEST_SIZE,
    OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST,
};
use crate::digest::sha256_of;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::ManifestParts;
use crate::traits::{Fetcher, Pusher, ReadOnlyGraphTarget};
/// The shared byte buffer of the helpers (`bytes::Bytes`), so that callers need no direct
/// dependency on the `bytes` crate.
pub use bytes::Bytes;
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncReadExt};

pub use crate::fetched::{ChunkStream, Fetched, FetchedBody};
pub use crate::verify::VerifyReader;
// Not re-exported: `error_from_io` is for store implementors (see the crate root).
use crate::verify::error_from_io;

/// The reader type every fetch returns and every push takes.
pub type BoxReader = Pin<Box<dyn AsyncRead + Send + 'static>>;

/// The sha256 descriptor of `data` with `media_type`.
pub fn descriptor_from_bytes(media_type: MediaType, data: &[u8]) -> Descriptor {
    Descriptor::new(media_type, data.len() as u64, sha256_of(data))
}

/// A [`BoxReader`] over `data`.
pub fn reader_from_bytes(data: impl Into<Bytes>) -> BoxReader {
    Box::pin(std::io::Cursor::new(data.into()))
}

/// Pushes `data` as the content of `desc`, through [`Pusher::push_bytes`].
///
/// Errors: those of [`Pusher::push`].
pub async fn push_bytes(
    target: &(impl Pusher + ?Sized),
    desc: &Descriptor,
    data: impl Into<Bytes>,
) -> Result<()> {
    target.push_bytes(desc, data.into()).await
}

/// How much of a claimed size [`fetch_all`] reserves up front; the rest grows as bytes arrive, so
/// a forged size never allocates.
const PREALLOCATE_LIMIT: u64 = 1 << 20;

/// Fetches the whole content of `desc`, verifying size and digest.
///
/// Errors: those of [`Fetcher::fetch`], `InvalidDigest`, `SizeExceedsLimit` for a size beyond
/// [`descriptor::MAX_BLOB_SIZE`], `Mismatch` when the content differs from the descriptor.
pub async fn fetch_all(fetcher: &(impl Fetcher + ?Sized), desc: &Descriptor) -> Result<Bytes> {
    let digest = descriptor::validate(desc)?;
    let reader = fetcher.fetch(desc).await?;
    let mut verified = VerifyReader::with_digest(reader, digest, desc.size());
    let mut out = Vec::with_capacity(desc.size().min(PREALLOCATE_LIMIT) as usize);
    verified
        .read_to_end(&mut out)
        .await
        .map_err(|e| error_from_io(e, format!("reading {}", desc.digest())))?;
    Ok(Bytes::from(out))
}

/// Fetches a manifest body for parsing, refusing bodies above [`MAX_MANIFEST_SIZE`].
async fn fetch_manifest(fetcher: &(impl Fetcher + ?Sized), desc: &Descriptor) -> Result<Bytes> {
    if desc.size() > MAX_MANIFEST_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: format!("manifest {}", desc.digest()),
            size: desc.size(),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    fetch_all(fetcher, desc).await
}

/// The nodes `desc` points at, per its media type (see [`crate::manifest::ManifestParts::successors`]).
/// Non-manifest media types have none and are not fetched.
///
/// Errors: fetch errors, `Mismatch`, `SizeExceedsLimit` for a manifest over 4 MiB,
/// `InvalidManifest` when the body does not parse.
pub async fn successors(
    fetcher: &(impl Fetcher + ?Sized),
    desc: &Descriptor,
) -> Result<Vec<Descriptor>> {
    let media_type = desc.media_type().as_ref();
    if !is_manifest_type(media_type) {
        return Ok(Vec::new());
    }
    let body = fetch_manifest(fetcher, desc).await?;
    Ok(ManifestParts::parse(desc.digest().as_ref(), media_type, &body)?.successors(media_type))
}

/// Every node of the graph under `root`, `root` included, each exactly once (nodes are told
/// apart by digest): `root` first, then breadth-first in the order each manifest lists its
/// successors (see [`successors`]). Only manifests are fetched; blobs are listed, not read.
///
/// Errors: those of [`successors`] for any manifest reached (`NotFound` when one is absent,
/// `Mismatch`, `SizeExceedsLimit`, `InvalidManifest`).
pub async fn walk(fetcher: &(impl Fetcher + ?Sized), root: &Descriptor) -> Result<Vec<Descriptor>> {
    let mut seen = HashSet::from([root.digest().to_string()]);
    let mut queue = VecDeque::from([root.clone()]);
    let mut out = Vec::new();
    while let Some(node) = queue.pop_front() {
        for child in successors(fetcher, &node).await? {
            if seen.insert(child.digest().to_string()) {
                queue.push_back(child);
            }
        }
        out.push(node);
    }
    Ok(out)
}

/// Pushes `data` as `desc`, counting content already stored as pushed: shared layers and
/// re-pushed images are the normal case for the whole-image helpers.
async fn push_if_absent(
    target: &(impl Pusher + ?Sized),
    desc: &Descriptor,
    data: Bytes,
) -> Result<()> {
    match push_bytes(target, desc, data).await {
        Err(err) if err.kind() == ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// The empty JSON blob (`{}`, `application/vnd.oci.empty.v1+json`) image-spec 1.1 prescribes as
/// the config of an artifact, and as its only layer when it has no blobs.
pub fn empty_json() -> (Descriptor, Bytes) {
    const EMPTY: &[u8] = b"{}";
    (
        descriptor_from_bytes(MediaType::EmptyJSON, EMPTY),
        Bytes::from_static(EMPTY),
    )
}

/// Pushes `manifest_body` as an OCI image manifest and returns its descriptor.
async fn push_manifest(target: &(impl Pusher + ?Sized), body: Vec<u8>) -> Result<Descriptor> {
    let desc = descriptor_from_bytes(MediaType::ImageManifest, &body);
    push_if_absent(target, &desc, Bytes::from(body)).await?;
    Ok(desc)
}

/// Pushes a whole OCI image: the config (`config_media_type`, usually
/// [`MediaType::ImageConfig`], and its bytes), every layer in order (media type and bytes), then
/// the image manifest listing them, with `annotations` if given. Returns the manifest's
/// descriptor, ready to tag. Content the target already holds counts as pushed
/// (`AlreadyExists` is not an error), so images sharing layers, or pushed twice, are fine.
///
/// Errors: those of [`Pusher::push`] other than `AlreadyExists`; nothing is rolled back, so a
/// failure may leave the config and some layers stored without a manifest.
pub async fn push_image(
    target: &(impl Pusher + ?Sized),
    config_media_type: MediaType,
    config: impl Into<Bytes>,
    layers: impl IntoIterator<Item = (MediaType, Bytes)>,
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor> {
    let config = config.into();
    let config_desc = descriptor_from_bytes(config_media_type, &config);
    push_if_absent(target, &config_desc, config).await?;
    let mut layer_descs = Vec::new();
    for (media_type, data) in layers {
        let desc = descriptor_from_bytes(media_type, &data);
        push_if_absent(target, &desc, data).await?;
        layer_descs.push(desc);
    }
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(layer_descs);
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    push_manifest(target, builder.build()?.to_string()?.into_bytes()).await
}

/// Pushes an artifact the image-spec 1.1 way: an OCI image manifest with `artifactType`, the
/// empty JSON config, and `blobs` (media type and bytes) as its layers (the empty JSON blob
/// when there are none), pointing at `subject` when given, with `annotations` if given. Returns
/// the manifest's descriptor; with a subject, the artifact is found again through
/// [`referrers`] of the subject.
///
/// The subject is recorded without its `org.opencontainers.image.ref.name` annotation (which a
/// descriptor returned by [`Resolver::resolve`](crate::Resolver::resolve) carries), so that the
/// artifact does not depend on the tag it was found by. Content already stored counts as pushed,
/// as in [`push_image`].
///
/// Errors: those of [`Pusher::push`] other than `AlreadyExists`.
pub async fn push_artifact(
    target: &(impl Pusher + ?Sized),
    artifact_type: &str,
    blobs: impl IntoIterator<Item = (MediaType, Bytes)>,
    subject: Option<&Descriptor>,
    annotations: Option<HashMap<String, String>>,
) -> Result<Descriptor> {
    let (empty, empty_body) = empty_json();
    push_if_absent(target, &empty, empty_body.clone()).await?;
    let mut layers = Vec::new();
    for (media_type, data) in blobs {
        let desc = descriptor_from_bytes(media_type, &data);
        push_if_absent(target, &desc, data).await?;
        layers.push(desc);
    }
    if layers.is_empty() {
        layers.push(empty.clone());
    }
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::from(artifact_type))
        .config(empty)
        .layers(layers);
    if let Some(subject) = subject {
        builder = builder.subject(without_ref_name(subject));
    }
    if let Some(annotations) = annotations {
        builder = builder.annotations(annotations);
    }
    push_manifest(target, builder.build()?.to_string()?.into_bytes()).await
}

/// The referrers of `desc` known to `graph`: its predecessors that are OCI image manifests,
/// indexes or artifact manifests whose `subject` is `desc` (same media type, digest and size).
/// Each comes back with its `artifactType` (for an image manifest without one, its config's media
/// type) and its annotations. With `artifact_type`, only referrers of that type are returned.
///
/// Errors: `Unsupported` when `desc` is not a manifest; fetch and parse errors of a predecessor.
pub async fn referrers(
    graph: &(impl ReadOnlyGraphTarget + ?Sized),
    desc: &Descriptor,
    artifact_type: Option<&str>,
) -> Result<Vec<Descriptor>> {
    if !is_manifest_type(desc.media_type().as_ref()) {
        return Err(Error::unsupported(format!(
            "referrers of {} ({}): only manifests have referrers",
            desc.digest(),
            desc.media_type()
        )));
    }
    let mut out = Vec::new();
    for predecessor in graph.predecessors(desc).await? {
        let media_type = predecessor.media_type().as_ref();
        if !matches!(media_type, OCI_MANIFEST | OCI_INDEX | OCI_ARTIFACT_MANIFEST) {
            continue;
        }
        let body = fetch_manifest(graph, &predecessor).await?;
        let parts = ManifestParts::parse(predecessor.digest().as_ref(), media_type, &body)?;
        let Some(subject) = parts.subject.as_ref() else {
            continue;
        };
        if !same_content(subject, desc) {
            continue;
        }
        let kind = match (media_type, parts.artifact_type.clone()) {
            (_, Some(kind)) => Some(kind),
            (OCI_MANIFEST, None) => parts
                .config
                .as_ref()
                .map(|config| config.media_type().to_string()),
            _ => None,
        };
        if let Some(wanted) = artifact_type {
            if kind.as_deref() != Some(wanted) {
                continue;
            }
        }
        let mut referrer = descriptor::plain(&predecessor);
        if let Some(kind) = kind {
            referrer.set_artifact_type(Some(MediaType::from(kind.as_str())));
        }
        referrer.set_annotations(parts.annotations);
        out.push(referrer);
    }
    out.sort_by(|a, b| a.digest().as_ref().cmp(b.digest().as_ref()));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::MemoryStore;
    use crate::traits::{ReadOnlyStorage, Resolver, Tagger};
    use oci_spec::image::{ImageIndexBuilder, ImageManifest};

    fn layer(text: &str) -> (MediaType, Bytes) {
        (MediaType::ImageLayer, Bytes::from(text.to_string()))
    }

    async fn manifest_of(store: &MemoryStore, desc: &Descriptor) -> ImageManifest {
        let body = fetch_all(store, desc).await.unwrap();
        ImageManifest::from_reader(&body[..]).unwrap()
    }

    #[tokio::test]
    async fn push_image_stores_config_layers_and_manifest() {
        let store = MemoryStore::new();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let annotations = HashMap::from([("org.example.note".to_string(), "x".to_string())]);
        let root = push_image(
            &store,
            MediaType::ImageConfig,
            &config[..],
            [layer("one"), layer("two")],
            Some(annotations.clone()),
        )
        .await
        .unwrap();
        assert_eq!(root.media_type(), &MediaType::ImageManifest);

        let manifest = manifest_of(&store, &root).await;
        assert_eq!(manifest.schema_version(), 2);
        assert_eq!(
            manifest.config(),
            &descriptor_from_bytes(MediaType::ImageConfig, config)
        );
        let layers: Vec<_> = manifest
            .layers()
            .iter()
            .map(|d| d.digest().to_string())
            .collect();
        assert_eq!(
            layers,
            [b"one".as_slice(), b"two"].map(|d| sha256_of(d).to_string())
        );
        assert_eq!(manifest.annotations().as_ref(), Some(&annotations));
        for desc in [manifest.config()].into_iter().chain(manifest.layers()) {
            assert!(store.exists(desc).await.unwrap(), "{}", desc.digest());
        }
        // The manifest is recorded as a manifest: it resolves by digest.
        assert_eq!(store.resolve(root.digest().as_ref()).await.unwrap(), root);

        // Again, and another image sharing a layer: already stored content is not an error.
        let again = push_image(
            &store,
            MediaType::ImageConfig,
            &config[..],
            [layer("one"), layer("two")],
            Some(annotations),
        )
        .await
        .unwrap();
        assert_eq!(again, root);
        let other = push_image(
            &store,
            MediaType::ImageConfig,
            &b"{}"[..],
            [layer("one")],
            None,
        )
        .await
        .unwrap();
        assert_ne!(other, root);
        assert!(manifest_of(&store, &other).await.annotations().is_none());
    }

    #[tokio::test]
    async fn push_artifact_points_at_its_subject_without_the_tag() {
        let store = MemoryStore::new();
        let image = push_image(
            &store,
            MediaType::ImageConfig,
            &b"{}"[..],
            [layer("l")],
            None,
        )
        .await
        .unwrap();
        store.tag(&image, "v1").await.unwrap();
        let tagged = store.resolve("v1").await.unwrap();
        let artifact = push_artifact(
            &store,
            "application/vnd.example.sbom",
            [(
                MediaType::Other("text/spdx".into()),
                Bytes::from_static(b"sbom"),
            )],
            Some(&tagged),
            None,
        )
        .await
        .unwrap();

        let manifest = manifest_of(&store, &artifact).await;
        let subject = manifest.subject().clone().unwrap();
        assert!(same_content(&subject, &image));
        assert!(subject.annotations().is_none(), "{subject:?}");
        assert_eq!(manifest.config(), &empty_json().0);
        assert_eq!(
            manifest.artifact_type().as_ref().map(ToString::to_string),
            Some("application/vnd.example.sbom".to_string())
        );
        assert_eq!(manifest.layers().len(), 1);
        assert_eq!(
            fetch_all(&store, &manifest.layers()[0]).await.unwrap(),
            "sbom"
        );

        let found = referrers(&store, &image, None).await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].digest(), artifact.digest());
        assert_eq!(
            found[0].artifact_type().as_ref().map(ToString::to_string),
            Some("application/vnd.example.sbom".to_string())
        );

        // Without blobs, the empty JSON blob is the one layer; without a subject, none is set.
        let bare = push_artifact(&store, "application/vnd.example.note", [], None, None)
            .await
            .unwrap();
        let manifest = manifest_of(&store, &bare).await;
        assert_eq!(manifest.layers(), &[empty_json().0]);
        assert!(manifest.subject().is_none());
        assert_eq!(fetch_all(&store, &empty_json().0).await.unwrap(), "{}");
    }

    #[tokio::test]
    async fn walk_visits_every_node_once() {
        let store = MemoryStore::new();
        // Two images sharing their config and one layer, under one index listing the first
        // image twice: 2 manifests + 1 config + 3 layers + the index = 7 distinct nodes.
        let first = push_image(
            &store,
            MediaType::ImageConfig,
            &b"{}"[..],
            [layer("shared"), layer("a")],
            None,
        )
        .await
        .unwrap();
        let second = push_image(
            &store,
            MediaType::ImageConfig,
            &b"{}"[..],
            [layer("shared"), layer("b")],
            None,
        )
        .await
        .unwrap();
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(vec![first.clone(), second.clone(), first.clone()])
            .build()
            .unwrap()
            .to_string()
            .unwrap();
        let root = descriptor_from_bytes(MediaType::ImageIndex, index.as_bytes());
        push_bytes(&store, &root, index).await.unwrap();

        let nodes = walk(&store, &root).await.unwrap();
        let digests: Vec<String> = nodes.iter().map(|d| d.digest().to_string()).collect();
        assert_eq!(
            digests[0],
            root.digest().to_string(),
            "the root comes first"
        );
        let distinct: HashSet<&String> = digests.iter().collect();
        assert_eq!(
            distinct.len(),
            digests.len(),
            "a node came twice: {digests:?}"
        );
        let mut expected: Vec<String> = [&b"{}"[..], b"shared", b"a", b"b"]
            .iter()
            .map(|d| sha256_of(d).to_string())
            .chain([&root, &first, &second].map(|d| d.digest().to_string()))
            .collect();
        expected.sort();
        let mut got = digests.clone();
        got.sort();
        assert_eq!(got, expected);

        // A blob is a graph of one node; an absent manifest is NotFound.
        let blob = descriptor_from_bytes(MediaType::ImageLayer, b"a");
        assert_eq!(walk(&store, &blob).await.unwrap(), [blob]);
        let absent = descriptor_from_bytes(MediaType::ImageManifest, b"{\"absent\": true}");
        assert_eq!(
            walk(&store, &absent).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
}
