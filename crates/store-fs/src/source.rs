//! Where the blobs of a read-only store come from: a layout directory or a tar of one.

use crate::blob::Blobs;
use crate::tar_source::TarSource;
use async_trait::async_trait;
use oci_spec::image::Descriptor;
use std::path::Path;
use store_core::content::BoxReader;
use store_core::descriptor;
use store_core::digest::ValidDigest;
use store_core::{Fetcher, Result};

/// The blobs of a read-only store.
#[derive(Debug)]
pub(crate) enum Source {
    /// `blobs/<alg>/<hex>` under a layout directory; symbolic links are never followed.
    Dir(Blobs),
    /// Entries of an uncompressed tar archive.
    Tar(TarSource),
}

impl Source {
    /// The layout directory or the archive.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Source::Dir(blobs) => blobs.layout().root(),
            Source::Tar(tar) => tar.path(),
        }
    }

    /// The size of the blob `digest`, or `None` when there is none (in a directory, a symbolic
    /// link or anything else that is not a regular file does not count). A single `lstat` or a
    /// map lookup: cheap enough for an async thread.
    ///
    /// Errors: `Io` when the directory cannot be inspected.
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Result<Option<u64>> {
        match self {
            Source::Dir(blobs) => blobs.stat(digest),
            Source::Tar(tar) => Ok(tar.stat(digest)),
        }
    }

    /// Opens the blob `digest` of `size` bytes for a read that checks size and digest.
    ///
    /// Errors: `NotFound`; `Mismatch` when the stored size differs from `size`;
    /// `InvalidLayout` for a symbolic link in a directory; `Io`.
    pub(crate) async fn open(&self, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
        match self {
            Source::Dir(blobs) => blobs.open(digest, size).await,
            Source::Tar(tar) => tar.open(digest, size).await,
        }
    }
}

#[async_trait]
impl Fetcher for Source {
    async fn fetch(&self, target: &Descriptor) -> Result<BoxReader> {
        let digest = descriptor::validate(target)?;
        self.open(&digest, target.size()).await
    }
}
