//! The three-way merge of `index.json` entries, per key (a tag, or the digest of an untagged
//! entry): what we last read or wrote (`base`), what we hold (`ours`), what is on disk now
//! (`theirs`). Absence is a value too, so removals merge like changes:
//! ours unchanged since base → theirs; theirs unchanged → ours; both changed → ours (we write
//! last). An untagged entry whose digest is tagged in the result is dropped, as a save would.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// Entries by key: a tag, or the digest of an untagged entry.
pub(crate) type Entries = BTreeMap<String, Value>;

/// Keys an `index.json` document's entries the way [`crate::index_state::IndexState::entries`]
/// does: by `ref.name` when set, else by digest. Later duplicates win.
pub(crate) fn keyed(doc: &crate::index_file::IndexDocument) -> Entries {
    let mut out = Entries::new();
    for entry in &doc.entries {
        let key = match crate::index_file::ref_name(&entry.desc) {
            Some(name) => name.to_string(),
            None => entry.desc.digest().to_string(),
        };
        out.insert(key, entry.raw.clone());
    }
    out
}

fn digest_of(entry: &Value) -> Option<&str> {
    entry.get("digest").and_then(Value::as_str)
}

/// Whether `key` is the key of an untagged entry (its own digest).
pub(crate) fn is_untagged_key(key: &str, entry: &Value) -> bool {
    digest_of(entry) == Some(key)
}

/// Merges `ours` and `theirs` against `base`.
pub(crate) fn merge(base: &Entries, ours: &Entries, theirs: &Entries) -> Entries {
    let keys: BTreeSet<&String> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    let mut out = Entries::new();
    for key in keys {
        let (b, o, t) = (base.get(key), ours.get(key), theirs.get(key));
        let chosen = if o == b { t } else { o };
        if let Some(entry) = chosen {
            out.insert(key.clone(), entry.clone());
        }
    }
    let tagged: HashSet<String> = out
        .iter()
        .filter(|(key, entry)| !is_untagged_key(key, entry))
        .filter_map(|(_, entry)| digest_of(entry).map(str::to_string))
        .collect();
    out.retain(|key, entry| !(is_untagged_key(key, entry) && tagged.contains(key)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn tagged(digest: &str, tag: &str) -> Value {
        json!({"digest": digest, "annotations": {"org.opencontainers.image.ref.name": tag}})
    }

    fn untagged(digest: &str) -> Value {
        json!({"digest": digest})
    }

    fn entries(list: &[(&str, Value)]) -> Entries {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn additions_and_moves_from_either_side_survive() {
        let base = entries(&[("v1", tagged(A, "v1"))]);
        let ours = entries(&[("v1", tagged(A, "v1")), ("mine", tagged(B, "mine"))]);
        let theirs = entries(&[("v1", tagged(C, "v1")), ("theirs", tagged(C, "theirs"))]);
        let merged = merge(&base, &ours, &theirs);
        assert_eq!(merged["v1"], tagged(C, "v1"), "their move survives");
        assert_eq!(merged["mine"], tagged(B, "mine"));
        assert_eq!(merged["theirs"], tagged(C, "theirs"));
    }

    #[test]
    fn removals_stick_unless_we_changed_the_key() {
        let base = entries(&[("gone", tagged(A, "gone")), ("kept", tagged(A, "kept"))]);
        let ours = entries(&[("gone", tagged(A, "gone")), ("kept", tagged(B, "kept"))]);
        let theirs = entries(&[]);
        let merged = merge(&base, &ours, &theirs);
        assert!(!merged.contains_key("gone"), "their removal stays removed");
        assert_eq!(
            merged["kept"],
            tagged(B, "kept"),
            "we changed it since: ours wins"
        );
        // Our removal survives their unchanged key.
        let merged = merge(&base, &entries(&[]), &base);
        assert!(merged.is_empty());
    }

    #[test]
    fn both_changed_ours_wins_and_untagged_duplicates_go() {
        let base = entries(&[(A, untagged(A))]);
        let ours = entries(&[("t", tagged(B, "t")), (A, untagged(A))]);
        let theirs = entries(&[("t", tagged(C, "t")), ("x", tagged(A, "x"))]);
        let merged = merge(&base, &ours, &theirs);
        assert_eq!(merged["t"], tagged(B, "t"));
        assert!(
            !merged.contains_key(A),
            "A is tagged now: no untagged entry"
        );
        assert_eq!(merged["x"], tagged(A, "x"));
    }
}
