//! The ocistore traits on [`Repository`].

use super::fetch::is_manifest_desc;
use super::Repository;
use async_trait::async_trait;
use oci_spec::image::Descriptor;
use store_core::content::{BoxReader, Fetched, FetchedBody};
use store_core::{
    Deleter, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, ReferencePusher, Resolver,
    Result, SharedDescriptor, TagLister, Tagger, Untagger,
};

#[async_trait]
impl Fetcher for Repository {
    /// Streams the blob or manifest `target`, verifying size and digest as it is read (a
    /// manifest is read whole first, bounded by `max_metadata_bytes`, its media type checked).
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        self.fetch_impl(target).await
    }

    /// Like [`Repository::fetch`]; everything it returns checks itself against `target`, and
    /// says so, so that a copy into a layout hashes each blob once. Big blobs come as the
    /// response's chunks, which a layout writes out without copying them again.
    async fn fetch_checked(&self, target: &Descriptor) -> Result<Fetched> {
        let digest = store_core::descriptor::validate(target)?;
        Ok(match self.fetch_body(target).await? {
            FetchedBody::Reader(reader) => Fetched::vouched(reader, digest, target.size()),
            FetchedBody::Chunks(chunks) => Fetched::vouched_chunks(chunks, digest, target.size()),
        })
    }
}

#[async_trait]
impl Pusher for Repository {
    /// Uploads a blob (streamed, verified before it is committed) or PUTs a manifest by digest
    /// (bounded by `max_metadata_bytes`, parsed, the registry's digest checked).
    ///
    /// Content the repository already has is `AlreadyExists` (one `HEAD` first), as with every
    /// ocistore target; nothing is read from `content` then.
    async fn push(&self, expected: &Descriptor, content: BoxReader) -> Result<()> {
        if self.exists_impl(expected).await? {
            return Err(store_core::Error::already_exists(expected.digest()));
        }
        if is_manifest_desc(expected) {
            let body = self.read_manifest_body(expected, content).await?;
            return self.push_manifest(expected, body, None).await;
        }
        self.push_blob(expected, content).await
    }

    /// Mounts blob `desc` from repository `from` of this registry (`POST
    /// .../blobs/uploads/?mount=..&from=..`): `true` on 201; `false` when the registry answers
    /// with an upload session instead (202), which is cancelled. See also
    /// [`Repository::mount`], which uploads in that session.
    async fn mount_from(&self, desc: &Descriptor, from: &str) -> Result<bool> {
        self.try_mount(desc, from).await
    }
}

#[async_trait]
impl ReadOnlyStorage for Repository {
    /// `HEAD` of the blob or manifest: `true` on 2xx, `false` on 404.
    async fn exists(&self, target: &Descriptor) -> Result<bool> {
        self.exists_impl(target).await
    }
}

#[async_trait]
impl Resolver for Repository {
    /// `HEAD` of the manifest by tag or digest with the manifest `Accept` types.
    async fn resolve(&self, reference: &str) -> Result<SharedDescriptor> {
        self.resolve_impl(reference)
            .await
            .map(SharedDescriptor::new)
    }
}

#[async_trait]
impl Tagger for Repository {
    /// PUTs the manifest's bytes under the tag.
    async fn tag(&self, desc: &Descriptor, reference: &str) -> Result<()> {
        self.tag_impl(desc, reference).await
    }

    fn as_reference_pusher(&self) -> Option<&dyn ReferencePusher> {
        Some(self)
    }
}

#[async_trait]
impl ReferencePusher for Repository {
    /// PUTs the manifest under the tag: stored and tagged in one request, where a push and a
    /// tag make four (`HEAD`, `PUT` by digest, `GET`, `PUT` by tag). The bytes are sent even
    /// when the registry has the manifest already (the `PUT` is what tags it). A digest
    /// reference (the manifest's own) is a plain push.
    ///
    /// Errors: those of [`Repository::push`] but `AlreadyExists`, and those of
    /// [`Repository::tag`], checked before anything is read or sent.
    async fn push_reference(
        &self,
        expected: &Descriptor,
        content: BoxReader,
        reference: &str,
    ) -> Result<()> {
        let digest = store_core::descriptor::validate(expected)?;
        let Some(tag) = self.tag_target(expected, &digest, reference)? else {
            return match Pusher::push(self, expected, content).await {
                Err(e) if e.kind() == store_core::ErrorKind::AlreadyExists => Ok(()),
                other => other,
            };
        };
        let body = self.read_manifest_body(expected, content).await?;
        self.push_manifest(expected, body, Some(&tag)).await
    }
}

#[async_trait]
impl PredecessorFinder for Repository {
    /// The referrers of `node` (referrers API, else the referrers tag schema). A registry
    /// does not tell which indexes list a manifest, so those are not predecessors here.
    async fn predecessors(&self, node: &Descriptor) -> Result<Vec<SharedDescriptor>> {
        let referrers = self.referrers(node, None).await?;
        Ok(referrers.into_iter().map(SharedDescriptor::new).collect())
    }
}

#[async_trait]
impl Deleter for Repository {
    /// `DELETE` of the manifest or blob (`Unsupported` when the registry has deletes off).
    async fn delete(&self, target: &Descriptor) -> Result<()> {
        self.delete_impl(target).await
    }
}

#[async_trait]
impl Untagger for Repository {
    /// `DELETE /manifests/<tag>`; `Unsupported` when the registry refuses it.
    async fn untag(&self, reference: &str) -> Result<()> {
        self.untag_impl(reference).await
    }
}

#[async_trait]
impl TagLister for Repository {
    /// Every tag strictly after `last`, ascending, across all pages.
    async fn tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        self.list_tags(last).await
    }
}
