//! One `index.json` entry held compactly: an oci-spec descriptor costs about 400 bytes before
//! its strings, and a layout's entries are nearly all media type, digest, size and at most a
//! `ref.name`, which fit in a fraction of that. The full descriptor is rebuilt when asked for.

use bytes::Bytes;
use oci_spec::image::{Descriptor, Digest, MediaType};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use store_core::descriptor::REF_NAME;
use store_core::digest::ValidDigest;
use store_core::SharedDescriptor;

/// What a descriptor has beyond media type, digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Extra {
    /// Nothing.
    None,
    /// Only a `ref.name` annotation (possibly empty), shared with the tag it names.
    RefName(Arc<str>),
    /// Anything else: the whole descriptor, shared with every lookup.
    Full(SharedDescriptor),
}

/// A descriptor, compact, with the entry's JSON as read (from `index.json`, or from another
/// writer's) when it came from there.
#[derive(Debug, Clone)]
pub(crate) struct Held {
    media_type: MediaType,
    /// Shared with the maps keyed by digest.
    digest: Arc<str>,
    /// The whole descriptor of an entry not held whole, built on the first lookup by a caller
    /// and shared with the next ones: rebuilding it per lookup (parsing the digest, making the
    /// `ref.name` map) cost a resolve most of its time, and building it for every entry at open
    /// would cost a large `index.json` hundreds of bytes per entry whether it is ever resolved
    /// or not.
    looked_up: OnceLock<SharedDescriptor>,
    size: u64,
    extra: Extra,
    /// The entry's JSON as read: a slice of the `index.json` bytes it was read from.
    raw: Option<Bytes>,
}

impl Held {
    /// `desc` held compactly, with `raw`, the JSON it was read from, if any.
    pub(crate) fn new(desc: Descriptor, raw: Option<Bytes>) -> Held {
        let only_ref_name = desc.urls().is_none()
            && desc.platform().is_none()
            && desc.artifact_type().is_none()
            && desc.data().is_none();
        let extra = match desc.annotations() {
            None if only_ref_name => Extra::None,
            Some(map) if only_ref_name && map.len() == 1 => match map.get(REF_NAME) {
                Some(name) => Extra::RefName(name.as_str().into()),
                None => Extra::Full(SharedDescriptor::new(desc.clone())),
            },
            _ => Extra::Full(SharedDescriptor::new(desc.clone())),
        };
        Held {
            media_type: desc.media_type().clone(),
            digest: desc.digest().as_ref().into(),
            looked_up: OnceLock::new(),
            size: desc.size(),
            extra,
            raw,
        }
    }

    /// A descriptor of `media_type`, `digest` (checked by the caller), `size` and at most a
    /// `ref.name` annotation: what [`Held::new`] makes of such a descriptor, without one.
    pub(crate) fn from_parts(
        media_type: MediaType,
        digest: &str,
        size: u64,
        ref_name: Option<&str>,
        raw: Option<Bytes>,
    ) -> Held {
        Held {
            media_type,
            digest: digest.into(),
            looked_up: OnceLock::new(),
            size,
            extra: ref_name.map_or(Extra::None, |name| Extra::RefName(name.into())),
            raw,
        }
    }

    /// The digest, shared.
    pub(crate) fn digest(&self) -> &Arc<str> {
        &self.digest
    }

    /// The JSON the entry was read from, if it was read.
    pub(crate) fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// The `ref.name` annotation when it is `name`, shared, so that the tag `name` need not be
    /// a second copy of it.
    pub(crate) fn shared_ref_name(&self, name: &str) -> Option<&Arc<str>> {
        match &self.extra {
            Extra::RefName(shared) if **shared == *name => Some(shared),
            _ => None,
        }
    }

    /// The `ref.name` annotation as written (possibly empty), if there is one.
    fn ref_name_annotation(&self) -> Option<&str> {
        match &self.extra {
            Extra::None => None,
            Extra::RefName(name) => Some(name),
            Extra::Full(desc) => desc
                .annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .map(String::as_str),
        }
    }

    /// Whether it carries a `ref.name` annotation, even an empty one.
    pub(crate) fn has_ref_name(&self) -> bool {
        self.ref_name_annotation().is_some()
    }

    /// The `ref.name` annotation, if set and non-empty.
    pub(crate) fn ref_name(&self) -> Option<&str> {
        self.ref_name_annotation().filter(|name| !name.is_empty())
    }

    /// The tag the entry carries: its `ref.name` unless that spells the digest of other content
    /// (a digest lookup must never land on another entry, so such a name is no tag).
    pub(crate) fn tag_name(&self) -> Option<&str> {
        self.ref_name()
            .filter(|name| ValidDigest::parse(name).is_err() || *name == &*self.digest)
    }

    /// Whether its JSON is written back exactly as read even as an untagged entry: its
    /// `ref.name` spells another digest, so it is no tag, and it is kept as the writer wrote it.
    pub(crate) fn verbatim(&self) -> bool {
        self.raw.is_some() && self.ref_name() != self.tag_name()
    }

    /// Its media type, digest and size only. `None` only if the digest no longer parses, which
    /// cannot happen: it was taken from a parsed descriptor.
    pub(crate) fn plain(&self) -> Option<Descriptor> {
        let digest = match (&self.extra, self.looked_up.get()) {
            (Extra::Full(whole), _) | (_, Some(whole)) => whole.digest().clone(),
            (_, None) => Digest::from_str(&self.digest).ok()?,
        };
        Some(Descriptor::new(self.media_type.clone(), self.size, digest))
    }

    /// The whole descriptor, shared; with `keep` (a lookup by a caller, not a pass over every
    /// entry, which would hold a descriptor per entry) kept for the next lookup.
    fn whole(&self, keep: bool) -> Option<SharedDescriptor> {
        if let Extra::Full(whole) = &self.extra {
            return Some(whole.clone());
        }
        if let Some(whole) = self.looked_up.get() {
            return Some(whole.clone());
        }
        let plain = self.plain()?;
        let whole = SharedDescriptor::new(match &self.extra {
            Extra::RefName(name) => with_ref_name(plain, name),
            _ => plain,
        });
        Some(if keep {
            self.looked_up.get_or_init(|| whole).clone()
        } else {
            whole
        })
    }

    /// What a resolve of this entry gives: its plain descriptor when looked up by its digest,
    /// else the whole descriptor. Either way the whole descriptor is kept for the next lookup:
    /// resolving a tag again (or the digest of an entry without annotations) shares it, and
    /// the plain descriptor of an annotated entry is copied from it rather than parsed again.
    pub(crate) fn resolved(&self, by_digest: bool) -> Option<SharedDescriptor> {
        let whole = self.whole(true)?;
        Some(match &self.extra {
            Extra::RefName(_) | Extra::Full(_) if by_digest => {
                SharedDescriptor::new(store_core::descriptor::plain(&whole))
            }
            _ => whole,
        })
    }

    /// The whole descriptor (see [`Held::plain`] for `None`).
    pub(crate) fn descriptor(&self) -> Option<Descriptor> {
        self.whole(false).map(SharedDescriptor::into_owned)
    }

    /// The descriptor without its `ref.name` annotation, as a digest entry gives it.
    pub(crate) fn without_ref_name(&self) -> Option<Descriptor> {
        match &self.extra {
            Extra::None | Extra::RefName(_) => self.plain(),
            Extra::Full(desc) => Some(store_core::descriptor::without_ref_name(desc)),
        }
    }
}

/// `desc` with the single annotation `ref.name` = `name`.
fn with_ref_name(mut desc: Descriptor, name: &str) -> Descriptor {
    desc.set_annotations(Some(HashMap::from([(
        REF_NAME.to_string(),
        name.to_string(),
    )])));
    desc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn desc(value: serde_json::Value) -> Descriptor {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_shape_comes_back_as_it_went_in() {
        let shapes = [
            json!({"mediaType": "a/b", "digest": D, "size": 3}),
            json!({"mediaType": "a/b", "digest": D, "size": 3, "annotations": {REF_NAME: "v1"}}),
            json!({"mediaType": "a/b", "digest": D, "size": 3, "annotations": {REF_NAME: ""}}),
            json!({"mediaType": "a/b", "digest": D, "size": 3, "annotations": {"x": "y"}}),
            json!({"mediaType": "a/b", "digest": D, "size": 3,
                   "annotations": {REF_NAME: "v1", "x": "y"},
                   "platform": {"architecture": "arm64", "os": "linux"}}),
        ];
        for shape in shapes {
            let original = desc(shape);
            let held = Held::new(original.clone(), None);
            assert_eq!(held.descriptor().unwrap(), original);
            for _ in 0..2 {
                // The second time from the kept descriptor.
                assert_eq!(held.resolved(false).unwrap(), original);
                assert_eq!(
                    held.resolved(true).unwrap(),
                    store_core::descriptor::plain(&original)
                );
            }
            // Kept first by a lookup of the digest, then looked up by tag.
            let by_digest_first = Held::new(original.clone(), None);
            assert_eq!(
                by_digest_first.resolved(true).unwrap(),
                store_core::descriptor::plain(&original)
            );
            assert_eq!(by_digest_first.resolved(false).unwrap(), original);
            assert_eq!(by_digest_first.descriptor().unwrap(), original);
            assert_eq!(
                held.without_ref_name().unwrap(),
                store_core::descriptor::without_ref_name(&original)
            );
            assert_eq!(
                held.plain().unwrap(),
                store_core::descriptor::plain(&original)
            );
        }
    }

    #[test]
    fn a_tag_resolved_again_shares_the_descriptor_kept_by_the_first_lookup() {
        let tagged = Held::new(
            desc(json!({"mediaType": "a/b", "digest": D, "size": 3,
                        "annotations": {REF_NAME: "v1"}})),
            None,
        );
        let first = tagged.resolved(false).unwrap().into_arc();
        let second = tagged.resolved(false).unwrap().into_arc();
        assert!(Arc::ptr_eq(&first, &second));
        // A pass over every entry keeps nothing, and hands out its own copy.
        let fresh = Held::new(
            desc(json!({"mediaType": "a/b", "digest": D, "size": 3})),
            None,
        );
        let passed = fresh.descriptor().unwrap();
        assert!(fresh.looked_up.get().is_none());
        let looked_up = fresh.resolved(true).unwrap();
        assert_eq!(looked_up, passed);
        assert!(Arc::ptr_eq(
            &looked_up.into_arc(),
            &fresh.resolved(false).unwrap().into_arc()
        ));
    }

    #[test]
    fn names_and_tags() {
        let tagged = Held::new(
            desc(json!({"mediaType": "a/b", "digest": D, "size": 3,
                        "annotations": {REF_NAME: "v1"}})),
            None,
        );
        assert_eq!(tagged.tag_name(), Some("v1"));
        let other = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let hijack = Held::new(
            desc(json!({"mediaType": "a/b", "digest": D, "size": 3,
                        "annotations": {REF_NAME: other}})),
            Some(Bytes::from_static(b"{}")),
        );
        assert_eq!(hijack.ref_name(), Some(other));
        assert_eq!(hijack.tag_name(), None);
        assert!(hijack.verbatim());
        let empty = Held::new(
            desc(json!({"mediaType": "a/b", "digest": D, "size": 3,
                        "annotations": {REF_NAME: ""}})),
            None,
        );
        assert!(empty.has_ref_name());
        assert_eq!(empty.ref_name(), None);
    }
}
