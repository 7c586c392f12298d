//! [`copy`]: copy what a reference names, and tag it in the destination.

use super::cache::{CachingSource, MetadataCache};
use super::graph_copy::Engine;
use super::options::CopyOptions;
use super::platform;
use super::tracker::Outcome;
use crate::descriptor::without_ref_name;
use crate::error::{Result, Side};
use crate::traits::{ReadOnlyTarget, Target};
use oci_spec::image::Descriptor;

/// Copies the graph `src_ref` names in `src` to `dst` and tags it `dst_ref` there (an empty
/// `dst_ref` means `src_ref`). Returns the root that was copied: the descriptor `src_ref`
/// resolves to, after `map_root` and `target_platform` when they are set.
///
/// Steps: `resolve(src_ref)` on the source; `map_root`; with `target_platform`, the first child
/// of an index (or Docker manifest list) whose platform matches, or a single manifest whose
/// config's platform matches; [`crate::copy::copy_graph`] of the root; `tag(root, dst_ref)` on
/// the destination, also when the root was already there (only a `pre_copy` that skipped the
/// root leaves it untagged). Bodies read to map the root or pick the platform are not fetched
/// again by the graph copy. A full copy of an N-node graph costs one `resolve` on the source,
/// N `fetch` on the source, N `exists` and N `push` on the destination, and one `tag`.
///
/// **Copying by digest leaves the copy untagged.** When `src_ref` is a digest and `dst_ref` is
/// empty (or that same digest), the destination's `tag` records the root under its own digest
/// only: it resolves by digest, but `tags()` does not list it, and a store with automatic
/// garbage collection treats it as unreferenced. Pass a tag as `dst_ref` to name the copy.
///
/// Errors, as [`crate::Error::Copy`] naming the side and operation and keeping the kind:
/// `MissingReference`/`NotFound` (source, `resolve`); the `map_root` hook's error (source,
/// `map root`); for `target_platform` (source, `select platform`): `NotFound` when no
/// manifest matches, `Unsupported` when the root is neither an index nor an image manifest
/// (or its config is not an image config), `InvalidManifest`; every error of
/// [`crate::copy::copy_graph`]; the destination's `tag` errors (destination, `tag`).
pub async fn copy(
    src: &(impl ReadOnlyTarget + ?Sized),
    src_ref: &str,
    dst: &(impl Target + ?Sized),
    dst_ref: &str,
    opts: &CopyOptions,
) -> Result<Descriptor> {
    let dst_ref = if dst_ref.is_empty() { src_ref } else { dst_ref };
    let mut root = src
        .resolve(src_ref)
        .await
        .map_err(|e| e.in_copy(Side::Source, "resolve"))?
        .into_owned();

    let cache = MetadataCache::new(opts.graph.effective_max_metadata_bytes());
    if let Some(map_root) = &opts.map_root {
        let view = CachingSource::new(src, &cache);
        root = map_root(&view, &root)
            .await
            .map_err(|e| e.in_copy(Side::Source, "map root"))?;
    }
    if let Some(wanted) = &opts.target_platform {
        root = platform::select(src, &cache, &root, wanted)
            .await
            .map_err(|e| e.in_copy(Side::Source, "select platform"))?;
    }

    // A destination that can push and tag as one change gets the root that way (a layout
    // store then writes index.json once per copy instead of twice).
    let engine = Engine::new(&src, &dst, &opts.graph, cache).tagging_root(
        dst.as_reference_pusher(),
        &root,
        dst_ref,
    );
    engine.run(std::slice::from_ref(&root)).await?;
    if engine.outcome(&root) != Some(Outcome::SkippedByHook) && !engine.root_tagged() {
        dst.tag(&without_ref_name(&root), dst_ref)
            .await
            .map_err(|e| e.in_copy(Side::Destination, "tag"))?;
    }
    Ok(root)
}
