//! What `index.json` says, held in memory: references (tags and digest entries), the raw JSON of
//! entries read from disk (so a save keeps what other tools wrote), and foreign top-level fields.

use crate::index_file::{self, descriptor_json, with_ref_name, IndexDocument};
use oci_spec::image::Descriptor;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use store_core::descriptor::without_ref_name;
use store_core::resolver::MemoryResolver;

/// The in-memory index. Every method takes short locks only.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    pub(crate) resolver: MemoryResolver,
    /// Entries as read from disk, by reference (tag or digest). A caller's change to a reference
    /// drops its raw entry, so the caller's descriptor is written instead.
    raw: Mutex<HashMap<String, Value>>,
    top: Mutex<Map<String, Value>>,
}

impl IndexState {
    fn raw(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.raw.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn top(&self) -> std::sync::MutexGuard<'_, Map<String, Value>> {
        self.top.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the state with what `doc` says, as the reference loads it: each entry is tagged
    /// under its digest (ref.name stripped) and, when it has a ref.name, under that name as
    /// written. Later duplicates win. Returns the plain roots to index into the graph.
    pub(crate) fn load(&self, doc: &IndexDocument) -> Vec<Descriptor> {
        self.resolver.clear();
        let mut raw = self.raw();
        raw.clear();
        *self.top() = doc.top.clone();
        let mut roots = Vec::with_capacity(doc.entries.len());
        for entry in &doc.entries {
            let digest = entry.desc.digest().to_string();
            self.resolver.tag(without_ref_name(&entry.desc), &digest);
            raw.insert(digest, entry.raw.clone());
            if let Some(name) = index_file::ref_name(&entry.desc) {
                self.resolver.tag(entry.desc.clone(), name);
                raw.insert(name.to_string(), entry.raw.clone());
            }
            roots.push(store_core::descriptor::plain(&entry.desc));
        }
        roots
    }

    /// Points `reference` at `desc` (the caller's descriptor replaces any entry read from disk).
    pub(crate) fn tag(&self, desc: Descriptor, reference: &str) {
        self.raw().remove(reference);
        self.resolver.tag(desc, reference);
    }

    /// Records `desc` under its own digest (a manifest pushed or tagged), unless already there.
    pub(crate) fn tag_digest(&self, desc: &Descriptor) {
        let digest = desc.digest().as_ref();
        if self.resolver.resolve(digest).is_none() {
            self.resolver.tag(without_ref_name(desc), digest);
        }
    }

    /// Removes `reference`; returns what it pointed at.
    pub(crate) fn untag(&self, reference: &str) -> Option<Descriptor> {
        self.raw().remove(reference);
        self.resolver.untag(reference)
    }

    /// Removes every reference to `digest` (its tags and its digest entry); returns the pairs
    /// removed, so a failed save can put them back.
    pub(crate) fn forget_digest(&self, digest: &str) -> Vec<(String, Descriptor, Option<Value>)> {
        let mut removed = Vec::new();
        for reference in self.resolver.refs_of(digest) {
            let raw = self.raw().remove(&reference);
            if let Some(desc) = self.resolver.untag(&reference) {
                removed.push((reference, desc, raw));
            }
        }
        removed
    }

    /// Puts back references removed by [`IndexState::forget_digest`].
    pub(crate) fn restore(&self, removed: Vec<(String, Descriptor, Option<Value>)>) {
        for (reference, desc, raw) in removed {
            self.resolver.tag(desc, &reference);
            if let Some(raw) = raw {
                self.raw().insert(reference, raw);
            }
        }
    }

    /// Takes over an entry another writer put in `index.json` under `key` (a tag, or the digest
    /// of an untagged entry); returns its descriptor, or `None` if it is not a descriptor.
    pub(crate) fn adopt(&self, key: &str, value: &Value) -> Option<Descriptor> {
        let desc: Descriptor = serde_json::from_value(value.clone()).ok()?;
        let digest = desc.digest().to_string();
        if key == digest {
            self.resolver.tag(without_ref_name(&desc), key);
        } else {
            self.tag_digest(&desc);
            self.resolver.tag(desc.clone(), key);
        }
        self.raw().insert(key.to_string(), value.clone());
        Some(desc)
    }

    /// Drops the entry `key` (another writer removed it).
    pub(crate) fn drop_key(&self, key: &str) {
        self.raw().remove(key);
        self.resolver.untag(key);
    }

    /// Replaces the foreign top-level fields (another writer's are newer than ours).
    pub(crate) fn set_top(&self, top: Map<String, Value>) {
        *self.top() = top;
    }

    /// The entries `index.json` should hold, keyed by reference (a tag, or the digest of an
    /// untagged entry): tagged entries carry their ref.name, untagged ones none.
    pub(crate) fn entries(&self) -> BTreeMap<String, Value> {
        let snapshot = self.resolver.snapshot();
        let raw = self.raw();
        let mut out = BTreeMap::new();
        for (reference, desc) in snapshot {
            let digest = desc.digest().as_ref();
            let is_digest_entry = reference == digest;
            if is_digest_entry && self.resolver.is_tagged(digest) {
                continue;
            }
            let base = raw
                .get(&reference)
                .cloned()
                .unwrap_or_else(|| descriptor_json(&desc));
            let name = (!is_digest_entry).then_some(reference.as_str());
            out.insert(reference.clone(), with_ref_name(base, name));
        }
        out
    }

    /// The bytes of `index.json` for `entries` (see [`IndexState::entries`]): tagged entries by
    /// tag, then untagged ones by digest.
    pub(crate) fn encode(&self, entries: &BTreeMap<String, Value>) -> Vec<u8> {
        let (mut tagged, mut untagged) = (Vec::new(), Vec::new());
        for (reference, entry) in entries {
            let is_digest_entry = entry.get("digest").and_then(Value::as_str) == Some(reference);
            if is_digest_entry {
                untagged.push(entry.clone());
            } else {
                tagged.push(entry.clone());
            }
        }
        tagged.extend(untagged);
        index_file::encode_index(&self.top(), tagged)
    }
}
