//! The delete cascade's cost against the size of the manifest: a manifest of N layers and one of
//! 4N, each deleted twice over: first while a second manifest still lists every layer (the
//! cascade visits and counts every edge but removes only the manifest: its own cost, under the
//! exclusive gate), then the second manifest (every layer goes: the cascade plus N unlinks).
//!
//! `cargo bench -p ocistore-benches --bench cascade -- [--n N] [--rounds R]` (default N = 7000,
//! R = 3) prints one JSON line per size,
//! `{"layers":..,"cascade_ms":..,"cascade_and_unlinks_ms":..}` (the fastest of R rounds, each on a fresh layout: the lowest figure is the one least disturbed
//! by other load), and the ratios of the 4N figures to the N ones (about 4 when the cascade is
//! linear). Relaxed (`durable(false)`), default gc grace (the in-flight checks run).

use ocistore::content::{descriptor_from_bytes, push_bytes};
use ocistore::fs::{Store, StoreOptions};
use ocistore::spec::{Descriptor, MediaType};
use ocistore::{Deleter, Tagger};
use std::time::Instant;

/// A short layer media type: 28k layer descriptors must fit the 4 MiB manifest limit.
const LAYER_TYPE: &str = "application/octet-stream";

fn desc_json(d: &Descriptor) -> String {
    format!(
        r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#,
        d.media_type(),
        d.digest(),
        d.size()
    )
}

fn manifest(config: &Descriptor, layers: &[Descriptor], which: &str) -> (Descriptor, Vec<u8>) {
    let layers: Vec<String> = layers.iter().map(desc_json).collect();
    let body = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[{}],"annotations":{{"which":"{which}"}}}}"#,
        desc_json(config),
        layers.join(",")
    )
    .into_bytes();
    (descriptor_from_bytes(MediaType::ImageManifest, &body), body)
}

/// Milliseconds of (deleting a manifest whose layers another one still lists, deleting that one).
async fn measure(n: usize) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(dir.path(), StoreOptions::default().durable(false))
        .await
        .unwrap();
    let config_bytes =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config = descriptor_from_bytes(MediaType::ImageConfig, config_bytes);
    push_bytes(&store, &config, config_bytes.to_vec())
        .await
        .unwrap();
    let mut layers = Vec::with_capacity(n);
    for i in 0..n {
        let bytes = (i as u64).to_le_bytes().to_vec();
        let layer = descriptor_from_bytes(MediaType::Other(LAYER_TYPE.into()), &bytes);
        push_bytes(&store, &layer, bytes).await.unwrap();
        layers.push(layer);
    }
    let (first, first_body) = manifest(&config, &layers, "first");
    let (second, second_body) = manifest(&config, &layers, "second");
    push_bytes(&store, &first, first_body).await.unwrap();
    push_bytes(&store, &second, second_body).await.unwrap();
    store.tag(&first, "first").await.unwrap();
    store.tag(&second, "second").await.unwrap();

    let start = Instant::now();
    store.delete(&first).await.unwrap();
    let cascade = start.elapsed().as_secs_f64() * 1e3;
    let start = Instant::now();
    store.delete(&second).await.unwrap();
    let with_unlinks = start.elapsed().as_secs_f64() * 1e3;
    (cascade, with_unlinks)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args
        .iter()
        .position(|a| a == "--n")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(7_000usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(3usize);
    let mut figures = Vec::new();
    for layers in [n, 4 * n] {
        let (mut cascade, mut with_unlinks) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..rounds.max(1) {
            let (one, two) = runtime.block_on(measure(layers));
            cascade = cascade.min(one);
            with_unlinks = with_unlinks.min(two);
        }
        println!(
            r#"{{"layers":{layers},"cascade_ms":{cascade:.1},"cascade_and_unlinks_ms":{with_unlinks:.1}}}"#
        );
        figures.push((cascade, with_unlinks));
    }
    println!(
        r#"{{"ratio_4n_to_n":{{"cascade":{:.2},"cascade_and_unlinks":{:.2}}}}}"#,
        figures[1].0 / figures[0].0,
        figures[1].1 / figures[0].1
    );
}
