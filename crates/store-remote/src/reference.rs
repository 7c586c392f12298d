//! References as users type them: `host[:port]/path[:tag][@digest]`, with Docker Hub's short
//! names (`alpine` is `docker.io/library/alpine`).

use store_core::digest::ValidDigest;
use store_core::{Error, Result};

/// The registry name Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";
/// The host that serves Docker Hub's registry API.
pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// The longest repository name accepted (the distribution spec's limit).
const MAX_NAME: usize = 255;
/// The longest tag the distribution grammar allows.
const MAX_TAG: usize = 128;

/// A parsed reference: the registry, the repository and an optional tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The registry as named (`docker.io`, `127.0.0.1:5000`, `ghcr.io`).
    pub registry: String,
    /// The repository path (`library/alpine`).
    pub repository: String,
    /// The tag, if one was given.
    pub tag: Option<String>,
    /// The digest, if one was given.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses `text` as docker and oras do: an `@digest` suffix, a `:tag` after the last `/`,
    /// a first component with a `.` or `:` or equal to `localhost` names the registry, else
    /// the registry is Docker Hub, where a one-component path gains `library/`.
    ///
    /// Errors: [`Error::InvalidReference`] naming the part that does not parse.
    pub fn parse(text: &str) -> Result<Reference> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: text.chars().take(300).collect(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("empty reference"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                ValidDigest::parse(digest)
                    .map_err(|_| invalid("the part after @ is not a digest"))?;
                (rest, Some(digest.to_string()))
            }
            None => (text, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(colon) => {
                let at = last_slash + colon;
                (&rest[..at], Some(rest[at + 1..].to_string()))
            }
            None => (rest, None),
        };
        if let Some(tag) = &tag {
            if !is_valid_tag(tag) {
                return Err(invalid(
                    "the tag must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}",
                ));
            }
        }
        let (registry, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !is_valid_host(&registry) {
            return Err(invalid("the registry must be host[:port]"));
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if !is_valid_repository(&repository) {
            return Err(invalid(
                "the repository must be lowercase path components of [a-z0-9] joined by . _ __ or -",
            ));
        }
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The host (with port) that serves this registry's API: `registry-1.docker.io` for Docker
    /// Hub, the registry itself otherwise.
    pub fn host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// What to resolve in the repository: the digest when there is one, else the tag, else
    /// `latest`.
    pub fn reference_or_latest(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// The host serving `registry`'s API (Docker Hub's name maps to its API host).
pub fn registry_host(registry: &str) -> &str {
    if registry == DOCKER_HUB {
        DOCKER_HUB_HOST
    } else {
        registry
    }
}

/// Whether `tag` matches the distribution tag grammar `[\w][\w.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    !bytes.is_empty()
        && bytes.len() <= MAX_TAG
        && word(&bytes[0])
        && bytes[1..]
            .iter()
            .all(|b| word(b) || *b == b'.' || *b == b'-')
}

/// Whether `name` is a repository name of the distribution grammar: components of
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 characters.
pub fn is_valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.split('/').all(is_valid_component)
}

fn is_valid_component(component: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = component.as_bytes();
    let (Some(&first), Some(&last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    if !alnum(first) || !alnum(last) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", always followed by an alphanumeric.
        let start = i;
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !bytes.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

/// Whether `host` is `name[:port]` with a DNS-ish name or a bracketed IPv6 address.
fn is_valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((addr, tail)) => {
                if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                (
                    None,
                    tail.strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if tail.is_empty() { None } else { Some("") }),
                )
            }
            None => return false,
        }
    } else {
        match host.rsplit_once(':') {
            Some((name, port)) => (Some(name), Some(port)),
            None => (Some(host), None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match name {
        None => true,
        Some(name) => {
            !name.is_empty()
                && name.len() <= 253
                && name.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (String, String, Option<String>, Option<String>) {
        let r = Reference::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        (r.registry, r.repository, r.tag, r.digest)
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn docker_hub_short_names_normalise() {
        assert_eq!(
            parse("alpine"),
            ("docker.io".into(), "library/alpine".into(), None, None)
        );
        assert_eq!(
            parse("alpine:3.20"),
            (
                "docker.io".into(),
                "library/alpine".into(),
                Some("3.20".into()),
                None
            )
        );
        assert_eq!(parse("bitnami/redis").1, "bitnami/redis");
        assert_eq!(parse("docker.io/alpine").1, "library/alpine");
        assert_eq!(parse("index.docker.io/library/alpine").0, "docker.io");
        let r = Reference::parse("alpine").unwrap();
        assert_eq!(r.host(), "registry-1.docker.io");
        assert_eq!(r.reference_or_latest(), "latest");
    }

    #[test]
    fn hosts_ports_tags_and_digests() {
        assert_eq!(
            parse("127.0.0.1:5000/demo/x:v1"),
            (
                "127.0.0.1:5000".into(),
                "demo/x".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(parse("localhost/a").0, "localhost");
        let (reg, repo, tag, digest) = parse(&format!("ghcr.io/o/r:t@{D}"));
        assert_eq!((reg.as_str(), repo.as_str()), ("ghcr.io", "o/r"));
        assert_eq!(tag.as_deref(), Some("t"));
        assert_eq!(digest.as_deref(), Some(D));
        let r = Reference::parse(&format!("localhost:5000/a@{D}")).unwrap();
        assert_eq!(r.reference_or_latest(), D);
        assert_eq!(r.host(), "localhost:5000");
        assert_eq!(r.to_string(), format!("localhost:5000/a@{D}"));
        assert_eq!(parse("[::1]:5000/a").0, "[::1]:5000");
        // A port-looking colon in a path component with a slash after it is a registry port.
        assert_eq!(parse("example.com:443/a/b:c").2.as_deref(), Some("c"));
    }

    #[test]
    fn malformed_references_are_invalid_reference() {
        for bad in [
            "",
            "UPPER/case",
            "a//b",
            "a/b:",
            "a/b:-tag",
            "a@sha256:abc",
            "a@",
            "host:port/x",
            "example.com:99999999/x",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "example.com/",
            "[zz]:5/x",
            "a/b:tag with space",
            &format!("a/b:{}", "t".repeat(129)),
            &format!("example.com/{}", "a".repeat(300)),
        ] {
            match Reference::parse(bad) {
                Err(err) => {
                    assert_eq!(err.kind(), store_core::ErrorKind::InvalidReference, "{bad}")
                }
                Ok(r) => panic!("{bad:?} parsed as {r:?}"),
            }
        }
    }

    #[test]
    fn separators_in_components() {
        for good in ["a.b", "a_b", "a__b", "a-b", "a---b", "a0/b1/c2"] {
            assert!(is_valid_repository(good), "{good}");
        }
        for bad in ["a.", "_a", "a.-b", "a_.b", "é"] {
            assert!(!is_valid_repository(bad), "{bad}");
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let alphabet = [
            "a", "/", ":", "@", ".", "-", "_", "[", "]", "sha256:", "é", "0", "A",
        ];
        // Every string of up to 4 pieces of the alphabet.
        let mut stack = vec![(String::new(), 0)];
        while let Some((s, depth)) = stack.pop() {
            let _ = Reference::parse(&s);
            if depth < 4 {
                for piece in alphabet {
                    stack.push((format!("{s}{piece}"), depth + 1));
                }
            }
        }
    }
}
