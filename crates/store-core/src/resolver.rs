//! The in-memory tag resolver: reference → descriptor, and the set of references per digest.
//!
//! As in oras-go v2.6.2, a manifest is also "tagged" under its own digest string so that it
//! resolves by digest; [`MemoryResolver::tags`] and [`MemoryResolver::is_tagged`] leave those
//! digest entries out. Unlike oras-go, moving a tag removes it from the old digest's set.

use crate::SharedDescriptor;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use oci_spec::image::Descriptor;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Reference → descriptor map with a per-digest reverse index. Cheap operations, safe to share.
/// Descriptors are held behind an `Arc`, so that one descriptor under several references (a
/// manifest's digest entry and its tags) is held once.
#[derive(Debug, Default)]
pub struct MemoryResolver {
    refs: DashMap<String, Arc<Descriptor>>,
    by_digest: DashMap<String, RefSet>,
}

/// The references of one digest, ascending. Nearly every digest has one or two (its digest
/// entry, a tag): those are a short sorted list, a tree only beyond [`RefSet::SMALL`], so that a
/// digest costs a few words rather than a tree node, and many tags on one digest stay
/// logarithmic.
#[derive(Debug)]
enum RefSet {
    Small(Vec<Box<str>>),
    Large(BTreeSet<Box<str>>),
}

impl Default for RefSet {
    fn default() -> Self {
        RefSet::Small(Vec::new())
    }
}

impl RefSet {
    const SMALL: usize = 8;

    fn insert(&mut self, reference: &str) {
        match self {
            RefSet::Small(list) => {
                if let Err(at) = list.binary_search_by(|r| (**r).cmp(reference)) {
                    if list.len() < Self::SMALL {
                        list.insert(at, reference.into());
                    } else {
                        let mut set: BTreeSet<Box<str>> =
                            std::mem::take(list).into_iter().collect();
                        set.insert(reference.into());
                        *self = RefSet::Large(set);
                    }
                }
            }
            RefSet::Large(set) => {
                set.insert(reference.into());
            }
        }
    }

    fn remove(&mut self, reference: &str) {
        match self {
            RefSet::Small(list) => {
                if let Ok(at) = list.binary_search_by(|r| (**r).cmp(reference)) {
                    list.remove(at);
                }
            }
            RefSet::Large(set) => {
                set.remove(reference);
            }
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            RefSet::Small(list) => list.is_empty(),
            RefSet::Large(set) => set.is_empty(),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            RefSet::Small(list) => Box::new(list.iter().map(|r| &**r)),
            RefSet::Large(set) => Box::new(set.iter().map(|r| &**r)),
        }
    }
}

impl MemoryResolver {
    /// An empty resolver.
    pub fn new() -> Self {
        Self::default()
    }

    /// Points `reference` at `desc`, moving it off the digest it pointed at before.
    /// Returns the descriptor it pointed at before, if any.
    pub fn tag(&self, desc: Descriptor, reference: &str) -> Option<Descriptor> {
        self.tag_shared(Arc::new(desc), reference)
            .map(Arc::unwrap_or_clone)
    }

    /// As [`MemoryResolver::tag`], with a descriptor the caller may share between references.
    pub fn tag_shared(&self, desc: Arc<Descriptor>, reference: &str) -> Option<Arc<Descriptor>> {
        let digest = desc.digest().as_ref();
        // The refs entry stays locked while the reverse index is updated, so two concurrent
        // moves of one reference cannot leave it counted under both digests. Lock order is
        // always refs, then by_digest.
        match self.refs.entry(reference.to_string()) {
            Entry::Occupied(mut slot) => {
                let previous = slot.insert(Arc::clone(&desc));
                if previous.digest().as_ref() != digest {
                    self.forget(previous.digest().as_ref(), reference);
                    self.by_digest
                        .entry(digest.to_string())
                        .or_default()
                        .insert(reference);
                }
                Some(previous)
            }
            Entry::Vacant(slot) => {
                slot.insert(Arc::clone(&desc));
                self.by_digest
                    .entry(digest.to_string())
                    .or_default()
                    .insert(reference);
                None
            }
        }
    }

    /// Removes `reference`; returns the descriptor it pointed at, or `None` if it was unknown.
    pub fn untag(&self, reference: &str) -> Option<Descriptor> {
        let (_, previous) = self.refs.remove(reference)?;
        self.forget(previous.digest().as_ref(), reference);
        Some(Arc::unwrap_or_clone(previous))
    }

    fn forget(&self, digest: &str, reference: &str) {
        if let Entry::Occupied(mut set) = self.by_digest.entry(digest.to_string()) {
            set.get_mut().remove(reference);
            if set.get().is_empty() {
                set.remove();
            }
        }
    }

    /// The descriptor `reference` points at, shared rather than copied.
    pub fn resolve(&self, reference: &str) -> Option<SharedDescriptor> {
        self.refs
            .get(reference)
            .map(|entry| SharedDescriptor::from(Arc::clone(entry.value())))
    }

    /// Every reference (tags and digest entries) pointing at `digest`, in ascending order.
    pub fn refs_of(&self, digest: &str) -> Vec<String> {
        self.by_digest
            .get(digest)
            .map(|set| set.iter().map(str::to_string).collect())
            .unwrap_or_default()
    }

    /// The tags (not the digest entry) pointing at `digest`, in ascending order.
    pub fn tags_of(&self, digest: &str) -> Vec<String> {
        let mut refs = self.refs_of(digest);
        refs.retain(|r| r != digest);
        refs
    }

    /// Whether a tag other than the digest itself points at `digest`.
    pub fn is_tagged(&self, digest: &str) -> bool {
        self.by_digest
            .get(digest)
            .is_some_and(|set| set.iter().any(|r| r != digest))
    }

    /// Every tag (digest entries left out), ascending in byte order, strictly after `last`.
    pub fn tags(&self, last: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = self
            .refs
            .iter()
            .filter(|entry| entry.key() != entry.value().digest().as_ref())
            .filter(|entry| last.is_none_or(|last| entry.key().as_str() > last))
            .map(|entry| entry.key().clone())
            .collect();
        out.sort_unstable();
        out
    }

    /// A snapshot of every (reference, descriptor) pair, sorted by reference.
    pub fn snapshot(&self) -> Vec<(String, Descriptor)> {
        let mut out: Vec<(String, Descriptor)> = self
            .refs
            .iter()
            .map(|entry| (entry.key().clone(), Descriptor::clone(entry.value())))
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The number of references, digest entries included.
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether no reference is held.
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    /// Removes every reference.
    pub fn clear(&self) {
        self.refs.clear();
        self.by_digest.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::descriptor_from_bytes;
    use oci_spec::image::MediaType;

    fn manifest(n: u8) -> Descriptor {
        descriptor_from_bytes(MediaType::ImageManifest, &[n])
    }

    #[test]
    fn a_moved_tag_leaves_the_old_digest() {
        let resolver = MemoryResolver::new();
        let (a, b) = (manifest(1), manifest(2));
        let (da, db) = (a.digest().to_string(), b.digest().to_string());
        resolver.tag(a.clone(), &da);
        resolver.tag(a.clone(), "latest");
        assert!(resolver.is_tagged(&da));
        let previous = resolver.tag(b.clone(), "latest").unwrap();
        assert_eq!(previous.digest(), a.digest());
        assert!(!resolver.is_tagged(&da), "oras-go leaves this stale");
        assert_eq!(resolver.refs_of(&da), vec![da.clone()]);
        assert_eq!(resolver.tags_of(&db), vec!["latest".to_string()]);
        assert_eq!(resolver.resolve("latest").unwrap().digest(), b.digest());
    }

    #[test]
    fn untag_and_listing() {
        let resolver = MemoryResolver::new();
        let a = manifest(1);
        let da = a.digest().to_string();
        resolver.tag(a.clone(), &da);
        for tag in ["v2", "v1", "v10"] {
            resolver.tag(a.clone(), tag);
        }
        assert_eq!(resolver.tags(None), ["v1", "v10", "v2"]);
        assert_eq!(resolver.tags(Some("v1")), ["v10", "v2"]);
        assert!(resolver.tags(Some("v2")).is_empty());
        assert_eq!(resolver.untag("v1").unwrap().digest(), a.digest());
        assert!(resolver.untag("v1").is_none());
        assert_eq!(resolver.tags_of(&da), ["v10", "v2"]);
        resolver.untag("v10");
        resolver.untag("v2");
        assert!(!resolver.is_tagged(&da));
        assert_eq!(resolver.len(), 1);
    }

    #[test]
    fn many_tags_on_one_digest_stay_sorted_past_the_short_list() {
        let resolver = MemoryResolver::new();
        let a = manifest(1);
        let da = a.digest().to_string();
        let mut expected: Vec<String> = (0..20).rev().map(|i| format!("t{i:02}")).collect();
        for tag in &expected {
            resolver.tag(a.clone(), tag);
        }
        expected.sort();
        assert_eq!(resolver.tags_of(&da), expected);
        for tag in expected.drain(..15) {
            resolver.untag(&tag);
        }
        assert_eq!(resolver.tags_of(&da), expected);
        for tag in &expected {
            resolver.untag(tag);
        }
        assert!(!resolver.is_tagged(&da));
        assert!(resolver.refs_of(&da).is_empty());
    }

    #[test]
    fn concurrent_moves_keep_one_consistent_owner() {
        let resolver = Arc::new(MemoryResolver::new());
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let resolver = resolver.clone();
                std::thread::spawn(move || {
                    for i in 0..500u32 {
                        let desc = manifest(t.wrapping_mul(31).wrapping_add((i % 7) as u8));
                        resolver.tag(desc, &format!("tag{}", i % 5));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for i in 0..5 {
            let tag = format!("tag{i}");
            let owner = resolver.resolve(&tag).unwrap();
            for n in 0..=255u8 {
                let digest = manifest(n).digest().to_string();
                let listed = resolver.tags_of(&digest).contains(&tag);
                assert_eq!(
                    listed,
                    digest == owner.digest().as_ref(),
                    "{tag} under {digest}"
                );
            }
        }
    }
}
