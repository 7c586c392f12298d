//! Resolving a reference the way both layout stores do.

use crate::index::state::IndexState;
use oci_spec::image::{Descriptor, MediaType};
use store_core::descriptor::{self, is_manifest, OCTET_STREAM};
use store_core::digest::ValidDigest;
use store_core::graph::MemoryGraph;
use store_core::{Error, Result, SharedDescriptor};

/// A tag gives the full descriptor it points at, shared (a digest is never looked up as a tag: it
/// always gives content with that digest); the digest of an `index.json` entry, or of a
/// manifest the graph knows (an index's child), its plain descriptor; the digest of any other blob
/// that `stat` finds, `application/octet-stream` with the blob's size.
///
/// Errors: `MissingReference` for an empty reference, `NotFound` otherwise (naming `where_`,
/// and saying so when every `index.json` entry is untagged).
pub(crate) fn resolve_reference(
    reference: &str,
    index: &IndexState,
    graph: &MemoryGraph,
    stat: impl Fn(&ValidDigest) -> Result<Option<u64>>,
    where_: &std::path::Path,
) -> Result<SharedDescriptor> {
    store_core::reference::require_reference("resolve", reference)?;
    if let Some(desc) = index.resolve(reference) {
        // A digest never resolves to other content, whatever a tag spells; the digest of an
        // entry resolves to its plain descriptor. (Every digest has a colon, no tag has one.)
        if reference == desc.digest().as_ref()
            || !reference.contains(':')
            || !ValidDigest::is_valid(reference)
        {
            return Ok(desc);
        }
    }
    let not_found = || {
        let (entries, tagged) = index.entry_counts();
        if entries > 0 && tagged == 0 {
            // Layouts written by tools that record no names (`skopeo copy ...
            // oci-archive:FILE`) have only untagged entries: say how to find them.
            return Error::not_found(format!(
                "{reference} in {} (this layout's {entries} index.json entries are all \
                 untagged: none has an org.opencontainers.image.ref.name; list them with \
                 entries() and resolve one by its digest)",
                where_.display()
            ));
        }
        Error::not_found(format!("{reference} in {}", where_.display()))
    };
    let Ok(digest) = ValidDigest::parse(reference) else {
        return Err(not_found());
    };
    let Some(size) = stat(&digest)? else {
        return Err(not_found());
    };
    if let Some(node) = graph.get(reference) {
        if is_manifest(&node) && node.size() == size {
            return Ok(descriptor::plain(&node).into());
        }
    }
    Ok(SharedDescriptor::new(Descriptor::new(
        MediaType::from(OCTET_STREAM),
        size,
        digest.to_oci(),
    )))
}
