//! `index.json` as bytes: parsing (tolerant of what other tools write), deterministic encoding,
//! and descriptors written the way the image spec spells them.
//!
//! Entries loaded from disk are kept as raw JSON so that a load-and-save keeps every field
//! (oci-spec would rename `os.version`, drop unknown fields and reorder annotations): each as a
//! slice of the bytes read, which the caller keeps anyway, rather than a copy.

use super::held::Held;
use bytes::Bytes;
use oci_spec::image::{Descriptor, MediaType};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use store_core::descriptor::{OCI_INDEX, REF_NAME};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The largest `index.json` a store reads: 64 MiB, room for about 300 000 entries of a typical
/// 200 bytes. A larger one is refused before it is read (`SizeExceedsLimit` naming it), by
/// [`crate::Store::open`], by every index write (which re-reads the file another process may
/// have changed), by [`crate::Store::fsck`] and by [`crate::ReadOnlyStore::open`]; so is a
/// change that would make the store write a larger one.
pub const MAX_INDEX_JSON_SIZE: u64 = 64 << 20;

/// Refuses `size` bytes of the `index.json` at `path` beyond [`MAX_INDEX_JSON_SIZE`].
///
/// Errors: `SizeExceedsLimit` naming the path.
pub(crate) fn check_index_size(path: &Path, size: u64) -> Result<()> {
    if size > MAX_INDEX_JSON_SIZE {
        return Err(Error::SizeExceedsLimit {
            what: path.display().to_string(),
            size,
            limit: MAX_INDEX_JSON_SIZE,
        });
    }
    Ok(())
}

/// One `index.json` entry: its descriptor, compact, with its JSON as it was read (a slice of the
/// file's bytes).
#[derive(Debug, Clone)]
pub(crate) struct LoadedEntry {
    /// Shared with the in-memory index, which holds it under the entry's digest and tag.
    pub(crate) held: Arc<Held>,
}

/// A parsed `index.json`: its top-level fields other than `manifests`, and its entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct IndexDocument {
    pub(crate) top: Map<String, Value>,
    pub(crate) entries: Vec<LoadedEntry>,
}

/// The entries of a parsed `index.json`, plain, one at a time: the roots of its graph. A type
/// rather than a `filter_map` closure: a closure taking a reference would have to be general over
/// every lifetime, which the `Send` check of the stores' futures rejects.
pub(crate) struct PlainRoots {
    doc: Arc<IndexDocument>,
    next: usize,
    step: usize,
}

impl PlainRoots {
    /// The roots of `doc`, first to last.
    pub(crate) fn new(doc: Arc<IndexDocument>) -> PlainRoots {
        PlainRoots::every(doc, 0, 1)
    }

    /// Every `step`th root of `doc` (at least every one) from the `first`th: one of `step`
    /// walks that share the entries between them.
    pub(crate) fn every(doc: Arc<IndexDocument>, first: usize, step: usize) -> PlainRoots {
        PlainRoots {
            doc,
            next: first,
            step: step.max(1),
        }
    }
}

impl Iterator for PlainRoots {
    /// The root with its digest, shared with the index.
    type Item = (Arc<str>, Descriptor);

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(entry) = self.doc.entries.get(self.next) {
            self.next += self.step;
            if let Some(plain) = entry.held.plain() {
                return Some((Arc::clone(entry.held.digest()), plain));
            }
        }
        None
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // One root per entry left at most: every entry has a plain form, but nothing promises it.
        let left = self.doc.entries.len().saturating_sub(self.next);
        (0, Some(left.div_ceil(self.step)))
    }
}

fn invalid(path: &Path, reason: String) -> Error {
    Error::InvalidLayout {
        path: path.to_path_buf(),
        reason,
    }
}

/// Parses the bytes of the `index.json` at `path`. `"manifests": null` or absent is an empty
/// index (Go writers leave it after deleting everything). The entries are parsed one at a time
/// as the document streams by, so that no tree of the whole document is ever held.
///
/// Errors: `InvalidLayout` naming the path for an empty file, bytes that are not a JSON object,
/// or an entry that is not a descriptor with a supported digest (naming its position and digest).
pub(crate) fn parse_index(path: &Path, bytes: &Bytes) -> Result<IndexDocument> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid(path, "index.json is empty".into()));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let failure = RefCell::new(None);
    let parsed = serde::Deserializer::deserialize_any(
        &mut deserializer,
        TopVisitor {
            path,
            bytes,
            failure: &failure,
        },
    )
    .and_then(|doc| deserializer.end().map(|()| doc));
    if let Some(err) = failure.into_inner() {
        return Err(err);
    }
    parsed.map_err(|e| invalid(path, format!("index.json is not JSON: {e}")))?
}

/// Visits the top level of `index.json`; an error of the document's shape (rather than of its
/// JSON) goes to `failure`, the serde error carrying no more than that something failed.
struct TopVisitor<'a> {
    path: &'a Path,
    /// What is parsed: entries are slices of it.
    bytes: &'a Bytes,
    failure: &'a RefCell<Option<Error>>,
}

impl TopVisitor<'_> {
    fn fail<E: serde::de::Error>(&self, err: Error) -> E {
        let message = err.to_string();
        *self.failure.borrow_mut() = Some(err);
        E::custom(message)
    }
}

impl<'de> Visitor<'de> for TopVisitor<'_> {
    type Value = Result<IndexDocument>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut top = Map::new();
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "manifests" {
                let seed = EntriesSeed {
                    path: self.path,
                    bytes: self.bytes,
                    failure: self.failure,
                };
                entries = map.next_value_seed(seed)?;
            } else {
                let value: Value = map.next_value()?;
                top.insert(key, value);
            }
        }
        Ok(Ok(IndexDocument { top, entries }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> std::result::Result<Self::Value, A::Error> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Err(self.fail(invalid(self.path, "index.json is not a JSON object".into())))
    }
}

/// Visits `manifests`: `null` or an array of entries, each turned into a [`LoadedEntry`] (and its
/// parsed tree dropped) before the next is read.
struct EntriesSeed<'a> {
    path: &'a Path,
    bytes: &'a Bytes,
    failure: &'a RefCell<Option<Error>>,
}

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_> {
    type Value = Vec<LoadedEntry>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl EntriesSeed<'_> {
    fn fail<E: serde::de::Error>(&self, err: Error) -> E {
        let message = err.to_string();
        *self.failure.borrow_mut() = Some(err);
        E::custom(message)
    }

    fn not_an_array<E: serde::de::Error>(&self) -> E {
        self.fail(invalid(self.path, "\"manifests\" is not an array".into()))
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_> {
    type Value = Vec<LoadedEntry>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of descriptors")
    }

    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Vec::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(raw) = seq.next_element::<&RawValue>()? {
            let raw = slice_of(self.bytes, raw.get());
            let entry = loaded_entry(self.path, entries.len(), raw).map_err(|e| self.fail(e))?;
            entries.push(entry);
        }
        entries.shrink_to_fit();
        Ok(entries)
    }

    fn visit_map<A: MapAccess<'de>>(self, _: A) -> std::result::Result<Self::Value, A::Error> {
        Err(self.not_an_array())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Err(self.not_an_array())
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Err(self.not_an_array())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Err(self.not_an_array())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Err(self.not_an_array())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Err(self.not_an_array())
    }
}

/// `text`, which the parser borrowed from `bytes`, as a slice of them (shared, not copied).
fn slice_of(bytes: &Bytes, text: &str) -> Bytes {
    let start = (text.as_ptr() as usize).wrapping_sub(bytes.as_ptr() as usize);
    match start.checked_add(text.len()) {
        Some(end) if end <= bytes.len() => bytes.slice(start..end),
        // A parser that copied what it borrows: a copy of our own is as good.
        _ => Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// The entry at `position` of `manifests`, whose JSON is `raw`, checked to be a descriptor with
/// a supported digest.
///
/// Errors: `InvalidLayout` naming the position and the digest it spells.
fn loaded_entry(path: &Path, position: usize, raw: Bytes) -> Result<LoadedEntry> {
    if let Some(held) = plain_entry(&raw) {
        return Ok(LoadedEntry {
            held: Arc::new(held),
        });
    }
    let desc: Descriptor = match serde_json::from_slice(&raw) {
        Ok(desc) => desc,
        Err(e) => {
            let value: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
            let digest_text = value
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or("(none)");
            return Err(invalid(
                path,
                format!("manifests[{position}] (digest {digest_text}) is not a descriptor: {e}"),
            ));
        }
    };
    ValidDigest::from_digest(desc.digest())
        .map_err(|e| invalid(path, format!("manifests[{position}]: {e}")))?;
    Ok(LoadedEntry {
        held: Arc::new(Held::new(desc, Some(raw))),
    })
}

/// An entry of nothing but media type, digest, size and at most a `ref.name` annotation, as
/// nearly every entry is, read straight into its compact form: no oci-spec descriptor (its
/// annotation map, its digest checked a second time) made to be taken apart again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainEntry<'a> {
    #[serde(rename = "mediaType", borrow)]
    media_type: Cow<'a, str>,
    #[serde(borrow)]
    digest: Cow<'a, str>,
    size: u64,
    #[serde(default, borrow)]
    annotations: Option<RefNameOnly<'a>>,
}

/// Annotations that are a `ref.name` alone.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefNameOnly<'a> {
    #[serde(rename = "org.opencontainers.image.ref.name", borrow)]
    name: Cow<'a, str>,
}

/// `raw` held compactly when it is a [`PlainEntry`] with a supported digest; `None` for
/// anything else (more fields, other annotations, a bad digest, not JSON), which the full
/// parse then takes, or refuses with its reason.
fn plain_entry(raw: &Bytes) -> Option<Held> {
    let entry: PlainEntry = serde_json::from_slice(raw).ok()?;
    if !ValidDigest::is_valid(&entry.digest) {
        return None;
    }
    Some(Held::from_parts(
        MediaType::from(&*entry.media_type),
        &entry.digest,
        entry.size,
        entry.annotations.as_ref().map(|a| &*a.name),
        Some(raw.clone()),
    ))
}

/// Encodes an `index.json` from its top-level fields and its entries: compact JSON, top-level
/// fields in their original order, `schemaVersion` 2 and the index `mediaType` added when missing.
pub(crate) fn encode_index(top: &Map<String, Value>, entries: Vec<Value>) -> Vec<u8> {
    let mut out = Map::new();
    out.insert("schemaVersion".into(), Value::from(2));
    out.insert("mediaType".into(), Value::from(OCI_INDEX));
    for (key, value) in top {
        out.insert(key.clone(), value.clone());
    }
    out.insert("manifests".into(), Value::Array(entries));
    // Serialising a Value cannot fail (string keys only); an empty fallback would be caught by
    // the parse check every writer does before renaming.
    serde_json::to_vec(&Value::Object(out)).unwrap_or_default()
}

/// `raw` with `ref.name` set to `reference` (or removed when `None`); an annotations object left
/// empty is dropped.
pub(crate) fn with_ref_name(mut raw: Value, reference: Option<&str>) -> Value {
    if let Value::Object(entry) = &mut raw {
        let annotations = entry
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !annotations.is_object() {
            *annotations = Value::Object(Map::new());
        }
        if let Value::Object(map) = annotations {
            match reference {
                Some(name) => {
                    map.insert(REF_NAME.into(), Value::from(name));
                }
                None => {
                    map.shift_remove(REF_NAME);
                }
            }
            if map.is_empty() {
                entry.shift_remove("annotations");
            }
        }
    }
    raw
}

/// A descriptor as image-spec JSON, keys in a fixed order and annotations sorted, with the
/// platform's `os.version` / `os.features` spelt as the spec spells them.
pub(crate) fn descriptor_json(desc: &Descriptor) -> Value {
    let mut out = Map::new();
    out.insert(
        "mediaType".into(),
        Value::from(desc.media_type().to_string()),
    );
    if let Some(kind) = desc.artifact_type() {
        out.insert("artifactType".into(), Value::from(kind.to_string()));
    }
    out.insert("digest".into(), Value::from(desc.digest().to_string()));
    out.insert("size".into(), Value::from(desc.size()));
    if let Some(urls) = desc.urls() {
        out.insert("urls".into(), Value::from(urls.clone()));
    }
    if let Some(annotations) = desc.annotations() {
        let mut sorted: Vec<(&String, &String)> = annotations.iter().collect();
        sorted.sort();
        let map: Map<String, Value> = sorted
            .into_iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        out.insert("annotations".into(), Value::Object(map));
    }
    if let Some(platform) = desc.platform() {
        let mut p = Map::new();
        p.insert(
            "architecture".into(),
            Value::from(platform.architecture().to_string()),
        );
        p.insert("os".into(), Value::from(platform.os().to_string()));
        if let Some(version) = platform.os_version() {
            p.insert("os.version".into(), Value::from(version.clone()));
        }
        if let Some(features) = platform.os_features() {
            p.insert("os.features".into(), Value::from(features.clone()));
        }
        if let Some(variant) = platform.variant() {
            p.insert("variant".into(), Value::from(variant.clone()));
        }
        if let Some(features) = platform.features() {
            p.insert("features".into(), Value::from(features.clone()));
        }
        out.insert("platform".into(), Value::Object(p));
    }
    if let Some(data) = desc.data() {
        out.insert("data".into(), Value::from(data.clone()));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_core::ErrorKind;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn plain_entries_are_read_straight_and_held_as_the_full_parse_holds_them() {
        let plain = [
            format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":7}}"#
            ),
            format!(
                r#"{{"digest":"{D}","size":7,"mediaType":"a/b","annotations":{{"{REF_NAME}":"v1"}}}}"#
            ),
            // Escapes are read, not borrowed; an empty name and a null map are kept as such.
            format!(
                r#"{{"mediaType":"a\/b","digest":"{D}","size":7,"annotations":{{"{REF_NAME}":"v\u0031"}}}}"#
            ),
            format!(
                r#"{{"mediaType":"a/b","digest":"{D}","size":7,"annotations":{{"{REF_NAME}":""}}}}"#
            ),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"annotations":null}}"#),
        ];
        for text in &plain {
            let raw = Bytes::from(text.clone());
            let lean = plain_entry(&raw).unwrap_or_else(|| panic!("read straight: {text}"));
            let full = Held::new(serde_json::from_slice(&raw).unwrap(), Some(raw.clone()));
            assert_eq!(lean.descriptor(), full.descriptor(), "{text}");
            assert_eq!(lean.has_ref_name(), full.has_ref_name(), "{text}");
            assert_eq!(lean.tag_name(), full.tag_name(), "{text}");
            assert_eq!(lean.without_ref_name(), full.without_ref_name(), "{text}");
        }
        // Anything more, or anything wrong, is left to the full parse (which keeps or refuses it).
        let other = [
            format!(
                r#"{{"mediaType":"a/b","digest":"{D}","size":7,"annotations":{{"{REF_NAME}":"v1","x":"y"}}}}"#
            ),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"annotations":{{}}}}"#),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"urls":["https://x"]}}"#),
            format!(
                r#"{{"mediaType":"a/b","digest":"{D}","size":7,"platform":{{"os":"linux","architecture":"amd64"}}}}"#
            ),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"artifactType":"c/d"}}"#),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"x-unknown":1}}"#),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":7,"size":8}}"#),
            format!(r#"{{"mediaType":"a/b","digest":"{D}","size":-1}}"#),
            r#"{"mediaType":"a/b","digest":"sha256:ABC","size":7}"#.to_string(),
            format!(r#"{{"digest":"{D}","size":7}}"#),
        ];
        for text in &other {
            assert!(plain_entry(&Bytes::from(text.clone())).is_none(), "{text}");
        }
    }

    #[test]
    fn walks_share_the_roots_each_once() {
        let entries: Vec<String> = (0..7u8)
            .map(|i| {
                let digest =
                    store_core::digest::digest_string(store_core::digest::Algorithm::Sha256, &[i]);
                format!(r#"{{"mediaType":"a/b","digest":"{digest}","size":1}}"#)
            })
            .collect();
        let text = format!(
            r#"{{"schemaVersion":2,"manifests":[{}]}}"#,
            entries.join(",")
        );
        let doc = Arc::new(parse_index(Path::new("/l/index.json"), &Bytes::from(text)).unwrap());
        let all: Vec<_> = PlainRoots::new(Arc::clone(&doc)).map(|(d, _)| d).collect();
        assert_eq!(all.len(), 7);
        for walks in 1..=4 {
            let mut seen: Vec<_> = (0..walks)
                .flat_map(|first| {
                    let roots = PlainRoots::every(Arc::clone(&doc), first, walks);
                    let (_, most) = roots.size_hint();
                    let taken: Vec<_> = roots.map(|(d, _)| d).collect();
                    assert!(taken.len() <= most.unwrap());
                    taken
                })
                .collect();
            seen.sort();
            let mut expected = all.clone();
            expected.sort();
            assert_eq!(seen, expected, "{walks} walks");
        }
    }

    #[test]
    fn empty_null_and_garbage() {
        let p = Path::new("/l/index.json");
        for bad in [
            &b""[..],
            b"  \n",
            b"not json",
            b"[]",
            br#"{"manifests":{}}"#,
        ] {
            let err = parse_index(p, &Bytes::copy_from_slice(bad)).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidLayout);
            assert!(err.to_string().contains("/l/index.json"), "{err}");
        }
        let doc = parse_index(
            p,
            &Bytes::from_static(br#"{"schemaVersion":2,"manifests":null}"#),
        )
        .unwrap();
        assert!(doc.entries.is_empty());
    }

    #[test]
    fn a_bad_entry_is_named() {
        let p = Path::new("/l/index.json");
        let body = format!(
            r#"{{"manifests":[{{"mediaType":"a/b","digest":"{D}","size":0}},{{"mediaType":"a/b","digest":"sha1:abc","size":1}}]}}"#
        );
        let err = parse_index(p, &Bytes::from(body.to_owned())).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidLayout);
        assert!(err.to_string().contains("manifests[1]"), "{err}");
        let body = r#"{"manifests":[{"mediaType":"a/b","digest":"sha256:xyz","size":-1}]}"#;
        let err = parse_index(p, &Bytes::from(body.to_owned())).unwrap_err();
        assert!(err.to_string().contains("sha256:xyz"), "{err}");
    }

    #[test]
    fn unknown_fields_and_os_version_survive_a_round_trip() {
        let p = Path::new("/l/index.json");
        let body = format!(
            r#"{{"schemaVersion":2,"x-extra":{{"k":1}},"annotations":{{"a":"b"}},"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{D}","size":0,"platform":{{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1","os.features":["win32k"]}},"annotations":{{"io.containerd.image.name":"x:1","{REF_NAME}":"v1"}},"x-unknown":true}}]}}"#
        );
        let doc = parse_index(p, &Bytes::from(body.to_owned())).unwrap();
        let entries = doc
            .entries
            .iter()
            .map(|e| serde_json::from_slice(e.held.raw().unwrap()).unwrap())
            .collect();
        let out = encode_index(&doc.top, entries);
        let again: Value = serde_json::from_slice(&out).unwrap();
        let original: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(again["manifests"], original["manifests"]);
        assert_eq!(again["x-extra"], original["x-extra"]);
        assert_eq!(again["annotations"], original["annotations"]);
        assert_eq!(again["mediaType"], OCI_INDEX);
    }

    #[test]
    fn generated_descriptors_spell_os_version_like_the_spec() {
        let raw = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": D, "size": 0,
            "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.1"}
        });
        let mut desc: Descriptor = serde_json::from_value(raw).unwrap();
        let mut platform = desc.platform().clone().unwrap();
        platform.set_os_version(Some("10.0.1".into()));
        desc.set_platform(Some(platform));
        let json = descriptor_json(&desc);
        assert_eq!(json["platform"]["os.version"], "10.0.1");
        assert!(json["platform"].get("os_version").is_none());
    }

    #[test]
    fn ref_name_editing() {
        let raw = serde_json::json!({"digest": D, "annotations": {REF_NAME: "a"}});
        let stripped = with_ref_name(raw.clone(), None);
        assert!(stripped.get("annotations").is_none());
        let moved = with_ref_name(raw, Some("b"));
        assert_eq!(moved["annotations"][REF_NAME], "b");
    }
}
