//! Fetched content and whether it checks itself, so that a copy hashes each blob once.

use crate::content::BoxReader;
use crate::digest::ValidDigest;
use crate::sharing::ShareRequest;
use crate::verify::VerifyReader;
use bytes::Bytes;
use futures::Stream;
use oci_spec::image::Descriptor;
use std::io;
use std::pin::Pin;
use tokio::io::AsyncRead;
use tokio_util::io::StreamReader;

/// Content as the pieces it arrived in (an HTTP body's chunks, say): a destination that keeps
/// them can write them out without copying them into buffers of its own.
pub type ChunkStream = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send + 'static>>;

/// The content of a [`Fetched`]: a reader, or the chunks it arrived in.
pub enum FetchedBody {
    /// A reader, as [`crate::Fetcher::fetch`] returns.
    Reader(BoxReader),
    /// The content's chunks in order; the stream ends where a reader would.
    Chunks(ChunkStream),
}

impl FetchedBody {
    /// The content as a reader (chunks are read in turn).
    pub fn into_reader(self) -> BoxReader {
        match self {
            FetchedBody::Reader(reader) => reader,
            FetchedBody::Chunks(chunks) => Box::pin(StreamReader::new(chunks)),
        }
    }
}

/// A reader returned by [`crate::Fetcher::fetch_checked`], and what it checks itself against.
///
/// A *checking* reader fails its last read (the one that would report the end, with an
/// `io::Error` carrying [`crate::Error::Mismatch`]) unless exactly `size` bytes hashing to
/// `digest` passed through it, as a [`VerifyReader`] does; checking chunks likewise fail in
/// place of their end. A destination that hashes what it stores may skip its own hash for
/// content that checks itself against the very descriptor it was asked to store
/// ([`crate::Pusher::push_fetched`]), provided it reads to the end before it makes the content
/// visible. Without a claim, the destination verifies as usual.
pub struct Fetched {
    body: FetchedBody,
    checks: Option<(ValidDigest, u64)>,
    /// The source's own file of the content, for a destination that can share it.
    file: Option<std::fs::File>,
    /// What the copy allows a destination to do with `file`.
    share: Option<ShareRequest>,
}

impl Fetched {
    /// Content that does not check itself: the destination verifies it.
    pub fn unchecked(reader: BoxReader) -> Self {
        Fetched {
            body: FetchedBody::Reader(reader),
            checks: None,
            file: None,
            share: None,
        }
    }

    /// Content checked by a [`VerifyReader`] against its digest and size.
    pub fn verified<R: AsyncRead + Send + Unpin + 'static>(reader: VerifyReader<R>) -> Self {
        let checks = Some((reader.digest().clone(), reader.expected_size()));
        Fetched {
            body: FetchedBody::Reader(Box::pin(reader)),
            checks,
            file: None,
            share: None,
        }
    }

    /// Content whose maker vouches that `reader` checks itself against `digest` and `size` as
    /// the type documentation describes (a store's own verifying stream, say). A false claim
    /// lets unverified bytes into a destination: use [`Fetched::verified`] or
    /// [`Fetched::unchecked`] unless the reader is known to check.
    pub fn vouched(reader: BoxReader, digest: ValidDigest, size: u64) -> Self {
        Fetched {
            body: FetchedBody::Reader(reader),
            checks: Some((digest, size)),
            file: None,
            share: None,
        }
    }

    /// Like [`Fetched::vouched`] for content as chunks: their maker vouches that the stream
    /// yields an error in place of its end unless exactly `size` bytes hashing to `digest`
    /// came through it. The same warning holds.
    pub fn vouched_chunks(chunks: ChunkStream, digest: ValidDigest, size: u64) -> Self {
        Fetched {
            body: FetchedBody::Chunks(chunks),
            checks: Some((digest, size)),
            file: None,
            share: None,
        }
    }

    /// Whether the content checks itself against exactly `desc`'s digest and size.
    pub fn checks(&self, desc: &Descriptor) -> bool {
        self.checks.as_ref().is_some_and(|(digest, size)| {
            *size == desc.size() && digest.as_str() == desc.digest().as_ref()
        })
    }

    /// Replaces the reader by `wrap(reader)`, keeping the claim; chunks become a reader first
    /// (use [`Fetched::map_body`] to keep them). `wrap` must pass bytes, ends and errors
    /// through unchanged (it may observe them, as a progress counter does).
    pub fn map_reader(self, wrap: impl FnOnce(BoxReader) -> BoxReader) -> Self {
        Fetched {
            body: FetchedBody::Reader(wrap(self.body.into_reader())),
            checks: self.checks,
            file: self.file,
            share: self.share,
        }
    }

    /// Replaces a reader by `reader(it)` or chunks by `chunks(them)`, keeping the claim. Both
    /// must pass bytes, ends and errors through unchanged (they may observe them).
    pub fn map_body(
        self,
        reader: impl FnOnce(BoxReader) -> BoxReader,
        chunks: impl FnOnce(ChunkStream) -> ChunkStream,
    ) -> Self {
        let body = match self.body {
            FetchedBody::Reader(r) => FetchedBody::Reader(reader(r)),
            FetchedBody::Chunks(c) => FetchedBody::Chunks(chunks(c)),
        };
        Fetched {
            body,
            checks: self.checks,
            file: self.file,
            share: self.share,
        }
    }

    /// Offers `file`, the source's own file of exactly this content, to a destination that can
    /// share it instead of reading the body (see [`crate::copy::FileSharing`]). A store that keeps
    /// blobs as files offers it from `fetch_checked`; the body stays the content's reader.
    pub fn with_file(mut self, file: std::fs::File) -> Self {
        self.file = Some(file);
        self
    }

    /// Whether a file is offered.
    pub fn offers_file(&self) -> bool {
        self.file.is_some()
    }

    /// Lets the destination share the offered file as `request` allows (set by a copy).
    pub fn request_sharing(&mut self, request: ShareRequest) {
        self.share = Some(request);
    }

    /// Takes the offered file, with what the copy allows, when both are there: for a
    /// destination that keeps blobs as files, which answers through the request how it stored
    /// the blob (the body stays, for streaming when the file cannot be shared).
    pub fn take_shareable_file(&mut self) -> Option<(std::fs::File, ShareRequest)> {
        match (self.file.take(), self.share.take()) {
            (Some(file), Some(share)) => Some((file, share)),
            (file, share) => {
                (self.file, self.share) = (file, share);
                None
            }
        }
    }

    /// The content as a reader, dropping the claim.
    pub fn into_reader(self) -> BoxReader {
        self.body.into_reader()
    }

    /// The content as it came (reader or chunks), dropping the claim.
    pub fn into_body(self) -> FetchedBody {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::{descriptor_from_bytes, reader_from_bytes};
    use oci_spec::image::MediaType;

    #[test]
    fn a_claim_holds_for_its_own_descriptor_only() {
        let desc = descriptor_from_bytes(MediaType::ImageLayer, b"abc");
        let other = descriptor_from_bytes(MediaType::ImageLayer, b"abd");
        let checked = Fetched::verified(VerifyReader::new(&b"abc"[..], &desc).unwrap());
        assert!(checked.checks(&desc));
        assert!(!checked.checks(&other));
        let mut longer = desc.clone();
        longer.set_size(4);
        assert!(!checked.checks(&longer), "another size is another claim");
        let kept = checked.map_reader(|r| r);
        assert!(kept.checks(&desc), "map_reader keeps the claim");
        assert!(!Fetched::unchecked(reader_from_bytes(&b"abc"[..])).checks(&desc));
    }
}
