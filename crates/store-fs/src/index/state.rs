//! What `index.json` says, held in memory: references (tags and digest entries) for lookups, and
//! beside them the entries to write, each as the JSON it is written as, so that a write costs a
//! concatenation rather than a rebuild of every entry.
//!
//! Entries read from disk keep their JSON as written (other tools' fields and annotations, the
//! spec's `os.version` spelling): a slice of the `index.json` bytes they were read from, not a
//! copy; a caller's change to a reference replaces that with the caller's descriptor.
//!
//! Everything is held compactly, as a layout may hold hundreds of thousands of entries: one
//! [`Held`] per entry shared by its digest and its tag, each digest one string whatever names it,
//! and no second copy of an entry's JSON where the bytes read already hold it.

use super::codec::{self, descriptor_json, with_ref_name, IndexDocument};
use super::held::Held;
use bytes::Bytes;
use compact_str::CompactString;
use oci_spec::image::Descriptor;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use store_core::SharedDescriptor;

/// The hasher of the digest map: foldhash, several times faster than SipHash on digests.
type Hasher = foldhash::fast::RandomState;

/// One entry of `index.json`, serialised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryText {
    /// The entry's JSON.
    pub(crate) json: Bytes,
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
            json: serde_json::to_vec(value).unwrap_or_default().into(),
            untagged,
            digest: value
                .get("digest")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
        }
    }
}

/// Entries by key: a tag, or the digest of an untagged entry; sorted, which is the order they
/// are written in (tagged by tag, then untagged by digest).
pub(crate) type Entries = BTreeMap<String, EntryText>;

/// A reference removed by [`IndexState::forget_digest`], with what it pointed at (and the JSON
/// it was read from), to put back with [`IndexState::restore`].
pub(crate) type Removed = (String, Arc<Held>);

/// What one tag or untag changed, so that a failed save can put it back
/// ([`IndexState::undo`]).
#[derive(Debug)]
pub(crate) struct Undo {
    reference: String,
    /// What `reference` pointed at before, with the entry's JSON as read from disk.
    before: Option<Arc<Held>>,
    /// The digest this call pointed `reference` at; `None` for an untag.
    after: Option<Arc<str>>,
    /// The digest entry added for this call (a tag of a manifest the index did not list).
    added_digest: Option<String>,
}

impl Undo {
    /// Undoes only the digest entry `digest` added for a call.
    fn added_digest(digest: String) -> Undo {
        Undo {
            reference: digest.clone(),
            before: None,
            after: None,
            added_digest: Some(digest),
        }
    }
}

/// The tags pointing at one digest, ascending. Nearly every digest has none or one: those cost
/// no allocation.
#[derive(Debug, Default)]
enum TagSet {
    #[default]
    None,
    One(Arc<str>),
    /// Boxed so that the set, rare, does not widen every digest's record.
    #[allow(clippy::box_collection)]
    Many(Box<BTreeSet<Arc<str>>>),
}

impl TagSet {
    fn insert(&mut self, tag: Arc<str>) {
        match std::mem::take(self) {
            TagSet::None => *self = TagSet::One(tag),
            TagSet::One(one) if one == tag => *self = TagSet::One(one),
            TagSet::One(one) => *self = TagSet::Many(Box::new(BTreeSet::from([one, tag]))),
            TagSet::Many(mut set) => {
                set.insert(tag);
                *self = TagSet::Many(set);
            }
        }
    }

    fn remove(&mut self, tag: &str) {
        match self {
            TagSet::None => {}
            TagSet::One(one) => {
                if **one == *tag {
                    *self = TagSet::None;
                }
            }
            TagSet::Many(set) => {
                set.remove(tag);
                if set.is_empty() {
                    *self = TagSet::None;
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, TagSet::None)
    }

    fn to_vec(&self) -> Vec<String> {
        match self {
            TagSet::None => Vec::new(),
            TagSet::One(one) => vec![one.to_string()],
            TagSet::Many(set) => set.iter().map(|t| t.to_string()).collect(),
        }
    }
}

/// What one digest is known as: its digest entry, and the tags pointing at it.
#[derive(Debug, Default)]
struct DigestRecord {
    entry: Option<Arc<Held>>,
    tags: TagSet,
}

/// A tag and the JSON of the entry it is written as.
#[derive(Debug)]
struct Tagged {
    held: Arc<Held>,
    /// The entry's JSON when it is not the held JSON as read (`None`: the read JSON is it);
    /// boxed, as nearly every tag has none.
    text: Option<Box<Bytes>>,
}

/// A tag's slot in the hash index. A resolve is bound by memory latency, not instructions, so
/// the slot holds what it reads: the tag itself, inline up to 24 bytes (no string behind a
/// pointer to compare), and the descriptor the tag resolves to once built (no [`Held`] to visit
/// on the way to it).
#[derive(Debug)]
struct TagSlot {
    held: Arc<Held>,
    resolved: OnceLock<SharedDescriptor>,
}

impl TagSlot {
    fn new(held: Arc<Held>) -> TagSlot {
        TagSlot {
            held,
            resolved: OnceLock::new(),
        }
    }

    /// What a resolve of the tag gives (see [`Held::resolved`] for `None`).
    fn resolved(&self) -> Option<SharedDescriptor> {
        if let Some(desc) = self.resolved.get() {
            return Some(desc.clone());
        }
        let desc = self.held.resolved(false)?;
        Some(self.resolved.get_or_init(|| desc).clone())
    }
}

#[derive(Debug, Default)]
struct Table {
    /// Every digest a reference points at.
    digests: HashMap<Arc<str>, DigestRecord, Hasher>,
    /// Tags (references other than a digest), ascending: the order tagged entries are written
    /// in.
    tags: BTreeMap<Arc<str>, Tagged>,
    /// The same tags by hash: a lookup in the ordered map compares a dozen keys, each behind a
    /// pointer, where this makes one probe into slots that hold everything a resolve reads.
    tag_index: HashMap<CompactString, TagSlot, Hasher>,
    /// The digest entries written untagged (no tag points at their digest), ascending: the order
    /// they are written in; each with its JSON when it is not the held JSON as read.
    untagged: BTreeMap<Arc<str>, Option<Bytes>>,
    top: Map<String, Value>,
}

/// The in-memory index. Every operation takes one short lock, never across an await.
#[derive(Debug, Default)]
pub(crate) struct IndexState {
    table: RwLock<Table>,
}

/// The JSON of `held` written as the tag `key`: as read when it already names `key`.
fn tag_text(held: &Held, key: &str) -> Option<Bytes> {
    match held.raw() {
        Some(_) if held.ref_name() == Some(key) => None,
        Some(raw) => Some(edited(raw, Some(key))),
        None => Some(generated(held, Some(key))),
    }
}

/// The JSON of `held` written as an untagged entry: as read when it has no `ref.name` to strip,
/// or keeps one spelling another digest (see [`Held::verbatim`]).
fn untagged_text(held: &Held) -> Option<Bytes> {
    match held.raw() {
        Some(_) if held.verbatim() || !held.has_ref_name() => None,
        Some(raw) => Some(edited(raw, None)),
        None => Some(generated(held, None)),
    }
}

/// `raw` with its `ref.name` set to `name` (or removed).
fn edited(raw: &Bytes, name: Option<&str>) -> Bytes {
    // Entries read from disk parse (they were parsed on load).
    let value = serde_json::from_slice(raw).unwrap_or(Value::Null);
    serde_json::to_vec(&with_ref_name(value, name))
        .unwrap_or_default()
        .into()
}

/// `held`'s descriptor as image-spec JSON, with its `ref.name` set to `name` (or removed).
fn generated(held: &Held, name: Option<&str>) -> Bytes {
    let value = held
        .descriptor()
        .map(|desc| descriptor_json(&desc))
        .unwrap_or(Value::Null);
    serde_json::to_vec(&with_ref_name(value, name))
        .unwrap_or_default()
        .into()
}

impl Table {
    /// What `reference` points at: a digest names its digest entry, never a tag.
    fn get(&self, reference: &str) -> Option<&Arc<Held>> {
        // Every digest has a colon, a plain tag none: a tag skips the probe of the digest map.
        let may_be_digest = reference.contains(':');
        if let Some(held) = may_be_digest
            .then(|| self.digests.get(reference))
            .flatten()
            .and_then(|r| r.entry.as_ref())
        {
            return Some(held);
        }
        self.tag_index.get(reference).map(|slot| &slot.held)
    }

    /// `digest` as the digest map holds it, or `fallback`.
    fn key(&self, digest: &str, fallback: &Arc<str>) -> Arc<str> {
        match self.digests.get_key_value(digest) {
            Some((key, _)) => Arc::clone(key),
            None => Arc::clone(fallback),
        }
    }

    /// Points `reference` at `held` (a digest entry when `reference` is its digest); returns
    /// what it pointed at before. `refresh` says whether to update the untagged entries now.
    fn bind(&mut self, reference: &str, held: Arc<Held>, refresh: bool) -> Option<Arc<Held>> {
        let digest = self.key(held.digest(), held.digest());
        if *reference == *digest {
            let record = self.digests.entry(Arc::clone(&digest)).or_default();
            let previous = record.entry.replace(held);
            if refresh {
                self.untagged.remove(&*digest);
                self.refresh(&digest);
            }
            return previous;
        }
        // The old digest is refreshed once the tag is in: a tag moving within one digest never
        // makes it untagged meanwhile.
        let previous = self.unbind_tag(reference, false);
        let tag: Arc<str> = match held.shared_ref_name(reference) {
            Some(shared) => Arc::clone(shared),
            None => reference.into(),
        };
        self.digests
            .entry(Arc::clone(&digest))
            .or_default()
            .tags
            .insert(Arc::clone(&tag));
        let text = tag_text(&held, reference).map(Box::new);
        self.tag_index
            .insert(CompactString::from(&*tag), TagSlot::new(Arc::clone(&held)));
        self.tags.insert(tag, Tagged { held, text });
        if refresh {
            if let Some(previous) = previous.as_ref().filter(|p| *p.digest() != digest) {
                self.refresh(&Arc::clone(previous.digest()));
            }
            self.refresh(&digest);
        }
        previous
    }

    /// Removes the tag `reference`; returns what it pointed at.
    fn unbind_tag(&mut self, reference: &str, refresh: bool) -> Option<Arc<Held>> {
        let (_, tagged) = self.tags.remove_entry(reference)?;
        self.tag_index.remove(reference);
        let digest = Arc::clone(tagged.held.digest());
        if let Some(record) = self.digests.get_mut(&*digest) {
            record.tags.remove(reference);
        }
        if refresh {
            self.refresh(&digest);
        }
        Some(tagged.held)
    }

    /// Removes `reference` (a digest entry or a tag); returns what it pointed at.
    fn unbind(&mut self, reference: &str) -> Option<Arc<Held>> {
        if let Some(record) = self.digests.get_mut(reference) {
            if let Some(previous) = record.entry.take() {
                self.untagged.remove(reference);
                self.refresh(reference);
                return Some(previous);
            }
        }
        self.unbind_tag(reference, true)
    }

    /// Brings the untagged entry of `digest` in line with its references: written while it has
    /// a digest entry and no tag. Drops the record of a digest nothing names any more.
    fn refresh(&mut self, digest: &str) {
        let Some((key, record)) = self.digests.get_key_value(digest) else {
            self.untagged.remove(digest);
            return;
        };
        match (&record.entry, record.tags.is_empty()) {
            (Some(held), true) => {
                if !self.untagged.contains_key(digest) {
                    let text = untagged_text(held);
                    self.untagged.insert(Arc::clone(key), text);
                }
            }
            (entry, no_tags) => {
                self.untagged.remove(digest);
                if entry.is_none() && no_tags {
                    self.digests.remove(digest);
                }
            }
        }
    }

    /// The JSON of every entry written, in order: tagged by tag, then untagged by digest.
    fn written(&self) -> impl Iterator<Item = (&Arc<str>, &Bytes, bool)> + Clone + '_ {
        let tagged = self.tags.iter().filter_map(|(tag, tagged)| {
            let json = tagged.text.as_deref().or(tagged.held.raw())?;
            Some((tag, json, false))
        });
        let untagged = self.untagged.iter().filter_map(|(digest, text)| {
            let record = self.digests.get(&**digest)?;
            let json = text.as_ref().or(record.entry.as_ref()?.raw())?;
            Some((digest, json, true))
        });
        tagged.chain(untagged)
    }
}

impl IndexState {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|p| p.into_inner())
    }

    /// What `reference` (a tag, or the digest of an entry) points at, shared; the digest of an
    /// entry gives its plain descriptor (media type, digest, size).
    pub(crate) fn resolve(&self, reference: &str) -> Option<SharedDescriptor> {
        let table = self.read();
        if !reference.contains(':') {
            // A tag (every digest has a colon): its slot holds all a resolve reads.
            return table.tag_index.get(reference)?.resolved();
        }
        let held = table.get(reference)?;
        held.resolved(**held.digest() == *reference)
    }

    /// The tags, ascending, strictly after `last`.
    pub(crate) fn tags(&self, last: Option<&str>) -> Vec<String> {
        let table = self.read();
        let from = last.map_or(Bound::Unbounded, Bound::Excluded);
        table
            .tags
            .range::<str, _>((from, Bound::Unbounded))
            .map(|(tag, _)| tag.to_string())
            .collect()
    }

    /// Whether a tag points at `digest`.
    pub(crate) fn is_tagged(&self, digest: &str) -> bool {
        self.read()
            .digests
            .get(digest)
            .is_some_and(|record| !record.tags.is_empty())
    }

    /// Every reference (tags and digests of entries) with what it points at, by reference.
    pub(crate) fn references(&self) -> Vec<(String, Descriptor)> {
        let table = self.read();
        let mut out: Vec<(String, Descriptor)> = Vec::new();
        for (tag, tagged) in &table.tags {
            out.extend(tagged.held.descriptor().map(|d| (tag.to_string(), d)));
        }
        for (digest, record) in &table.digests {
            if let Some(held) = &record.entry {
                out.extend(held.without_ref_name().map(|d| (digest.to_string(), d)));
            }
        }
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The entries `index.json` holds once saved, in its order (tagged ones by tag, each with its
    /// `ref.name`, then untagged ones by digest), as descriptors.
    pub(crate) fn listed(&self) -> Vec<Descriptor> {
        let table = self.read();
        // Every entry was made from a descriptor, so it parses back into one.
        table
            .written()
            .filter_map(|(_, json, _)| serde_json::from_slice::<Descriptor>(json).ok())
            .collect()
    }

    /// How many entries `index.json` holds once saved, and how many of them carry a tag.
    pub(crate) fn entry_counts(&self) -> (usize, usize) {
        let table = self.read();
        (table.tags.len() + table.untagged.len(), table.tags.len())
    }

    /// Replaces the state with what `doc` says, as oras-go loads it: each entry is tagged
    /// under its digest (ref.name stripped, see [`IndexState::resolve`]) and, when it has a
    /// ref.name, under that name as written: one [`Held`] shared by both. Later duplicates win.
    pub(crate) fn load(&self, doc: &IndexDocument) {
        let mut table = self.write();
        *table = Table {
            top: doc.top.clone(),
            ..Table::default()
        };
        table.digests.reserve(doc.entries.len());
        let tagged = doc.entries.iter().filter(|e| e.held.tag_name().is_some());
        table.tag_index.reserve(tagged.count());
        for entry in &doc.entries {
            let held = &entry.held;
            table.bind(held.digest(), Arc::clone(held), false);
            if let Some(name) = held.tag_name() {
                table.bind(name, Arc::clone(held), false);
            }
        }
        // Once every reference is in, as an untagged entry gives way to a tag.
        for entry in &doc.entries {
            table.refresh(entry.held.digest());
        }
    }

    /// Points `reference` at `desc` (the caller's descriptor replaces any entry read from disk).
    /// Returns how to undo it (see [`IndexState::undo`]).
    pub(crate) fn tag(&self, desc: Descriptor, reference: &str) -> Undo {
        let held = Arc::new(Held::new(desc, None));
        let after = Some(Arc::clone(held.digest()));
        let previous = self.write().bind(reference, held, true);
        Undo {
            reference: reference.to_string(),
            before: previous,
            after,
            added_digest: None,
        }
    }

    /// Points `reference` at `desc` as a tag does: the digest entry first (unless listed), then
    /// the tag when `reference` is not the digest itself. Returns how to undo both (see
    /// [`IndexState::undo`]); `None` when nothing changed.
    pub(crate) fn tag_with_undo(&self, desc: &Descriptor, reference: &str) -> Option<Undo> {
        let digest = desc.digest().as_ref();
        let added = self.tag_digest(desc).then(|| digest.to_string());
        if reference != digest {
            let mut undo = self.tag(desc.clone(), reference);
            undo.added_digest = added;
            Some(undo)
        } else {
            added.map(Undo::added_digest)
        }
    }

    /// Records `desc` under its own digest (a manifest pushed or tagged), unless already there.
    /// Returns whether it was added.
    pub(crate) fn tag_digest(&self, desc: &Descriptor) -> bool {
        let digest = desc.digest().as_ref();
        let has_entry =
            |table: &Table| table.digests.get(digest).is_some_and(|r| r.entry.is_some());
        if has_entry(&self.read()) {
            return false;
        }
        let mut table = self.write();
        if has_entry(&table) {
            return false;
        }
        let held = Held::new(store_core::descriptor::without_ref_name(desc), None);
        table.bind(digest, Arc::new(held), true);
        true
    }

    /// Removes `reference`; returns how to undo it (see [`IndexState::undo`]), or `None` when
    /// it pointed at nothing.
    pub(crate) fn untag(&self, reference: &str) -> Option<Undo> {
        let previous = self.write().unbind(reference)?;
        Some(Undo {
            reference: reference.to_string(),
            before: Some(previous),
            after: None,
            added_digest: None,
        })
    }

    /// Puts back what a [`IndexState::tag`] or [`IndexState::untag`] (and the digest entry a
    /// tag added, noted by [`Undo::added_digest`]) changed, when its save failed. A reference
    /// another caller moved since is left as that caller set it: only this call's change is
    /// undone.
    pub(crate) fn undo(&self, undo: Undo) {
        let mut table = self.write();
        let now = table.get(&undo.reference).map(|h| Arc::clone(h.digest()));
        let unchanged_since = match (&now, &undo.after) {
            (Some(now), Some(after)) => now == after,
            (None, None) => true,
            _ => false,
        };
        if unchanged_since {
            match undo.before {
                Some(held) => {
                    table.bind(&undo.reference, held, true);
                }
                None => {
                    table.unbind(&undo.reference);
                }
            }
        }
        if let Some(digest) = undo.added_digest {
            // Only while no tag points at it: a digest entry another caller relies on stays.
            let tagged = table
                .digests
                .get(digest.as_str())
                .is_some_and(|r| !r.tags.is_empty());
            if !tagged {
                table.unbind(&digest);
            }
        }
    }

    /// Removes every reference to `digest` (its tags and its digest entry); returns what was
    /// removed, so a failed save can put it back.
    pub(crate) fn forget_digest(&self, digest: &str) -> Vec<Removed> {
        let mut table = self.write();
        let Some(record) = table.digests.get(digest) else {
            return Vec::new();
        };
        let mut references = record.tags.to_vec();
        if record.entry.is_some() {
            references.push(digest.to_string());
        }
        references.sort_unstable();
        let mut removed = Vec::new();
        for reference in references {
            if let Some(held) = table.unbind(&reference) {
                removed.push((reference, held));
            }
        }
        removed
    }

    /// Puts back references removed by [`IndexState::forget_digest`].
    pub(crate) fn restore(&self, removed: Vec<Removed>) {
        let mut table = self.write();
        for (reference, held) in removed {
            table.bind(&reference, held, true);
        }
    }

    /// Takes over an entry another writer put in `index.json` under `key`; returns its
    /// descriptor, or `None` if it is not a descriptor.
    pub(crate) fn adopt(&self, key: &str, entry: &EntryText) -> Option<Descriptor> {
        let desc: Descriptor = serde_json::from_slice(&entry.json).ok()?;
        let digest = desc.digest().to_string();
        // A copy: a slice would keep the other writer's whole file in memory.
        let raw = Bytes::copy_from_slice(&entry.json);
        let mut table = self.write();
        if key == digest {
            table.bind(key, Arc::new(Held::new(desc.clone(), Some(raw))), true);
        } else {
            if table.get(&digest).is_none() {
                let plain = store_core::descriptor::without_ref_name(&desc);
                table.bind(&digest, Arc::new(Held::new(plain, None)), true);
            }
            table.bind(key, Arc::new(Held::new(desc.clone(), Some(raw))), true);
        }
        Some(desc)
    }

    /// Drops the entry `key` (another writer removed it).
    pub(crate) fn drop_key(&self, key: &str) {
        self.write().unbind(key);
    }

    /// Replaces the foreign top-level fields (another writer's are newer than ours).
    pub(crate) fn set_top(&self, top: Map<String, Value>) {
        self.write().top = top;
    }

    /// The entries `index.json` should hold now.
    pub(crate) fn entries(&self) -> Entries {
        let table = self.read();
        table
            .written()
            .filter_map(|(key, json, untagged)| {
                let digest = if untagged {
                    Arc::clone(key)
                } else {
                    Arc::clone(table.tags.get(&**key)?.held.digest())
                };
                let text = EntryText {
                    json: json.clone(),
                    untagged,
                    digest,
                };
                Some((key.to_string(), text))
            })
            .collect()
    }

    /// The bytes of `index.json` for `entries`: top-level fields in their order (with
    /// `schemaVersion` 2 and the index `mediaType` when missing), then the entries, tagged ones by
    /// tag, then untagged ones by digest.
    pub(crate) fn encode(&self, entries: &Entries) -> Vec<u8> {
        let top = self.read().top.clone();
        let ordered = [false, true].into_iter().flat_map(|untagged| {
            entries
                .values()
                .filter(move |e| e.untagged == untagged)
                .map(|e| &e.json)
        });
        let mut out = Vec::new();
        encode_entries(&top, ordered, &mut out);
        out
    }

    /// The bytes of `index.json` for the entries held now (see [`IndexState::encode`]), without
    /// copying them first.
    pub(crate) fn encode_current(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_current_into(&mut out);
        out
    }

    /// [`IndexState::encode_current`] into `out`, cleared first: a buffer kept from one write to
    /// the next has its pages mapped already, where a fresh one of a large index is a new
    /// mapping to fault in page by page.
    pub(crate) fn encode_current_into(&self, out: &mut Vec<u8>) {
        let table = self.read();
        encode_entries(&table.top, table.written().map(|(_, json, _)| json), out);
    }
}

/// See [`IndexState::encode`]; `entries` in the order written, into `out` (cleared first).
fn encode_entries<'a>(
    top: &Map<String, Value>,
    entries: impl Iterator<Item = &'a Bytes> + Clone,
    out: &mut Vec<u8>,
) {
    let top = codec::encode_index(top, Vec::new());
    // `top` ends with `"manifests":[]}`; the entries go between the brackets.
    let head = top.len().saturating_sub(2);
    let size: usize = entries.clone().map(|json| json.len() + 1).sum();
    out.clear();
    out.reserve(top.len() + size);
    out.extend_from_slice(&top[..head]);
    for (n, json) in entries.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(json);
    }
    out.extend_from_slice(&top[head..]);
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
    fn a_tag_resolves_from_its_slot_and_a_move_is_seen_at_once() {
        let state = IndexState::default();
        let (a, b) = (manifest(1), manifest(2));
        // Short tags are held inline, long ones (past 24 bytes) on the heap, and a name with a
        // colon (as tools that write a whole image reference do) goes by the digest map first.
        let long = "a-tag-longer-than-twenty-four-bytes";
        let colon = "example.com/app:1.0";
        for tag in ["v1", long, colon] {
            state.tag(a.clone(), tag);
            let first = state.resolve(tag).unwrap();
            assert_eq!(*first, a, "{tag}: the descriptor as tagged");
            let second = state.resolve(tag).unwrap();
            assert!(
                Arc::ptr_eq(&first.into_arc(), &second.into_arc()),
                "{tag}: the second lookup shares the descriptor the first built"
            );
            // Moving the tag replaces its slot: the descriptor kept for a is not given for b.
            state.tag(b.clone(), tag);
            assert_eq!(state.resolve(tag).unwrap().digest(), b.digest(), "{tag}");
            state.untag(tag);
            assert!(state.resolve(tag).is_none(), "{tag}");
        }
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
