//! Fuzz target bodies (feature `fuzzing`): each takes arbitrary bytes, runs one parser of this
//! crate on them and panics when an invariant breaks. The cargo-fuzz targets in `fuzz/` and the
//! corpus replay test of the `ocistore` crate both call these, so a crash found once is replayed
//! by every `cargo test --workspace --all-features`. Not API: it may change at any time.

use crate::archive_entry::{classify, EntryKind, LayoutEntry};
use crate::descriptor::{
    self, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_BLOB_SIZE, OCI_ARTIFACT_MANIFEST, OCI_INDEX,
    OCI_MANIFEST,
};
use crate::digest::{digest_string, Algorithm, ValidDigest};
use crate::manifest::{parse_successors, ManifestParts};
use crate::reference::{check_tag, validate_tag};
use oci_spec::image::Descriptor;

/// The media types the successors target picks from by the input's first byte: the five
/// manifest types and one that is not a manifest.
const MEDIA_TYPES: [&str; 6] = [
    OCI_MANIFEST,
    OCI_INDEX,
    OCI_ARTIFACT_MANIFEST,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    "application/vnd.oci.image.layer.v1.tar",
];

/// The input as text: fuzzers mostly produce UTF-8 once they learn the grammar, and every
/// parser here takes `&str`; invalid bytes become U+FFFD rather than being skipped.
pub fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Manifest successors: the first byte picks a media type, the rest is the body.
///
/// Invariants: a non-manifest media type has no successors whatever the body; a body that
/// parses gives exactly the descriptors of the fields its media type reads, in oras-go's order.
pub fn fuzz_successors(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let media_type = MEDIA_TYPES[usize::from(selector) % MEDIA_TYPES.len()];
    let result = parse_successors("sha256:fuzz", media_type, body);
    if !descriptor::is_manifest_type(media_type) {
        assert!(matches!(result.as_deref(), Ok([])), "{result:?}");
        return;
    }
    let parts = ManifestParts::parse("sha256:fuzz", media_type, body);
    assert_eq!(
        result.is_ok(),
        parts.is_ok(),
        "two parses of one body disagree"
    );
    let (Ok(successors), Ok(parts)) = (result, parts) else {
        return;
    };
    let subject = usize::from(parts.subject.is_some());
    let config = usize::from(parts.config.is_some());
    let len = |list: &Option<Vec<Descriptor>>| list.as_ref().map_or(0, Vec::len);
    let expected = match media_type {
        OCI_MANIFEST => subject + config + len(&parts.layers),
        DOCKER_MANIFEST => config + len(&parts.layers),
        OCI_INDEX => subject + len(&parts.manifests),
        DOCKER_MANIFEST_LIST => len(&parts.manifests),
        OCI_ARTIFACT_MANIFEST => subject + len(&parts.blobs),
        _ => 0,
    };
    assert_eq!(successors.len(), expected, "successors of {media_type}");
    if media_type == OCI_MANIFEST || media_type == OCI_INDEX {
        if let Some(subject) = &parts.subject {
            assert_eq!(&successors[0], subject, "the subject comes first");
        }
    }
}

/// Digest and descriptor validation: the input as a digest string, and as a descriptor's JSON.
///
/// Invariants: an accepted digest is `<algorithm>:<lowercase hex of its length>`, its parts put
/// back together give the input, and it survives oci-spec's `Digest` and a second parse; a
/// descriptor that [`descriptor::validate`] accepts has a valid digest and a bounded size.
pub fn fuzz_digest(data: &[u8]) {
    let text = text(data);
    if let Ok(digest) = ValidDigest::parse(&text) {
        check_accepted_digest(&text, &digest);
    }
    if let Ok(desc) = serde_json::from_slice::<Descriptor>(data) {
        if let Ok(digest) = descriptor::validate(&desc) {
            assert!(desc.size() <= MAX_BLOB_SIZE);
            assert_eq!(digest.as_str(), desc.digest().as_ref());
            check_accepted_digest(desc.digest().as_ref(), &digest);
            let plain = descriptor::plain(&desc);
            assert!(descriptor::same_content(&plain, &desc));
            assert!(descriptor::validate(&plain).is_ok());
        }
    }
    // The digests this crate computes are always accepted.
    for algorithm in Algorithm::ALL {
        let computed = digest_string(algorithm, data);
        let parsed = ValidDigest::parse(&computed);
        assert!(parsed.is_ok(), "{computed}: {parsed:?}");
    }
}

fn check_accepted_digest(text: &str, digest: &ValidDigest) {
    let algorithm = digest.algorithm();
    assert_eq!(digest.as_str(), text);
    assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
    assert_eq!(digest.hex().len(), algorithm.hex_len());
    assert!(digest
        .hex()
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert_eq!(format!("{}:{}", algorithm.name(), digest.hex()), text);
    let oci = digest.to_oci();
    assert_eq!(oci.to_string(), text, "oci-spec changed an accepted digest");
    assert_eq!(ValidDigest::from_digest(&oci).ok().as_ref(), Some(digest));
}

/// Tag validation (the image-spec `ref.name` grammar) and the archive entry rules.
///
/// Invariants: [`validate_tag`] agrees with an independent matcher of the grammar; a valid
/// tag that spells a digest is accepted by [`check_tag`] only for that very digest; an entry
/// name accepted as a blob names a valid digest.
pub fn fuzz_tag(data: &[u8]) {
    let text = text(data);
    let accepted = validate_tag(&text).is_ok();
    assert_eq!(accepted, matches_ref_grammar(&text), "{text:?}");
    let own = ValidDigest::parse(&digest_string(Algorithm::Sha256, data));
    if let Ok(own) = own {
        let checked = check_tag(&text, &own).is_ok();
        let spells_other_digest = ValidDigest::parse(&text).is_ok() && *text != *own.as_str();
        assert_eq!(checked, accepted && !spells_other_digest, "{text:?}");
    }
    // The same bytes as an archive entry name, regular file or directory.
    for kind in [EntryKind::Regular, EntryKind::Directory] {
        if let Ok(LayoutEntry::Blob(digest)) = classify(data, kind) {
            assert_eq!(kind, EntryKind::Regular, "a directory is never a blob");
            check_accepted_digest(digest.as_str(), &digest);
        }
    }
}

/// `ref ::= component ("/" component)*`, `component ::= alphanum (separator alphanum)*`,
/// `separator ::= [-._:@+] | "--"`, written over bytes as a small state machine so that it
/// shares no code with the validator it checks.
fn matches_ref_grammar(text: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        /// At the start of a component or after a separator: an alphanum must come.
        NeedAlnum,
        /// Inside a run of alphanums.
        InAlnum,
        /// After a single `-`: an alphanum or a second `-` may come.
        AfterDash,
        /// After `--`: an alphanum must come.
        AfterDoubleDash,
    }
    let mut state = State::NeedAlnum;
    for b in text.bytes() {
        state = match (state, b) {
            (_, b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z') => State::InAlnum,
            (State::InAlnum, b'-') => State::AfterDash,
            (State::AfterDash, b'-') => State::AfterDoubleDash,
            (State::InAlnum, b'.' | b'_' | b':' | b'@' | b'+') => State::NeedAlnum,
            (State::InAlnum, b'/') => State::NeedAlnum,
            _ => return false,
        };
    }
    state == State::InAlnum
}
