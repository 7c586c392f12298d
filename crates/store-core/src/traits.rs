//! The oras-style Target trait family. Every trait is object-safe and `Send + Sync`; marker traits
//! (`Storage`, `Target`, ...) have blanket impls, and `Arc<T>` and `&T` implement every trait `T` does.

use crate::content::{BoxReader, Bytes, Fetched};
use crate::error::Result;
use crate::SharedDescriptor;
use async_trait::async_trait;
use oci_spec::image::Descriptor;
use std::sync::Arc;

/// Reads content by descriptor.
#[async_trait]
pub trait Fetcher: Send + Sync {
    /// Opens the content `target` describes. The reader verifies size and digest as it is read
    /// where the store says so; use [`crate::content::fetch_all`] for verified bytes in any case.
    ///
    /// Errors: `InvalidDigest` for a malformed digest, `NotFound` when the content is absent.
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader>;

    /// Opens `target` like [`Fetcher::fetch`], saying whether the reader checks itself against
    /// it (see [`Fetched`]). Stores whose readers verify as they are read override this so that
    /// a copy into a store that hashes ([`Pusher::push_fetched`]) hashes each blob once; the
    /// default claims nothing.
    ///
    /// Errors: those of [`Fetcher::fetch`].
    async fn fetch_checked(&self, target: &Descriptor) -> Result<Fetched> {
        Ok(Fetched::unchecked(self.fetch(target).await?))
    }
}

/// Writes content by descriptor.
#[async_trait]
pub trait Pusher: Send + Sync {
    /// Stores `content`, which must match `expected` exactly (size and digest).
    ///
    /// Errors: `InvalidDigest`, `AlreadyExists` (nothing written), `Mismatch` (nothing stored),
    /// `InvalidManifest` for a manifest media type whose body does not parse.
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()>;

    /// Stores fetched `content` like [`Pusher::push`]. A store that hashes what it stores may
    /// skip its own hash when `content` checks itself against `expected`
    /// ([`Fetched::checks`]), still reading it to the end before the content becomes visible,
    /// so the guarantees of `push` hold unchanged; the default calls `push`.
    ///
    /// Errors: those of [`Pusher::push`].
    async fn push_fetched(&self, expected: &Descriptor, content: Fetched) -> Result<()> {
        self.push(expected, content.into_reader()).await
    }

    /// Stores `data`, held whole in memory, like [`Pusher::push`]. With no reader to leave
    /// unread, a store may let its write refuse stored content instead of checking for it
    /// first (one request where a check and a write make two); `AlreadyExists` still means
    /// nothing was written. The default calls `push`.
    ///
    /// Errors: those of [`Pusher::push`].
    async fn push_bytes(&self, expected: &Descriptor, data: Bytes) -> Result<()> {
        self.push(expected, crate::content::reader_from_bytes(data))
            .await
    }

    /// Makes blob `desc` present by mounting it from repository `from` of the same registry
    /// (the distribution API's cross-repository mount), without its bytes passing through the
    /// caller. Returns `true` when mounted, `false` when the registry declined (nothing
    /// changed: push the content instead).
    ///
    /// Errors: `Unsupported` for stores that cannot mount (the default); the registry's errors.
    async fn mount_from(&self, desc: &Descriptor, from: &str) -> Result<bool> {
        Err(crate::Error::unsupported(format!(
            "mounting {} from {from}: this store has no cross-repository mount",
            desc.digest()
        )))
    }
}

/// Content that can be fetched and checked for existence.
#[async_trait]
pub trait ReadOnlyStorage: Fetcher {
    /// Whether content with `target`'s digest is stored.
    ///
    /// Errors: `InvalidDigest` for a malformed digest; never `NotFound`.
    async fn exists(&self, target: &Descriptor) -> Result<bool>;
}

/// Content that can be fetched, checked and pushed.
pub trait Storage: ReadOnlyStorage + Pusher {}
impl<T: ReadOnlyStorage + Pusher + ?Sized> Storage for T {}

/// Resolves references (tags or digests) to descriptors.
#[async_trait]
pub trait Resolver: Send + Sync {
    /// The descriptor `reference` names: a tag gives the full descriptor it was tagged with, a
    /// digest the plain descriptor (media type, digest, size). The descriptor is shared with
    /// the store ([`SharedDescriptor`] dereferences to `Descriptor`; `into_owned` gives one to
    /// change).
    ///
    /// Errors: `MissingReference` for an empty reference, `NotFound` otherwise.
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor>;
}

/// Gives content a reference.
#[async_trait]
pub trait Tagger: Send + Sync {
    /// Points `reference` at `desc`, moving it if it pointed elsewhere.
    ///
    /// Errors: `MissingReference` (empty), `InvalidReference`, `InvalidDigest`, `NotFound` when the
    /// content is absent.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()>;

    /// This store as a [`ReferencePusher`], when it can push a manifest and tag it as one
    /// change (`copy` then pushes the root that way); `None`, the default, otherwise.
    fn as_reference_pusher(&self) -> Option<&dyn ReferencePusher> {
        None
    }
}

/// Pushes a manifest and points a reference at it as one change (oras's `ReferencePusher`):
/// a layout store writes `index.json` once instead of twice.
#[async_trait]
pub trait ReferencePusher: Send + Sync {
    /// Stores `content` as `expected`, like [`Pusher::push`], and points `reference` at it,
    /// like [`Tagger::tag`]. Content already stored is tagged.
    ///
    /// Errors: those of [`Pusher::push`] but `AlreadyExists`, and those of [`Tagger::tag`]; on
    /// an error `reference` is left as it was.
    async fn push_reference(
        &self,
        expected: &Descriptor,
        content: BoxReader,
        reference: &str,
    ) -> Result<()>;
}

/// Tags and resolves.
pub trait TagResolver: Tagger + Resolver {}
impl<T: Tagger + Resolver + ?Sized> TagResolver for T {}

/// Readable content with references.
pub trait ReadOnlyTarget: ReadOnlyStorage + Resolver {}
impl<T: ReadOnlyStorage + Resolver + ?Sized> ReadOnlyTarget for T {}

/// Readable and writable content with references.
pub trait Target: Storage + TagResolver {}
impl<T: Storage + TagResolver + ?Sized> Target for T {}

/// Finds the nodes that point at a node (its manifests, indexes and referrers).
#[async_trait]
pub trait PredecessorFinder: Send + Sync {
    /// The descriptors of every known node that lists `node` as a successor; empty when none.
    /// Each is shared with the store's graph (see [`SharedDescriptor`]).
    ///
    /// Errors: only store failures; an unknown node has no predecessors.
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>>;
}

/// A read-only target that knows its graph.
pub trait ReadOnlyGraphTarget: ReadOnlyTarget + PredecessorFinder {}
impl<T: ReadOnlyTarget + PredecessorFinder + ?Sized> ReadOnlyGraphTarget for T {}

/// A target that knows its graph.
pub trait GraphTarget: Target + PredecessorFinder {}
impl<T: Target + PredecessorFinder + ?Sized> GraphTarget for T {}

/// Removes content.
#[async_trait]
pub trait Deleter: Send + Sync {
    /// Deletes the content `target` describes (and, for stores with auto GC, what becomes garbage).
    ///
    /// Errors: `InvalidDigest`, `NotFound` when the content is absent.
    async fn delete(&self, target: &Descriptor) -> Result<()>;
}

/// Removes references.
#[async_trait]
pub trait Untagger: Send + Sync {
    /// Removes the tag `reference`; the content stays.
    ///
    /// Errors: `MissingReference` (empty), `NotFound` (unknown), `InvalidReference` (a digest).
    async fn untag(&self, reference: &str) -> Result<()>;
}

/// Lists tags.
#[async_trait]
pub trait TagLister: Send + Sync {
    /// Every tag in ascending byte order, strictly after `last` when given.
    ///
    /// Errors: only store failures.
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>>;
}

/// Forwards a trait through a smart pointer or reference.
macro_rules! forward {
    ($($wrapper:ty),*) => {$(
        #[async_trait]
        impl<T: Fetcher + ?Sized> Fetcher for $wrapper {
            async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
                (**self).fetch(target).await
            }
            async fn fetch_checked(&self, target: &Descriptor) -> Result<Fetched> {
                (**self).fetch_checked(target).await
            }
        }
        #[async_trait]
        impl<T: Pusher + ?Sized> Pusher for $wrapper {
            async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
                (**self).push(expected, content).await
            }
            async fn push_fetched(&self, expected: &Descriptor, content: Fetched) -> Result<()> {
                (**self).push_fetched(expected, content).await
            }
            async fn push_bytes(&self, expected: &Descriptor, data: Bytes) -> Result<()> {
                (**self).push_bytes(expected, data).await
            }
            async fn mount_from(&self, desc: &Descriptor, from: &str) -> Result<bool> {
                (**self).mount_from(desc, from).await
            }
        }
        #[async_trait]
        impl<T: ReadOnlyStorage + ?Sized> ReadOnlyStorage for $wrapper {
            async fn exists(&self, target: &Descriptor) -> Result<bool> {
                (**self).exists(target).await
            }
        }
        #[async_trait]
        impl<T: Resolver + ?Sized> Resolver for $wrapper {
            async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
                (**self).resolve(reference).await
            }
        }
        #[async_trait]
        impl<T: Tagger + ?Sized> Tagger for $wrapper {
            async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
                (**self).tag(desc, reference).await
            }
            fn as_reference_pusher(&self) -> Option<&dyn ReferencePusher> {
                (**self).as_reference_pusher()
            }
        }
        #[async_trait]
        impl<T: PredecessorFinder + ?Sized> PredecessorFinder for $wrapper {
            async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
                (**self).predecessors(node).await
            }
        }
        #[async_trait]
        impl<T: Deleter + ?Sized> Deleter for $wrapper {
            async fn delete(&self, target: &Descriptor) -> Result<()> {
                (**self).delete(target).await
            }
        }
        #[async_trait]
        impl<T: Untagger + ?Sized> Untagger for $wrapper {
            async fn untag(&self, reference: &str) -> Result<()> {
                (**self).untag(reference).await
            }
        }
        #[async_trait]
        impl<T: TagLister + ?Sized> TagLister for $wrapper {
            async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
                (**self).tags(last).await
            }
        }
    )*};
}

forward!(Arc<T>, &T);

#[cfg(test)]
mod tests {
    use super::*;

    // Compiles only if every trait is object-safe.
    #[allow(dead_code, clippy::too_many_arguments)]
    fn object_safe(
        _: &dyn Fetcher,
        _: &dyn Pusher,
        _: &dyn ReadOnlyStorage,
        _: &dyn Storage,
        _: &dyn Resolver,
        _: &dyn Tagger,
        _: &dyn TagResolver,
        _: &dyn ReadOnlyTarget,
        _: &dyn Target,
        _: &dyn PredecessorFinder,
        _: &dyn ReadOnlyGraphTarget,
        _: &dyn GraphTarget,
        _: &dyn Deleter,
        _: &dyn Untagger,
        _: &dyn TagLister,
    ) {
    }
}
