//! Fuzz target bodies (feature `fuzzing`): each takes arbitrary bytes, runs one parser of this
//! crate on them and panics when an invariant breaks. The cargo-fuzz targets in `fuzz/` and the
//! corpus replay test of the `ocistore` crate both call these, so a crash found once is replayed
//! by every `cargo test --workspace --all-features`. Not API: it may change at any time.

use crate::index::codec::{parse_index, IndexDocument};
use crate::index::merge::{keyed, merge};
use crate::index::state::{Entries, IndexState};
use crate::ReadOnlyStore;
use bytes::Bytes;
use std::io::Write;
use std::path::Path;
use store_core::{Fetcher, PredecessorFinder, ReadOnlyStorage, Resolver, TagLister};
use tokio::io::AsyncReadExt;

/// The name parse errors carry; never opened.
const NAME: &str = "/fuzz/index.json";

/// The largest blob the tar target reads back whole (inputs are far smaller; this only keeps
/// a forged size from turning into a large allocation).
const READ_LIMIT: u64 = 1 << 20;

/// `index.json` parsing, encoding, the in-memory model and the three-way merge. The input is
/// split at NUL bytes (which JSON text never holds) into up to three documents: base, ours,
/// theirs; a missing one is the one before it, so an input without NUL merges a document with
/// itself.
///
/// Invariants: a document that parses, loaded and encoded, parses again and encodes to the
/// same bytes with the same entries; every reference the model lists resolves to its digest;
/// the merge keeps ours where theirs did not change and theirs where ours did not, merging
/// identical sides changes nothing, and absorbing an unchanged file leaves the model as it was.
pub fn fuzz_index(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == 0);
    let base = parts.next().unwrap_or_default();
    let ours = parts.next().unwrap_or(base);
    let theirs = parts.next().unwrap_or(ours);
    let docs: Vec<Option<IndexDocument>> = [base, ours, theirs]
        .iter()
        .map(|bytes| parse_index(Path::new(NAME), &Bytes::copy_from_slice(bytes)).ok())
        .collect();
    for doc in docs.iter().flatten() {
        check_round_trip(doc);
    }
    let [Some(base), Some(ours), Some(theirs)] = &docs[..] else {
        return;
    };
    check_merge(&keyed(base), &keyed(ours), &keyed(theirs));
    check_absorb(base, ours, theirs);
}

/// A model loaded from `doc` and saved gives a file that loads to the same model.
fn check_round_trip(doc: &IndexDocument) {
    let state = IndexState::default();
    state.load(doc);
    let encoded = state.encode_current();
    let again = match parse_index(Path::new(NAME), &Bytes::from(encoded.clone())) {
        Ok(again) => again,
        Err(e) => panic!(
            "the encoded index does not parse: {e}\n{}",
            String::from_utf8_lossy(&encoded)
        ),
    };
    let reloaded = IndexState::default();
    reloaded.load(&again);
    assert_eq!(reloaded.entries(), state.entries(), "entries changed");
    assert_eq!(reloaded.encode_current(), encoded, "encoding is not stable");
    for (reference, desc) in state.references() {
        let resolved = state.resolve(&reference);
        assert_eq!(
            resolved.as_ref().map(|d| d.digest()),
            Some(desc.digest()),
            "{reference}"
        );
    }
    let (entries, tagged) = state.entry_counts();
    assert!(tagged <= entries);
    assert_eq!(entries, state.entries().len());
}

/// The per-key rules of [`merge`], checked against their definition.
fn check_merge(base: &Entries, ours: &Entries, theirs: &Entries) {
    let tidy = |entries: &Entries| merge(entries, entries, entries);
    for side in [base, ours, theirs] {
        let once = tidy(side);
        assert_eq!(
            tidy(&once),
            once,
            "merging identical sides is not idempotent"
        );
        assert!(once.keys().all(|key| side.contains_key(key)));
    }
    assert_eq!(
        merge(base, ours, base),
        tidy(ours),
        "theirs unchanged: ours"
    );
    assert_eq!(
        merge(base, base, theirs),
        tidy(theirs),
        "ours unchanged: theirs"
    );
    let merged = merge(base, ours, theirs);
    for (key, entry) in &merged {
        let from_ours = ours.get(key) == Some(entry) && ours.get(key) != base.get(key);
        let from_theirs = theirs.get(key) == Some(entry) && ours.get(key) == base.get(key);
        assert!(
            from_ours || from_theirs,
            "{key}: an entry from neither side"
        );
    }
}

/// [`crate::index_model::IndexModel::absorb`]'s engine: loading `ours`, absorbing the file
/// unchanged since `ours` was read changes nothing; absorbing `theirs` over `base` gives a
/// model that saves to a file that parses.
fn check_absorb(base: &IndexDocument, ours: &IndexDocument, theirs: &IndexDocument) {
    use crate::index_model::{IndexModel, ParsedIndex};
    let parse = |doc: &IndexDocument| {
        let bytes = {
            let state = IndexState::default();
            state.load(doc);
            state.encode_current()
        };
        ParsedIndex::parse(NAME, &bytes).ok()
    };
    let (Some(base), Some(ours), Some(theirs)) = (parse(base), parse(ours), parse(theirs)) else {
        panic!("an encoded index does not parse");
    };
    let model = IndexModel::new();
    model.load(&ours);
    let before = model.encode();
    let learnt = model.absorb(&ours.keyed(), &ours);
    assert!(learnt.is_empty(), "nothing to learn from an unchanged file");
    assert_eq!(
        model.encode(),
        before,
        "absorbing an unchanged file changed the model"
    );

    model.absorb(&base.keyed(), &theirs);
    let after = model.encode();
    if let Err(e) = ParsedIndex::parse(NAME, &after) {
        panic!("a merged index does not parse: {e}");
    }
}

/// [`ReadOnlyStore`] over the input as a tar archive (written to a temporary file): the scan,
/// `oci-layout` and `index.json` checks, and reads of what it lists.
///
/// Invariants: a blob read to its end has exactly the size and digest asked for; tags are
/// listed strictly ascending and each resolves; each `index.json` entry resolves by digest.
pub fn fuzz_readonly_tar(data: &[u8]) {
    let Ok(mut file) = tempfile::NamedTempFile::new() else {
        return;
    };
    if file.write_all(data).and_then(|()| file.flush()).is_err() {
        return;
    }
    with_runtime(|| async {
        let Ok(store) = ReadOnlyStore::open(file.path()).await else {
            return;
        };
        assert!(store.is_archive());
        for entry in store.entries() {
            let digest = entry.digest().to_string();
            match store.resolve(&digest).await {
                Ok(found) => assert_eq!(found.digest().as_ref(), digest),
                Err(e) => panic!("the entry {digest} does not resolve: {e}"),
            }
            let _ = store.predecessors(&entry).await;
            let _ = store.exists(&entry).await;
            if entry.size() > READ_LIMIT {
                continue;
            }
            let Ok(mut reader) = store.fetch(&entry).await else {
                continue;
            };
            let mut bytes = Vec::new();
            if reader.read_to_end(&mut bytes).await.is_ok() {
                assert_eq!(bytes.len() as u64, entry.size(), "{digest}");
                let algorithm = store_core::digest::ValidDigest::from_digest(entry.digest())
                    .map(|d| d.algorithm());
                let Ok(algorithm) = algorithm else {
                    panic!("a verified read of an invalid digest {digest}");
                };
                assert_eq!(
                    store_core::digest::digest_string(algorithm, &bytes),
                    digest,
                    "a verified read returned other bytes"
                );
            }
        }
        let tags = store.tags(None).await.unwrap_or_default();
        assert!(tags.windows(2).all(|w| w[0] < w[1]), "{tags:?}");
        for tag in &tags {
            assert!(
                store.resolve(tag).await.is_ok(),
                "the tag {tag:?} does not resolve"
            );
        }
    });
    drop(file);
}

/// Runs `f`'s future on a current-thread runtime kept per thread (building one per input
/// would dominate the run time).
pub fn with_runtime<F, Fut>(f: F)
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    thread_local! {
        static RUNTIME: Option<tokio::runtime::Runtime> = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok();
    }
    RUNTIME.with(|runtime| match runtime {
        Some(runtime) => runtime.block_on(f()),
        None => panic!("no tokio runtime for the fuzz target"),
    });
}
