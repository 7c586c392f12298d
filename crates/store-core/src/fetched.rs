//! Fetched content and whether it checks itself, so that a copy hashes each blob once.

use crate::content::BoxReader;
use crate::digest::ValidDigest;
use crate::verify::VerifyReader;
use oci_spec::image::Descriptor;
use tokio::io::AsyncRead;

/// A reader returned by [`crate::Fetcher::fetch_checked`], and what it checks itself against.
///
/// A *checking* reader fails its last read (the one that would report the end, with an
/// `io::Error` carrying [`crate::Error::Mismatch`]) unless exactly `size` bytes hashing to
/// `digest` passed through it, as a [`VerifyReader`] does. A destination that hashes what it
/// stores may skip its own hash for content that checks itself against the very descriptor it
/// was asked to store ([`crate::Pusher::push_fetched`]), provided it reads to the end before it
/// makes the content visible. Without a claim, the destination verifies as usual.
pub struct Fetched {
    reader: BoxReader,
    checks: Option<(ValidDigest, u64)>,
}

impl Fetched {
    /// Content that does not check itself: the destination verifies it.
    pub fn unchecked(reader: BoxReader) -> Self {
        Fetched {
            reader,
            checks: None,
        }
    }

    /// Content checked by a [`VerifyReader`] against its digest and size.
    pub fn verified<R: AsyncRead + Send + Unpin + 'static>(reader: VerifyReader<R>) -> Self {
        let checks = Some((reader.digest().clone(), reader.expected_size()));
        Fetched {
            reader: Box::pin(reader),
            checks,
        }
    }

    /// Content whose maker vouches that `reader` checks itself against `digest` and `size` as
    /// the type documentation describes (a store's own verifying stream, say). A false claim
    /// lets unverified bytes into a destination: use [`Fetched::verified`] or
    /// [`Fetched::unchecked`] unless the reader is known to check.
    pub fn vouched(reader: BoxReader, digest: ValidDigest, size: u64) -> Self {
        Fetched {
            reader,
            checks: Some((digest, size)),
        }
    }

    /// Whether the reader checks itself against exactly `desc`'s digest and size.
    pub fn checks(&self, desc: &Descriptor) -> bool {
        self.checks.as_ref().is_some_and(|(digest, size)| {
            *size == desc.size() && digest.as_str() == desc.digest().as_ref()
        })
    }

    /// Replaces the reader by `wrap(reader)`, keeping the claim. `wrap` must pass bytes, ends
    /// and errors through unchanged (it may observe them, as a progress counter does).
    pub fn map_reader(self, wrap: impl FnOnce(BoxReader) -> BoxReader) -> Self {
        Fetched {
            reader: wrap(self.reader),
            checks: self.checks,
        }
    }

    /// The reader, dropping the claim.
    pub fn into_reader(self) -> BoxReader {
        self.reader
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
