//! [`extended_copy`] and [`extended_copy_graph`]: a node's graph together with what points at
//! it (referrers such as signatures and SBOMs, indexes), found through predecessors.

use super::cache::MetadataCache;
use super::graph_copy::Engine;
use super::options::ExtendedCopyOptions;
use super::tracker::NodeKey;
use crate::descriptor::{is_manifest, without_ref_name, OCI_MANIFEST};
use crate::error::{Result, Side};
use crate::manifest::ManifestParts;
use crate::traits::{ReadOnlyGraphTarget, ReadOnlyStorage, Storage, Target};
use crate::SharedDescriptor;
use oci_spec::image::Descriptor;
use std::collections::HashSet;

/// Copies the graph `src_ref` names in `src` together with its predecessors (see
/// [`extended_copy_graph`]) to `dst`, then tags the node `dst_ref` there (an empty `dst_ref`
/// means `src_ref`). Returns the node `src_ref` resolved to.
///
/// Errors, as [`crate::Error::Copy`] naming the side and operation and keeping the kind:
/// `MissingReference`/`NotFound` (source, `resolve`), those of [`extended_copy_graph`], the
/// destination's `tag` errors (destination, `tag`).
pub async fn extended_copy(
    src: &(impl ReadOnlyGraphTarget + ?Sized),
    src_ref: &str,
    dst: &(impl Target + ?Sized),
    dst_ref: &str,
    opts: &ExtendedCopyOptions,
) -> Result<Descriptor> {
    let dst_ref = if dst_ref.is_empty() { src_ref } else { dst_ref };
    let node = src
        .resolve(src_ref)
        .await
        .map_err(|e| e.in_copy(Side::Source, "resolve"))?
        .into_owned();
    extended_copy_graph(src, dst, &node, opts).await?;
    dst.tag(&without_ref_name(&node), dst_ref)
        .await
        .map_err(|e| e.in_copy(Side::Destination, "tag"))?;
    Ok(node)
}

/// Copies the graph of `node` and of every node above it: the roots are found by walking
/// predecessors up from `node` (depth first, each node once, at most `opts.depth` hops when it
/// is not 0, following only predecessors of `opts.artifact_types` when that is not empty); a
/// node without (followed) predecessors, or at the depth limit, is a root. Then every root's
/// graph is copied as [`crate::copy::copy_graph`] does, all roots sharing one tracker (a node
/// shared by two roots is copied once), one cache and one concurrency limit.
///
/// Errors, as [`crate::Error::Copy`]: the predecessor lookup's errors (source,
/// `find predecessors`), fetch errors of predecessor bodies read for their artifact type
/// (source, `fetch`), every error of [`crate::copy::copy_graph`].
pub async fn extended_copy_graph(
    src: &(impl ReadOnlyGraphTarget + ?Sized),
    dst: &(impl Storage + ?Sized),
    node: &Descriptor,
    opts: &ExtendedCopyOptions,
) -> Result<()> {
    let cache = MetadataCache::new(opts.graph.effective_max_metadata_bytes());
    let graph: &dyn ReadOnlyGraphTarget = &src;
    let roots = find_roots(graph, &cache, node, opts).await?;
    let storage: &dyn ReadOnlyStorage = graph;
    let engine = Engine::new(storage, &dst, &opts.graph, cache);
    engine.run(&roots).await
}

/// The roots above `node`, in the order the depth-first walk finds them.
async fn find_roots(
    src: &dyn ReadOnlyGraphTarget,
    cache: &MetadataCache,
    node: &Descriptor,
    opts: &ExtendedCopyOptions,
) -> Result<Vec<Descriptor>> {
    let mut visited = HashSet::from([NodeKey::of(node)]);
    let mut stack = vec![(SharedDescriptor::new(node.clone()), 0usize)];
    let mut roots = Vec::new();
    while let Some((current, depth)) = stack.pop() {
        if opts.depth > 0 && depth >= opts.depth {
            roots.push(current.into_owned());
            continue;
        }
        let found = match &opts.find_predecessors {
            Some(hook) => hook(src, &current).await,
            None => src.predecessors(&current).await,
        }
        .map_err(|e| e.in_copy(Side::Source, "find predecessors"))?;
        let mut followed = Vec::with_capacity(found.len());
        for predecessor in found {
            if opts.artifact_types.is_empty()
                || artifact_type(src, cache, &predecessor)
                    .await?
                    .is_some_and(|kind| opts.artifact_types.contains(&kind))
            {
                followed.push(predecessor);
            }
        }
        if followed.is_empty() {
            roots.push(current.into_owned());
            continue;
        }
        // Pushed in reverse so that the first predecessor is walked first.
        for predecessor in followed.into_iter().rev() {
            if visited.insert(NodeKey::of(&predecessor)) {
                stack.push((predecessor, depth + 1));
            }
        }
    }
    Ok(roots)
}

/// The artifact type of `desc`: its descriptor's, else its body's `artifactType`, else for an
/// OCI image manifest its config's media type. The body is read through the cache, so a
/// predecessor that is then copied is not fetched again.
async fn artifact_type(
    src: &dyn ReadOnlyGraphTarget,
    cache: &MetadataCache,
    desc: &Descriptor,
) -> Result<Option<String>> {
    if let Some(kind) = desc.artifact_type() {
        return Ok(Some(kind.to_string()));
    }
    if !is_manifest(desc) {
        return Ok(None);
    }
    let body = cache.body(src, desc).await?;
    let media_type = desc.media_type().to_string();
    let parts = ManifestParts::parse(desc.digest().as_ref(), &media_type, &body)
        .map_err(|e| e.in_copy(Side::Source, "find predecessors"))?;
    Ok(match (parts.artifact_type, media_type.as_str()) {
        (Some(kind), _) => Some(kind),
        (None, OCI_MANIFEST) => parts.config.map(|c| c.media_type().to_string()),
        (None, _) => None,
    })
}
