//! Shared helpers: sample content (a two-platform index, an image with a referrer), raw tar
//! building for bad input, and a layout store with no gc grace.
#![allow(dead_code)]

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType, Platform, PlatformBuilder};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use store_core::content::{self, Bytes};
use store_core::memory::MemoryStore;
use store_core::{Pusher, Tagger};
use store_fs::{Store, StoreOptions};

/// The tags of [`sample`].
pub const TAGS: [&str; 2] = ["app:v1", "multi"];

/// A memory store with `app:v1` (an image with a signature-like referrer, and a layer of
/// `big` bytes) and `multi` (an index of two platform images).
pub async fn sample(big: usize) -> (MemoryStore, Descriptor) {
    let store = MemoryStore::new();
    let layer = Bytes::from((0..big).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let image = content::push_image(
        &store,
        MediaType::ImageConfig,
        Bytes::from_static(
            br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#,
        ),
        [(MediaType::ImageLayer, layer)],
        Some(HashMap::from([
            ("b.key".to_string(), "2".to_string()),
            ("a.key".to_string(), "1".to_string()),
        ])),
    )
    .await
    .unwrap();
    store.tag(&image, TAGS[0]).await.unwrap();
    content::push_artifact(
        &store,
        "application/vnd.example.signature",
        [(
            MediaType::Other("application/vnd.example.sig".into()),
            Bytes::from_static(b"signed"),
        )],
        Some(&image),
        None,
    )
    .await
    .unwrap();
    let mut children = Vec::new();
    for (arch, payload) in [
        ("amd64", &b"amd64 layer"[..]),
        ("arm64", &b"arm64 layer"[..]),
    ] {
        let config = format!(
            r#"{{"architecture":"{arch}","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}}}}"#
        );
        let mut child = content::push_image(
            &store,
            MediaType::ImageConfig,
            Bytes::from(config.into_bytes()),
            [(MediaType::ImageLayer, Bytes::from_static(payload))],
            None,
        )
        .await
        .unwrap();
        let platform: Platform = PlatformBuilder::default()
            .architecture(arch)
            .os("linux")
            .build()
            .unwrap();
        child.set_platform(Some(platform));
        children.push(child);
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(children)
        .build()
        .unwrap();
    let body = serde_json::to_vec(&index).unwrap();
    let index_desc = content::descriptor_from_bytes(MediaType::ImageIndex, &body);
    store
        .push(&index_desc, content::reader_from_bytes(body))
        .await
        .unwrap();
    store.tag(&index_desc, TAGS[1]).await.unwrap();
    (store, image)
}

/// A layout store at `root` whose gc removes garbage at once.
pub async fn layout(root: &Path) -> Store {
    Store::open_with(root, StoreOptions::default().gc_grace(Duration::ZERO))
        .await
        .unwrap()
}

/// A raw tar built entry by entry, any name and type allowed.
#[derive(Default)]
pub struct RawTar {
    pub bytes: Vec<u8>,
}

impl RawTar {
    /// Appends an entry named `name` (ustar, at most 100 bytes) of type `flag` with `data`.
    pub fn entry(&mut self, name: &str, flag: u8, data: &[u8]) -> &mut Self {
        self.entry_declaring(name, flag, data, data.len() as u64)
    }

    /// Appends an entry whose header declares `size` while `data` is what follows it.
    pub fn entry_declaring(&mut self, name: &str, flag: u8, data: &[u8], size: u64) -> &mut Self {
        let mut block = [0u8; 512];
        block[..name.len()].copy_from_slice(name.as_bytes());
        block[100..108].copy_from_slice(b"0000644\0");
        block[108..116].copy_from_slice(b"0000000\0");
        block[116..124].copy_from_slice(b"0000000\0");
        if size > 0o777_7777_7777 {
            // GNU base-256, as tar writes sizes of 8 GiB and more.
            block[124] = 0x80;
            block[128..136].copy_from_slice(&size.to_be_bytes());
        } else {
            block[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        }
        block[136..148].copy_from_slice(b"00000000000\0");
        block[156] = flag;
        if flag == b'2' || flag == b'1' {
            block[157..157 + 10].copy_from_slice(b"oci-layout");
        }
        block[257..263].copy_from_slice(b"ustar\0");
        block[263..265].copy_from_slice(b"00");
        block[148..156].fill(b' ');
        let sum: u64 = block.iter().map(|b| u64::from(*b)).sum();
        block[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.bytes.extend_from_slice(&block);
        self.bytes.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// The end-of-archive marker.
    pub fn end(&mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&[0u8; 1024]);
        std::mem::take(&mut self.bytes)
    }
}

/// `blobs/sha256/<hex>` of `data`, and its digest string.
pub fn blob_name(data: &[u8]) -> (String, String) {
    let digest = store_core::digest::sha256_of(data).to_string();
    let hex = digest.trim_start_matches("sha256:").to_string();
    (format!("blobs/sha256/{hex}"), digest)
}
