//! A streaming tar reader over any `AsyncRead`: ustar, GNU long names and pax `path`/`size`
//! records, never seeking. Entry data is read through [`EntryData`], a `'static` reader that can
//! be handed to a `push` while the stream stays with the importer.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, BufReader, ReadBuf};

/// A tar block.
pub(crate) const BLOCK: u64 = 512;

/// The largest pax or GNU long-name record read (the names of a layout are short).
const METADATA_LIMIT: u64 = 64 << 10;

/// How much of the (decompressed) stream is buffered.
const BUFFER_BYTES: usize = 256 << 10;

/// The state every reader of one archive shares.
struct Inner {
    reader: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    /// Bytes of the tar stream consumed so far.
    consumed: u64,
    /// Whether the stream ended (or failed) while something was still being read.
    ended_early: bool,
}

/// The tar stream, shared between the importer and the reader of the entry being pushed.
#[derive(Clone)]
pub(crate) struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` inconsistent (it is plain
        // counters around a reader), so a poisoned lock is used as it is.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl AsyncRead for Shared {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.lock();
        let before = buf.filled().len();
        let want = buf.remaining();
        match Pin::new(&mut inner.reader).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len() - before;
                if n == 0 && want > 0 {
                    inner.ended_early = true;
                }
                inner.consumed += n as u64;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                inner.ended_early = true;
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The data of the current entry: at most its declared size, then end of file.
pub(crate) type EntryData = tokio::io::Take<Shared>;

/// One entry's header, after pax and GNU records were applied.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    /// The name as the archive spells it.
    pub(crate) name: Vec<u8>,
    /// The typeflag byte.
    pub(crate) typeflag: u8,
    /// The declared data size.
    pub(crate) size: u64,
}

impl Header {
    /// The name, printable.
    pub(crate) fn shown(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Why reading the archive failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The bytes are not a tar archive (bad checksum, bad number, bad pax record).
    Format(String),
    /// The stream ended, or its decompressor failed, before the archive did.
    Truncated(String),
    /// A read failed for another reason.
    Io(io::Error),
}

/// The tar stream: headers, then each entry's data.
pub(crate) struct TarReader {
    shared: Shared,
    /// Where the current entry's data ends, rounded up to a block.
    next_header_at: u64,
}

impl TarReader {
    /// A reader of the tar stream `inner` (already decompressed).
    pub(crate) fn new(inner: Box<dyn AsyncRead + Send + Unpin>) -> TarReader {
        TarReader {
            shared: Shared(Arc::new(Mutex::new(Inner {
                reader: BufReader::with_capacity(BUFFER_BYTES, inner),
                consumed: 0,
                ended_early: false,
            }))),
            next_header_at: 0,
        }
    }

    /// Whether the stream ended or failed early since the reader was made.
    pub(crate) fn ended_early(&self) -> bool {
        self.shared.lock().ended_early
    }

    /// Bytes of the tar stream consumed so far.
    pub(crate) fn consumed(&self) -> u64 {
        self.shared.lock().consumed
    }

    /// A reader of the current entry's data (`size` bytes from where the stream is).
    pub(crate) fn data(&self, size: u64) -> EntryData {
        self.shared.clone().take(size)
    }

    /// Reads and discards whatever is left of the current entry and its padding, without
    /// looking at it.
    ///
    /// Errors: `Truncated` when the stream ends first.
    pub(crate) async fn skip_rest(&mut self) -> Result<(), ReadError> {
        let left = self.next_header_at.saturating_sub(self.consumed());
        if left == 0 {
            return Ok(());
        }
        let copied = tokio::io::copy(&mut self.data(left), &mut tokio::io::sink())
            .await
            .map_err(read_error)?;
        if copied < left {
            return Err(ReadError::Truncated(format!(
                "the archive ends {} bytes before this entry does",
                left - copied
            )));
        }
        Ok(())
    }

    /// Reads the whole data of a metadata or small entry of `size` bytes (at most `limit`).
    ///
    /// Errors: `Format` above `limit`, `Truncated`, `Io`.
    pub(crate) async fn read_small(&mut self, size: u64, limit: u64) -> Result<Vec<u8>, ReadError> {
        if size > limit {
            return Err(ReadError::Format(format!(
                "declares {size} bytes, more than the {limit} allowed"
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        self.data(size)
            .read_to_end(&mut out)
            .await
            .map_err(read_error)?;
        if (out.len() as u64) < size {
            return Err(ReadError::Truncated(format!(
                "the archive ends after {} of the entry's {size} bytes",
                out.len()
            )));
        }
        Ok(out)
    }

    /// Reads one 512-byte block; `None` at a clean end of the stream.
    async fn block(&mut self) -> Result<Option<[u8; 512]>, ReadError> {
        let mut block = [0u8; 512];
        let mut filled = 0;
        let mut data = self.data(BLOCK);
        while filled < block.len() {
            let n = data.read(&mut block[filled..]).await.map_err(read_error)?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        match filled {
            0 => Ok(None),
            512 => Ok(Some(block)),
            short => Err(ReadError::Truncated(format!(
                "the archive ends inside a header ({short} of 512 bytes)"
            ))),
        }
    }

    /// The next entry's header, with pax and GNU long-name records applied; `None` at the
    /// end-of-archive marker (a zero block). Skips what is left of the previous entry first.
    ///
    /// Errors: `Truncated` when the stream ends before the marker, `Format` for a block that is
    /// not a tar header, `Io`.
    pub(crate) async fn next(&mut self) -> Result<Option<Header>, ReadError> {
        let mut long_name: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            self.skip_rest().await?;
            let Some(block) = self.block().await? else {
                return Err(ReadError::Truncated(
                    "the archive ends without its end-of-archive marker".into(),
                ));
            };
            if block.iter().all(|b| *b == 0) {
                return Ok(None);
            }
            let raw = parse_header(&block).map_err(ReadError::Format)?;
            let start = self.consumed();
            self.next_header_at = start
                .checked_add(raw.size.div_ceil(BLOCK) * BLOCK)
                .ok_or_else(|| ReadError::Format("an entry size overflows".into()))?;
            match raw.typeflag {
                b'x' => {
                    let data = self.read_small(raw.size, METADATA_LIMIT).await?;
                    for (key, value) in parse_pax(&data).map_err(ReadError::Format)? {
                        match key.as_str() {
                            "path" => long_name = Some(value),
                            "size" => {
                                let text = String::from_utf8_lossy(&value).into_owned();
                                pax_size = Some(text.parse().map_err(|_| {
                                    ReadError::Format(format!("a pax size of {text:?}"))
                                })?);
                            }
                            _ => {}
                        }
                    }
                }
                // Global pax records and GNU long link names say nothing an importer uses.
                b'g' | b'K' => {
                    self.read_small(raw.size, METADATA_LIMIT).await?;
                }
                b'L' => {
                    let mut data = self.read_small(raw.size, METADATA_LIMIT).await?;
                    if let Some(end) = data.iter().position(|b| *b == 0) {
                        data.truncate(end);
                    }
                    long_name = Some(data);
                }
                _ => {
                    let size = pax_size.unwrap_or(raw.size);
                    if size != raw.size {
                        self.next_header_at = start
                            .checked_add(size.div_ceil(BLOCK) * BLOCK)
                            .ok_or_else(|| ReadError::Format("an entry size overflows".into()))?;
                    }
                    return Ok(Some(Header {
                        name: long_name.unwrap_or(raw.name),
                        typeflag: raw.typeflag,
                        size,
                    }));
                }
            }
        }
    }
}

/// An I/O error of the (decompressed) stream: early ends and decompressor failures mean the
/// archive is cut or corrupt; anything else is the reader's own failure.
fn read_error(e: io::Error) -> ReadError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidData | io::ErrorKind::Other => {
            ReadError::Truncated(format!("the stream failed: {e}"))
        }
        _ => ReadError::Io(e),
    }
}

/// The fields of one header block.
struct RawHeader {
    name: Vec<u8>,
    typeflag: u8,
    size: u64,
}

/// The bytes of `field` up to its first NUL.
fn c_string(field: &[u8]) -> &[u8] {
    match field.iter().position(|b| *b == 0) {
        Some(end) => &field[..end],
        None => field,
    }
}

/// A numeric field: octal (spaces and NULs around it ignored) or GNU base-256.
fn number(field: &[u8], what: &str) -> Result<u64, String> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut value: u64 = u64::from(field[0] & 0x7f);
        for byte in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(*byte)))
                .ok_or_else(|| format!("the {what} field overflows"))?;
        }
        return Ok(value);
    }
    let text = c_string(field);
    let trimmed: Vec<u8> = text
        .iter()
        .copied()
        .skip_while(|b| *b == b' ')
        .take_while(|b| *b != b' ')
        .collect();
    if trimmed.is_empty() {
        return Ok(0);
    }
    let mut value: u64 = 0;
    for byte in trimmed {
        if !(b'0'..=b'7').contains(&byte) {
            return Err(format!(
                "the {what} field {:?} is not octal",
                String::from_utf8_lossy(field)
            ));
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(byte - b'0')))
            .ok_or_else(|| format!("the {what} field overflows"))?;
    }
    Ok(value)
}

/// Parses and checks one header block.
fn parse_header(block: &[u8; 512]) -> Result<RawHeader, String> {
    let stored = number(&block[148..156], "checksum")?;
    let unsigned: u64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(*b)
            }
        })
        .sum();
    // Some old writers summed signed bytes.
    let signed: i64 = block
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                i64::from(*b as i8)
            }
        })
        .sum();
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err(
            "a header's checksum does not match: not a tar archive, or a corrupt one".into(),
        );
    }
    let mut name = c_string(&block[0..100]).to_vec();
    // POSIX ustar ("ustar\0") has a name prefix; GNU ("ustar  ") uses those bytes otherwise.
    if &block[257..263] == b"ustar\0" {
        let prefix = c_string(&block[345..500]);
        if !prefix.is_empty() {
            let mut full = prefix.to_vec();
            full.push(b'/');
            full.extend_from_slice(&name);
            name = full;
        }
    }
    Ok(RawHeader {
        name,
        typeflag: block[156],
        size: number(&block[124..136], "size")?,
    })
}

/// The records of a pax extended header (`<len> <key>=<value>\n` each).
fn parse_pax(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|b| *b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|b| *b == b' ')
            .ok_or("a pax record without a length")?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or("a pax record with a bad length")?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err("a pax record with a bad length".into());
        }
        let record = &rest[space + 1..len - 1];
        let eq = record
            .iter()
            .position(|b| *b == b'=')
            .ok_or("a pax record without `=`")?;
        out.push((
            String::from_utf8_lossy(&record[..eq]).into_owned(),
            record[eq + 1..].to_vec(),
        ));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_in_octal_and_base_256() {
        assert_eq!(number(b"00000001750\0", "size"), Ok(1000));
        assert_eq!(number(b"   1750 \0", "size"), Ok(1000));
        assert_eq!(number(b"\0\0\0\0", "size"), Ok(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 1;
        big[10] = 2;
        assert_eq!(number(&big, "size"), Ok(513));
        assert!(number(b"0009", "size").is_err());
    }

    #[test]
    fn pax_records_parse() {
        let records = parse_pax(b"30 path=blobs/sha512/abcdefgh\n11 size=42\n").unwrap();
        assert_eq!(records[0].0, "path");
        assert_eq!(records[0].1, b"blobs/sha512/abcdefgh");
        assert_eq!(records[1], ("size".to_string(), b"42".to_vec()));
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"x path=x\n").is_err());
    }
}
