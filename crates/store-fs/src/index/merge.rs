//! The three-way merge of `index.json` entries, per key (a tag, or the digest of an untagged
//! entry): what we last read or wrote (`base`), what we hold (`ours`), what is on disk now
//! (`theirs`). Absence is a value too, so removals merge like changes:
//! ours unchanged since base → theirs; theirs unchanged → ours; both changed → ours (we write
//! last). An untagged entry whose digest is tagged in the result is dropped, as a save would.

use super::codec::IndexDocument;
use super::state::{Entries, EntryText};
use std::collections::{BTreeSet, HashSet};

/// Keys an `index.json` document's entries the way the in-memory index does: by their tag (see
/// [`super::held::Held::tag_name`]) when they carry one, else by digest. Later duplicates win.
pub(crate) fn keyed(doc: &IndexDocument) -> Entries {
    let mut out = Entries::new();
    for entry in &doc.entries {
        let held = &entry.held;
        let (key, untagged) = match held.tag_name() {
            Some(name) => (name.to_string(), false),
            None => (held.digest().to_string(), true),
        };
        let text = EntryText {
            // Every loaded entry was read from its JSON.
            json: held.raw().cloned().unwrap_or_default(),
            untagged,
            digest: std::sync::Arc::clone(held.digest()),
        };
        out.insert(key, text);
    }
    out
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
    let tagged: HashSet<std::sync::Arc<str>> = out
        .values()
        .filter(|entry| !entry.untagged)
        .map(|entry| entry.digest.clone())
        .collect();
    out.retain(|key, entry| !(entry.untagged && tagged.contains(key.as_str())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";

    fn tagged(digest: &str, tag: &str) -> EntryText {
        EntryText::new(
            &json!({"digest": digest, "annotations": {"org.opencontainers.image.ref.name": tag}}),
            false,
        )
    }

    fn untagged(digest: &str) -> EntryText {
        EntryText::new(&json!({"digest": digest}), true)
    }

    fn entries(list: &[(&str, EntryText)]) -> Entries {
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
        let merged = merge(&base, &ours, &Entries::new());
        assert!(!merged.contains_key("gone"), "their removal stays removed");
        assert_eq!(
            merged["kept"],
            tagged(B, "kept"),
            "we changed it since: ours wins"
        );
        // Our removal survives their unchanged key.
        assert!(merge(&base, &Entries::new(), &base).is_empty());
    }

    #[test]
    fn both_changed_ours_wins_and_untagged_duplicates_go() {
        let base = entries(&[(A, untagged(A))]);
        let ours = entries(&[("t", tagged(B, "t")), (A, untagged(A)), (C, untagged(C))]);
        let theirs = entries(&[
            ("t", tagged(C, "t")),
            ("x", tagged(A, "x")),
            (A, untagged(A)),
        ]);
        let merged = merge(&base, &ours, &theirs);
        assert_eq!(merged["t"], tagged(B, "t"));
        assert!(
            !merged.contains_key(A),
            "A is tagged now: no untagged entry"
        );
        assert_eq!(merged["x"], tagged(A, "x"));
        assert_eq!(merged[C], untagged(C));
    }
}
