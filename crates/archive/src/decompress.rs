//! Recognises a gzip or zstd stream by its magic bytes and unwraps it.

use async_compression::tokio::bufread::{GzipDecoder, ZstdDecoder};
use std::io;
use tokio::io::{AsyncRead, AsyncReadExt, BufReader};

/// The compression an archive was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Compression {
    /// A plain tar.
    None,
    /// gzip (`1f 8b`), members concatenated as `gzip` allows.
    Gzip,
    /// zstd (`28 b5 2f fd`), frames concatenated as `zstd` allows.
    Zstd,
}

/// The first bytes of `reader` (up to four), read without losing them.
async fn peek<R: AsyncRead + Unpin>(reader: &mut R) -> io::Result<Vec<u8>> {
    let mut magic = vec![0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        let n = reader.read(&mut magic[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    magic.truncate(filled);
    Ok(magic)
}

/// The tar stream inside `reader` and the compression it was found in.
///
/// Errors: those of the first read.
pub(crate) async fn unwrap<R>(
    mut reader: R,
) -> io::Result<(Box<dyn AsyncRead + Send + Unpin>, Compression)>
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let magic = peek(&mut reader).await?;
    let compression = if magic.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    let whole = std::io::Cursor::new(magic).chain(reader);
    let out: Box<dyn AsyncRead + Send + Unpin> = match compression {
        Compression::None => Box::new(whole),
        Compression::Gzip => {
            let mut decoder = GzipDecoder::new(BufReader::with_capacity(128 << 10, whole));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
        Compression::Zstd => {
            let mut decoder = ZstdDecoder::new(BufReader::with_capacity(128 << 10, whole));
            decoder.multiple_members(true);
            Box::new(decoder)
        }
    };
    Ok((out, compression))
}
