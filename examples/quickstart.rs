//! Quickstart: write a small image (a real tar layer, its config, the manifest) into an OCI image
//! layout directory, tag it `v1`, attach an SBOM to it (an artifact whose `subject` is the image),
//! reopen the layout, resolve the tag, fetch the manifest back verified, and list what points at
//! the layer and the image's referrers.
//!
//! `cargo run --example quickstart -- [DIR]` (default: a new temporary directory, which is kept
//! and printed). The layout it leaves is a plain OCI image layout that other tools read, e.g.
//! `skopeo inspect --raw oci:DIR:v1` or `umoci unpack --image DIR:v1 bundle`.

use ocistore::content::{
    descriptor_from_bytes, fetch_all, push_artifact, push_bytes, referrers, Bytes,
};
use ocistore::fs::Store;
use ocistore::spec::{Descriptor, MediaType};
use ocistore::{ErrorKind, PredecessorFinder, Pusher, TagLister, Tagger};
use std::path::PathBuf;

/// An uncompressed tar holding one file, `hello.txt`.
fn layer_tar() -> std::io::Result<Vec<u8>> {
    let text = b"hello from ocistore\n";
    let mut header = tar::Header::new_ustar();
    header.set_path("hello.txt")?;
    header.set_size(text.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &text[..])?;
    builder.into_inner()
}

/// Pushes `data`, treating content that is already there (a second run) as success.
async fn push(
    store: &impl Pusher,
    what: &str,
    desc: &Descriptor,
    data: Vec<u8>,
) -> ocistore::Result<()> {
    match push_bytes(store, desc, data).await {
        Ok(()) => println!(
            "pushed   {what:<8} {} ({} bytes)",
            desc.digest(),
            desc.size()
        ),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            println!(
                "present  {what:<8} {} ({} bytes)",
                desc.digest(),
                desc.size()
            )
        }
        Err(e) => return Err(e),
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => PathBuf::from(dir),
        None => tempfile::Builder::new()
            .prefix("ocistore-quickstart-")
            .tempdir()?
            .keep(),
    };
    let store = Store::open(&dir).await?;
    println!("layout   {}", store.root().display());

    let layer = layer_tar()?;
    let layer_desc = descriptor_from_bytes(MediaType::ImageLayer, &layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
        layer_desc.digest()
    )
    .into_bytes();
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
    )
    .into_bytes();
    let manifest_desc = descriptor_from_bytes(MediaType::ImageManifest, &manifest);

    // Children first; every push is verified (size and digest) before it becomes visible.
    push(&store, "layer", &layer_desc, layer).await?;
    push(&store, "config", &config_desc, config).await?;
    push(&store, "manifest", &manifest_desc, manifest).await?;
    store.tag(&manifest_desc, "v1").await?;
    println!("tagged   {} as v1", manifest_desc.digest());

    // An artifact pointing at the image: the manifest is built and pushed for us.
    let sbom = Bytes::from_static(br#"{"spdxVersion":"SPDX-2.3","name":"hello"}"#);
    let sbom_type = "application/spdx+json";
    let sbom_desc = push_artifact(
        &store,
        sbom_type,
        [(MediaType::Other(sbom_type.into()), sbom)],
        Some(&manifest_desc),
        None,
    )
    .await?;
    println!("attached {} (an SBOM) to v1", sbom_desc.digest());
    store.close().await?;

    // Everything is on disk: a fresh open sees it.
    let store = Store::open(&dir).await?;
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
    for referrer in referrers(&store, &resolved, None).await? {
        let kind = referrer.artifact_type().as_ref().map(ToString::to_string);
        println!(
            "referrer {} {}",
            referrer.digest(),
            kind.unwrap_or_default()
        );
    }
    println!("tags: {:?}", store.tags(None).await?);
    println!("fsck clean: {}", store.fsck().await?.is_clean());
    store.close().await?;
    Ok(())
}
