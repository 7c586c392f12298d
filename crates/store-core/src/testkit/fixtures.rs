//! Content for tests: blobs, deterministic JSON manifests and indexes, malformed digests, odd
//! readers, and the 15-node graph the predecessor checks run on.
//!
//! Every manifest is serialised through `serde_json::Value` objects, whose keys are sorted, so the
//! same call always yields the same bytes and the same digest.

use crate::content::{descriptor_from_bytes, BoxReader};
use crate::descriptor::{OCI_ARTIFACT_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
use crate::digest::{digest_of, Algorithm};
use crate::error::Result;
use crate::traits::Pusher;
use bytes::Bytes;
use oci_spec::image::{Descriptor, Digest, MediaType};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// The OCI layer media type (uncompressed tar).
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// The artifact type of the SBOM artifact of the 15-node graph.
pub const SBOM_TYPE: &str = "application/vnd.example.sbom.v1+json";
/// The config media type of the signature artifact of the 15-node graph, which is its artifact
/// type since that manifest has no `artifactType` field.
pub const SIGNATURE_TYPE: &str = "application/vnd.example.signature.v1+json";

/// Some content and the descriptor that names it.
#[derive(Debug, Clone, PartialEq)]
pub struct Blob {
    /// The sha256 descriptor of `data`.
    pub desc: Descriptor,
    /// The content.
    pub data: Bytes,
}

impl Blob {
    /// `data` with a sha256 descriptor of `media_type`.
    pub fn new(media_type: &str, data: impl Into<Bytes>) -> Blob {
        let data = data.into();
        Blob {
            desc: descriptor_from_bytes(MediaType::from(media_type), &data),
            data,
        }
    }

    /// The digest string of the content.
    pub fn digest(&self) -> &str {
        self.desc.digest().as_ref()
    }

    /// Pushes this blob into `store`.
    ///
    /// Errors: those of [`Pusher::push`].
    pub async fn push_to(&self, store: &(impl Pusher + ?Sized)) -> Result<()> {
        crate::content::push_bytes(store, &self.desc, self.data.clone()).await
    }
}

/// An uncompressed layer holding `data`.
pub fn layer(data: &[u8]) -> Blob {
    Blob::new(LAYER, Bytes::copy_from_slice(data))
}

/// A small OCI image config for `os`/`architecture`, with `label` as a label so that different
/// labels give different digests.
pub fn config(os: &str, architecture: &str, label: &str) -> Blob {
    let body = json!({
        "architecture": architecture,
        "os": os,
        "config": { "Labels": { "org.example.label": label } },
        "rootfs": { "type": "layers", "diff_ids": [] },
    });
    Blob::new(OCI_CONFIG, to_bytes(&body))
}

/// The JSON form of a descriptor: media type, digest, size, and when present artifact type and
/// annotations (sorted by key). Platform and URLs are not written.
pub fn descriptor_json(desc: &Descriptor) -> Value {
    let mut out = Map::new();
    out.insert("mediaType".into(), json!(desc.media_type().as_ref()));
    out.insert("digest".into(), json!(desc.digest().as_ref()));
    out.insert("size".into(), json!(desc.size()));
    if let Some(kind) = desc.artifact_type() {
        out.insert("artifactType".into(), json!(kind.as_ref()));
    }
    if let Some(annotations) = desc.annotations() {
        let sorted: BTreeMap<&String, &String> = annotations.iter().collect();
        out.insert("annotations".into(), json!(sorted));
    }
    Value::Object(out)
}

fn annotations_json(annotations: &[(&str, &str)]) -> Option<Value> {
    if annotations.is_empty() {
        return None;
    }
    let sorted: BTreeMap<&str, &str> = annotations.iter().copied().collect();
    Some(json!(sorted))
}

fn to_bytes(value: &Value) -> Bytes {
    // Serialising a `Value` cannot fail (its keys are strings).
    Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

/// An OCI image manifest of `config` and `layers`, with an optional `subject`, `artifactType`
/// and annotations.
pub fn image_manifest(
    config: &Descriptor,
    layers: &[Descriptor],
    subject: Option<&Descriptor>,
    artifact_type: Option<&str>,
    annotations: &[(&str, &str)],
) -> Blob {
    let mut body = Map::new();
    body.insert("schemaVersion".into(), json!(2));
    body.insert("mediaType".into(), json!(OCI_MANIFEST));
    if let Some(kind) = artifact_type {
        body.insert("artifactType".into(), json!(kind));
    }
    body.insert("config".into(), descriptor_json(config));
    body.insert(
        "layers".into(),
        Value::Array(layers.iter().map(descriptor_json).collect()),
    );
    if let Some(subject) = subject {
        body.insert("subject".into(), descriptor_json(subject));
    }
    if let Some(annotations) = annotations_json(annotations) {
        body.insert("annotations".into(), annotations);
    }
    Blob::new(OCI_MANIFEST, to_bytes(&Value::Object(body)))
}

/// An OCI image index of `manifests` (which may be empty), with an optional `subject` and
/// annotations.
pub fn image_index(
    manifests: &[Descriptor],
    subject: Option<&Descriptor>,
    annotations: &[(&str, &str)],
) -> Blob {
    let mut body = Map::new();
    body.insert("schemaVersion".into(), json!(2));
    body.insert("mediaType".into(), json!(OCI_INDEX));
    body.insert(
        "manifests".into(),
        Value::Array(manifests.iter().map(descriptor_json).collect()),
    );
    if let Some(subject) = subject {
        body.insert("subject".into(), descriptor_json(subject));
    }
    if let Some(annotations) = annotations_json(annotations) {
        body.insert("annotations".into(), annotations);
    }
    Blob::new(OCI_INDEX, to_bytes(&Value::Object(body)))
}

/// A (withdrawn) OCI artifact manifest of `artifact_type` listing `blobs`, with an optional
/// `subject` and annotations.
pub fn artifact_manifest(
    artifact_type: &str,
    blobs: &[Descriptor],
    subject: Option<&Descriptor>,
    annotations: &[(&str, &str)],
) -> Blob {
    let mut body = Map::new();
    body.insert("mediaType".into(), json!(OCI_ARTIFACT_MANIFEST));
    body.insert("artifactType".into(), json!(artifact_type));
    body.insert(
        "blobs".into(),
        Value::Array(blobs.iter().map(descriptor_json).collect()),
    );
    if let Some(subject) = subject {
        body.insert("subject".into(), descriptor_json(subject));
    }
    if let Some(annotations) = annotations_json(annotations) {
        body.insert("annotations".into(), annotations);
    }
    Blob::new(OCI_ARTIFACT_MANIFEST, to_bytes(&Value::Object(body)))
}

/// An artifact of `artifact_type` on `subject` whose only content is `blob`: an OCI artifact
/// manifest listing it when `artifact_manifest`, else (for a store refusing the withdrawn
/// artifact manifest) an OCI image manifest with that `artifactType` and `blob` as its config,
/// so both have the same single edge to `blob`.
pub fn artifact(
    artifact_manifest: bool,
    artifact_type: &str,
    blob: &Descriptor,
    subject: Option<&Descriptor>,
    annotations: &[(&str, &str)],
) -> Blob {
    if artifact_manifest {
        self::artifact_manifest(
            artifact_type,
            std::slice::from_ref(blob),
            subject,
            annotations,
        )
    } else {
        image_manifest(blob, &[], subject, Some(artifact_type), annotations)
    }
}

/// A single-platform image: a config, one layer and the manifest listing them.
#[derive(Debug, Clone)]
pub struct SmallImage {
    /// The image config.
    pub config: Blob,
    /// The only layer.
    pub layer: Blob,
    /// The OCI image manifest.
    pub manifest: Blob,
}

impl SmallImage {
    /// The three blobs, children first (the order to push them in).
    pub fn blobs(&self) -> [&Blob; 3] {
        [&self.config, &self.layer, &self.manifest]
    }

    /// Pushes config, layer and manifest into `store`, in that order.
    ///
    /// Errors: those of [`Pusher::push`].
    pub async fn push_to(&self, store: &(impl Pusher + ?Sized)) -> Result<()> {
        for blob in self.blobs() {
            blob.push_to(store).await?;
        }
        Ok(())
    }
}

/// A small image whose every blob depends on `name`, so different names share no content.
pub fn small_image(name: &str) -> SmallImage {
    let config = config("linux", "amd64", name);
    let layer = layer(format!("layer of {name}\n").as_bytes());
    let manifest = image_manifest(
        &config.desc,
        std::slice::from_ref(&layer.desc),
        None,
        None,
        &[],
    );
    SmallImage {
        config,
        layer,
        manifest,
    }
}

/// Digests that oci-spec parses but ocistore refuses: unsupported algorithms (`sha1`, `md5`,
/// `blake3`, a made-up one) and a multi-part algorithm name.
pub fn malformed_digests() -> Vec<Digest> {
    [
        "sha1:da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "md5:d41d8cd98f00b204e9800998ecf8427e",
        "foo:bar",
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
        "sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564",
    ]
    .iter()
    .filter_map(|text| Digest::from_str(text).ok())
    .collect()
}

/// A descriptor of `media_type` and `size` naming `digest`.
pub fn descriptor_with(media_type: &str, size: u64, digest: Digest) -> Descriptor {
    Descriptor::new(MediaType::from(media_type), size, digest)
}

/// A descriptor of `data` using `algorithm` (sha256, sha384 or sha512).
pub fn descriptor_with_algorithm(
    media_type: &str,
    algorithm: Algorithm,
    data: &[u8],
) -> Descriptor {
    descriptor_with(media_type, data.len() as u64, digest_of(algorithm, data))
}

/// A reader that fails with an I/O error on its first read: a store that reads it when it must
/// not (content already stored, size refused) reports `Io` instead of the expected error.
pub fn unreadable() -> BoxReader {
    struct Unreadable;
    impl AsyncRead for Unreadable {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::other(
                "testkit: this reader must not be read",
            )))
        }
    }
    Box::pin(Unreadable)
}

/// A reader over `data` that hands out at most `chunk` bytes per read and returns `Pending` once
/// before every read, so that many pushes polled together (`join_all`) interleave
/// deterministically instead of each finishing in one poll.
pub fn yielding_reader(data: Bytes, chunk: usize) -> BoxReader {
    struct Yielding {
        data: Bytes,
        chunk: usize,
        ready: bool,
    }
    impl AsyncRead for Yielding {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            if !this.ready {
                this.ready = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            this.ready = false;
            let n = this.chunk.min(buf.remaining()).min(this.data.len());
            buf.put_slice(&this.data.split_to(n));
            Poll::Ready(Ok(()))
        }
    }
    Box::pin(Yielding {
        data,
        chunk: chunk.max(1),
        ready: false,
    })
}

/// The 15-node graph of the predecessor checks, built from fixed content:
///
/// | name | kind | points at |
/// |---|---|---|
/// | `layer1`, `layer2`, `layer3` | layers | — |
/// | `config` | image config | — |
/// | `manifest1` | image manifest | config, layer1 |
/// | `manifest2` | image manifest | config, layer1, layer2 |
/// | `manifest3` | image manifest | config, layer2, layer3 |
/// | `index1` | index | manifest1, manifest2 |
/// | `index2` | index | manifest3 |
/// | `index-nested` | index | index1, index2 |
/// | `index-empty` | index | — |
/// | `sbom-blob` | blob | — |
/// | `sbom` | artifact manifest ([`SBOM_TYPE`]; see [`GraphFixture::with_artifact_manifest`]) | subject manifest1, sbom-blob |
/// | `signature-config` | config of type [`SIGNATURE_TYPE`] | — |
/// | `signature` | image manifest, no `artifactType` | subject manifest1, signature-config |
#[derive(Debug, Clone)]
pub struct GraphFixture {
    nodes: Vec<(&'static str, Blob)>,
}

impl Default for GraphFixture {
    fn default() -> Self {
        Self::new()
    }
}

impl GraphFixture {
    /// Builds the graph (always the same bytes).
    pub fn new() -> GraphFixture {
        GraphFixture::with_artifact_manifest(true)
    }

    /// Builds the graph, with `sbom` an OCI artifact manifest when `artifact_manifest`, else an
    /// image manifest of artifact type [`SBOM_TYPE`] whose config is `sbom-blob` (see
    /// [`artifact`]); always the same bytes for the same argument.
    pub fn with_artifact_manifest(artifact_manifest: bool) -> GraphFixture {
        let layer1 = layer(b"layer one\n");
        let layer2 = layer(b"layer two\n");
        let layer3 = layer(b"layer three\n");
        let config = config("linux", "arm64", "graph");
        let manifest1 = image_manifest(
            &config.desc,
            std::slice::from_ref(&layer1.desc),
            None,
            None,
            &[("org.example.name", "manifest1")],
        );
        let manifest2 = image_manifest(
            &config.desc,
            &[layer1.desc.clone(), layer2.desc.clone()],
            None,
            None,
            &[],
        );
        let manifest3 = image_manifest(
            &config.desc,
            &[layer2.desc.clone(), layer3.desc.clone()],
            None,
            None,
            &[],
        );
        let index1 = image_index(&[manifest1.desc.clone(), manifest2.desc.clone()], None, &[]);
        let index2 = image_index(std::slice::from_ref(&manifest3.desc), None, &[]);
        let nested = image_index(&[index1.desc.clone(), index2.desc.clone()], None, &[]);
        let empty = image_index(&[], None, &[("org.example.note", "empty")]);
        let sbom_blob = Blob::new(
            "application/spdx+json",
            &br#"{"spdxVersion":"SPDX-2.3"}"#[..],
        );
        let sbom = artifact(
            artifact_manifest,
            SBOM_TYPE,
            &sbom_blob.desc,
            Some(&manifest1.desc),
            &[("org.example.kind", "sbom")],
        );
        let signature_config = Blob::new(SIGNATURE_TYPE, &br#"{"signed":"manifest1"}"#[..]);
        let signature = image_manifest(
            &signature_config.desc,
            &[],
            Some(&manifest1.desc),
            None,
            &[("org.example.kind", "signature")],
        );
        GraphFixture {
            nodes: vec![
                ("layer1", layer1),
                ("layer2", layer2),
                ("layer3", layer3),
                ("config", config),
                ("sbom-blob", sbom_blob),
                ("signature-config", signature_config),
                ("manifest1", manifest1),
                ("manifest2", manifest2),
                ("manifest3", manifest3),
                ("sbom", sbom),
                ("signature", signature),
                ("index1", index1),
                ("index2", index2),
                ("index-nested", nested),
                ("index-empty", empty),
            ],
        }
    }

    /// Every node with its name, children before parents (the order to push them in).
    pub fn nodes(&self) -> &[(&'static str, Blob)] {
        &self.nodes
    }

    /// The node called `name`.
    ///
    /// # Panics
    /// When no node has that name (a typo in a test).
    pub fn get(&self, name: &str) -> &Blob {
        match self.nodes.iter().find(|(n, _)| *n == name) {
            Some((_, blob)) => blob,
            None => panic!("testkit: the graph fixture has no node called {name:?}"),
        }
    }

    /// The name of the node whose digest is `digest`.
    pub fn name_of(&self, digest: &str) -> Option<&'static str> {
        self.nodes
            .iter()
            .find(|(_, blob)| blob.digest() == digest)
            .map(|(name, _)| *name)
    }

    /// Pushes every node into `store`, children first.
    ///
    /// Errors: those of [`Pusher::push`].
    pub async fn push_to(&self, store: &(impl Pusher + ?Sized)) -> Result<()> {
        for (_, blob) in &self.nodes {
            blob.push_to(store).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::is_manifest;
    use crate::digest::ValidDigest;

    #[test]
    fn the_graph_has_fifteen_distinct_nodes_and_stable_bytes() {
        let graph = GraphFixture::new();
        let mut digests: Vec<&str> = graph.nodes().iter().map(|(_, b)| b.digest()).collect();
        digests.sort_unstable();
        digests.dedup();
        assert_eq!(digests.len(), 15);
        assert_eq!(GraphFixture::new().nodes(), graph.nodes());
        let manifests = graph.nodes().iter().filter(|(_, b)| is_manifest(&b.desc));
        assert_eq!(manifests.count(), 9);
    }

    #[test]
    fn malformed_digests_parse_in_oci_spec_but_not_here() {
        let digests = malformed_digests();
        assert_eq!(digests.len(), 5);
        for digest in digests {
            assert!(ValidDigest::from_digest(&digest).is_err(), "{digest}");
        }
    }
}
