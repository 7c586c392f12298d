//! The content the copy checks run on ([`CopyFixture`]).

use super::fixtures::{artifact, image_index, image_manifest, layer, Blob, SBOM_TYPE};
use crate::descriptor::{OCI_CONFIG, OCI_INDEX};
use crate::error::Result;
use crate::traits::Target;
use oci_spec::image::Descriptor;
use serde_json::{json, Value};

pub use super::fixtures::SIGNATURE_TYPE;

/// The artifact type of the SBOM referrer of `app` (an artifact manifest).
pub const SBOM: &str = SBOM_TYPE;

/// Everything the copy checks copy, in four groups, children before parents.
///
/// **The 11-node graph** (tag `graph` → `root`): `config`, `layer1`..`layer3`, `manifest1`
/// (config, layer1), `manifest2` (config, layer1, layer2), `manifest3` (config, layer2, layer3),
/// `index1` (manifest1, manifest2), `index2` (manifest2, manifest3), `index3` (manifest3),
/// `root` (index1, index2, index3). Every manifest shares `config`, two share each of
/// `layer1` and `layer2`, and `manifest2`/`manifest3` each have two parent indexes.
///
/// **Platforms** (tag `multi` → `multi`, `amd64-image` → `amd64`): `multi` is an index of
/// `amd64` (linux/amd64), `arm64` (linux/arm64/v8) and `windows` (windows/amd64, os.version
/// 10.0.17763.1, os.features win32k), each with its own config (`amd64-config`, ...) whose
/// platform fields agree, and its own layer (`amd64-layer`, ...).
///
/// **Referrers** (tag `app` → `app`): `app` (manifest of `app-config`, `app-layer`);
/// `app-index` (index of `app`); `sbom` (artifact manifest of type [`SBOM`] on `app`, listing
/// `sbom-blob`; see [`CopyFixture::with_artifact_manifest`]); `signature` (image manifest on `app` whose config `sig-config` has media type
/// [`SIGNATURE_TYPE`]); `sig-of-sig` (the same kind on `signature`, config `sig2-config`).
#[derive(Debug, Clone)]
pub struct CopyFixture {
    nodes: Vec<(&'static str, Blob)>,
    tags: Vec<(&'static str, &'static str)>,
}

impl Default for CopyFixture {
    fn default() -> Self {
        Self::new()
    }
}

/// The names of the 11-node graph, children first.
pub const GRAPH: [&str; 11] = [
    "config",
    "layer1",
    "layer2",
    "layer3",
    "manifest1",
    "manifest2",
    "manifest3",
    "index1",
    "index2",
    "index3",
    "root",
];

/// The manifests (and indexes) of the 11-node graph.
pub const GRAPH_MANIFESTS: [&str; 7] = [
    "manifest1",
    "manifest2",
    "manifest3",
    "index1",
    "index2",
    "index3",
    "root",
];

fn json_blob(media_type: &str, value: Value) -> Blob {
    Blob::new(media_type, serde_json::to_vec(&value).unwrap_or_default())
}

fn platform_config(platform: Value, label: &str) -> Blob {
    let mut body = platform;
    if let Some(fields) = body.as_object_mut() {
        fields.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
        fields.insert(
            "config".into(),
            json!({"Labels": {"org.example.label": label}}),
        );
    }
    json_blob(OCI_CONFIG, body)
}

impl CopyFixture {
    /// Builds the content (always the same bytes).
    pub fn new() -> CopyFixture {
        CopyFixture::with_artifact_manifest(true)
    }

    /// Builds the content with `sbom` an OCI artifact manifest when `artifact_manifest`, else
    /// an image manifest of artifact type [`SBOM`] whose config is `sbom-blob` (for a store
    /// refusing the withdrawn artifact manifest; same names, same edges).
    pub fn with_artifact_manifest(artifact_manifest: bool) -> CopyFixture {
        let mut nodes: Vec<(&'static str, Blob)> = Vec::new();
        let mut add = |name: &'static str, blob: Blob| -> Descriptor {
            let desc = blob.desc.clone();
            nodes.push((name, blob));
            desc
        };

        // The 11-node graph.
        let config = add(
            "config",
            super::fixtures::config("linux", "amd64", "copy graph"),
        );
        let l1 = add("layer1", layer(b"copy layer one\n"));
        let l2 = add("layer2", layer(b"copy layer two\n"));
        let l3 = add("layer3", layer(b"copy layer three\n"));
        let m1 = add(
            "manifest1",
            image_manifest(&config, std::slice::from_ref(&l1), None, None, &[]),
        );
        let m2 = add(
            "manifest2",
            image_manifest(&config, &[l1, l2.clone()], None, None, &[]),
        );
        let m3 = add(
            "manifest3",
            image_manifest(&config, &[l2, l3], None, None, &[]),
        );
        let i1 = add("index1", image_index(&[m1, m2.clone()], None, &[]));
        let i2 = add("index2", image_index(&[m2, m3.clone()], None, &[]));
        let i3 = add("index3", image_index(&[m3], None, &[]));
        add("root", image_index(&[i1, i2, i3], None, &[]));

        // Platforms.
        let platforms = [
            ("amd64", json!({"architecture": "amd64", "os": "linux"})),
            (
                "arm64",
                json!({"architecture": "arm64", "os": "linux", "variant": "v8"}),
            ),
            (
                "windows",
                json!({"architecture": "amd64", "os": "windows",
                       "os.version": "10.0.17763.1", "os.features": ["win32k"]}),
            ),
        ];
        let mut entries = Vec::new();
        for (name, platform) in platforms {
            let (config_name, layer_name) = match name {
                "amd64" => ("amd64-config", "amd64-layer"),
                "arm64" => ("arm64-config", "arm64-layer"),
                _ => ("windows-config", "windows-layer"),
            };
            let config = add(config_name, platform_config(platform.clone(), name));
            let layer = add(layer_name, layer(format!("{name} layer\n").as_bytes()));
            let manifest = add(name, image_manifest(&config, &[layer], None, None, &[]));
            entries.push(json!({
                "mediaType": manifest.media_type().as_ref(),
                "digest": manifest.digest().as_ref(),
                "size": manifest.size(),
                "platform": platform,
            }));
        }
        add(
            "multi",
            json_blob(
                OCI_INDEX,
                json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}),
            ),
        );

        // Referrers.
        let app_config = add(
            "app-config",
            super::fixtures::config("linux", "amd64", "app"),
        );
        let app_layer = add("app-layer", layer(b"app layer\n"));
        let app = add(
            "app",
            image_manifest(&app_config, &[app_layer], None, None, &[]),
        );
        add(
            "app-index",
            image_index(std::slice::from_ref(&app), None, &[]),
        );
        let sbom_blob = add(
            "sbom-blob",
            Blob::new(
                "application/spdx+json",
                &br#"{"spdxVersion":"SPDX-2.3","app":1}"#[..],
            ),
        );
        add(
            "sbom",
            artifact(artifact_manifest, SBOM, &sbom_blob, Some(&app), &[]),
        );
        let sig_config = add(
            "sig-config",
            Blob::new(SIGNATURE_TYPE, &br#"{"signed":"app"}"#[..]),
        );
        let signature = add(
            "signature",
            image_manifest(&sig_config, &[], Some(&app), None, &[]),
        );
        let sig2_config = add(
            "sig2-config",
            Blob::new(SIGNATURE_TYPE, &br#"{"signed":"signature"}"#[..]),
        );
        add(
            "sig-of-sig",
            image_manifest(&sig2_config, &[], Some(&signature), None, &[]),
        );

        CopyFixture {
            nodes,
            tags: vec![
                ("graph", "root"),
                ("multi", "multi"),
                ("amd64-image", "amd64"),
                ("app", "app"),
            ],
        }
    }

    /// Every node with its name, children before parents.
    pub fn nodes(&self) -> &[(&'static str, Blob)] {
        &self.nodes
    }

    /// (tag, node name) of every tag.
    pub fn tags(&self) -> &[(&'static str, &'static str)] {
        &self.tags
    }

    /// The node called `name`.
    ///
    /// # Panics
    /// When no node has that name (a typo in a test).
    pub fn get(&self, name: &str) -> &Blob {
        match self.nodes.iter().find(|(n, _)| *n == name) {
            Some((_, blob)) => blob,
            None => panic!("testkit: the copy fixture has no node called {name:?}"),
        }
    }

    /// The descriptor of the node called `name` (panics like [`CopyFixture::get`]).
    pub fn desc(&self, name: &str) -> Descriptor {
        self.get(name).desc.clone()
    }

    /// The digest of the node called `name` (panics like [`CopyFixture::get`]).
    pub fn digest(&self, name: &str) -> String {
        self.get(name).digest().to_string()
    }

    /// The name of the node whose digest is `digest`.
    pub fn name_of(&self, digest: &str) -> Option<&'static str> {
        self.nodes
            .iter()
            .find(|(_, blob)| blob.digest() == digest)
            .map(|(name, _)| *name)
    }

    /// The names of the nodes whose digests are listed, in the same order (`?` for unknown).
    pub fn names(&self, digests: &[String]) -> Vec<&'static str> {
        digests
            .iter()
            .map(|d| self.name_of(d).unwrap_or("?"))
            .collect()
    }

    /// The names of the direct successors of the node called `name`, as its body lists them.
    pub fn successors(&self, name: &str) -> Vec<&'static str> {
        let blob = self.get(name);
        let found = crate::manifest::parse_successors(
            blob.digest(),
            blob.desc.media_type().as_ref(),
            &blob.data,
        )
        .unwrap_or_default();
        found
            .iter()
            .map(|d| self.name_of(d.digest().as_ref()).unwrap_or("?"))
            .collect()
    }

    /// Pushes every node into `store`, children first, then sets every tag.
    ///
    /// Errors: those of [`crate::Pusher::push`] and [`crate::Tagger::tag`].
    pub async fn push_to(&self, store: &(impl Target + ?Sized)) -> Result<()> {
        for (_, blob) in &self.nodes {
            blob.push_to(store).await?;
        }
        for (tag, name) in &self.tags {
            store.tag(&self.get(name).desc, tag).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_is_stable_and_distinct() {
        let fixture = CopyFixture::new();
        let mut digests: Vec<&str> = fixture.nodes().iter().map(|(_, b)| b.digest()).collect();
        let count = digests.len();
        digests.sort_unstable();
        digests.dedup();
        assert_eq!(digests.len(), count, "every node is distinct content");
        assert_eq!(count, 11 + 10 + 10);
        assert_eq!(CopyFixture::new().nodes(), fixture.nodes());
        assert_eq!(fixture.successors("root"), ["index1", "index2", "index3"]);
        assert_eq!(
            fixture.successors("manifest2"),
            ["config", "layer1", "layer2"]
        );
        assert_eq!(
            fixture.successors("sig-of-sig"),
            ["signature", "sig2-config"]
        );
        assert_eq!(fixture.successors("multi"), ["amd64", "arm64", "windows"]);
    }
}
