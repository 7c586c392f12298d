//! Locations as skopeo writes them: `oci:PATH[:TAG|@DIGEST]`, `oci-archive:PATH[:TAG]` and
//! `docker://HOST/REPO[:TAG|@DIGEST]`.

use crate::fail::Failure;
use ocistore::digest::ValidDigest;
use ocistore::remote::Reference;
use std::fmt;
use std::path::PathBuf;

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An OCI image layout directory and an optional tag or digest in it.
    Layout {
        /// The directory.
        path: PathBuf,
        /// The tag or digest, if one was given.
        reference: Option<String>,
    },
    /// An OCI layout archive (`-` is stdin or stdout) and an optional tag in it.
    Archive {
        /// The file, or `-`.
        path: String,
        /// The tag, if one was given.
        reference: Option<String>,
    },
    /// A registry repository and an optional tag or digest.
    Registry(Reference),
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Layout { path, reference } => {
                write!(f, "oci:{}", path.display())?;
                write_ref(f, reference.as_deref())
            }
            Location::Archive { path, reference } => {
                write!(f, "oci-archive:{path}")?;
                write_ref(f, reference.as_deref())
            }
            Location::Registry(r) => {
                write!(f, "docker://{}/{}", r.registry, r.repository)?;
                if let Some(tag) = &r.tag {
                    write!(f, ":{tag}")?;
                }
                if let Some(digest) = &r.digest {
                    write!(f, "@{digest}")?;
                }
                Ok(())
            }
        }
    }
}

fn write_ref(f: &mut fmt::Formatter<'_>, reference: Option<&str>) -> fmt::Result {
    match reference {
        Some(r) if r.contains(':') => write!(f, "@{r}"),
        Some(r) => write!(f, ":{r}"),
        None => Ok(()),
    }
}

const HINT: &str =
    "write oci:PATH[:TAG|@DIGEST], oci-archive:PATH[:TAG] or docker://HOST/REPO[:TAG|@DIGEST]";

impl Location {
    /// Parses `text`. Errors: a usage failure naming the location and what is wrong with it.
    pub fn parse(text: &str) -> Result<Location, Failure> {
        let bad = |why: &str| Failure::usage(format!("bad location {text:?}: {why} ({HINT})"));
        if let Some(rest) = text.strip_prefix("docker://") {
            let reference = Reference::parse(rest).map_err(|e| bad(&e.to_string()))?;
            // A bare `docker://alpine` would silently mean Docker Hub: say the host.
            let first = rest.split('/').next().unwrap_or("");
            if !rest.contains('/')
                || !(first.contains('.') || first.contains(':') || first == "localhost")
            {
                return Err(bad(
                    "name the registry host, as in docker://HOST[:PORT]/REPO",
                ));
            }
            return Ok(Location::Registry(reference));
        }
        if let Some(rest) = text.strip_prefix("oci-archive:") {
            let (path, reference) = split_reference(rest, false).map_err(|why| bad(&why))?;
            return Ok(Location::Archive { path, reference });
        }
        if let Some(rest) = text.strip_prefix("oci:") {
            let (path, reference) = split_reference(rest, true).map_err(|why| bad(&why))?;
            if path == "-" {
                return Err(bad(
                    "a layout is a directory; use oci-archive:- for stdin or stdout",
                ));
            }
            return Ok(Location::Layout {
                path: PathBuf::from(path),
                reference,
            });
        }
        match text.split_once(':') {
            Some((transport, _)) if !transport.is_empty() && !transport.contains('/') => {
                Err(bad(&format!("unknown transport {transport:?}")))
            }
            _ => Err(bad("no transport")),
        }
    }

    /// The tag or digest the location names, if any.
    pub fn reference(&self) -> Option<String> {
        match self {
            Location::Layout { reference, .. } | Location::Archive { reference, .. } => {
                reference.clone()
            }
            Location::Registry(r) => r.digest.clone().or_else(|| r.tag.clone()),
        }
    }
}

/// Splits `PATH[:TAG]` (and `PATH@DIGEST` when `digests`): a digest after the last `@`, else a
/// tag after the last `:` when what follows has no `/`.
fn split_reference(rest: &str, digests: bool) -> Result<(String, Option<String>), String> {
    if rest.is_empty() {
        return Err("no path".into());
    }
    if let Some((path, digest)) = rest.rsplit_once('@') {
        if digest.contains(':') {
            if !digests {
                return Err("an archive is addressed by tag, not digest".into());
            }
            ValidDigest::parse(digest).map_err(|e| e.to_string())?;
            if path.is_empty() {
                return Err("no path".into());
            }
            return Ok((path.to_string(), Some(digest.to_string())));
        }
    }
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => {
            if path.is_empty() {
                return Err("no path".into());
            }
            ocistore::reference::validate_tag(tag).map_err(|e| e.to_string())?;
            Ok((path.to_string(), Some(tag.to_string())))
        }
        _ => Ok((rest.to_string(), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_archives_and_registries_parse() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            Location::parse(&format!("oci:/x/y@{d}")).ok(),
            Some(Location::Layout {
                path: "/x/y".into(),
                reference: Some(d.clone())
            })
        );
        assert_eq!(
            Location::parse("oci:dir:v1").ok(),
            Some(Location::Layout {
                path: "dir".into(),
                reference: Some("v1".into())
            })
        );
        assert_eq!(
            Location::parse("oci-archive:-").ok(),
            Some(Location::Archive {
                path: "-".into(),
                reference: None
            })
        );
        let r = Location::parse("docker://127.0.0.1:5000/a/b:v2").ok();
        assert!(
            matches!(r, Some(Location::Registry(ref x)) if x.repository == "a/b" && x.tag.as_deref() == Some("v2"))
        );
    }

    #[test]
    fn malformed_locations_are_usage_errors() {
        for bad in [
            "",
            "oci:",
            "oci::v1",
            "foo:bar",
            "/just/a/path",
            "oci:x:bad tag",
            "oci:x@sha256:zz",
            "docker://",
            "docker://alpine",
            "docker://127.0.0.1:5000/UPPER",
            "oci-archive:f@sha256:abc",
            "oci:-",
        ] {
            let e = Location::parse(bad).expect_err(bad);
            assert_eq!(e.status, 2, "{bad}");
            assert!(e.message.contains("bad location"), "{bad}: {}", e.message);
        }
    }
}
