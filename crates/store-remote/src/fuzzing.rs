//! Fuzz target bodies (feature `fuzzing`): each takes arbitrary bytes, runs one parser of this
//! crate on them and panics when an invariant breaks. The cargo-fuzz targets in `fuzz/` and the
//! corpus replay test of the `ocistore` crate both call these, so a crash found once is replayed
//! by every `cargo test --workspace --all-features`. Not API: it may change at any time.

use crate::challenge::{parse_challenge, Challenge, Scheme};
use crate::reference::{is_valid_repository, is_valid_tag, Reference};
use crate::wire::{error_code_message, next_link, parse_token_response, retry_after};
use std::time::Duration;
use store_core::digest::ValidDigest;
use url::Url;

/// The request URLs the `Link` target resolves against, picked by the input's first byte.
const BASES: [&str; 3] = [
    "https://registry.example/v2/library/alpine/tags/list?n=2",
    "http://127.0.0.1:5000/v2/_catalog",
    "https://[::1]:443/v2/a/b/referrers/sha256:00?artifactType=x",
];

/// The input as text: invalid UTF-8 becomes U+FFFD rather than being skipped.
fn text(data: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// References as users type them ([`Reference::parse`]).
///
/// Invariants: an accepted reference has a valid repository, tag and digest; its display form
/// parses back to the same reference (normalisation is idempotent).
pub fn fuzz_reference(data: &[u8]) {
    let text = text(data);
    let Ok(reference) = Reference::parse(&text) else {
        return;
    };
    assert!(is_valid_repository(&reference.repository), "{reference:?}");
    if let Some(tag) = &reference.tag {
        assert!(is_valid_tag(tag), "{reference:?}");
    }
    if let Some(digest) = &reference.digest {
        assert!(ValidDigest::parse(digest).is_ok(), "{reference:?}");
    }
    assert!(!reference.host().is_empty());
    assert!(!reference.reference_or_latest().is_empty());
    let shown = reference.to_string();
    match Reference::parse(&shown) {
        Ok(again) => assert_eq!(again, reference, "{text:?} shown as {shown:?}"),
        Err(e) => panic!("{text:?} shown as {shown:?} does not parse: {e}"),
    }
}

/// The headers a registry sends: the first byte picks `WWW-Authenticate` (even) or `Link`
/// (odd, with a base URL), the rest is the header value; `Retry-After` is tried on every input.
///
/// Invariants: a parsed challenge has lowercase token keys and, written back out, parses to
/// the same challenge; a `next` link never leaves the base URL's origin and, written back out,
/// gives the same URL.
pub fn fuzz_headers(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let header = text(rest);
    let _ = retry_after(Some(&header));
    if selector % 2 == 0 {
        check_challenge(&header);
    } else {
        let base = BASES[usize::from(selector / 2) % BASES.len()];
        let Ok(base) = Url::parse(base) else {
            panic!("the base URL {base} does not parse");
        };
        check_link(&header, &base);
    }
}

fn check_challenge(header: &str) {
    let Some(challenge) = parse_challenge(header) else {
        return;
    };
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    for key in challenge.params.keys() {
        assert!(token(key) && *key == key.to_ascii_lowercase(), "{key:?}");
    }
    let scheme = match &challenge.scheme {
        Scheme::Basic => "Basic".to_string(),
        Scheme::Bearer => "Bearer".to_string(),
        Scheme::Other(name) => {
            assert!(
                token(name) && *name == name.to_ascii_lowercase(),
                "{name:?}"
            );
            assert!(name != "basic" && name != "bearer");
            name.clone()
        }
    };
    let params: Vec<String> = challenge
        .params
        .iter()
        .map(|(key, value)| {
            let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
            format!("{key}=\"{escaped}\"")
        })
        .collect();
    let written = format!("{scheme} {}", params.join(", "));
    let again: Option<Challenge> = parse_challenge(&written);
    assert_eq!(
        again.as_ref(),
        Some(&challenge),
        "{header:?} written as {written:?}"
    );
}

fn check_link(header: &str, base: &Url) {
    let Some(next) = next_link(header, base) else {
        return;
    };
    assert_eq!(next.scheme(), base.scheme(), "{header:?}");
    assert_eq!(next.host_str(), base.host_str(), "{header:?}");
    assert_eq!(next.port_or_known_default(), base.port_or_known_default());
    let written = format!("<{next}>; rel=\"next\"");
    assert_eq!(
        next_link(&written, base).as_ref(),
        Some(&next),
        "{written:?}"
    );
}

/// The bodies a registry sends besides content: an error body and a token response, the same
/// bytes read as each.
///
/// Invariants: an error's code and message carry no control character and are bounded; a
/// token is non-empty printable ASCII, lasts between one second and a year, and a refresh
/// token is never empty.
pub fn fuzz_bodies(data: &[u8]) {
    let (code, message) = error_code_message(data);
    for part in [&code, &message] {
        assert!(!part.chars().any(char::is_control), "{part:?}");
        assert!(part.len() <= 512 + '…'.len_utf8(), "{} bytes", part.len());
    }
    // Invalid UTF-8 inside a field the parser ignores is skipped unread, so only a body that is
    // not JSON even with such bytes replaced must give nothing.
    let lossy = String::from_utf8_lossy(data);
    if serde_json::from_str::<serde_json::Value>(&lossy).is_err() {
        assert!(code.is_empty() && message.is_empty(), "{lossy:?}");
    }
    if let Some(token) = parse_token_response(data) {
        let value = token.token.expose();
        assert!(!value.is_empty());
        assert!(value.bytes().all(|b| b.is_ascii() && !b.is_ascii_control()));
        assert!(token.expires_in >= Duration::from_secs(1));
        assert!(token.expires_in <= Duration::from_secs(365 * 24 * 3600));
        if let Some(refresh) = &token.refresh_token {
            assert!(!refresh.expose().is_empty());
        }
    }
}
