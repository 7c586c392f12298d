//! Small parsers of what a registry sends besides content: `Link` headers, error bodies, token
//! responses, `Retry-After`. Pure functions that refuse oversized or malformed input.

use crate::secret::Secret;
use serde::Deserialize;
use std::time::Duration;
use url::Url;

/// The longest `Link` header looked at.
const MAX_LINK: usize = 8 * 1024;
/// The longest registry error message kept in an [`store_core::Error`].
const MAX_MESSAGE: usize = 512;

/// The URL of the `rel="next"` link in a `Link` header, resolved against `base` (the request's
/// URL); `None` when there is none, when the header is malformed, or when the link leaves the
/// registry's scheme, host and port (pagination never sends a request elsewhere).
pub fn next_link(header: &str, base: &Url) -> Option<Url> {
    if header.len() > MAX_LINK {
        return None;
    }
    for link in header.split(',') {
        let link = link.trim();
        let rest = link.strip_prefix('<')?;
        let (target, params) = rest.split_once('>')?;
        let is_next = params.split(';').any(|param| {
            let param = param.trim();
            match param.split_once('=') {
                Some((key, value)) => {
                    key.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                }
                None => false,
            }
        });
        if is_next {
            let url = base.join(target).ok()?;
            let same_origin = url.scheme() == base.scheme()
                && url.host_str() == base.host_str()
                && url.port_or_known_default() == base.port_or_known_default();
            return same_origin.then_some(url);
        }
    }
    None
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The code and message of a distribution-spec error body (`{"errors":[{"code","message"}]}`):
/// the codes and messages of every entry joined by `, `, each cut to a few hundred characters.
/// A body that is not such JSON gives two empty strings.
pub fn error_code_message(body: &[u8]) -> (String, String) {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return (String::new(), String::new());
    };
    let join = |pick: fn(&ErrorEntry) -> Option<&String>| {
        let parts: Vec<String> = parsed
            .errors
            .iter()
            .filter_map(pick)
            .map(|s| clean(s))
            .filter(|s| !s.is_empty())
            .collect();
        let mut joined = parts.join(", ");
        truncate(&mut joined, MAX_MESSAGE);
        joined
    };
    (join(|e| e.code.as_ref()), join(|e| e.message.as_ref()))
}

/// `text` without control characters, so that a registry cannot forge log lines.
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

fn truncate(text: &mut String, max: usize) {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
}

/// A token server's answer: the token to send and how long it lasts.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The bearer token (from `token`, else `access_token`).
    pub token: Secret,
    /// How long the token is valid (`expires_in`, 60 s when absent as the token spec says).
    pub expires_in: Duration,
    /// A new OAuth2 refresh token, when the server issued one.
    pub refresh_token: Option<Secret>,
}

#[derive(Deserialize)]
struct RawToken {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
    refresh_token: Option<String>,
}

/// The shortest lifetime the token spec allows a server to imply.
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);

/// Parses a token response body. Returns `None` when it is not JSON of that shape or carries
/// no token.
pub fn parse_token_response(body: &[u8]) -> Option<TokenResponse> {
    let raw: RawToken = serde_json::from_slice(body).ok()?;
    let token = raw
        .token
        .filter(|t| !t.is_empty())
        .or(raw.access_token.filter(|t| !t.is_empty()))?;
    // A header value cannot carry control characters; refuse rather than fail later.
    if token.bytes().any(|b| b.is_ascii_control() || !b.is_ascii()) {
        return None;
    }
    let expires_in = match raw.expires_in {
        Some(secs) if secs > 0 => Duration::from_secs(secs.min(365 * 24 * 3600)),
        _ => DEFAULT_TOKEN_LIFETIME,
    };
    Some(TokenResponse {
        token: Secret::new(token),
        expires_in,
        refresh_token: raw.refresh_token.filter(|t| !t.is_empty()).map(Secret::new),
    })
}

/// The wait a `Retry-After` header asks for, in its delay-seconds form; `None` when absent or
/// in the HTTP-date form (the caller then uses its own backoff).
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let secs: u64 = header?.trim().parse().ok()?;
    Some(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("http://127.0.0.1:5000/v2/_catalog?n=2").unwrap()
    }

    #[test]
    fn link_next_relative_and_absolute() {
        let next = next_link(r#"</v2/_catalog?last=b&n=2>; rel="next""#, &base()).unwrap();
        assert_eq!(
            next.as_str(),
            "http://127.0.0.1:5000/v2/_catalog?last=b&n=2"
        );
        let next = next_link(
            r#"<http://127.0.0.1:5000/v2/a/tags/list?last=x>; rel=next"#,
            &base(),
        )
        .unwrap();
        assert_eq!(next.path(), "/v2/a/tags/list");
        let next = next_link(r#"</p1>; rel="prev", </p2>; rel="next""#, &base()).unwrap();
        assert_eq!(next.path(), "/p2");
    }

    #[test]
    fn link_elsewhere_or_malformed_is_none() {
        for bad in [
            r#"<http://evil.example/v2/_catalog>; rel="next""#,
            r#"<https://127.0.0.1:5000/v2/_catalog>; rel="next""#,
            r#"<http://127.0.0.1:5001/v2/_catalog>; rel="next""#,
            r#"</v2/_catalog; rel="next""#,
            r#"/v2/_catalog>; rel="next""#,
            r#"</v2/_catalog>; rel="prev""#,
            "",
            "<>",
        ] {
            assert_eq!(next_link(bad, &base()), None, "{bad:?}");
        }
        assert_eq!(
            next_link(&format!("<{}>; rel=next", "a".repeat(9000)), &base()),
            None
        );
    }

    #[test]
    fn error_bodies() {
        let (code, message) = error_code_message(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}},{"code":"X","message":"y\nz"}]}"#,
        );
        assert_eq!(code, "MANIFEST_UNKNOWN, X");
        assert_eq!(message, "manifest unknown, yz");
        for bad in [&b"not json"[..], b"{\"errors\": 3}", b"", b"[]"] {
            assert_eq!(error_code_message(bad), (String::new(), String::new()));
        }
        let long = format!(
            r#"{{"errors":[{{"code":"C","message":"{}"}}]}}"#,
            "é".repeat(1000)
        );
        let (_, message) = error_code_message(long.as_bytes());
        assert!(message.len() <= MAX_MESSAGE + 4, "{}", message.len());
    }

    #[test]
    fn token_responses() {
        let t = parse_token_response(br#"{"token":"abc","expires_in":300}"#).unwrap();
        assert_eq!(t.token.expose(), "abc");
        assert_eq!(t.expires_in, Duration::from_secs(300));
        let t = parse_token_response(br#"{"access_token":"xyz","refresh_token":"r"}"#).unwrap();
        assert_eq!(t.token.expose(), "xyz");
        assert_eq!(t.expires_in, DEFAULT_TOKEN_LIFETIME);
        assert_eq!(
            t.refresh_token.map(|r| r.expose().to_string()).as_deref(),
            Some("r")
        );
        assert!(format!("{:?}", parse_token_response(br#"{"token":"abc"}"#)).contains("<redacted>"));
        for bad in [
            &br#"{"token":""}"#[..],
            br#"{"expires_in":3}"#,
            br#"{"token":"a\nb"}"#,
            br#"{"token":5}"#,
            b"<html>",
        ] {
            assert!(parse_token_response(bad).is_none());
        }
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(retry_after(Some(" 3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None), None);
        assert_eq!(retry_after(Some("-1")), None);
    }
}
