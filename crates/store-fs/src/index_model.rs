//! For store implementors: the `index.json` model of the layout [`crate::Store`], for other
//! stores that keep an OCI image layout somewhere else (an object store, say) and must read,
//! write and merge `index.json` exactly as the layout store does. Users of the stores need none
//! of it; it may change more freely than the rest of the API.
//!
//! [`IndexModel`] holds what `index.json` says in memory (references for lookups, the entries to
//! write); [`ParsedIndex`] is a parsed `index.json`; [`KeyedEntries`] is its entries keyed as the
//! merge keys them (a tag, or the digest of an untagged entry), the base of a three-way merge.
//! [`IndexModel::absorb`] takes another writer's changes in as the layout store does under its
//! file lock: per key, ours unchanged since the base → theirs; theirs unchanged → ours; both
//! changed → ours (we write last); absence is a value, so removals merge like changes.

use crate::index::codec::{self, IndexDocument};
use crate::index::merge;
use crate::index::state::{Entries, IndexState};
use oci_spec::image::Descriptor;
use std::collections::BTreeSet;
use std::path::Path;
use store_core::{Result, SharedDescriptor};

/// A parsed `index.json`.
#[derive(Debug, Clone, Default)]
pub struct ParsedIndex(IndexDocument);

impl ParsedIndex {
    /// Parses the bytes of an `index.json`; `name` (a path or an object's URL) is what errors
    /// name. `"manifests": null` or absent is an empty index.
    ///
    /// Errors: `InvalidLayout` naming `name` for empty bytes, bytes that are not a JSON object,
    /// or an entry that is not a descriptor with a supported digest.
    pub fn parse(name: &str, bytes: &[u8]) -> Result<ParsedIndex> {
        let bytes = bytes::Bytes::copy_from_slice(bytes);
        codec::parse_index(Path::new(name), &bytes).map(ParsedIndex)
    }

    /// The entries as written, as descriptors (with their `ref.name` annotations).
    pub fn descriptors(&self) -> Vec<Descriptor> {
        self.0
            .entries
            .iter()
            .filter_map(|e| e.held.descriptor())
            .collect()
    }

    /// The entries keyed as the merge keys them.
    pub fn keyed(&self) -> KeyedEntries {
        KeyedEntries(merge::keyed(&self.0))
    }
}

/// `index.json` entries keyed by tag, or by digest for an untagged entry: the base of a merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyedEntries(Entries);

impl KeyedEntries {
    /// How many entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What one tag or untag changed, to put back with [`IndexModel::undo`] when its save fails.
#[derive(Debug)]
pub struct TagUndo(crate::index::state::Undo);

/// References removed by [`IndexModel::forget_digest`], to put back with
/// [`IndexModel::restore`].
#[derive(Debug, Default)]
pub struct Forgotten(Vec<crate::index::state::Removed>);

impl Forgotten {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds what another call removed.
    pub fn extend(&mut self, other: Forgotten) {
        self.0.extend(other.0);
    }
}

/// What `index.json` says, in memory, with the layout store's rules. Every method takes a short
/// lock and never blocks; none fails.
#[derive(Debug, Default)]
pub struct IndexModel(IndexState);

impl IndexModel {
    /// An empty index.
    pub fn new() -> Self {
        IndexModel::default()
    }

    /// Replaces the state with what `doc` says; returns the plain roots to index into a graph.
    pub fn load(&self, doc: &ParsedIndex) -> Vec<Descriptor> {
        self.0.load(&doc.0);
        doc.0
            .entries
            .iter()
            .filter_map(|entry| entry.held.plain())
            .collect()
    }

    /// What `reference` (a tag, or the digest of an entry) points at, shared; the digest of an
    /// entry gives its plain descriptor (media type, digest, size).
    pub fn resolve(&self, reference: &str) -> Option<SharedDescriptor> {
        self.0.resolve(reference)
    }

    /// The tags, ascending, strictly after `last`.
    pub fn tags(&self, last: Option<&str>) -> Vec<String> {
        self.0.tags(last)
    }

    /// Whether a tag points at `digest`.
    pub fn is_tagged(&self, digest: &str) -> bool {
        self.0.is_tagged(digest)
    }

    /// Every reference (tags and digests of entries) with what it points at.
    pub fn references(&self) -> Vec<(String, Descriptor)> {
        self.0.references()
    }

    /// The entries `index.json` holds once saved, in its order, as descriptors.
    pub fn listed(&self) -> Vec<Descriptor> {
        self.0.listed()
    }

    /// How many entries `index.json` holds once saved, and how many carry a tag.
    pub fn entry_counts(&self) -> (usize, usize) {
        self.0.entry_counts()
    }

    /// Records `desc` under its own digest (a manifest pushed or tagged), unless already there.
    pub fn tag_digest(&self, desc: &Descriptor) {
        self.0.tag_digest(desc);
    }

    /// Points `reference` at `desc` as a tag does (its digest entry too, unless listed);
    /// returns how to put back what changed if the save that follows fails
    /// ([`IndexModel::undo`]), `None` when nothing changed.
    pub fn tag(&self, desc: &Descriptor, reference: &str) -> Option<TagUndo> {
        self.0.tag_with_undo(desc, reference).map(TagUndo)
    }

    /// Removes `reference`; returns how to put it back ([`IndexModel::undo`]), `None` when it
    /// pointed at nothing.
    pub fn untag(&self, reference: &str) -> Option<TagUndo> {
        self.0.untag(reference).map(TagUndo)
    }

    /// Puts back what one [`IndexModel::tag`] or [`IndexModel::untag`]
    /// changed, unless another call has moved that reference since.
    pub fn undo(&self, undo: TagUndo) {
        self.0.undo(undo.0)
    }

    /// Removes every reference to `digest`; returns what was removed.
    pub fn forget_digest(&self, digest: &str) -> Forgotten {
        Forgotten(self.0.forget_digest(digest))
    }

    /// Puts back what [`IndexModel::forget_digest`] removed.
    pub fn restore(&self, forgotten: Forgotten) {
        self.0.restore(forgotten.0)
    }

    /// The entries `index.json` should hold now, keyed.
    pub fn entries(&self) -> KeyedEntries {
        KeyedEntries(self.0.entries())
    }

    /// The bytes of `index.json` for the entries held now.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode_current()
    }

    /// Takes in the changes another writer made: `theirs` is what `index.json` holds now,
    /// `base` what we last read or wrote. Their change to a key wins only where we did not
    /// change it since `base`. Returns the descriptors learnt, to index into a graph.
    pub fn absorb(&self, base: &KeyedEntries, theirs: &ParsedIndex) -> Vec<Descriptor> {
        let their_entries = merge::keyed(&theirs.0);
        let ours = self.0.entries();
        let merged = merge::merge(&base.0, &ours, &their_entries);
        let mut learnt = Vec::new();
        let live = self.0.entries();
        let keys: BTreeSet<&String> = ours.keys().chain(merged.keys()).collect();
        for key in keys {
            let (was, now) = (ours.get(key), merged.get(key));
            if was == now || live.get(key) != was {
                continue;
            }
            match now {
                Some(entry) => learnt.extend(self.0.adopt(key, entry)),
                None => self.0.drop_key(key),
            }
        }
        self.0.set_top(theirs.0.top.clone());
        learnt
    }
}
