//! What `index.json` says, held in memory: references (tags and digest entries) for lookups, and
//! beside them the entries to write, already serialised, so that a write costs a concatenation
//! rather than a rebuild of every entry.
//!
//! Entries read from disk keep their JSON as written (other tools' fields and annotations, the
//! spec's `os.version` spelling); a caller's change to a reference replaces that with the
//! caller's descriptor.

use super::codec::{self, descriptor_json, with_ref_name, IndexDocument};
use oci_spec::image::Descriptor;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use store_core::descriptor::without_ref_name;
use store_core::resolver::MemoryResolver;

/// One entry of `index.json`, serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryText {
    /// The entry's compact JSON.
    pub(crate) json: Arc<str>,
    /// Whether it is an untagged entry (keyed by its own digest, no `ref.name`).
    pub(crate) untagged: bool,
    /// The digest it names.
    pub(crate) digest: Arc<str>,
}

impl EntryText {
    /// An entry made from its JSON tree (the tests' way to write one).
    #[cfg(test)]
    pub(crate) fn new(value: &Value, untagged: bool) -> EntryText {
        EntryText {
            json: serde_json::to_string(value).unwrap_or_default().into(),
            untagged,
            digest: value
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
        }
    }
}

/// An entry's compact JSON as read from disk, shared by every key that names it.
pub(crate) type RawEntry = Arc<str>;

/// Entries by key: a tag, or the digest of an untagged entry; sorted, which is the order they
/// are written in (tagged by tag, then untagged by digest).
pub(crate) type Entries = BTreeMap<String, EntryText>;

/// What one tag or untag changed, so that a failed save can put it back
/// ([`IndexState::undo`]).
#[derive(Debug)]
pub(crate) struct Undo {
    reference: String,
    /// What `reference` pointed at before, with the entry's JSON as read from disk.
    before: Option<(Descriptor, Option<RawEntry>)>,
    /// The digest this call pointed `reference` at; `None` for an untag.
    after: Option<String>,
    /// The digest entry added for this call (a tag of a manifest the index did not list).
    pub(crate) added_digest: Option<String>,
}

impl Undo {
    /// Undoes only the digest entry `digest` added for a call.
    pub(crate) fn added_digest(digest: String) -> Undo {
        Undo {
            reference: digest.clone(),
            before: None,
            after: None,
            added_digest: Some(digest),
        }
    }

    /// What `reference` pointed at before the call; `None` when it was new.
    pub(crate) fn previous(&self) -> Option<&Descriptor> {
        self.before.as_ref().map(|(desc, _)| desc)
    }
}

#[derive(Debug, Default)]
struct Written {
    /// Entries as read from disk, by reference (tag or digest), until a caller changes that
    /// reference.
    raw: HashMap<String, RawEntry>,
    /// Digests of untagged entries whose `ref.name` is not a tag (it spells another digest):
    /// written back as read, `ref.name` included, while nobody changes them.
    verbatim: HashSet<String>,
    entries: Entries,
    top: Map<String, Value>,
}

/// The in-memory index. Mutations take one short lock (then the resolver's), never across an
/// await; lookups go to the resolver alone.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    resolver: MemoryResolver,
    written: Mutex<Written>,
}

impl IndexState {
    /// What `reference` (a tag, or the digest of an entry) points at.
    pub(crate) fn resolve(&self, reference: &str) -> Option<Descriptor> {
        self.resolver
            .resolve_shared(reference)
            .map(|desc| as_seen_by(&desc, reference))
    }

    /// The tags, ascending, strictly after `last`.
    pub(crate) fn tags(&self, last: Option<&str>) -> Vec<String> {
        self.resolver.tags(last)
    }

    /// Whether a tag points at `digest`.
    pub(crate) fn is_tagged(&self, digest: &str) -> bool {
        self.resolver.is_tagged(digest)
    }

    /// Every reference (tags and digests of entries) with what it points at.
    pub(crate) fn references(&self) -> Vec<(String, Descriptor)> {
        let mut out = self.resolver.snapshot();
        for (reference, desc) in &mut out {
            if desc.digest().as_ref() == reference.as_str() {
                *desc = without_ref_name(desc);
            }
        }
        out
    }

    /// The entries `index.json` holds once saved, in its order (tagged ones by tag, each with its
    /// `ref.name`, then untagged ones by digest), as descriptors.
    pub(crate) fn listed(&self) -> Vec<Descriptor> {
        let w = self.written();
        let mut out = Vec::with_capacity(w.entries.len());
        for untagged in [false, true] {
            for entry in w.entries.values().filter(|e| e.untagged == untagged) {
                // Every entry was made from a descriptor, so it parses back into one.
                if let Ok(desc) = serde_json::from_str::<Descriptor>(&entry.json) {
                    out.push(desc);
                }
            }
        }
        out
    }

    /// How many entries `index.json` holds once saved, and how many of them carry a tag.
    pub(crate) fn entry_counts(&self) -> (usize, usize) {
        let w = self.written();
        let tagged = w.entries.values().filter(|e| !e.untagged).count();
        (w.entries.len(), tagged)
    }

    fn written(&self) -> MutexGuard<'_, Written> {
        self.written.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Recomputes the entry `key` from the resolver: present for a tag, and for a digest entry
    /// whose digest carries no tag.
    fn refresh(&self, w: &mut Written, key: &str) {
        let Some(desc) = self.resolver.resolve_shared(key) else {
            w.entries.remove(key);
            return;
        };
        let untagged = desc.digest().as_ref() == key;
        if untagged && self.resolver.is_tagged(key) {
            w.entries.remove(key);
            return;
        }
        let text = match w.raw.get(key) {
            Some(raw) if untagged && w.verbatim.contains(key) => raw.clone(),
            Some(raw) => {
                // Entries read from disk parse (they were parsed on load); the text is shared
                // when the name it carries is already right, which is every entry on load.
                let value = serde_json::from_str(raw).unwrap_or(Value::Null);
                let edited =
                    serde_json::to_string(&with_ref_name(value, (!untagged).then_some(key)))
                        .unwrap_or_default();
                if *edited == **raw {
                    raw.clone()
                } else {
                    edited.into()
                }
            }
            None => {
                let value = with_ref_name(descriptor_json(&desc), (!untagged).then_some(key));
                serde_json::to_string(&value).unwrap_or_default().into()
            }
        };
        w.entries.insert(
            key.to_string(),
            EntryText {
                json: text,
                untagged,
                digest: desc.digest().as_ref().into(),
            },
        );
    }

    /// Replaces the state with what `doc` says, as oras-go loads it: each entry is tagged
    /// under its digest (ref.name stripped, see [`IndexState::resolve`]) and, when it has a
    /// ref.name, under that name as written: one descriptor shared by both. Later duplicates
    /// win.
    pub(crate) fn load(&self, doc: &IndexDocument) {
        let mut w = self.written();
        self.resolver.clear();
        *w = Written {
            top: doc.top.clone(),
            ..Written::default()
        };
        for entry in &doc.entries {
            let digest = entry.desc.digest().to_string();
            self.resolver.tag_shared(Arc::clone(&entry.desc), &digest);
            if codec::ref_name(&entry.desc) != codec::tag_name(&entry.desc) {
                // A `ref.name` spelling another digest: no tag, and its JSON stays as written.
                w.verbatim.insert(digest.clone());
            }
            w.raw.insert(digest, entry.raw.clone());
            if let Some(name) = codec::tag_name(&entry.desc) {
                self.resolver.tag_shared(Arc::clone(&entry.desc), name);
                w.raw.insert(name.to_string(), entry.raw.clone());
            }
        }
        // Once every reference is in, as a refresh depends on the others (a digest entry gives
        // way to a tag); a key named twice is refreshed twice, to the same result. Walking the
        // document rather than collecting the keys saves a copy of every key.
        for entry in &doc.entries {
            self.refresh(&mut w, entry.desc.digest().as_ref());
            if let Some(name) = codec::tag_name(&entry.desc) {
                self.refresh(&mut w, name);
            }
        }
    }

    /// Points `reference` at `desc` (the caller's descriptor replaces any entry read from disk).
    /// Returns how to undo it (see [`IndexState::undo`]).
    pub(crate) fn tag(&self, desc: Descriptor, reference: &str) -> Undo {
        let mut w = self.written();
        let raw = w.raw.remove(reference);
        let digest = desc.digest().to_string();
        let previous = self.resolver.tag(desc, reference);
        self.refresh(&mut w, reference);
        self.refresh(&mut w, &digest);
        if let Some(previous) = &previous {
            self.refresh(&mut w, previous.digest().as_ref());
        }
        Undo {
            reference: reference.to_string(),
            before: previous.map(|desc| (desc, raw)),
            after: Some(digest),
            added_digest: None,
        }
    }

    /// Records `desc` under its own digest (a manifest pushed or tagged), unless already there.
    /// Returns whether it was added.
    pub(crate) fn tag_digest(&self, desc: &Descriptor) -> bool {
        let digest = desc.digest().as_ref();
        if self.resolver.resolve(digest).is_some() {
            return false;
        }
        let mut w = self.written();
        if self.resolver.resolve(digest).is_some() {
            return false;
        }
        self.resolver.tag(without_ref_name(desc), digest);
        self.refresh(&mut w, digest);
        true
    }

    /// Removes `reference`; returns how to undo it (see [`IndexState::undo`]), or `None` when
    /// it pointed at nothing.
    pub(crate) fn untag(&self, reference: &str) -> Option<Undo> {
        let mut w = self.written();
        let raw = w.raw.remove(reference);
        let previous = self.resolver.untag(reference);
        self.refresh(&mut w, reference);
        let previous = previous?;
        self.refresh(&mut w, previous.digest().as_ref());
        Some(Undo {
            reference: reference.to_string(),
            before: Some((previous, raw)),
            after: None,
            added_digest: None,
        })
    }

    /// Puts back what a [`IndexState::tag`] or [`IndexState::untag`] (and the digest entry a
    /// tag added, noted by [`Undo::added_digest`]) changed, when its save failed. A reference
    /// another caller moved since is left as that caller set it: only this call's change is
    /// undone.
    pub(crate) fn undo(&self, undo: Undo) {
        let mut w = self.written();
        let now = self.resolver.resolve(&undo.reference);
        let unchanged_since = match (&now, &undo.after) {
            (Some(now), Some(after)) => now.digest().as_ref() == after.as_str(),
            (None, None) => true,
            _ => false,
        };
        if unchanged_since {
            let mut touched: Vec<String> = now.iter().map(|d| d.digest().to_string()).collect();
            match undo.before {
                Some((desc, raw)) => {
                    touched.push(desc.digest().to_string());
                    self.resolver.tag(desc, &undo.reference);
                    match raw {
                        Some(raw) => w.raw.insert(undo.reference.clone(), raw),
                        None => w.raw.remove(&undo.reference),
                    };
                }
                None => {
                    self.resolver.untag(&undo.reference);
                    w.raw.remove(&undo.reference);
                }
            }
            self.refresh(&mut w, &undo.reference);
            for digest in touched {
                self.refresh(&mut w, &digest);
            }
        }
        if let Some(digest) = undo.added_digest {
            // Only while no tag points at it: a digest entry another caller relies on stays.
            if !self.resolver.is_tagged(&digest) {
                self.resolver.untag(&digest);
                w.raw.remove(&digest);
                self.refresh(&mut w, &digest);
            }
        }
    }

    /// Removes every reference to `digest` (its tags and its digest entry); returns what was
    /// removed, so a failed save can put it back.
    pub(crate) fn forget_digest(
        &self,
        digest: &str,
    ) -> Vec<(String, Descriptor, Option<RawEntry>)> {
        let mut w = self.written();
        let mut removed = Vec::new();
        for reference in self.resolver.refs_of(digest) {
            let raw = w.raw.remove(&reference);
            if let Some(desc) = self.resolver.untag(&reference) {
                removed.push((reference.clone(), desc, raw));
            }
            self.refresh(&mut w, &reference);
        }
        self.refresh(&mut w, digest);
        removed
    }

    /// Puts back references removed by [`IndexState::forget_digest`].
    pub(crate) fn restore(&self, removed: Vec<(String, Descriptor, Option<RawEntry>)>) {
        let mut w = self.written();
        for (reference, desc, raw) in removed {
            let digest = desc.digest().to_string();
            self.resolver.tag(desc, &reference);
            if let Some(raw) = raw {
                w.raw.insert(reference.clone(), raw);
            }
            self.refresh(&mut w, &reference);
            self.refresh(&mut w, &digest);
        }
    }

    /// Takes over an entry another writer put in `index.json` under `key`; returns its
    /// descriptor, or `None` if it is not a descriptor.
    pub(crate) fn adopt(&self, key: &str, entry: &EntryText) -> Option<Descriptor> {
        let desc: Descriptor = serde_json::from_str(&entry.json).ok()?;
        let digest = desc.digest().to_string();
        let mut w = self.written();
        if self.resolver.resolve(&digest).is_none() || key == digest {
            self.resolver.tag(without_ref_name(&desc), &digest);
        }
        let previous = if key == digest {
            None
        } else {
            self.resolver.tag(desc.clone(), key)
        };
        w.raw.insert(key.to_string(), entry.json.clone());
        self.refresh(&mut w, key);
        self.refresh(&mut w, &digest);
        if let Some(previous) = previous {
            self.refresh(&mut w, previous.digest().as_ref());
        }
        Some(desc)
    }

    /// Drops the entry `key` (another writer removed it).
    pub(crate) fn drop_key(&self, key: &str) {
        let mut w = self.written();
        w.raw.remove(key);
        let previous = self.resolver.untag(key);
        self.refresh(&mut w, key);
        if let Some(previous) = previous {
            self.refresh(&mut w, previous.digest().as_ref());
        }
    }

    /// Replaces the foreign top-level fields (another writer's are newer than ours).
    pub(crate) fn set_top(&self, top: Map<String, Value>) {
        self.written().top = top;
    }

    /// The entries `index.json` should hold now.
    pub(crate) fn entries(&self) -> Entries {
        self.written().entries.clone()
    }

    /// The bytes of `index.json` for `entries`: top-level fields in their order (with
    /// `schemaVersion` 2 and the index `mediaType` when missing), then the entries, tagged ones by
    /// tag, then untagged ones by digest.
    pub(crate) fn encode(&self, entries: &Entries) -> Vec<u8> {
        let top = self.written().top.clone();
        encode_entries(&top, entries)
    }

    /// The bytes of `index.json` for the entries held now (see [`IndexState::encode`]), without
    /// copying them first.
    pub(crate) fn encode_current(&self) -> Vec<u8> {
        let w = self.written();
        encode_entries(&w.top, &w.entries)
    }
}

/// `desc` as `reference` gives it: a digest entry without `ref.name` (the resolver may hold
/// the descriptor it shares with a tag).
fn as_seen_by(desc: &Descriptor, reference: &str) -> Descriptor {
    if desc.digest().as_ref() == reference {
        without_ref_name(desc)
    } else {
        desc.clone()
    }
}

/// See [`IndexState::encode`].
fn encode_entries(top: &Map<String, Value>, entries: &Entries) -> Vec<u8> {
    let top = codec::encode_index(top, Vec::new());
    // `top` ends with `"manifests":[]}`; the entries go between the brackets.
    let head = top.len().saturating_sub(2);
    let size: usize = entries.values().map(|e| e.json.len() + 1).sum();
    let mut out = Vec::with_capacity(top.len() + size);
    out.extend_from_slice(&top[..head]);
    let mut first = true;
    for untagged in [false, true] {
        for entry in entries.values().filter(|e| e.untagged == untagged) {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(entry.json.as_bytes());
        }
    }
    out.extend_from_slice(&top[head..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use store_core::content::descriptor_from_bytes;
    use store_core::descriptor::REF_NAME;

    fn manifest(n: u8) -> Descriptor {
        descriptor_from_bytes(oci_spec::image::MediaType::ImageManifest, &[n])
    }

    fn decoded(state: &IndexState) -> Value {
        serde_json::from_slice(&state.encode(&state.entries())).unwrap()
    }

    #[test]
    fn entries_follow_tags_moves_and_untags() {
        let state = IndexState::default();
        let (a, b) = (manifest(1), manifest(2));
        state.tag_digest(&a);
        state.tag_digest(&b);
        assert_eq!(decoded(&state)["manifests"].as_array().unwrap().len(), 2);
        state.tag(a.clone(), "v1");
        let json = decoded(&state);
        let list = json["manifests"].as_array().unwrap();
        assert_eq!(list.len(), 2, "a's untagged entry gave way to its tag");
        assert_eq!(list[0]["annotations"][REF_NAME], "v1");
        assert!(list[1].get("annotations").is_none());
        assert_eq!(list[1]["digest"], b.digest().to_string());
        // The tag moves to b: a is untagged again, b's untagged entry goes.
        state.tag(b.clone(), "v1");
        let json = decoded(&state);
        let list = json["manifests"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["digest"], b.digest().to_string());
        assert_eq!(list[1]["digest"], a.digest().to_string());
        state.untag("v1");
        assert_eq!(decoded(&state)["manifests"].as_array().unwrap().len(), 2);
        let removed = state.forget_digest(b.digest().as_ref());
        assert_eq!(removed.len(), 1);
        assert_eq!(decoded(&state)["manifests"].as_array().unwrap().len(), 1);
        state.restore(removed);
        assert_eq!(decoded(&state)["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(
            decoded(&state)["mediaType"],
            store_core::descriptor::OCI_INDEX
        );
    }

    #[test]
    fn undo_puts_back_only_what_the_call_changed() {
        let state = IndexState::default();
        let (a, b) = (manifest(1), manifest(2));
        state.tag_digest(&a);
        state.tag_digest(&b);
        state.tag(a.clone(), "v1");
        let before = decoded(&state);
        // A move undone: v1 is back on a, b's untagged entry is back.
        let undo = state.tag(b.clone(), "v1");
        state.undo(undo);
        assert_eq!(decoded(&state), before);
        // An untag undone.
        let undo = state.untag("v1").unwrap();
        state.undo(undo);
        assert_eq!(decoded(&state), before);
        // A reference another caller moved since is left as that caller set it.
        let undo = state.tag(b.clone(), "v2");
        state.tag(a.clone(), "v2");
        state.undo(undo);
        assert_eq!(state.resolve("v2").unwrap().digest(), a.digest());
        // A digest entry added for a tag goes with it, unless a tag points at it.
        let c = manifest(3);
        assert!(state.tag_digest(&c));
        let mut undo = state.tag(c.clone(), "v3");
        undo.added_digest = Some(c.digest().to_string());
        state.undo(undo);
        assert!(state.resolve(c.digest().as_ref()).is_none());
        assert!(state.resolve("v3").is_none());
    }

    #[test]
    fn encoding_an_empty_index() {
        let state = IndexState::default();
        let json = decoded(&state);
        assert_eq!(json["manifests"], serde_json::json!([]));
        assert_eq!(json["schemaVersion"], 2);
    }
}
