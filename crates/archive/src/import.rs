//! Import: one pass over an archive stream, blobs pushed as they go by, manifests held (they
//! are small) and pushed children first once the archive is known to be complete, tags last.

use crate::decompress::{self, Compression};
use crate::options::{ImportOptions, Imported};
use crate::tar_read::{Header, ReadError, TarReader};
use bytes::Bytes;
use oci_spec::image::{Descriptor, MediaType};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use store_core::archive_entry::{classify, EntryKind, LayoutEntry};
use store_core::descriptor::{
    self, is_foreign_layer, is_manifest_type, MAX_MANIFEST_SIZE, OCI_INDEX, OCI_MANIFEST,
    OCTET_STREAM,
};
use store_core::digest::ValidDigest;
use store_core::manifest::ManifestParts;
use store_core::reference::validate_tag;
use store_core::{content, Error, ErrorKind, Result, Target};
use tokio::io::AsyncRead;

/// The largest `oci-layout` file read.
const LAYOUT_FILE_LIMIT: u64 = 64 << 10;

/// The annotation containerd names an image with in an archive's `index.json`.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";

/// What became of one blob of the archive.
enum Blob {
    /// Pushed (or found pushed by someone else meanwhile) as it streamed by.
    Pushed { size: u64 },
    /// Already in the destination: its bytes were skipped unread.
    Present { size: u64 },
    /// A manifest, held until the archive is known complete.
    Held { body: Bytes, media_type: String },
}

impl Blob {
    fn size(&self) -> u64 {
        match self {
            Blob::Pushed { size } | Blob::Present { size } => *size,
            Blob::Held { body, .. } => body.len() as u64,
        }
    }
}

/// An error about the archive entry `name`.
fn bad_entry(name: &str, reason: impl Into<String>) -> Error {
    Error::InvalidLayout {
        path: PathBuf::from(name),
        reason: format!("archive entry: {}", reason.into()),
    }
}

/// The error of a failed read of the archive while at entry `name`.
fn read_failure(name: &str, err: ReadError) -> Error {
    match err {
        ReadError::Format(reason) => bad_entry(name, reason),
        ReadError::Truncated(reason) => bad_entry(name, format!("truncated archive: {reason}")),
        ReadError::Io(e) => Error::io(format!("reading the archive at {name}"), e),
    }
}

/// The import of one archive, entry by entry.
struct Importer<'a, T: ?Sized> {
    dst: &'a T,
    options: &'a ImportOptions,
    tar: TarReader,
    blobs: HashMap<String, Blob>,
    layout_seen: bool,
    index: Option<Vec<u8>>,
    held_bytes: u64,
    declared_bytes: u64,
    /// The last entry read, for errors about the stream itself.
    last: String,
}

/// Reads the OCI image layout archive `reader` (a plain tar, or one compressed with gzip or
/// zstd, told by its magic bytes) in one pass and imports it into `dst`; see the crate
/// documentation for the rules. Returns one [`Imported`] per `index.json` entry, in its order,
/// with the tag it got. The reader is `'static` because each big blob's bytes are handed to
/// `dst.push` as a reader of their own (stdin, a `File`, a child's stdout, an HTTP body stream
/// all are); blobs are pushed one at a time, in the archive's order.
///
/// Errors (each naming the archive entry, as `InvalidLayout { path: <entry> }` unless said
/// otherwise): a truncated or corrupt stream; an entry refused by
/// [`store_core::archive_entry::classify`] (`..`, absolute paths, links, devices, other names);
/// a second `index.json` or `oci-layout`; `UnsupportedVersion` for an `oci-layout` other than
/// 1.0.0; `Mismatch` for a blob whose bytes do not match its name; `SizeExceedsLimit` for an
/// entry or a total beyond the options' limits; an `index.json` that does not parse, is
/// missing, or reaches a blob neither the archive nor `dst` has; `InvalidReference` for a name
/// that is not a valid tag; and the errors of `dst`. On any error no tag is created; blobs
/// already pushed stay, unreferenced.
pub async fn import<R, T>(reader: R, dst: &T, options: &ImportOptions) -> Result<Vec<Imported>>
where
    R: AsyncRead + Send + Unpin + 'static,
    T: Target + ?Sized,
{
    let (stream, _compression): (_, Compression) = decompress::unwrap(reader)
        .await
        .map_err(|e| Error::io("reading the archive", e))?;
    let mut importer = Importer {
        dst,
        options,
        tar: TarReader::new(stream),
        blobs: HashMap::new(),
        layout_seen: false,
        index: None,
        held_bytes: 0,
        declared_bytes: 0,
        last: "the archive's first header".into(),
    };
    importer.read_entries().await?;
    importer.finish().await
}

impl<T: Target + ?Sized> Importer<'_, T> {
    /// Reads every entry up to the end-of-archive marker.
    async fn read_entries(&mut self) -> Result<()> {
        loop {
            let header = match self.tar.next().await {
                Ok(Some(header)) => header,
                Ok(None) => return Ok(()),
                Err(err) => {
                    let at = format!("after {}", self.last);
                    return Err(read_failure(&at, err));
                }
            };
            self.last = header.shown();
            self.entry(header).await?;
        }
    }

    /// Handles one entry, leaving the stream at the end of its data.
    async fn entry(&mut self, header: Header) -> Result<()> {
        let name = header.shown();
        let accepted = classify(&header.name, EntryKind::from_typeflag(header.typeflag))
            .map_err(|why| bad_entry(&name, why.reason))?;
        self.declared_bytes = self.declared_bytes.saturating_add(header.size);
        if let Some(limit) = self.options.max_total_size {
            if self.declared_bytes > limit {
                return Err(Error::SizeExceedsLimit {
                    what: format!("the archive, at entry {name}"),
                    size: self.declared_bytes,
                    limit,
                });
            }
        }
        match accepted {
            LayoutEntry::Directory | LayoutEntry::Ignored => Ok(()),
            LayoutEntry::OciLayout => self.layout_file(&name, header.size).await,
            LayoutEntry::Index => {
                if self.index.is_some() {
                    return Err(bad_entry(&name, "a second index.json"));
                }
                let body = self
                    .small(&name, header.size, self.options.max_index_size)
                    .await?;
                self.index = Some(body);
                Ok(())
            }
            LayoutEntry::Blob(digest) => self.blob(&name, digest, header.size).await,
        }
    }

    /// Reads a small entry whole.
    async fn small(&mut self, name: &str, size: u64, limit: u64) -> Result<Vec<u8>> {
        if size > limit {
            return Err(Error::SizeExceedsLimit {
                what: format!("archive entry {name}"),
                size,
                limit,
            });
        }
        self.tar
            .read_small(size, limit)
            .await
            .map_err(|e| read_failure(name, e))
    }

    /// Checks `oci-layout`.
    async fn layout_file(&mut self, name: &str, size: u64) -> Result<()> {
        if self.layout_seen {
            return Err(bad_entry(name, "a second oci-layout"));
        }
        self.layout_seen = true;
        let body = self.small(name, size, LAYOUT_FILE_LIMIT).await?;
        #[derive(serde::Deserialize)]
        struct LayoutFile {
            #[serde(rename = "imageLayoutVersion")]
            version: String,
        }
        let parsed: LayoutFile = serde_json::from_slice(&body)
            .map_err(|e| bad_entry(name, format!("not an oci-layout file: {e}")))?;
        if parsed.version != "1.0.0" {
            return Err(Error::UnsupportedVersion {
                path: PathBuf::from(name),
                version: parsed.version,
            });
        }
        Ok(())
    }

    /// Handles a blob entry: skipped when `dst` has it, held when it is a manifest, pushed
    /// as it streams otherwise.
    async fn blob(&mut self, name: &str, digest: ValidDigest, size: u64) -> Result<()> {
        if size > self.options.max_blob_size {
            return Err(Error::SizeExceedsLimit {
                what: format!("archive entry {name}"),
                size,
                limit: self.options.max_blob_size,
            });
        }
        if self.blobs.contains_key(digest.as_str()) {
            // The same blob twice: the first copy was already checked.
            return Ok(());
        }
        let plain = Descriptor::new(MediaType::from(OCTET_STREAM), size, digest.to_oci());
        if self.dst.exists(&plain).await? {
            // Not read, not hashed: the stream skips it on the next header.
            self.blobs
                .insert(digest.to_string(), Blob::Present { size });
            return Ok(());
        }
        if size <= MAX_MANIFEST_SIZE {
            return self.small_blob(name, digest, size, plain).await;
        }
        let result = self.dst.push(&plain, Box::pin(self.tar.data(size))).await;
        self.after_push(name, &digest, size, result).await
    }

    /// A blob small enough to be a manifest: read whole, checked, then held when it is one
    /// and pushed at once when it is not.
    async fn small_blob(
        &mut self,
        name: &str,
        digest: ValidDigest,
        size: u64,
        plain: Descriptor,
    ) -> Result<()> {
        let body = Bytes::from(self.small(name, size, MAX_MANIFEST_SIZE).await?);
        let mut hasher = digest.algorithm().hasher();
        hasher.update(&body);
        let actual = hasher.finish();
        if actual != digest.as_str() {
            return Err(Error::mismatch(
                &digest,
                format!("archive entry {name}: its bytes hash to {actual}"),
            ));
        }
        if let Some(media_type) = sniff_manifest(&body) {
            self.held_bytes += size;
            if self.held_bytes > self.options.max_held_manifest_bytes {
                return Err(Error::SizeExceedsLimit {
                    what: format!("the manifests held in memory, at archive entry {name}"),
                    size: self.held_bytes,
                    limit: self.options.max_held_manifest_bytes,
                });
            }
            self.blobs
                .insert(digest.to_string(), Blob::Held { body, media_type });
            return Ok(());
        }
        let result = content::push_bytes(self.dst, &plain, body).await;
        self.after_push(name, &digest, size, result).await
    }

    /// Records a finished push, or turns its failure into the archive's error.
    async fn after_push(
        &mut self,
        name: &str,
        digest: &ValidDigest,
        size: u64,
        result: Result<()>,
    ) -> Result<()> {
        match result {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => {
                if self.tar.ended_early() {
                    return Err(bad_entry(
                        name,
                        format!("truncated archive: the stream ended inside it ({err})"),
                    ));
                }
                return Err(match err {
                    Error::Mismatch { reason, .. } => {
                        Error::mismatch(digest, format!("archive entry {name}: {reason}"))
                    }
                    other => other,
                });
            }
        }
        // A store that found the blob present may not have read it: the stream skips the rest.
        self.blobs.insert(digest.to_string(), Blob::Pushed { size });
        Ok(())
    }

    /// After the end of the archive: checks that every blob `index.json` reaches is in, pushes
    /// the held manifests children first, then tags.
    async fn finish(self) -> Result<Vec<Imported>> {
        let Some(index) = self.index.as_deref() else {
            return Err(bad_entry("index.json", "the archive has no index.json"));
        };
        let entries = parse_index(index)?;
        let mut order: Vec<(Descriptor, String)> = Vec::new();
        let mut visited: HashSet<String> = HashSet::new();
        for (position, entry) in entries.iter().enumerate() {
            descriptor::validate(entry)
                .map_err(|e| bad_entry("index.json", format!("entry {position}: {e}")))?;
            let from = format!("index.json entry {position} ({})", entry.digest());
            self.visit(entry, &from, &mut visited, &mut order).await?;
        }
        // Manifests the index does not list (referrers of what it does) come along too.
        let mut stray: Vec<(&String, &Blob)> = self
            .blobs
            .iter()
            .filter(|(digest, blob)| {
                matches!(blob, Blob::Held { .. }) && !visited.contains(digest.as_str())
            })
            .collect();
        stray.sort_by(|a, b| a.0.cmp(b.0));
        for (digest, blob) in stray {
            let Blob::Held { media_type, .. } = blob else {
                continue;
            };
            let digest = ValidDigest::parse(digest)?;
            let node = Descriptor::new(
                MediaType::from(media_type.as_str()),
                blob.size(),
                digest.to_oci(),
            );
            let from = format!("the manifest {digest} of the archive");
            self.visit(&node, &from, &mut visited, &mut order).await?;
        }
        let names = self.names(&entries)?;
        for (node, _) in &order {
            if let Some(Blob::Held { body, .. }) = self.blobs.get(node.digest().as_ref()) {
                match content::push_bytes(self.dst, node, body.clone()).await {
                    Err(err) if err.kind() != ErrorKind::AlreadyExists => return Err(err),
                    _ => {}
                }
            }
        }
        let mut imported = Vec::with_capacity(entries.len());
        for (entry, name) in entries.into_iter().zip(names) {
            if let Some(tag) = &name {
                self.dst
                    .tag(&descriptor::without_ref_name(&entry), tag)
                    .await?;
            }
            imported.push(Imported {
                name,
                descriptor: entry,
            });
        }
        Ok(imported)
    }

    /// Visits `node` and what it reaches, depth first, appending each manifest after its
    /// children to `order`.
    ///
    /// Errors: `InvalidLayout` naming `index.json` (or the manifest) for a node neither the
    /// archive nor `dst` has, `Mismatch` for a size that differs from the archive's entry,
    /// parse errors of a manifest.
    async fn visit(
        &self,
        root: &Descriptor,
        from: &str,
        visited: &mut HashSet<String>,
        order: &mut Vec<(Descriptor, String)>,
    ) -> Result<()> {
        // An explicit stack: (node, whether its children were pushed already, whether it is a
        // subject, which may be absent: skopeo copies a referrer without it).
        let mut stack = vec![(root.clone(), false, false)];
        while let Some((node, expanded, optional)) = stack.pop() {
            let key = node.digest().to_string();
            if expanded {
                order.push((node, key));
                continue;
            }
            if !visited.insert(key.clone()) {
                // Seen before, perhaps under another size: a descriptor the archive's entry
                // contradicts must fail here, before any tag, not when it is tagged.
                self.check_size(&node, from)?;
                continue;
            }
            let Some(children) = self.children(&node, from, optional).await? else {
                // An absent subject: nothing to push, nothing to walk.
                visited.remove(&key);
                continue;
            };
            let mut node = node;
            if let Some(Blob::Held { media_type, .. }) = self.blobs.get(&key) {
                if !is_manifest_type(node.media_type().as_ref()) {
                    node.set_media_type(MediaType::from(media_type.as_str()));
                }
            }
            stack.push((node, true, false));
            for (child, subject) in children.into_iter().rev() {
                stack.push((child, false, subject));
            }
        }
        Ok(())
    }

    /// Checks that the archive's entry for `node`, if it has one, holds `node`'s size.
    ///
    /// Errors: `Mismatch` naming the digest and `from`.
    fn check_size(&self, node: &Descriptor, from: &str) -> Result<()> {
        let key = node.digest().as_ref();
        match self.blobs.get(key) {
            Some(blob) if blob.size() != node.size() => Err(Error::mismatch(
                key,
                format!(
                    "{from} says {} bytes, the archive's entry has {}",
                    node.size(),
                    blob.size()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The successors of `node`, each with whether it is the node's `subject`, after checking
    /// that `node` is in the archive or in `dst`; `None` for an absent node that may be absent
    /// (`optional`: a subject).
    async fn children(
        &self,
        node: &Descriptor,
        from: &str,
        optional: bool,
    ) -> Result<Option<Vec<(Descriptor, bool)>>> {
        let key = node.digest().as_ref();
        let declared = node.media_type().as_ref();
        self.check_size(node, from)?;
        let body = match self.blobs.get(key) {
            Some(Blob::Held { body, media_type }) => {
                let kind = if is_manifest_type(declared) {
                    declared
                } else {
                    media_type.as_str()
                };
                return successors(key, kind, body).map(Some);
            }
            Some(Blob::Present { .. }) | Some(Blob::Pushed { .. }) => {
                if !is_manifest_type(declared) {
                    return Ok(Some(Vec::new()));
                }
                content::fetch_all(self.dst, node).await?
            }
            None => {
                descriptor::validate(node)?;
                if self.dst.exists(node).await? {
                    if !is_manifest_type(declared) {
                        return Ok(Some(Vec::new()));
                    }
                    content::fetch_all(self.dst, node).await?
                } else if optional || is_foreign_layer(declared) {
                    return Ok(None);
                } else {
                    return Err(bad_entry(
                        "index.json",
                        format!(
                            "{from} reaches {key} ({declared}), which is neither in the archive \
                             nor in the destination"
                        ),
                    ));
                }
            }
        };
        successors(key, declared, &body).map(Some)
    }

    /// The tag each `index.json` entry gets (`None`: untagged), all checked before any is
    /// created. A name given twice goes to its first entry, as skopeo reads it.
    ///
    /// Errors: `InvalidReference` naming the entry for a name that is not a valid tag.
    fn names(&self, entries: &[Descriptor]) -> Result<Vec<Option<String>>> {
        let mut taken = HashSet::new();
        let mut out = Vec::with_capacity(entries.len());
        for (position, entry) in entries.iter().enumerate() {
            let default = default_name(entry);
            let name = match &self.options.name_mapping {
                Some(map) => map(entry, default.as_deref()),
                None => default,
            };
            let name = name.filter(|n| taken.insert(n.clone()));
            if let Some(tag) = &name {
                validate_tag(tag).map_err(|e| match e {
                    Error::InvalidReference { reference, reason } => Error::InvalidReference {
                        reference,
                        reason: format!("index.json entry {position}: {reason}"),
                    },
                    other => other,
                })?;
            }
            out.push(name);
        }
        Ok(out)
    }
}

/// The successors of the manifest `body`, each with whether it is the manifest's `subject`.
///
/// Errors: `InvalidManifest` when the body does not parse as `media_type`.
fn successors(digest: &str, media_type: &str, body: &[u8]) -> Result<Vec<(Descriptor, bool)>> {
    let parts = ManifestParts::parse(digest, media_type, body)?;
    let subject = parts.subject.as_ref().map(|s| s.digest().to_string());
    Ok(parts
        .successors(media_type)
        .into_iter()
        .map(|child| {
            let is_subject = subject.as_deref() == Some(child.digest().as_ref());
            (child, is_subject)
        })
        .collect())
}

/// The name containerd gives an `index.json` entry: its `io.containerd.image.name`
/// annotation, else its `org.opencontainers.image.ref.name`.
pub fn default_name(entry: &Descriptor) -> Option<String> {
    let annotations = entry.annotations().as_ref()?;
    annotations
        .get(CONTAINERD_IMAGE_NAME)
        .or_else(|| annotations.get(descriptor::REF_NAME))
        .filter(|name| !name.is_empty())
        .cloned()
}

/// The entries of an archive's `index.json`; `"manifests": null` or absent is empty.
///
/// Errors: `InvalidLayout` naming `index.json` (and the entry's position) when it does not
/// parse.
fn parse_index(body: &[u8]) -> Result<Vec<Descriptor>> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| bad_entry("index.json", format!("not JSON: {e}")))?;
    let manifests = match value.get("manifests") {
        None | Some(serde_json::Value::Null) => return Ok(Vec::new()),
        Some(serde_json::Value::Array(items)) => items,
        Some(_) => return Err(bad_entry("index.json", "`manifests` is not an array")),
    };
    manifests
        .iter()
        .enumerate()
        .map(|(position, item)| {
            serde_json::from_value::<Descriptor>(item.clone()).map_err(|e| {
                bad_entry(
                    "index.json",
                    format!("entry {position} is not a descriptor: {e}"),
                )
            })
        })
        .collect()
}

/// The manifest media type of a JSON body, when it is a manifest: its `mediaType` field, or
/// for an OCI body without one, what its fields say (`manifests`: an index; `config` and
/// `layers`: an image manifest).
fn sniff_manifest(body: &[u8]) -> Option<String> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
        layers: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(body).ok()?;
    match probe.media_type {
        Some(kind) if is_manifest_type(&kind) => Some(kind),
        Some(_) => None,
        None if probe.manifests.is_some() => Some(OCI_INDEX.to_string()),
        None if probe.config.is_some() && probe.layers.is_some() => Some(OCI_MANIFEST.to_string()),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_are_told_from_other_json() {
        assert_eq!(
            sniff_manifest(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#),
            Some(OCI_INDEX.to_string())
        );
        assert_eq!(
            sniff_manifest(br#" {"schemaVersion":2,"config":{},"layers":[]}"#),
            Some(OCI_MANIFEST.to_string())
        );
        assert_eq!(
            sniff_manifest(br#"{"architecture":"amd64","rootfs":{}}"#),
            None
        );
        assert_eq!(sniff_manifest(br#"{"mediaType":"text/plain"}"#), None);
        assert_eq!(sniff_manifest(b"\x1f\x8b"), None);
        assert_eq!(sniff_manifest(b"{not json"), None);
    }
}
