//! Quickstart: push a small image (config, one layer, manifest) into a store, tag it `v1`,
//! resolve the tag, and list what points at the layer.
//!
//! Run it with `cargo run --example quickstart`.

use ocistore::content::{descriptor_from_bytes, fetch_all, push_bytes};
use ocistore::memory::MemoryStore;
use ocistore::spec::MediaType;
use ocistore::{PredecessorFinder, Resolver, TagLister, Tagger};

#[tokio::main]
async fn main() -> ocistore::Result<()> {
    let store = MemoryStore::new();

    // The content: a layer, an image config, and the manifest that lists them. Manifests are
    // JSON; here the text is written out so its bytes (and digest) are fixed.
    let layer = b"hello from ocistore\n".to_vec();
    let layer_desc = descriptor_from_bytes(MediaType::ImageLayer, &layer);
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec();
    let config_desc = descriptor_from_bytes(MediaType::ImageConfig, &config);
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":{}}},"layers":[{{"mediaType":"{}","digest":"{}","size":{}}}]}}"#,
        MediaType::ImageManifest,
        MediaType::ImageConfig,
        config_desc.digest(),
        config_desc.size(),
        MediaType::ImageLayer,
        layer_desc.digest(),
        layer_desc.size(),
    );
    let manifest_desc = descriptor_from_bytes(MediaType::ImageManifest, manifest.as_bytes());

    // Push children first; every push verifies size and digest before storing anything.
    for (what, desc, data) in [
        ("layer", &layer_desc, layer),
        ("config", &config_desc, config),
        ("manifest", &manifest_desc, manifest.into_bytes()),
    ] {
        push_bytes(&store, desc, data).await?;
        println!("pushed {what:<8} {} ({} bytes)", desc.digest(), desc.size());
    }

    store.tag(&manifest_desc, "v1").await?;
    println!("tagged   {} as v1", manifest_desc.digest());

    let resolved = store.resolve("v1").await?;
    println!(
        "resolved v1 -> {} {} ({} bytes)",
        resolved.media_type(),
        resolved.digest(),
        resolved.size()
    );
    let body = fetch_all(&store, &resolved).await?;
    println!("fetched  the manifest back: {} verified bytes", body.len());

    let predecessors = store.predecessors(&layer_desc).await?;
    println!("the layer has {} predecessor(s):", predecessors.len());
    for node in &predecessors {
        println!("  {} {}", node.media_type(), node.digest());
    }

    println!("tags: {:?}", store.tags(None).await?);
    Ok(())
}
