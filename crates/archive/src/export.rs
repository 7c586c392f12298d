//! Export: the graphs of chosen references, written as a reproducible archive.

use crate::options::{ExportOptions, Exported};
use crate::tar_write;
use oci_spec::image::Descriptor;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashSet};
use store_core::descriptor::{self, is_manifest, OCI_INDEX, REF_NAME};
use store_core::digest::ValidDigest;
use store_core::{content, Error, ReadOnlyGraphTarget, Result};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

/// The `oci-layout` every archive holds, byte for byte as skopeo writes it.
const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion": "1.0.0"}"#;

/// The chunk blobs are copied in.
const COPY_CHUNK: usize = 1 << 20;

/// Writes an OCI image layout archive of `references` (tags or digests) from `src` to
/// `writer`, streaming each blob from `src.fetch`: `oci-layout`, then `index.json` (one entry
/// per reference, in the order given, a tag's with its `ref.name`; then, with
/// [`ExportOptions::referrers`], the referrers, untagged), then the directories `blobs/` and
/// `blobs/<alg>/`, then every blob the graphs reach exactly once, sorted by digest
/// (non-distributable layers excepted, as in every copy; sha512 names carry a pax record). Every
/// header has mtime 0, uid and gid 0, no user or group name, mode 0644 (directories 0755), so
/// the same content always gives the same bytes. The writer is flushed, not shut down.
///
/// Errors: those of `src` (`NotFound` for an unknown reference or a missing blob), `Mismatch`
/// when a fetched blob is shorter or longer than its descriptor, parse errors of a manifest,
/// `Io` from the writer. A failed export leaves a partial archive in `writer`.
pub async fn export<S, W, I, R>(
    src: &S,
    references: I,
    writer: W,
    options: &ExportOptions,
) -> Result<Exported>
where
    S: ReadOnlyGraphTarget + ?Sized,
    W: AsyncWrite + Unpin + Send,
    I: IntoIterator<Item = R>,
    R: AsRef<str>,
{
    let mut entries: Vec<Descriptor> = Vec::new();
    let mut blobs: BTreeMap<String, Descriptor> = BTreeMap::new();
    let mut manifests: Vec<Descriptor> = Vec::new();
    for reference in references {
        let reference = reference.as_ref();
        let resolved = src.resolve(reference).await?;
        let mut entry = descriptor::without_ref_name(&resolved);
        if ValidDigest::parse(reference).is_err() {
            let mut annotations = entry.annotations().clone().unwrap_or_default();
            annotations.insert(REF_NAME.to_string(), reference.to_string());
            entry.set_annotations(Some(annotations));
        }
        if entries.contains(&entry) {
            continue;
        }
        add_graph(src, &entry, &mut blobs, &mut manifests).await?;
        entries.push(entry);
    }
    if options.referrers {
        let mut seen: HashSet<String> = manifests.iter().map(|m| m.digest().to_string()).collect();
        let mut next = 0;
        while next < manifests.len() {
            let node = manifests[next].clone();
            next += 1;
            for referrer in content::referrers(src, &node, None).await? {
                if seen.insert(referrer.digest().to_string()) {
                    add_graph(src, &referrer, &mut blobs, &mut manifests).await?;
                    seen.extend(manifests.iter().map(|m| m.digest().to_string()));
                    entries.push(referrer);
                }
            }
        }
    }
    let index = index_json(&entries)?;
    let mut out = BufWriter::with_capacity(256 << 10, writer);
    let mut written: u64 = 0;
    written += write_file(&mut out, "oci-layout", OCI_LAYOUT).await?;
    written += write_file(&mut out, "index.json", &index).await?;
    written += write_raw(&mut out, &tar_write::header("blobs/", 0, true)).await?;
    let mut algorithms: Vec<&str> = blobs
        .keys()
        .filter_map(|digest| digest.split_once(':').map(|(alg, _)| alg))
        .collect();
    algorithms.dedup();
    for algorithm in algorithms {
        let header = tar_write::header(&format!("blobs/{algorithm}/"), 0, true);
        written += write_raw(&mut out, &header).await?;
    }
    for blob in blobs.values() {
        written += write_blob(src, &mut out, blob).await?;
    }
    written += write_raw(&mut out, &tar_write::end()).await?;
    out.flush()
        .await
        .map_err(|e| Error::io("flushing the archive", e))?;
    Ok(Exported {
        manifests: entries,
        blobs: blobs.len(),
        bytes: written,
    })
}

/// Adds every node of the graph under `root` to `blobs`, and its manifests to `manifests`.
async fn add_graph<S: ReadOnlyGraphTarget + ?Sized>(
    src: &S,
    root: &Descriptor,
    blobs: &mut BTreeMap<String, Descriptor>,
    manifests: &mut Vec<Descriptor>,
) -> Result<()> {
    for node in content::walk(src, root).await? {
        let key = node.digest().to_string();
        if blobs.contains_key(&key) {
            continue;
        }
        if descriptor::is_foreign_layer(node.media_type().as_ref()) {
            // Non-distributable layers stay where they are, as in every copy.
            continue;
        }
        if is_manifest(&node) {
            manifests.push(descriptor::plain(&node));
        }
        blobs.insert(key, descriptor::plain(&node));
    }
    Ok(())
}

/// The archive's `index.json`: compact, its descriptors' annotations in key order and
/// `platform` spelled as the image spec says (`os.version`, `os.features`), so that the same
/// entries always give the same bytes.
fn index_json(entries: &[Descriptor]) -> Result<Vec<u8>> {
    let mut manifests = Vec::with_capacity(entries.len());
    for entry in entries {
        let value = serde_json::to_value(entry).map_err(|e| Error::Spec {
            reason: format!("serializing {}: {e}", entry.digest()),
        })?;
        manifests.push(canonical(value));
    }
    let mut index = Map::new();
    index.insert("schemaVersion".into(), Value::from(2));
    index.insert("mediaType".into(), Value::from(OCI_INDEX));
    index.insert("manifests".into(), Value::Array(manifests));
    serde_json::to_vec(&Value::Object(index)).map_err(|e| Error::Spec {
        reason: format!("serializing index.json: {e}"),
    })
}

/// `value` with the keys of every `annotations` object sorted and `platform`'s fields named
/// as the image spec names them.
fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, inner) in map {
                let inner = match (key.as_str(), inner) {
                    ("annotations", Value::Object(annotations)) => {
                        let sorted: BTreeMap<String, Value> = annotations.into_iter().collect();
                        Value::Object(sorted.into_iter().collect())
                    }
                    ("platform", Value::Object(platform)) => Value::Object(
                        platform
                            .into_iter()
                            .map(|(k, v)| {
                                let k = match k.as_str() {
                                    "os_version" | "osVersion" => "os.version".to_string(),
                                    "os_features" | "osFeatures" => "os.features".to_string(),
                                    _ => k,
                                };
                                (k, v)
                            })
                            .collect(),
                    ),
                    (_, other) => canonical(other),
                };
                out.insert(key, inner);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Writes raw bytes; returns their count.
async fn write_raw<W: AsyncWrite + Unpin>(out: &mut W, bytes: &[u8]) -> Result<u64> {
    out.write_all(bytes)
        .await
        .map_err(|e| Error::io("writing the archive", e))?;
    Ok(bytes.len() as u64)
}

/// Writes one small file entry; returns the bytes written.
async fn write_file<W: AsyncWrite + Unpin>(out: &mut W, name: &str, body: &[u8]) -> Result<u64> {
    let mut written = write_raw(out, &tar_write::header(name, body.len() as u64, false)).await?;
    written += write_raw(out, body).await?;
    written += write_raw(out, &vec![0u8; tar_write::padding(body.len() as u64)]).await?;
    Ok(written)
}

/// Streams one blob into its entry; returns the bytes written.
///
/// Errors: fetch errors; `Mismatch` when the source yields more or fewer bytes than the
/// descriptor's size (the source's own reader checks the digest); `Io`.
async fn write_blob<S: ReadOnlyGraphTarget + ?Sized, W: AsyncWrite + Unpin>(
    src: &S,
    out: &mut W,
    blob: &Descriptor,
) -> Result<u64> {
    let digest = descriptor::validate(blob)?;
    let name = format!("blobs/{}/{}", digest.algorithm().name(), digest.hex());
    let size = blob.size();
    let mut written = write_raw(out, &tar_write::header(&name, size, false)).await?;
    let mut reader = src.fetch(blob).await?;
    let mut buf = vec![0u8; COPY_CHUNK.min(size.max(1) as usize)];
    let mut left = size;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = reader
            .read(&mut buf[..want])
            .await
            .map_err(|e| store_core::error_from_io(e, format!("reading {digest}")))?;
        if n == 0 {
            return Err(Error::mismatch(
                &digest,
                format!("the source ended after {} of {size} bytes", size - left),
            ));
        }
        written += write_raw(out, &buf[..n]).await?;
        left -= n as u64;
    }
    // Reading to the end lets the source's reader check the digest and refuse trailing data.
    let mut probe = [0u8; 1];
    let extra = reader
        .read(&mut probe)
        .await
        .map_err(|e| store_core::error_from_io(e, format!("reading {digest}")))?;
    if extra != 0 {
        return Err(Error::mismatch(
            &digest,
            format!("the source has more than the descriptor's {size} bytes"),
        ));
    }
    written += write_raw(out, &vec![0u8; tar_write::padding(size)]).await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{MediaType, PlatformBuilder};
    use std::collections::HashMap;

    /// An entry with a Windows platform and 20 annotations, in a new hash map each time.
    fn entry() -> Descriptor {
        let mut entry = Descriptor::new(
            MediaType::ImageManifest,
            3,
            store_core::digest::sha256_of(b"abc"),
        );
        let platform = PlatformBuilder::default()
            .architecture("amd64")
            .os("windows")
            .os_version("10.0.17763.1")
            .os_features(vec!["win32k".to_string()])
            .build()
            .unwrap();
        entry.set_platform(Some(platform));
        let annotations: HashMap<String, String> = (0..20)
            .map(|i| (format!("key.{:02}", 19 - i), i.to_string()))
            .collect();
        entry.set_annotations(Some(annotations));
        entry
    }

    #[test]
    fn index_json_is_canonical() {
        let first = index_json(&[entry()]).unwrap();
        for _ in 0..5 {
            assert_eq!(index_json(&[entry()]).unwrap(), first);
        }
        let text = String::from_utf8(first).unwrap();
        assert!(text.contains(r#""os.version":"10.0.17763.1""#), "{text}");
        assert!(text.contains(r#""os.features":["win32k"]"#), "{text}");
        let positions: Vec<usize> = (0..20)
            .map(|i| text.find(&format!("\"key.{i:02}\"")).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
