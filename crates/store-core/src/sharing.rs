//! Sharing a blob file between two stores on one file system instead of streaming its bytes:
//! what a copy asks for ([`FileSharing`]), what the destination did ([`StoredAs`]) and the
//! tally a copy keeps of it ([`CopyReport`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Whether a copy may share a blob's file between a source and a destination that keep blobs
/// as files on one file system (two layout stores), rather than stream the bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FileSharing {
    /// Always stream the bytes.
    Stream,
    /// A reflink (`FICLONE`: a new file sharing the source's blocks, copied on write) where the
    /// file system supports it (Btrfs, XFS with reflink, bcachefs), else stream. The default:
    /// the two files stay independent.
    #[default]
    Reflink,
    /// A reflink where supported, else a hard link, else stream. After a hard link the two
    /// layouts share one inode: a change to the file through one (which no store makes) shows in
    /// the other.
    ReflinkOrHardLink,
}

/// How a destination stored a blob offered to it as a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredAs {
    /// A reflink of the source's file.
    Cloned,
    /// A hard link to the source's file.
    Linked,
    /// The bytes were streamed, for the reason given (the file system has no reflinks, the two
    /// stores are on different file systems, the blob is small...).
    Streamed(String),
}

/// A copy's request to share one blob's file, and the slot the destination answers in.
#[derive(Debug, Clone)]
pub struct ShareRequest {
    /// What the copy allows.
    pub sharing: FileSharing,
    /// Whether the caller trusts the source's file, so the destination need not hash what it
    /// shares (a shared file is otherwise read and hashed, as a streamed one is).
    pub trusted: bool,
    answer: Arc<OnceLock<StoredAs>>,
}

impl ShareRequest {
    /// A request for `sharing`, trusting the source's bytes when `trusted`.
    pub fn new(sharing: FileSharing, trusted: bool) -> Self {
        ShareRequest {
            sharing,
            trusted,
            answer: Arc::default(),
        }
    }

    /// Records how the destination stored the blob (the first answer counts).
    pub fn answer(&self, stored: StoredAs) {
        let _ = self.answer.set(stored);
    }

    /// How the destination said it stored the blob, if it said.
    pub fn answered(&self) -> Option<StoredAs> {
        self.answer.get().cloned()
    }
}

/// What a copy did with each blob it transferred, counted as it goes; pass one with
/// [`crate::copy::CopyGraphOptions::with_report`] and read it after the copy.
#[derive(Debug, Default)]
pub struct CopyReport {
    cloned: AtomicU64,
    linked: AtomicU64,
    streamed: AtomicU64,
    bytes_shared: AtomicU64,
    bytes_streamed: AtomicU64,
    why_streamed: Mutex<Option<String>>,
}

/// The counts of a [`CopyReport`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyCounts {
    /// Blobs stored as reflinks of the source's files.
    pub cloned: u64,
    /// Blobs stored as hard links to the source's files.
    pub linked: u64,
    /// Blobs and manifests whose bytes were streamed.
    pub streamed: u64,
    /// Bytes of the cloned and linked blobs.
    pub bytes_shared: u64,
    /// Bytes streamed.
    pub bytes_streamed: u64,
    /// Why the last blob that could have been shared was streamed, if one was.
    pub why_streamed: Option<String>,
}

impl CopyReport {
    /// An empty report, shared.
    pub fn new() -> Arc<CopyReport> {
        Arc::default()
    }

    /// Counts a transferred node of `size` bytes stored as `stored` (`None`: streamed with
    /// nothing to share).
    pub(crate) fn count(&self, size: u64, stored: Option<StoredAs>) {
        let (count, bytes) = match &stored {
            Some(StoredAs::Cloned) => (&self.cloned, &self.bytes_shared),
            Some(StoredAs::Linked) => (&self.linked, &self.bytes_shared),
            Some(StoredAs::Streamed(_)) | None => (&self.streamed, &self.bytes_streamed),
        };
        count.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(size, Ordering::Relaxed);
        if let Some(StoredAs::Streamed(why)) = stored {
            *self.why_streamed.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> CopyCounts {
        CopyCounts {
            cloned: self.cloned.load(Ordering::Relaxed),
            linked: self.linked.load(Ordering::Relaxed),
            streamed: self.streamed.load(Ordering::Relaxed),
            bytes_shared: self.bytes_shared.load(Ordering::Relaxed),
            bytes_streamed: self.bytes_streamed.load(Ordering::Relaxed),
            why_streamed: self
                .why_streamed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}
