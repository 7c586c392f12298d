//! Micro-benchmarks of the hot paths behind the scenarios (criterion):
//!
//! - `verify_reader`: reading 64 MiB through `VerifyReader` (SHA-256 as it passes) beside raw
//!   `sha2` SHA-256 of the same bytes: the reader's overhead over the hash itself;
//! - `resolver`: `MemoryResolver` resolve of a random tag among 1,000, and tag (a move);
//! - `graph`: `MemoryGraph` insert of 1,000 manifests sharing one layer, and predecessors of
//!   that layer (1,000 descriptors);
//! - `index_json`: through the public API, `Store::open` of a layout whose `index.json` holds
//!   10,000 tagged manifests (decode, load, graph indexing) and `save_index` of 10,000 entries
//!   after one change (encode and write), relaxed (no fsync).
//!
//! `cargo bench -p ocistore-benches --bench micro [-- FILTER]`

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ocistore::autosave::AutoSave;
use ocistore::content::{descriptor_from_bytes, push_bytes, VerifyReader};
use ocistore::fs::{Store, StoreOptions};
use ocistore::implementors::graph::MemoryGraph;
use ocistore::implementors::resolver::MemoryResolver;
use ocistore::spec::{Descriptor, MediaType};
use ocistore::Tagger;
use sha2::Digest as _;
use std::hint::black_box;
use std::time::Duration;
use tokio::io::AsyncReadExt;

const MIB: usize = 1 << 20;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|j| ((j * 7 + 13) & 0xff) as u8).collect()
}

fn verify_reader(c: &mut Criterion) {
    let data = pattern(64 * MIB);
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    let rt = runtime();
    let mut group = c.benchmark_group("verify_reader");
    group.throughput(Throughput::Bytes(data.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("raw_sha2_64MiB", |b| {
        b.iter(|| black_box(sha2::Sha256::digest(black_box(&data[..]))))
    });
    group.bench_function("verify_reader_64MiB", |b| {
        let mut buf = vec![0u8; MIB];
        b.iter(|| {
            rt.block_on(async {
                let mut reader = VerifyReader::new(&data[..], &desc).unwrap();
                loop {
                    let n = reader.read(&mut buf).await.unwrap();
                    if n == 0 {
                        break;
                    }
                }
            })
        })
    });
    group.finish();
}

fn manifest(i: usize) -> Descriptor {
    descriptor_from_bytes(MediaType::ImageManifest, format!("manifest {i}").as_bytes())
}

fn resolver(c: &mut Criterion) {
    let resolver = MemoryResolver::new();
    let descs: Vec<Descriptor> = (0..1000).map(manifest).collect();
    let tags: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    for (desc, tag) in descs.iter().zip(&tags) {
        resolver.tag(desc.clone(), desc.digest().as_ref());
        resolver.tag(desc.clone(), tag);
    }
    let mut group = c.benchmark_group("resolver");
    let mut k = 0usize;
    group.bench_function("resolve_random_tag_of_1000", |b| {
        b.iter(|| {
            k = (k + 7919) % 1000;
            black_box(resolver.resolve(&tags[k]))
        })
    });
    let mut i = 0usize;
    group.bench_function("tag_move", |b| {
        b.iter(|| {
            i += 1;
            resolver.tag(descs[i % 1000].clone(), &tags[(i * 31) % 1000])
        })
    });
    group.finish();
}

fn graph(c: &mut Criterion) {
    let layer = descriptor_from_bytes(MediaType::ImageLayer, &[1u8; 1024]);
    let nodes: Vec<(Descriptor, Vec<Descriptor>)> = (0..1000)
        .map(|i| {
            let config = descriptor_from_bytes(MediaType::ImageConfig, format!("{i}").as_bytes());
            (manifest(i), vec![config, layer.clone()])
        })
        .collect();
    let mut group = c.benchmark_group("graph");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("insert_1000_manifests", |b| {
        b.iter_batched(
            MemoryGraph::new,
            |graph| {
                for (node, successors) in &nodes {
                    graph.insert(node, successors.clone());
                }
                graph
            },
            BatchSize::SmallInput,
        )
    });
    let graph = MemoryGraph::new();
    for (node, successors) in &nodes {
        graph.insert(node, successors.clone());
    }
    group.bench_function("predecessors_of_layer_shared_by_1000", |b| {
        b.iter(|| black_box(graph.predecessors(&layer)))
    });
    group.finish();
}

/// A layout with `n` tagged images (one config each, one shared layer), saved once.
async fn layout_with(dir: &std::path::Path, n: usize) {
    let store = Store::open_with(
        dir,
        StoreOptions::default()
            .durable(false)
            .autosave(AutoSave::Manual),
    )
    .await
    .unwrap();
    let layer_bytes = vec![0u8; 1024];
    let layer = descriptor_from_bytes(MediaType::ImageLayer, &layer_bytes);
    push_bytes(&store, &layer, layer_bytes).await.unwrap();
    for i in 0..n {
        let config_bytes = format!(r#"{{"i":{i}}}"#).into_bytes();
        let config = descriptor_from_bytes(MediaType::ImageConfig, &config_bytes);
        push_bytes(&store, &config, config_bytes).await.unwrap();
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
            config.media_type(),
            config.digest(),
            config.size(),
            layer.media_type(),
            layer.digest(),
            layer.size()
        );
        let desc = descriptor_from_bytes(MediaType::ImageManifest, body.as_bytes());
        push_bytes(&store, &desc, body.into_bytes()).await.unwrap();
        store.tag(&desc, &format!("t{i:05}")).await.unwrap();
    }
    store.close().await.unwrap();
}

fn index_json(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(layout_with(dir.path(), 10_000));
    let relaxed = StoreOptions::default().durable(false);
    let mut group = c.benchmark_group("index_json");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("open_10000_entries", |b| {
        b.iter(|| {
            rt.block_on(async {
                let store = Store::open_with(dir.path(), relaxed).await.unwrap();
                black_box(&store);
                store.close().await.unwrap();
            })
        })
    });
    let store = rt.block_on(Store::open_with(
        dir.path(),
        relaxed.autosave(AutoSave::Manual),
    ));
    let store = store.unwrap();
    let some = rt
        .block_on(ocistore::Resolver::resolve(&store, "t00000"))
        .unwrap();
    let mut flip = false;
    group.bench_function("save_10000_entries_after_one_tag", |b| {
        b.iter(|| {
            flip = !flip;
            let tag = if flip { "extra-a" } else { "extra-b" };
            rt.block_on(async {
                store.tag(&some, tag).await.unwrap();
                store.save_index().await.unwrap();
            })
        })
    });
    group.finish();
    // `Store::resolve` of a tag, the hot read path of resolve_tags in the scenario bench, batched
    // so the runtime's block_on is not what is measured.
    let tags: Vec<String> = (0..1000).map(|i| format!("t{:05}", i * 7)).collect();
    let mut group = c.benchmark_group("store");
    group.throughput(Throughput::Elements(tags.len() as u64));
    group.bench_function("resolve_1000_tags_of_10000", |b| {
        b.iter(|| {
            rt.block_on(async {
                for tag in &tags {
                    black_box(ocistore::Resolver::resolve(&store, tag).await.unwrap());
                }
            })
        })
    });
    group.finish();
    rt.block_on(store.close()).unwrap();
}

criterion_group!(benches, verify_reader, resolver, graph, index_json);
criterion_main!(benches);
