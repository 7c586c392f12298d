//! `WWW-Authenticate` challenges (RFC 7235): the scheme and its parameters.

use std::collections::HashMap;

/// The authentication scheme a registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheme {
    /// `Basic`: username and password on every request.
    Basic,
    /// `Bearer`: a token from the `realm`, for a `service` and `scope`.
    Bearer,
    /// Any other scheme, lowercased.
    Other(String),
}

/// One parsed challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme.
    pub scheme: Scheme,
    /// The parameters, keys lowercased, values unquoted.
    pub params: HashMap<String, String>,
}

impl Challenge {
    /// The parameter `key` (lowercase), if given.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.params.get(key).map(String::as_str)
    }
}

/// The longest header this parser looks at; a longer one is refused.
const MAX_HEADER: usize = 8 * 1024;

/// Parses the first challenge of a `WWW-Authenticate` header value:
/// `Bearer realm="https://auth/token",service="registry",scope="repository:a:pull"`.
///
/// Returns `None` for an empty, oversized or malformed header (an unterminated quote, a
/// parameter without `=`, a scheme that is not a token).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    if header.len() > MAX_HEADER {
        return None;
    }
    let header = header.trim_start();
    let scheme_end = header
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(header.len());
    let scheme_text = &header[..scheme_end];
    if scheme_text.is_empty() || !scheme_text.bytes().all(is_token_byte) {
        return None;
    }
    let scheme = match scheme_text.to_ascii_lowercase().as_str() {
        "basic" => Scheme::Basic,
        "bearer" => Scheme::Bearer,
        other => Scheme::Other(other.to_string()),
    };
    let mut params = HashMap::new();
    let bytes = header.as_bytes();
    let mut i = scheme_end;
    loop {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b',') {
            i += 1;
        }
        if i >= bytes.len() {
            break;
        }
        let key_start = i;
        while i < bytes.len() && is_token_byte(bytes[i]) {
            i += 1;
        }
        let key = header[key_start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        if key.is_empty() || bytes.get(i) != Some(&b'=') {
            // A second challenge starts with a scheme token not followed by `=`: stop there.
            if !key.is_empty() && !params.is_empty() {
                break;
            }
            return None;
        }
        i += 1;
        while i < bytes.len() && bytes[i] == b' ' {
            i += 1;
        }
        let value = if bytes.get(i) == Some(&b'"') {
            i += 1;
            let mut value = String::new();
            let mut closed = false;
            let mut chars = header[i..].char_indices();
            while let Some((offset, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => break,
                    },
                    '"' => {
                        closed = true;
                        i += offset + 1;
                        break;
                    }
                    other => value.push(other),
                }
            }
            if !closed {
                return None;
            }
            value
        } else {
            let start = i;
            while i < bytes.len() && bytes[i] != b',' && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            header[start..i].to_string()
        };
        params.insert(key, value);
    }
    Some(Challenge { scheme, params })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_params() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, Scheme::Bearer);
        assert_eq!(c.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c.param("service"), Some("registry.docker.io"));
        assert_eq!(
            c.param("scope"),
            Some("repository:library/alpine:pull,push")
        );
    }

    #[test]
    fn basic_unquoted_escapes_and_case() {
        let c = parse_challenge(r#"basic Realm=Registry"#).unwrap();
        assert_eq!(c.scheme, Scheme::Basic);
        assert_eq!(c.param("realm"), Some("Registry"));
        let c = parse_challenge(r#"Bearer realm="a\"b", error="invalid_token""#).unwrap();
        assert_eq!(c.param("realm"), Some("a\"b"));
        assert_eq!(c.param("error"), Some("invalid_token"));
        let c = parse_challenge("Bearer").unwrap();
        assert!(c.params.is_empty());
        let c = parse_challenge("Negotiate abc").map(|c| c.scheme);
        assert_eq!(c, None);
    }

    #[test]
    fn malformed_headers_are_none() {
        for bad in [
            "",
            "   ",
            r#"Bearer realm="unterminated"#,
            "Bearer =x",
            "Bear(er realm=x",
            r#"Bearer realm="x\"#,
        ] {
            assert_eq!(parse_challenge(bad), None, "{bad:?}");
        }
        assert_eq!(
            parse_challenge(&format!("Bearer realm=\"{}\"", "x".repeat(9000))),
            None
        );
    }

    #[test]
    fn a_second_challenge_is_ignored() {
        let c = parse_challenge(r#"Bearer realm="r", service="s", Basic realm="b""#).unwrap();
        assert_eq!(c.scheme, Scheme::Bearer);
        assert_eq!(c.param("realm"), Some("r"));
    }

    #[test]
    fn arbitrary_input_never_panics() {
        let pieces = ["Bearer", " ", "=", "\"", "\\", ",", "a", "é", "realm"];
        let mut stack = vec![(String::new(), 0)];
        while let Some((s, depth)) = stack.pop() {
            let _ = parse_challenge(&s);
            if depth < 5 {
                for p in pieces {
                    stack.push((format!("{s}{p}"), depth + 1));
                }
            }
        }
    }
}
