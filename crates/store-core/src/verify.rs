//! A streaming reader that checks content against its descriptor as it passes.

use crate::digest::{Hasher, ValidDigest};
use crate::error::{Error, Result};
use oci_spec::image::Descriptor;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Wraps an [`AsyncRead`](tokio::io::AsyncRead) and checks that it yields exactly `size` bytes hashing to `digest`.
///
/// It never reads past `size` into the caller's buffer. At the end it probes the inner reader for
/// one more byte: a short stream, trailing data, or a wrong digest fail the read with an
/// `io::Error` of kind `InvalidData` that carries an [`Error::Mismatch`] (recover it with
/// [`crate::error_from_io`]). Verification completes when the caller reads to EOF.
pub struct VerifyReader<R> {
    inner: R,
    digest: ValidDigest,
    hasher: Option<Hasher>,
    expected: u64,
    seen: u64,
    finished: bool,
}

impl<R: AsyncRead + Unpin> VerifyReader<R> {
    /// A reader checking `inner` against `desc`.
    ///
    /// Errors: `InvalidDigest` for a malformed or unsupported digest, `SizeExceedsLimit` for an
    /// absurd size (see [`crate::descriptor::validate`]).
    pub fn new(inner: R, desc: &Descriptor) -> Result<Self> {
        let digest = crate::descriptor::validate(desc)?;
        Ok(Self::with_digest(inner, digest, desc.size()))
    }

    /// A reader checking `inner` against an already validated digest and size.
    pub fn with_digest(inner: R, digest: ValidDigest, size: u64) -> Self {
        VerifyReader {
            hasher: Some(digest.algorithm().hasher()),
            inner,
            digest,
            expected: size,
            seen: 0,
            finished: false,
        }
    }

    /// The number of content bytes passed through so far.
    pub fn bytes_read(&self) -> u64 {
        self.seen
    }

    /// The digest the content must hash to.
    pub fn digest(&self) -> &ValidDigest {
        &self.digest
    }

    /// The number of bytes the content must have.
    pub fn expected_size(&self) -> u64 {
        self.expected
    }

    fn fail(&mut self, reason: String) -> io::Error {
        self.finished = true;
        io::Error::new(
            io::ErrorKind::InvalidData,
            Error::mismatch(&self.digest, reason),
        )
    }

    /// Called once all expected bytes were seen: checks for trailing data, then the digest.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut probe = [0u8; 1];
        let mut probe_buf = ReadBuf::new(&mut probe);
        ready!(Pin::new(&mut self.inner).poll_read(cx, &mut probe_buf))?;
        if !probe_buf.filled().is_empty() {
            return Poll::Ready(Err(self.fail(format!(
                "trailing data after the expected {} bytes",
                self.expected
            ))));
        }
        self.finished = true;
        let actual = match self.hasher.take() {
            Some(hasher) => hasher.finish(),
            None => String::new(),
        };
        if actual != self.digest.as_str() {
            return Poll::Ready(Err(self.fail(format!("the content's digest is {actual}"))));
        }
        Poll::Ready(Ok(()))
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for VerifyReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.finished || buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let remaining = this.expected - this.seen;
        if remaining == 0 {
            return this.poll_finish(cx);
        }
        let before = buf.filled().len();
        let limited = (buf.remaining() as u64) > remaining;
        let n = if limited {
            // The caller's buffer could take more than the content has left: read into a bounded
            // window so trailing data never reaches the caller. `remaining` fits in usize here
            // because it is smaller than the buffer's remaining capacity.
            let window = buf.initialize_unfilled_to(remaining as usize);
            let mut sub = ReadBuf::new(window);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sub))?;
            let n = sub.filled().len();
            buf.advance(n);
            n
        } else {
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            buf.filled().len() - before
        };
        if n == 0 {
            let seen = this.seen;
            let expected = this.expected;
            return Poll::Ready(Err(this.fail(format!(
                "ended after {seen} of the expected {expected} bytes"
            ))));
        }
        if let Some(hasher) = this.hasher.as_mut() {
            hasher.update(&buf.filled()[before..before + n]);
        }
        this.seen += n as u64;
        Poll::Ready(Ok(()))
    }
}

/// Turns an I/O error from a reader back into an ocistore [`Error`]: an [`Error`] carried inside
/// (such as the `Mismatch` of a [`VerifyReader`]) is returned as it is, anything else becomes
/// `Io` with `context`.
pub fn error_from_io(err: io::Error, context: impl Into<String>) -> Error {
    if err.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        if let Some(inner) = err.into_inner() {
            return match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::io(context, io::Error::other(other)),
            };
        }
        // `get_ref` was Some, so `into_inner` is too; keep a plain error regardless.
        return Error::io(context, io::Error::other("unknown"));
    }
    Error::io(context, err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::descriptor_from_bytes;
    use crate::ErrorKind;
    use oci_spec::image::MediaType;
    use tokio::io::AsyncReadExt;

    async fn read_all(data: &'static [u8], desc: &Descriptor) -> Result<Vec<u8>> {
        let mut reader = VerifyReader::new(data, desc)?;
        let mut out = Vec::new();
        reader
            .read_to_end(&mut out)
            .await
            .map_err(|e| error_from_io(e, "read"))?;
        Ok(out)
    }

    #[tokio::test]
    async fn passes_exact_content() {
        let desc = descriptor_from_bytes(MediaType::ImageLayer, b"hello world");
        assert_eq!(
            read_all(b"hello world", &desc).await.unwrap(),
            b"hello world"
        );
    }

    #[tokio::test]
    async fn short_long_and_wrong_content_fail() {
        let desc = descriptor_from_bytes(MediaType::ImageLayer, b"hello world");
        for bad in [&b"hello"[..], b"hello world!", b"hello WORLD", b""] {
            let err = read_all(bad, &desc).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mismatch, "{bad:?}: {err}");
            assert!(err.to_string().contains(desc.digest().as_ref()));
        }
    }

    #[tokio::test]
    async fn trailing_data_never_reaches_the_caller() {
        let desc = descriptor_from_bytes(MediaType::ImageLayer, b"abc");
        let mut reader = VerifyReader::new(&b"abcdef"[..], &desc).unwrap();
        let mut buf = [0u8; 16];
        let n = reader.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"abc");
        let err = reader.read(&mut buf).await.unwrap_err();
        assert_eq!(error_from_io(err, "x").kind(), ErrorKind::Mismatch);
    }

    #[tokio::test]
    async fn a_forged_size_is_refused_or_ends_in_mismatch() {
        let mut desc = descriptor_from_bytes(MediaType::ImageLayer, b"abc");
        desc.set_size(1 << 62);
        assert!(matches!(
            VerifyReader::new(&b"abc"[..], &desc).map(|_| ()),
            Err(e) if e.kind() == ErrorKind::SizeExceedsLimit
        ));
        desc.set_size(1 << 40);
        let err = read_all(b"abc", &desc).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Mismatch);
    }
}
