//! The options and results of [`crate::import`] and [`crate::export`].

use oci_spec::image::Descriptor;
use std::fmt;
use std::sync::Arc;
use store_core::descriptor::MAX_BLOB_SIZE;

/// Maps an `index.json` entry to the tag it gets: called with the entry and the name
/// containerd would give it ([`crate::default_name`]); `None` leaves the entry untagged.
pub type NameMapping = Arc<dyn Fn(&Descriptor, Option<&str>) -> Option<String> + Send + Sync>;

/// How [`crate::import`] reads an archive. The defaults accept any archive a registry would,
/// bounded only by [`MAX_BLOB_SIZE`] per blob.
#[derive(Clone)]
pub struct ImportOptions {
    pub(crate) max_blob_size: u64,
    pub(crate) max_total_size: Option<u64>,
    pub(crate) max_index_size: u64,
    pub(crate) max_held_manifest_bytes: u64,
    pub(crate) name_mapping: Option<NameMapping>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_blob_size: MAX_BLOB_SIZE,
            max_total_size: None,
            max_index_size: 64 << 20,
            max_held_manifest_bytes: 512 << 20,
            name_mapping: None,
        }
    }
}

impl fmt::Debug for ImportOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportOptions")
            .field("max_blob_size", &self.max_blob_size)
            .field("max_total_size", &self.max_total_size)
            .field("max_index_size", &self.max_index_size)
            .field("max_held_manifest_bytes", &self.max_held_manifest_bytes)
            .field("name_mapping", &self.name_mapping.as_ref().map(|_| "fn"))
            .finish()
    }
}

impl ImportOptions {
    /// Refuses (with `SizeExceedsLimit`, before reading it) any blob entry declaring more
    /// than `bytes`. Returns the options.
    pub fn max_blob_size(mut self, bytes: u64) -> Self {
        self.max_blob_size = bytes;
        self
    }

    /// Refuses (with `SizeExceedsLimit`, before reading the entry that crosses it) an archive
    /// whose entries declare more than `bytes` in all: with a compressed stream, this bounds
    /// how much is ever decompressed. Returns the options.
    pub fn max_total_size(mut self, bytes: u64) -> Self {
        self.max_total_size = Some(bytes);
        self
    }

    /// The largest `index.json` read (64 MiB by default). Returns the options.
    pub fn max_index_size(mut self, bytes: u64) -> Self {
        self.max_index_size = bytes;
        self
    }

    /// How many bytes of manifests may be held in memory until the archive ends (512 MiB by
    /// default; each manifest is at most 4 MiB). Returns the options.
    pub fn max_held_manifest_bytes(mut self, bytes: u64) -> Self {
        self.max_held_manifest_bytes = bytes;
        self
    }

    /// Names each `index.json` entry with `mapping` instead of [`crate::default_name`].
    /// Returns the options.
    pub fn name_mapping(
        mut self,
        mapping: impl Fn(&Descriptor, Option<&str>) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.name_mapping = Some(Arc::new(mapping));
        self
    }
}

/// One `index.json` entry of an imported archive.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The tag it was given in the destination; `None` when it has no name (or the name went
    /// to an earlier entry).
    pub name: Option<String>,
    /// The entry as the archive's `index.json` has it.
    pub descriptor: Descriptor,
}

/// What [`crate::export`] puts in an archive besides the graphs of the chosen tags and digests.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub(crate) referrers: bool,
}

impl ExportOptions {
    /// Also exports the referrers of every manifest reached (to any depth), each listed in
    /// `index.json` untagged. Returns the options.
    pub fn referrers(mut self, yes: bool) -> Self {
        self.referrers = yes;
        self
    }
}

/// What [`crate::export`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The `index.json` entries, in their order.
    pub manifests: Vec<Descriptor>,
    /// How many blobs the archive holds.
    pub blobs: usize,
    /// The archive's size in bytes.
    pub bytes: u64,
}
