//! The read-only checks, for stores that cannot push (a layout opened read-only, a tar archive):
//! they run on content seeded beforehand from a [`Seed`].

use super::fixtures::{descriptor_json, layer, malformed_digests, Blob, GraphFixture};
use super::{assert_graph, expect_err, Capabilities};
use crate::content::fetch_all;
use crate::descriptor::{self, is_manifest, without_ref_name, OCI_INDEX, OCTET_STREAM, REF_NAME};
use crate::digest::{digest_string, Algorithm};
use crate::error::Result;
use crate::traits::{ReadOnlyGraphTarget, TagLister, Target};
use crate::ErrorKind;
use oci_spec::image::{Descriptor, MediaType};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;

/// Every store the read-only suite runs against implements these.
pub trait ReadOnlyConformanceStore: ReadOnlyGraphTarget + TagLister {}
impl<T: ReadOnlyGraphTarget + TagLister + ?Sized> ReadOnlyConformanceStore for T {}

/// The content a read-only store is opened on: the 15 blobs of [`GraphFixture`] and four tags.
///
/// | tag | points at | annotations |
/// |---|---|---|
/// | `empty` | `index-empty` | — |
/// | `latest` | `index-nested` | `org.example.channel: stable` |
/// | `v1` | `manifest1` | `org.example.note: first` |
/// | `v2` | `manifest2` | — |
///
/// A layout directory for it holds every blob under `blobs/sha256/` and [`Seed::index_json`] as
/// `index.json`, which lists every tag and every untagged manifest (so the whole graph is
/// reachable from it, as oras-go v2.6.2's `index.json` would after pushing everything).
#[derive(Debug, Clone)]
pub struct Seed {
    /// The 15-node graph.
    pub graph: GraphFixture,
    /// (tag, the descriptor it was tagged with), sorted by tag.
    pub tags: Vec<(String, Descriptor)>,
}

impl Default for Seed {
    fn default() -> Self {
        Self::new()
    }
}

fn annotated(desc: &Descriptor, annotations: &[(&str, &str)]) -> Descriptor {
    let mut out = desc.clone();
    if !annotations.is_empty() {
        out.set_annotations(Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ));
    }
    out
}

impl Seed {
    /// The seed (always the same content).
    pub fn new() -> Seed {
        let graph = GraphFixture::new();
        let tags = vec![
            ("empty".to_string(), graph.get("index-empty").desc.clone()),
            (
                "latest".to_string(),
                annotated(
                    &graph.get("index-nested").desc,
                    &[("org.example.channel", "stable")],
                ),
            ),
            (
                "v1".to_string(),
                annotated(
                    &graph.get("manifest1").desc,
                    &[("org.example.note", "first")],
                ),
            ),
            ("v2".to_string(), graph.get("manifest2").desc.clone()),
        ];
        Seed { graph, tags }
    }

    /// Every blob, children before parents.
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        self.graph.nodes().iter().map(|(_, blob)| blob)
    }

    /// The tag names in ascending order.
    pub fn tag_names(&self) -> Vec<String> {
        self.tags.iter().map(|(tag, _)| tag.clone()).collect()
    }

    /// The `manifests` of the seed's `index.json`: one entry per tag (the tagged descriptor plus
    /// the `ref.name` annotation), then every untagged manifest as a plain descriptor.
    pub fn index_manifests(&self) -> Vec<Descriptor> {
        let mut out: Vec<Descriptor> = Vec::new();
        for (tag, desc) in &self.tags {
            let mut entry = desc.clone();
            let mut annotations = entry.annotations().clone().unwrap_or_default();
            annotations.insert(REF_NAME.to_string(), tag.clone());
            entry.set_annotations(Some(annotations));
            out.push(entry);
        }
        for blob in self.blobs() {
            let tagged = self
                .tags
                .iter()
                .any(|(_, desc)| desc.digest() == blob.desc.digest());
            if is_manifest(&blob.desc) && !tagged {
                out.push(descriptor::plain(&blob.desc));
            }
        }
        out
    }

    /// The seed's `index.json`: compact JSON with sorted keys, always the same bytes.
    pub fn index_json(&self) -> Vec<u8> {
        let manifests: Vec<Value> = self.index_manifests().iter().map(descriptor_json).collect();
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": manifests,
        });
        serde_json::to_vec(&index).unwrap_or_default()
    }

    /// Seeds a writable store: pushes every blob, children first, then applies the tags.
    ///
    /// Errors: those of [`crate::Pusher::push`] and [`crate::Tagger::tag`].
    pub async fn push_to<S: Target + ?Sized>(&self, store: &S) -> Result<()> {
        self.graph.push_to(store).await?;
        for (tag, desc) in &self.tags {
            store.tag(desc, tag).await?;
        }
        Ok(())
    }
}

/// Calls `make` with `seed`: the read-only macro goes through this function so that the closure's
/// argument type is known to be [`Seed`].
pub fn open_seeded<F, Fut, S, G>(make: F, seed: Seed) -> Fut
where
    F: FnOnce(Seed) -> Fut,
    Fut: Future<Output = (S, G)>,
{
    make(seed)
}

/// Every seeded blob exists and fetches (verified) to its bytes; absent content does not exist
/// and fetches to `NotFound`.
pub async fn read_only_fetch_and_exists<S: ReadOnlyConformanceStore + ?Sized>(
    store: &S,
    seed: &Seed,
) {
    for (name, blob) in seed.graph.nodes() {
        match store.exists(&blob.desc).await {
            Ok(true) => {}
            other => panic!(
                "exists({name}) is {:?}, not Ok(true)",
                other.map_err(|e| e.to_string())
            ),
        }
        match fetch_all(store, &blob.desc).await {
            Ok(got) => assert!(got == blob.data, "fetch({name}) returned other bytes"),
            Err(err) => panic!("fetch({name}) failed: {err}"),
        }
    }
    let absent = layer(b"not seeded");
    assert!(
        matches!(store.exists(&absent.desc).await, Ok(false)),
        "exists(absent content) is not Ok(false)"
    );
    expect_err(
        store.fetch(&absent.desc).await,
        ErrorKind::NotFound,
        "fetch of absent content",
    );
}

/// Tags resolve to the descriptor they were tagged with (a `ref.name` annotation aside),
/// manifest digests to plain descriptors, other blobs to `application/octet-stream`; empty is
/// `MissingReference`, anything unknown `NotFound`.
pub async fn read_only_resolve<S: ReadOnlyConformanceStore + ?Sized>(store: &S, seed: &Seed) {
    for (tag, desc) in &seed.tags {
        let got = match store.resolve(tag).await {
            Ok(got) => got,
            Err(err) => panic!("resolve({tag:?}) failed: {err}"),
        };
        assert!(
            descriptor::same_content(&got, desc),
            "resolve({tag:?}) gave {got:?}, seeded {desc:?}"
        );
        let annotations = |d: &Descriptor| -> HashMap<String, String> {
            without_ref_name(d)
                .annotations()
                .clone()
                .unwrap_or_default()
        };
        assert_eq!(
            annotations(&got),
            annotations(desc),
            "annotations of resolve({tag:?})"
        );
    }
    for (name, blob) in seed.graph.nodes() {
        let got = match store.resolve(blob.digest()).await {
            Ok(got) => got,
            Err(err) => panic!("resolve({name} digest) failed: {err}"),
        };
        let expected = if is_manifest(&blob.desc) {
            descriptor::plain(&blob.desc)
        } else {
            Descriptor::new(
                MediaType::from(OCTET_STREAM),
                blob.data.len() as u64,
                blob.desc.digest().clone(),
            )
        };
        assert_eq!(got, expected, "resolve({name} digest)");
    }
    expect_err(
        store.resolve("").await,
        ErrorKind::MissingReference,
        "resolve(\"\")",
    );
    expect_err(
        store.resolve("v3").await,
        ErrorKind::NotFound,
        "resolve of an unknown tag",
    );
    let absent = digest_string(Algorithm::Sha256, b"not seeded");
    expect_err(
        store.resolve(&absent).await,
        ErrorKind::NotFound,
        "resolve of an absent digest",
    );
}

/// `tags(last)` lists the seeded tags in ascending order, strictly after `last`.
pub async fn read_only_tags<S: ReadOnlyConformanceStore + ?Sized>(store: &S, seed: &Seed) {
    let tags = |last: Option<&'static str>| async move {
        match store.tags(last).await {
            Ok(tags) => tags,
            Err(err) => panic!("tags({last:?}) failed: {err}"),
        }
    };
    assert_eq!(seed.tag_names(), ["empty", "latest", "v1", "v2"]);
    assert_eq!(tags(None).await, ["empty", "latest", "v1", "v2"]);
    assert_eq!(tags(Some("")).await, ["empty", "latest", "v1", "v2"]);
    assert_eq!(tags(Some("empty")).await, ["latest", "v1", "v2"]);
    assert_eq!(tags(Some("m")).await, ["v1", "v2"]);
    assert!(tags(Some("v2")).await.is_empty());
}

/// Predecessors of the seeded graph equal the hand-made table; referrers are found with and
/// without an artifact-type filter.
pub async fn read_only_predecessors_and_referrers<S: ReadOnlyConformanceStore + ?Sized>(
    store: &S,
    seed: &Seed,
) {
    assert_graph(store, &seed.graph, &Capabilities::default()).await;
}

/// Malformed digests are `InvalidDigest` on fetch and exists and resolve to `NotFound`; their
/// predecessors are empty (or `InvalidDigest`).
pub async fn read_only_digest_and_reference_errors<S: ReadOnlyConformanceStore + ?Sized>(
    store: &S,
    _seed: &Seed,
) {
    for digest in malformed_digests() {
        let text = digest.to_string();
        let desc = Descriptor::new(MediaType::ImageManifest, 3, digest);
        expect_err(
            store.fetch(&desc).await,
            ErrorKind::InvalidDigest,
            &format!("fetch({text})"),
        );
        expect_err(
            store.exists(&desc).await,
            ErrorKind::InvalidDigest,
            &format!("exists({text})"),
        );
        expect_err(
            store.resolve(&text).await,
            ErrorKind::NotFound,
            &format!("resolve({text:?})"),
        );
        match store.predecessors(&desc).await {
            Ok(list) => assert!(list.is_empty(), "predecessors({text}) is not empty"),
            Err(err) => assert_eq!(
                err.kind(),
                ErrorKind::InvalidDigest,
                "predecessors({text}): {err}"
            ),
        }
    }
    let unknown = layer(b"not seeded");
    match store.predecessors(&unknown.desc).await {
        Ok(list) => assert!(list.is_empty(), "an unknown node has predecessors"),
        Err(err) => panic!("predecessors of an unknown node failed: {err}"),
    }
}
