//! An uncompressed tar of an OCI image layout as a read-only blob source.
//!
//! The archive is scanned once, when it is opened: each regular file's data offset and size are
//! remembered under its cleaned name (`./blobs/x` and `blobs/x` are the same entry). A read
//! re-opens the archive, seeks to the entry and streams exactly its bytes, verified against the
//! descriptor. What an entry may be is decided by `store_core::archive_entry`, the rules the
//! streaming importer applies too: `..` components, absolute paths, links, devices and names
//! other than `oci-layout`, `index.json` and `blobs/<alg>/<hex>` make the whole archive invalid.

use crate::blob::chunks::ChunkReader;
use crate::blob::IN_MEMORY_LIMIT_BYTES;
use crate::fsutil::spawn_blocking;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use store_core::archive_entry::{classify, EntryKind, LayoutEntry};
use store_core::content::{BoxReader, VerifyReader};
use store_core::digest::ValidDigest;
use store_core::{Error, Result};
use tar::EntryType;
use tokio::io::AsyncRead;

/// Where one regular file's bytes are in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TarEntry {
    /// Offset of the first data byte from the start of the archive.
    pub(crate) offset: u64,
    /// Number of data bytes.
    pub(crate) size: u64,
}

/// A scanned tar archive: regular files by cleaned name.
#[derive(Debug)]
pub(crate) struct TarSource {
    path: PathBuf,
    entries: HashMap<String, TarEntry>,
}

/// The tar reader's message, printable and bounded (it may quote the garbage it read).
fn describe(e: &io::Error) -> String {
    let text: String = e
        .to_string()
        .chars()
        .map(|c| {
            if c.is_control() || c == char::REPLACEMENT_CHARACTER {
                '?'
            } else {
                c
            }
        })
        .take(160)
        .collect();
    text
}

/// Whether an error of the tar reader says the bytes are not a tar archive (rather than that
/// the file could not be read).
fn is_format_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
    )
}

/// The compression `file` starts with, if it is one an archive is commonly wrapped in; leaves
/// the file at its start.
fn compressed_format(file: &mut File) -> io::Result<Option<&'static str>> {
    let mut magic = [0u8; 4];
    let mut filled = 0;
    while filled < magic.len() {
        match file.read(&mut magic[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    file.seek(SeekFrom::Start(0))?;
    let magic = &magic[..filled];
    Ok(if magic.starts_with(&[0x1f, 0x8b]) {
        Some("gzip")
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Some("zstd")
    } else if magic.starts_with(b"BZh") {
        Some("bzip2")
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X']) {
        Some("xz")
    } else {
        None
    })
}

impl TarSource {
    /// Scans the archive at `path` (blocking; run it on the blocking pool).
    ///
    /// Errors: `InvalidLayout` naming the archive when it is not a tar archive, when an entry
    /// is refused by `store_core::archive_entry::classify` (naming the entry), or runs past the
    /// end of the file; `Unsupported` for a sparse entry; `Io` when the
    /// file cannot be read.
    pub(crate) fn scan(path: &Path) -> Result<TarSource> {
        let invalid = |reason: String| Error::InvalidLayout {
            path: path.to_path_buf(),
            reason,
        };
        let read_error = |e: io::Error| {
            if is_format_error(&e) {
                invalid(format!("not a readable tar archive: {}", describe(&e)))
            } else {
                Error::io(format!("reading {}", path.display()), e)
            }
        };
        let file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(format!("inspecting {}", path.display()), e))?
            .len();
        let mut file = file;
        if let Some(format) = compressed_format(&mut file)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?
        {
            return Err(invalid(format!(
                "a {format}-compressed file; only uncompressed tar archives of a layout can \
                 be opened (decompress it first)"
            )));
        }
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().map_err(read_error)? {
            let entry = entry.map_err(read_error)?;
            let raw = entry.path_bytes();
            let shown = String::from_utf8_lossy(&raw).into_owned();
            let header = entry.header();
            // The one set of rules the streaming importer applies too.
            let kind = match header.entry_type() {
                EntryType::GNUSparse => {
                    return Err(Error::unsupported(format!(
                        "{}: the entry {shown:?} is a sparse file",
                        path.display()
                    )));
                }
                other => EntryKind::from_typeflag(other.as_byte()),
            };
            let accepted = classify(&raw, kind).map_err(|why| invalid(why.to_string()))?;
            let name = match accepted {
                LayoutEntry::Directory | LayoutEntry::Ignored => continue,
                LayoutEntry::OciLayout => "oci-layout".to_string(),
                LayoutEntry::Index => "index.json".to_string(),
                LayoutEntry::Blob(digest) => Self::blob_name(&digest),
            };
            let offset = entry.raw_file_position();
            let size = entry.size();
            if offset.checked_add(size).is_none_or(|end| end > len) {
                return Err(invalid(format!(
                    "the entry {shown:?} ({size} bytes at offset {offset}) runs past \
                     the end of the archive ({len} bytes)"
                )));
            }
            // As when extracting, a later entry of the same name wins.
            entries.insert(name, TarEntry { offset, size });
        }
        Ok(TarSource {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// The archive's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The regular file `name` (cleaned, e.g. `index.json`), if the archive has one.
    pub(crate) fn entry(&self, name: &str) -> Option<TarEntry> {
        self.entries.get(name).copied()
    }

    /// The archive name of a blob: `blobs/<alg>/<hex>`.
    fn blob_name(digest: &ValidDigest) -> String {
        format!("blobs/{}/{}", digest.algorithm().name(), digest.hex())
    }

    /// The size of the blob `digest` in the archive, or `None` when it has none.
    pub(crate) fn stat(&self, digest: &ValidDigest) -> Option<u64> {
        self.entry(&Self::blob_name(digest)).map(|e| e.size)
    }

    /// Opens the archive positioned at `entry`, limited to its bytes (blocking).
    fn open_entry(path: &Path, entry: TarEntry) -> Result<io::Take<File>> {
        let mut file =
            File::open(path).map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        file.seek(SeekFrom::Start(entry.offset))
            .map_err(|e| Error::io(format!("seeking in {}", path.display()), e))?;
        Ok(file.take(entry.size))
    }

    /// Reads the whole entry `name` if it exists and holds at most `limit` bytes (blocking).
    ///
    /// Errors: `SizeExceedsLimit` naming `<archive>/<name>` when it is larger than `limit`;
    /// `InvalidLayout` naming it when the archive ends early; `Io`.
    pub(crate) fn read_entry(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
        let Some(entry) = self.entry(name) else {
            return Ok(None);
        };
        let shown = self.path.join(name);
        if entry.size > limit {
            return Err(Error::SizeExceedsLimit {
                what: shown.display().to_string(),
                size: entry.size,
                limit,
            });
        }
        let mut reader = Self::open_entry(&self.path, entry)?;
        let mut out = Vec::with_capacity(entry.size.min(IN_MEMORY_LIMIT_BYTES) as usize);
        reader
            .read_to_end(&mut out)
            .map_err(|e| Error::io(format!("reading {}", shown.display()), e))?;
        if out.len() as u64 != entry.size {
            return Err(Error::InvalidLayout {
                path: shown,
                reason: format!(
                    "the archive ends after {} of its {} bytes",
                    out.len(),
                    entry.size
                ),
            });
        }
        Ok(Some(out))
    }

    /// Opens the blob `digest` for a verified read: small blobs are read in one blocking call,
    /// big ones streamed in large chunks from a blocking thread.
    ///
    /// Errors: `NotFound`; `Mismatch` when the entry's size differs from `size` (or, while
    /// reading, when the bytes differ from the digest); `Io`.
    pub(crate) async fn open(&self, digest: &ValidDigest, size: u64) -> Result<BoxReader> {
        let Some(entry) = self.entry(&Self::blob_name(digest)) else {
            return Err(Error::not_found(digest));
        };
        if entry.size != size {
            return Err(Error::mismatch(
                digest,
                format!(
                    "the archive's entry has {} bytes, the descriptor says {size}",
                    entry.size
                ),
            ));
        }
        let path = self.path.clone();
        let inner: Box<dyn AsyncRead + Send + Unpin> = if size <= IN_MEMORY_LIMIT_BYTES {
            let bytes = spawn_blocking(move || {
                let mut reader = Self::open_entry(&path, entry)?;
                let mut out = Vec::with_capacity(size as usize);
                reader
                    .read_to_end(&mut out)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                Ok(out)
            })
            .await?;
            Box::new(io::Cursor::new(bytes))
        } else {
            let reader = spawn_blocking(move || Self::open_entry(&path, entry)).await?;
            Box::new(ChunkReader::spawn(reader))
        };
        Ok(Box::pin(VerifyReader::with_digest(
            inner,
            digest.clone(),
            size,
        )))
    }
}
