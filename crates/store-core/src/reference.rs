//! Tag syntax: the image-spec grammar of the `org.opencontainers.image.ref.name` annotation.
//!
//! ```text
//! ref       ::= component ("/" component)*
//! component ::= alphanum (separator alphanum)*
//! alphanum  ::= [A-Za-z0-9]+
//! separator ::= [-._:@+] | "--"
//! ```
//!
//! Every store checks a tag with [`check_tag`] (or [`validate_tag`]) before recording it, so that
//! whatever ends up in `index.json` is a valid `ref.name`.

use crate::digest::ValidDigest;
use crate::error::{Error, Result};

/// Checks that `operation` (`"resolve"`, `"tag"`, `"untag"`, ...) was given a reference at all:
/// the one place every store refuses an empty one.
///
/// Errors: [`Error::MissingReference`] naming `operation` when `reference` is empty.
pub fn require_reference(operation: &'static str, reference: &str) -> Result<()> {
    if reference.is_empty() {
        return Err(Error::MissingReference { operation });
    }
    Ok(())
}

/// Checks that `reference` is a non-empty tag in the image-spec `ref.name` grammar (see the
/// module documentation).
///
/// Errors: [`Error::MissingReference`] for an empty string, [`Error::InvalidReference`] (naming
/// the tag and the offending position) when the grammar does not match.
pub fn validate_tag(reference: &str) -> Result<()> {
    require_reference("tag", reference)?;
    match grammar_error(reference) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidReference {
            reference: reference.to_string(),
            reason,
        }),
    }
}

/// Checks that `reference` may name content whose digest is `digest`: a valid tag (see
/// [`validate_tag`]) that, if it is itself a digest, is that very digest.
///
/// Errors: [`Error::MissingReference`] for an empty string, [`Error::InvalidReference`] for a
/// grammar violation or for a digest other than `digest`.
pub fn check_tag(reference: &str, digest: &ValidDigest) -> Result<()> {
    validate_tag(reference)?;
    if ValidDigest::is_valid(reference) && reference != digest.as_str() {
        return Err(Error::InvalidReference {
            reference: reference.to_string(),
            reason: format!("a digest reference must be the content's own digest {digest}"),
        });
    }
    Ok(())
}

/// Checks a request to point `reference` at `desc`, in the order every store answers it: an
/// empty reference first, then the descriptor, then the tag against its digest (see
/// [`check_tag`]). Returns the descriptor's digest.
///
/// Errors: [`Error::MissingReference`], those of [`crate::descriptor::validate`],
/// [`Error::InvalidReference`].
pub fn check_tagging(desc: &oci_spec::image::Descriptor, reference: &str) -> Result<ValidDigest> {
    require_reference("tag", reference)?;
    let digest = crate::descriptor::validate(desc)?;
    check_tag(reference, &digest)?;
    Ok(digest)
}

/// Checks that the blob a tag is to point at is stored with `desc`'s size, given `stored`, the
/// size the store found for `digest` (`None`: not stored).
///
/// Errors: [`Error::NotFound`] naming the digest and media type; [`Error::Mismatch`] with both
/// sizes.
pub fn require_stored(
    desc: &oci_spec::image::Descriptor,
    digest: &ValidDigest,
    stored: Option<u64>,
) -> Result<()> {
    let Some(size) = stored else {
        return Err(Error::not_found(format!(
            "{} ({})",
            desc.digest(),
            desc.media_type()
        )));
    };
    if size != desc.size() {
        return Err(Error::mismatch(
            digest,
            format!(
                "the stored blob has {size} bytes, the descriptor says {}",
                desc.size()
            ),
        ));
    }
    Ok(())
}

/// Why `reference` does not match the grammar, or `None` when it does. Never called with "".
fn grammar_error(reference: &str) -> Option<String> {
    for (number, component) in reference.split('/').enumerate() {
        if let Some(reason) = component_error(component) {
            return Some(format!("path component {}: {reason}", number + 1));
        }
    }
    None
}

fn is_alphanum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

fn is_separator(c: char) -> bool {
    matches!(c, '-' | '.' | '_' | ':' | '@' | '+')
}

/// Checks one `component ::= alphanum (separator alphanum)*`.
fn component_error(component: &str) -> Option<String> {
    let chars: Vec<char> = component.chars().collect();
    if chars.is_empty() {
        return Some(
            "is empty (a reference may not start or end with '/', nor hold \"//\")".into(),
        );
    }
    let mut i = 0;
    let mut expect_alphanum = true;
    while i < chars.len() {
        let c = chars[i];
        if expect_alphanum {
            if !is_alphanum(c) {
                return Some(format!(
                    "expected a letter or digit at character {}, found {c:?}",
                    i + 1
                ));
            }
            while i < chars.len() && is_alphanum(chars[i]) {
                i += 1;
            }
            expect_alphanum = false;
        } else {
            if !is_separator(c) {
                return Some(format!("character {c:?} is not allowed"));
            }
            // "--" is the only two-character separator.
            if c == '-' && chars.get(i + 1) == Some(&'-') {
                i += 2;
            } else {
                i += 1;
            }
            expect_alphanum = true;
        }
    }
    if expect_alphanum {
        return Some("ends with a separator".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{digest_string, Algorithm};
    use crate::ErrorKind;

    #[test]
    fn a_tag_needs_its_blob_stored_with_its_size() {
        let desc = crate::content::descriptor_from_bytes("application/octet-stream".into(), b"x");
        let digest = ValidDigest::from_digest(desc.digest()).unwrap();
        assert!(require_stored(&desc, &digest, Some(1)).is_ok());
        let absent = require_stored(&desc, &digest, None).unwrap_err();
        assert_eq!(absent.kind(), ErrorKind::NotFound);
        assert!(absent.to_string().contains(digest.as_str()), "{absent}");
        let other = require_stored(&desc, &digest, Some(2)).unwrap_err();
        assert_eq!(other.kind(), ErrorKind::Mismatch);
        assert!(other.to_string().contains("2 bytes"), "{other}");
    }

    #[test]
    fn accepts_the_grammar() {
        for good in [
            "v1",
            "1",
            "latest",
            "V1.0.2",
            "a--b",
            "a-b_c.d:e@f+g",
            "release/1.2",
            "example.com/repo/name:tag",
            "x@y",
            "sha256:abc",
        ] {
            assert!(validate_tag(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        assert_eq!(
            validate_tag("").unwrap_err().kind(),
            ErrorKind::MissingReference
        );
        for bad in [
            " ", "a b", "-a", "a-", "a..b", "a---b", "a/", "/a", "a//b", ".", "ä", "tag\n", "a*b",
            "a-.b", "a:",
        ] {
            let err = validate_tag(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidReference, "{bad:?}");
            assert!(err.to_string().contains("invalid reference"), "{err}");
        }
    }

    #[test]
    fn a_digest_reference_must_be_the_contents_own() {
        let own = ValidDigest::parse(&digest_string(Algorithm::Sha256, b"a")).unwrap();
        let other = digest_string(Algorithm::Sha256, b"b");
        assert!(check_tag(own.as_str(), &own).is_ok());
        assert!(check_tag("v1", &own).is_ok());
        assert_eq!(
            check_tag(&other, &own).unwrap_err().kind(),
            ErrorKind::InvalidReference
        );
        assert_eq!(
            check_tag("", &own).unwrap_err().kind(),
            ErrorKind::MissingReference
        );
    }
}
