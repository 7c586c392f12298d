//! [`SharedDescriptor`]: what `resolve` and `predecessors` return, a descriptor shared with the
//! store that holds it rather than copied out of it.

use oci_spec::image::Descriptor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// A descriptor shared, read-only, with the store or graph that holds it: cloning one is a
/// reference count, where an owned oci-spec [`Descriptor`] clones its digest, media type and
/// annotation map (a handful of allocations per result on the hottest read paths).
///
/// It dereferences to [`Descriptor`], so `desc.digest()`, `desc.size()` and passing `&desc`
/// where a `&Descriptor` is asked for work unchanged; it compares equal to a `Descriptor` with
/// the same fields. [`SharedDescriptor::into_owned`] (or `Descriptor::from`) gives an owned,
/// mutable descriptor, copying only when the descriptor is still shared.
#[derive(Clone, PartialEq, Eq)]
pub struct SharedDescriptor(Arc<Descriptor>);

impl SharedDescriptor {
    /// `desc`, shared from now on.
    pub fn new(desc: Descriptor) -> Self {
        SharedDescriptor(Arc::new(desc))
    }

    /// The descriptor, owned: moved out when this is its last holder, copied otherwise.
    pub fn into_owned(self) -> Descriptor {
        Arc::unwrap_or_clone(self.0)
    }

    /// The shared descriptor as an `Arc`.
    pub fn into_arc(self) -> Arc<Descriptor> {
        self.0
    }
}

impl Deref for SharedDescriptor {
    type Target = Descriptor;

    fn deref(&self) -> &Descriptor {
        &self.0
    }
}

impl AsRef<Descriptor> for SharedDescriptor {
    fn as_ref(&self) -> &Descriptor {
        &self.0
    }
}

impl Borrow<Descriptor> for SharedDescriptor {
    fn borrow(&self) -> &Descriptor {
        &self.0
    }
}

impl fmt::Debug for SharedDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Descriptor::fmt(&self.0, f)
    }
}

impl From<Descriptor> for SharedDescriptor {
    fn from(desc: Descriptor) -> Self {
        SharedDescriptor::new(desc)
    }
}

impl From<Arc<Descriptor>> for SharedDescriptor {
    fn from(desc: Arc<Descriptor>) -> Self {
        SharedDescriptor(desc)
    }
}

impl From<SharedDescriptor> for Descriptor {
    fn from(desc: SharedDescriptor) -> Self {
        desc.into_owned()
    }
}

impl From<SharedDescriptor> for Arc<Descriptor> {
    fn from(desc: SharedDescriptor) -> Self {
        desc.0
    }
}

impl PartialEq<Descriptor> for SharedDescriptor {
    fn eq(&self, other: &Descriptor) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<SharedDescriptor> for Descriptor {
    fn eq(&self, other: &SharedDescriptor) -> bool {
        *self == *other.0
    }
}

impl Serialize for SharedDescriptor {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SharedDescriptor {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Descriptor::deserialize(deserializer).map(SharedDescriptor::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Digest, MediaType};
    use std::str::FromStr;

    fn desc() -> Descriptor {
        let digest = Digest::from_str(
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        )
        .unwrap();
        Descriptor::new(MediaType::ImageManifest, 0, digest)
    }

    #[test]
    fn compares_with_owned_descriptors_both_ways() {
        let owned = desc();
        let shared = SharedDescriptor::new(owned.clone());
        assert_eq!(shared, owned);
        assert_eq!(owned, shared);
        let mut other = owned.clone();
        other.set_size(1);
        assert_ne!(shared, other);
        assert_eq!(vec![shared.clone()], vec![owned.clone()]);
    }

    #[test]
    fn clones_share_and_into_owned_copies_only_while_shared() {
        let shared = SharedDescriptor::new(desc());
        let clone = shared.clone();
        assert!(Arc::ptr_eq(
            &shared.clone().into_arc(),
            &clone.clone().into_arc()
        ));
        let mut owned = clone.into_owned();
        owned.set_size(7);
        assert_eq!(shared.size(), 0, "the shared one is untouched");
        assert_eq!(shared.into_owned(), desc());
    }

    #[test]
    fn serializes_as_the_descriptor() {
        let shared = SharedDescriptor::new(desc());
        let json = serde_json::to_string(&shared).unwrap();
        assert_eq!(json, serde_json::to_string(&desc()).unwrap());
        let back: SharedDescriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(back, shared);
        assert_eq!(format!("{shared:?}"), format!("{:?}", desc()));
    }
}
