//! Helpers shared by the store-fs integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use oci_spec::image::{Descriptor, MediaType};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use store_core::content::{descriptor_from_bytes, push_bytes};
use store_core::Pusher;

pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The repository's fixture layouts (`tests/fixtures/`, written by its `regenerate.sh`); tests
/// that may write work on a copy.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// Copies a directory tree (the fixtures are read-only; stores that may write need a copy).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

/// Every file under `dir`, relative, sorted.
pub fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    fn walk(base: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                walk(base, &path, out);
            } else {
                out.insert(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out
}

pub fn desc(media_type: &str, data: &[u8]) -> Descriptor {
    descriptor_from_bytes(MediaType::from(media_type), data)
}

fn desc_json(d: &Descriptor) -> String {
    format!(
        r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
        d.media_type(),
        d.digest(),
        d.size()
    )
}

/// A small image: config, one layer, manifest (bytes and descriptors).
pub struct Image {
    pub config: (Descriptor, Bytes),
    pub layer: (Descriptor, Bytes),
    pub manifest: (Descriptor, Bytes),
}

impl Image {
    pub fn new(n: u32, layer_bytes: &[u8]) -> Image {
        let config_bytes = Bytes::from(format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"n":{n}}}"#
        ));
        let config = desc(CONFIG, &config_bytes);
        let layer = desc(LAYER, layer_bytes);
        let manifest_bytes = Bytes::from(format!(
            r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{}]}}"#,
            desc_json(&config),
            desc_json(&layer)
        ));
        Image {
            config: (config, config_bytes),
            layer: (layer, Bytes::copy_from_slice(layer_bytes)),
            manifest: (desc(MANIFEST, &manifest_bytes), manifest_bytes),
        }
    }

    /// Pushes config, layer (AlreadyExists tolerated) and manifest.
    pub async fn push(&self, store: &(impl Pusher + ?Sized)) {
        for (d, b) in [&self.config, &self.layer, &self.manifest] {
            match push_bytes(store, d, b.clone()).await {
                Ok(()) => {}
                Err(e) if e.kind() == store_core::ErrorKind::AlreadyExists => {}
                Err(e) => panic!("push {}: {e}", d.digest()),
            }
        }
    }
}

/// An index over `children` (plus an optional subject).
pub fn index_of(children: &[&Descriptor], subject: Option<&Descriptor>) -> (Descriptor, Bytes) {
    let list: Vec<String> = children.iter().map(|d| desc_json(d)).collect();
    let subject = subject
        .map(|s| format!(r#","subject":{}"#, desc_json(s)))
        .unwrap_or_default();
    let body = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{}]{subject}}}"#,
        list.join(",")
    ));
    (desc(INDEX, &body), body)
}

/// An artifact (image manifest with artifactType and the empty config) referring to `subject`.
pub fn referrer_of(subject: &Descriptor, blob: &Descriptor) -> (Descriptor, Bytes) {
    let empty = desc("application/vnd.oci.empty.v1+json", b"{}");
    let body = Bytes::from(format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","artifactType":"application/vnd.example.sig","config":{},"layers":[{}],"subject":{}}}"#,
        desc_json(&empty),
        desc_json(blob),
        desc_json(subject)
    ));
    (desc(MANIFEST, &body), body)
}

/// The parsed index.json of a layout.
pub fn index_json(root: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap()
}
