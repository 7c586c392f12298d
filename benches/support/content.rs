//! The benchmark content, byte for byte as our oras-go v2.6.2 harness (`benches/oras-go`) generates it for
//! oras-go v2.6.2, so that digests, sizes and index entries match its run; and its check values
//! (`--selftest`).
//!
//! Shared by `scenarios.rs`, `copy.rs` and `tests/content.rs` (through `#[path]`).

#![allow(dead_code)]

use bytes::Bytes;
use ocistore::content::descriptor_from_bytes;
use ocistore::digest::Algorithm;
use ocistore::spec::{Descriptor, MediaType};
use std::io;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Small blobs pushed by `push_small_*`.
pub const N_SMALL: usize = 10_000;
/// The size of a small blob and of the shared layer.
pub const SMALL_SIZE: usize = 1024;
/// Images of `tag_manifests`, `copy_*`, `delete_all`, ...
pub const N_IMAGES: usize = 1000;
/// Lookups of `resolve_tags` and `exists_manifests`.
pub const N_LOOKUPS: usize = 100_000;
/// Calls of `predecessors_shared`.
pub const N_PREDS: usize = 10_000;
/// Unreferenced blobs of `gc_dangling`.
pub const N_DANGLING: usize = 5000;
/// The first small-blob number of the unreferenced blobs.
pub const DANGLING_OFFSET: usize = 1_000_000;
/// The generator's period (and the unit of its per-chunk header).
pub const CHUNK: usize = 1 << 20;
/// The size of the big blob.
pub const BIG_SIZE: u64 = 1 << 30;

pub const OCTET: &str = "application/octet-stream";
pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A blob and its descriptor.
#[derive(Clone)]
pub struct Blob {
    pub desc: Descriptor,
    pub data: Bytes,
}

impl Blob {
    fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            desc: descriptor_from_bytes(MediaType::from(media_type), &data),
            data: Bytes::from(data),
        }
    }
}

/// Small blob `i`: byte j = `(i*131 + j*7) & 0xff`, then bytes 0..8 = `i` little-endian.
pub fn small_bytes(i: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..SMALL_SIZE)
        .map(|j| (i.wrapping_mul(131).wrapping_add(j * 7) & 0xff) as u8)
        .collect();
    b[..8].copy_from_slice(&(i as u64).to_le_bytes());
    b
}

/// Small blob `i` as an `application/octet-stream` blob.
pub fn small(i: usize) -> Blob {
    Blob::new(OCTET, small_bytes(i))
}

/// Small blobs `from..from + n`.
pub fn smalls(from: usize, n: usize) -> Vec<Blob> {
    (from..from + n).map(small).collect()
}

/// The layer shared by every image: 1,024 bytes, byte j = `j & 0xff`.
pub fn shared_layer() -> Blob {
    Blob::new(LAYER, (0..SMALL_SIZE).map(|j| (j & 0xff) as u8).collect())
}

/// The config of image `i`.
pub fn config_bytes(i: usize) -> Vec<u8> {
    format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"i":{i}}}"#
    )
    .into_bytes()
}

/// `{"mediaType":..,"digest":..,"size":..}` of `desc`, compact, in that key order.
pub fn desc_json(desc: &Descriptor) -> String {
    format!(
        r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
        desc.media_type(),
        desc.digest(),
        desc.size()
    )
}

/// The manifest of an image with `config` and `layer`.
pub fn manifest_bytes(config: &Descriptor, layer: &Descriptor) -> Vec<u8> {
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{MANIFEST}","config":{},"layers":[{}]}}"#,
        desc_json(config),
        desc_json(layer)
    )
    .into_bytes()
}

/// An OCI index over `manifests` (plain descriptors, in order).
pub fn index_bytes(manifests: &[Descriptor]) -> Vec<u8> {
    let entries: Vec<String> = manifests.iter().map(desc_json).collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{INDEX}","manifests":[{}]}}"#,
        entries.join(",")
    )
    .into_bytes()
}

/// One image: its own config, a manifest over the config and the shared layer, and its tag.
#[derive(Clone)]
pub struct Image {
    pub config: Blob,
    pub manifest: Blob,
    pub tag: String,
}

/// The images of the scenarios: the shared layer and images `0..n`.
pub struct Images {
    pub layer: Blob,
    pub images: Vec<Image>,
}

impl Images {
    /// Generates images `0..n`.
    pub fn new(n: usize) -> Images {
        let layer = shared_layer();
        let images = (0..n)
            .map(|i| {
                let config = Blob::new(CONFIG, config_bytes(i));
                let manifest = Blob::new(MANIFEST, manifest_bytes(&config.desc, &layer.desc));
                Image {
                    config,
                    manifest,
                    tag: format!("t{i:04}"),
                }
            })
            .collect();
        Images { layer, images }
    }

    /// The shared layer plus every config and manifest (482,914 for 1,000 images).
    pub fn bytes(&self) -> u64 {
        self.layer.desc.size()
            + self
                .images
                .iter()
                .map(|im| im.config.desc.size() + im.manifest.desc.size())
                .sum::<u64>()
    }

    /// The index of `copy_index`: over every manifest, plain descriptors in image order.
    pub fn index(&self) -> Blob {
        let manifests: Vec<Descriptor> = self
            .images
            .iter()
            .map(|im| im.manifest.desc.clone())
            .collect();
        Blob::new(INDEX, index_bytes(&manifests))
    }
}

/// Generates the big blob on the fly: byte p = `base[p mod 2^20]`, `base[j] = (j*7 + 13) & 0xff`,
/// except that the first 8 bytes of each 1 MiB chunk k are `k` little-endian. Holds one chunk.
pub struct BigReader {
    pos: u64,
    size: u64,
    chunk: Vec<u8>,
    k: u64,
}

impl BigReader {
    /// A generator of `size` bytes (2^30 for the scenarios).
    pub fn new(size: u64) -> BigReader {
        let mut chunk: Vec<u8> = (0..CHUNK).map(|j| ((j * 7 + 13) & 0xff) as u8).collect();
        chunk[..8].copy_from_slice(&0u64.to_le_bytes());
        BigReader {
            pos: 0,
            size,
            chunk,
            k: 0,
        }
    }

    /// Fills as much of `out` as the content has left; returns the count (0 at the end).
    pub fn fill(&mut self, out: &mut [u8]) -> usize {
        let mut n = 0;
        while n < out.len() && self.pos < self.size {
            let k = self.pos / CHUNK as u64;
            if k != self.k {
                self.chunk[..8].copy_from_slice(&k.to_le_bytes());
                self.k = k;
            }
            let at = (self.pos % CHUNK as u64) as usize;
            let left = (self.size - self.pos).min((CHUNK - at) as u64) as usize;
            let m = left.min(out.len() - n);
            out[n..n + m].copy_from_slice(&self.chunk[at..at + m]);
            n += m;
            self.pos += m as u64;
        }
        n
    }
}

impl io::Read for BigReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl AsyncRead for BigReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The descriptor of the big blob of `size` bytes (hashes the generator: ~0.6 s for 1 GiB).
pub fn big_desc(size: u64) -> Descriptor {
    let mut hasher = Algorithm::Sha256.hasher();
    let mut reader = BigReader::new(size);
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader.fill(&mut buf);
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest = ocistore::spec::Digest::from_str(&hasher.finish()).unwrap();
    Descriptor::new(MediaType::from(LAYER), size, digest)
}

/// The check values (digests) of this content, as `oras-go-bench -selftest` (`benches/oras-go`) prints them.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "small blob 0",
        "sha256:68c877827af5ebfa27e65ac1f0b03ca8dcc64de0a897513e08f8555d16449ac7",
    ),
    (
        "small blob 9999",
        "sha256:a5c3ba974a7f2ca2faf235d5aee955858e38bb48dfd1a9953e4c80eb2598c8b3",
    ),
    (
        "big blob",
        "sha256:87b64f95f58425c4a500b9605d8dd5b16d3c1993c9ea87c741b336a13bbb47d1",
    ),
    (
        "shared layer",
        "sha256:785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9",
    ),
    (
        "image 0 config",
        "sha256:5259cfd7d86a94aeed9487ae9f5c8084da0f6a0d698ed8859b7477f1a156a79a",
    ),
    ("image 0 config size", "84"),
    (
        "image 0 manifest",
        "sha256:35a737384c0972b7d1cb38e5b48f0aa3f5a91a7c35062534add7c5fe706aece1",
    ),
    ("image 0 manifest size", "396"),
    (
        "image 999 manifest",
        "sha256:9c35bb44eb0fb61216cee0761b511772d0e7875591c63ffacb968868c6f27a47",
    ),
    ("image content bytes", "482914"),
    (
        "copy_index index",
        "sha256:d7be044059720d0f8d724464d753370cbada5ea199de231c574f277fdf4d6e91",
    ),
    ("copy_index index size", "153087"),
];

/// Computes every check value (the big blob only when `with_big`: it hashes 1 GiB) and returns
/// `(what, got, want)` for each.
pub fn selftest(with_big: bool) -> Vec<(&'static str, String, &'static str)> {
    let images = Images::new(N_IMAGES);
    let index = images.index();
    let mut out = Vec::new();
    for &(what, want) in CHECKS {
        let got = match what {
            "small blob 0" => small(0).desc.digest().to_string(),
            "small blob 9999" => small(N_SMALL - 1).desc.digest().to_string(),
            "big blob" if with_big => big_desc(BIG_SIZE).digest().to_string(),
            "big blob" => continue,
            "shared layer" => images.layer.desc.digest().to_string(),
            "image 0 config" => images.images[0].config.desc.digest().to_string(),
            "image 0 config size" => images.images[0].config.desc.size().to_string(),
            "image 0 manifest" => images.images[0].manifest.desc.digest().to_string(),
            "image 0 manifest size" => images.images[0].manifest.desc.size().to_string(),
            "image 999 manifest" => images.images[N_IMAGES - 1]
                .manifest
                .desc
                .digest()
                .to_string(),
            "image content bytes" => images.bytes().to_string(),
            "copy_index index" => index.desc.digest().to_string(),
            "copy_index index size" => index.desc.size().to_string(),
            _ => unreachable!("unknown check {what}"),
        };
        out.push((what, got, want));
    }
    out
}
