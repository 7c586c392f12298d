//! What a store can do, so that every check runs against every store and asserts what the
//! store promises instead of being left out where a store legitimately differs (a registry
//! deletes no tags, follows another tag grammar, resolves manifests only, ...).

/// The grammar a store's tags follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TagGrammar {
    /// The OCI image layout's `org.opencontainers.image.ref.name` grammar: components of
    /// alphanumerics joined by `.`, `_`, `-`, `+`, `:`, `@`, `/` (so `release/1.2`, `x@y`,
    /// `a+b` are tags), no separator first or last, no `..`.
    #[default]
    RefName,
    /// The distribution spec's tag grammar `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`: no `/`, `@`,
    /// `+` or `:`, at most 128 characters, but `v1-` and `a..b` are tags.
    Distribution,
}

impl TagGrammar {
    /// Strings this grammar refuses as tags (each is `InvalidReference` on `tag`).
    pub fn bad_tags(self) -> Vec<String> {
        let common = [
            " ", "a b", "-v1", "/v1", "v1/", "a//b", ".", "ä", "v1\n", "a*b", "tag!", "a:",
        ];
        let mut bad: Vec<String> = common.iter().map(|s| s.to_string()).collect();
        match self {
            TagGrammar::RefName => {
                bad.extend(["v1-", "a..b", "a---b"].map(String::from));
            }
            TagGrammar::Distribution => {
                bad.extend(["release/1.2", "x@y", "a+b", ".v1", "v1:z"].map(String::from));
                bad.push("a".repeat(129));
            }
        }
        bad
    }

    /// Odd but valid tags of this grammar (each is accepted by `tag`).
    pub fn good_tags(self) -> Vec<String> {
        match self {
            TagGrammar::RefName => [
                "1",
                "V1.0",
                "a--b",
                "release/1.2",
                "x@y",
                "a+b",
                "v1.0_rc-1:z",
            ]
            .map(String::from)
            .to_vec(),
            TagGrammar::Distribution => {
                let mut good: Vec<String> = ["1", "V1.0", "a--b", "_x", "v1-", "a..b", "v1.0_rc-1"]
                    .map(String::from)
                    .to_vec();
                good.push("a".repeat(128));
                good
            }
        }
    }

    /// A tag with a separator only this grammar allows between `a.b` and `v1` in byte order,
    /// for the pagination check.
    pub fn separated_tag(self) -> &'static str {
        match self {
            TagGrammar::RefName => "release/1.0",
            TagGrammar::Distribution => "release_1.0",
        }
    }
}

/// What a store can do. [`Capabilities::default`] is everything an OCI image layout store
/// does (MemoryStore, the layout `Store`, the object store); a store that does less says so
/// field by field, and the checks then assert the behaviour the field names.
///
/// ```
/// use store_core::testkit::{Capabilities, TagGrammar};
/// // A distribution 2.8 registry.
/// let registry = Capabilities {
///     untag: false,
///     tag_grammar: TagGrammar::Distribution,
///     references_blobs: false,
///     keeps_tag_annotations: false,
///     indexes_parents: false,
///     artifact_manifest: false,
///     exclusive_concurrent_push: false,
/// };
/// assert_ne!(registry, Capabilities::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// `untag` removes a tag. Without it, `untag` still checks its argument (empty is
    /// `MissingReference`, a digest `InvalidReference`), then is `Unsupported` and changes
    /// nothing.
    pub untag: bool,
    /// The grammar of the store's tags.
    pub tag_grammar: TagGrammar,
    /// References name blobs too: a blob digest resolves (to an `application/octet-stream`
    /// descriptor) and a blob can be tagged. Without it references name manifests only: a blob
    /// digest resolves `NotFound`, tagging a blob is `Unsupported`, and `untag` of any digest is
    /// `InvalidReference`.
    pub references_blobs: bool,
    /// A tag keeps the whole descriptor it was set with (annotations included); without it, a
    /// tag resolves to the manifest's plain descriptor.
    pub keeps_tag_annotations: bool,
    /// `predecessors` lists the indexes and manifests that point at a node, referrers among
    /// them; without it, only the referrers (manifests whose `subject` is the node).
    pub indexes_parents: bool,
    /// The store takes the withdrawn OCI artifact manifest
    /// (`application/vnd.oci.artifact.manifest.v1+json`). Without it the fixtures make their
    /// artifacts image manifests with an `artifactType` (same names, same edges).
    pub artifact_manifest: bool,
    /// Of concurrent pushes of one blob exactly one succeeds, the others are `AlreadyExists`;
    /// without it, several may succeed (a registry finishes every upload), none fails otherwise.
    pub exclusive_concurrent_push: bool,
}

impl Default for Capabilities {
    /// Everything a layout store does.
    fn default() -> Self {
        Capabilities {
            untag: true,
            tag_grammar: TagGrammar::RefName,
            references_blobs: true,
            keeps_tag_annotations: true,
            indexes_parents: true,
            artifact_manifest: true,
            exclusive_concurrent_push: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammars_disagree_where_they_should() {
        for grammar in [TagGrammar::RefName, TagGrammar::Distribution] {
            let (good, bad) = (grammar.good_tags(), grammar.bad_tags());
            assert!(good.iter().all(|g| !bad.contains(g)), "{grammar:?}");
        }
        let refname = TagGrammar::RefName.good_tags();
        let distribution = TagGrammar::Distribution.bad_tags();
        assert!(refname.iter().any(|t| distribution.contains(t)));
    }
}
