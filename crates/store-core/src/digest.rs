//! Digests: the three supported algorithms, strict validation, and incremental hashing.
//!
//! Only `sha256`, `sha384` and `sha512` with lowercase hex of the exact length are accepted.
//! oci-spec parses any algorithm (`DigestAlgorithm::Other`), and a digest names a path on disk,
//! so everything else is refused here before it reaches a file system.

use crate::error::{Error, Result};
use oci_spec::image::Digest;
use sha2::Digest as _;
use std::fmt;
use std::str::FromStr;

/// A digest algorithm ocistore supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-256, 64 hex characters.
    Sha256,
    /// SHA-384, 96 hex characters.
    Sha384,
    /// SHA-512, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in digests and under `blobs/`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex characters of an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    /// The algorithm named `name`, if supported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        match name {
            "sha256" => Some(Algorithm::Sha256),
            "sha384" => Some(Algorithm::Sha384),
            "sha512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Algorithm::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Algorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }

    /// Every supported algorithm.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A digest that passed validation: a supported algorithm and lowercase hex of the right length.
/// Safe to use as a path component (`blobs/<algorithm>/<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValidDigest {
    algorithm: Algorithm,
    text: String,
}

impl ValidDigest {
    /// Validates `digest` (`<algorithm>:<hex>`).
    ///
    /// Returns [`Error::InvalidDigest`] for a missing `:`, an unsupported algorithm, non-lowercase-hex
    /// characters or a wrong length.
    pub fn parse(digest: &str) -> Result<ValidDigest> {
        match check(digest) {
            Ok(algorithm) => Ok(ValidDigest {
                algorithm,
                text: digest.to_string(),
            }),
            Err(flaw) => Err(Error::InvalidDigest {
                digest: digest.to_string(),
                reason: flaw.reason(),
            }),
        }
    }

    /// Whether `digest` would pass [`ValidDigest::parse`]. Allocates nothing, so hot paths that
    /// only need to tell a digest from a tag use this rather than `parse(..).is_ok()`, whose
    /// error builds two strings.
    pub fn is_valid(digest: &str) -> bool {
        check(digest).is_ok()
    }

    /// Validates the digest of an oci-spec [`Digest`]; see [`ValidDigest::parse`].
    pub fn from_digest(digest: &Digest) -> Result<ValidDigest> {
        ValidDigest::parse(digest.as_ref())
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (hex) part.
    pub fn hex(&self) -> &str {
        &self.text[self.algorithm.name().len() + 1..]
    }

    /// The whole digest, `<algorithm>:<hex>`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The oci-spec form of this digest.
    pub fn to_oci(&self) -> Digest {
        // A validated digest always parses; the fallback keeps this function panic-free.
        Digest::from_str(&self.text).unwrap_or_else(|_| sha256_of(b""))
    }
}

impl fmt::Display for ValidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An incremental hasher for one of the supported algorithms.
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(sha2::Sha256),
    /// SHA-384 state.
    Sha384(sha2::Sha384),
    /// SHA-512 state.
    Sha512(sha2::Sha512),
}

impl Hasher {
    /// Feeds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// The algorithm of this hasher.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Hasher::Sha256(_) => Algorithm::Sha256,
            Hasher::Sha384(_) => Algorithm::Sha384,
            Hasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    /// The digest string (`<algorithm>:<hex>`) of everything fed so far.
    pub fn finish(self) -> String {
        let algorithm = self.algorithm();
        let bytes: Vec<u8> = match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
            Hasher::Sha512(h) => h.finalize().to_vec(),
        };
        let mut text = String::with_capacity(algorithm.name().len() + 1 + bytes.len() * 2);
        text.push_str(algorithm.name());
        text.push(':');
        for byte in bytes {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        text
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The digest of `data` with `algorithm`, as a string.
pub fn digest_string(algorithm: Algorithm, data: &[u8]) -> String {
    let mut hasher = algorithm.hasher();
    hasher.update(data);
    hasher.finish()
}

/// The sha256 digest of `data`.
pub fn sha256_of(data: &[u8]) -> Digest {
    let text = digest_string(Algorithm::Sha256, data);
    // A freshly computed sha256 digest is always well formed.
    Digest::from_str(&text).unwrap_or_else(|_| unreachable_digest())
}

/// The digest of `data` with `algorithm`, as an oci-spec [`Digest`].
pub fn digest_of(algorithm: Algorithm, data: &[u8]) -> Digest {
    let text = digest_string(algorithm, data);
    Digest::from_str(&text).unwrap_or_else(|_| unreachable_digest())
}

fn unreachable_digest() -> Digest {
    // Only reachable if oci-spec rejected a digest we computed ourselves; the empty-string sha256
    // below is a constant that oci-spec accepts, so this never recurses.
    Digest::from_str("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        .expect("constant digest is valid")
}

/// Why a string is not a digest; turned into words only when an error is built.
enum Flaw {
    NoSeparator,
    Algorithm,
    Length(Algorithm, usize),
    NotLowerHex,
}

impl Flaw {
    fn reason(&self) -> String {
        match self {
            Flaw::NoSeparator => "expected <algorithm>:<hex>".to_string(),
            Flaw::Algorithm => {
                "unsupported algorithm (supported: sha256, sha384, sha512)".to_string()
            }
            Flaw::Length(algorithm, found) => format!(
                "{algorithm} needs {} hex characters, found {found}",
                algorithm.hex_len()
            ),
            Flaw::NotLowerHex => "the encoded part must be lowercase hex".to_string(),
        }
    }
}

/// The algorithm of a well-formed `digest`, or what is wrong with it.
fn check(digest: &str) -> std::result::Result<Algorithm, Flaw> {
    let (name, hex) = digest.split_once(':').ok_or(Flaw::NoSeparator)?;
    let algorithm = Algorithm::from_name(name).ok_or(Flaw::Algorithm)?;
    if hex.len() != algorithm.hex_len() {
        return Err(Flaw::Length(algorithm, hex.len()));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Flaw::NotLowerHex);
    }
    Ok(algorithm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_algorithms() {
        for algorithm in Algorithm::ALL {
            let text = digest_string(algorithm, b"hello");
            let valid = ValidDigest::parse(&text).unwrap();
            assert_eq!(valid.algorithm(), algorithm);
            assert_eq!(valid.hex().len(), algorithm.hex_len());
            assert_eq!(valid.as_str(), text);
        }
        assert_eq!(
            digest_string(Algorithm::Sha256, b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn refuses_everything_else() {
        let good = digest_string(Algorithm::Sha256, b"x");
        let hex = &good[7..];
        let cases = [
            String::new(),
            "sha256".to_string(),
            format!("sha1:{}", &hex[..40]),
            format!("md5:{}", &hex[..32]),
            format!("SHA256:{hex}"),
            format!("sha256:{}", hex.to_uppercase()),
            format!("sha256:{}", &hex[..63]),
            format!("sha256:{hex}0"),
            format!("sha256:../{}", &hex[3..]),
            format!("sha256:{}/{}", &hex[..31], &hex[32..]),
            format!("sha512:{hex}"),
            format!("foo+bar:{hex}"),
        ];
        for case in cases {
            let err = ValidDigest::parse(&case).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidDigest, "{case}");
            assert!(err.to_string().contains("invalid digest"), "{err}");
            assert!(!ValidDigest::is_valid(&case), "is_valid accepted {case}");
        }
        for algorithm in Algorithm::ALL {
            assert!(ValidDigest::is_valid(&digest_string(algorithm, b"y")));
        }
    }
}
