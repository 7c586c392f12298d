//! What an entry of an OCI image layout archive may be: the one set of rules shared by the
//! streaming importer (`ocistore::archive`) and the read-only store over a seekable tar.
//!
//! An archive of a layout holds `oci-layout`, `index.json`, `blobs/<alg>/<hex>` regular files and
//! the directories above them, named with or without a leading `./`. Refused, naming the entry:
//! anything that could make an extractor write outside its directory or alias another file
//! (`..`, absolute paths, symbolic and hard links), anything that is not content (devices,
//! fifos, other tar types), and under `blobs/` anything but `blobs/<alg>/` directories and
//! `blobs/<alg>/<hex>` files of a supported algorithm with lowercase hex of the right length (a
//! blob must be named by a digest it can be checked against). Other regular files and
//! directories beside the layout are skipped unread: the image-layout spec allows them, and a tar
//! of a real layout directory has them (a store's `ingest/` staging directory and lock file,
//! skopeo's `oci-put-blob*` leftovers, `docker save`'s `manifest.json` and `repositories`).

use crate::digest::ValidDigest;
use std::fmt;

/// The kind of a tar entry, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (typeflag `0`, NUL or `7`).
    Regular,
    /// A directory (typeflag `5`).
    Directory,
    /// A symbolic link (typeflag `2`).
    Symlink,
    /// A hard link (typeflag `1`).
    HardLink,
    /// A character or block device (typeflag `3` or `4`).
    Device,
    /// A named pipe (typeflag `6`).
    Fifo,
    /// Any other typeflag (sparse files, vendor extensions), with the flag byte.
    Other(u8),
}

impl EntryKind {
    /// The kind of a ustar/GNU/pax typeflag byte. Metadata headers (pax `x`/`g`, GNU `L`/`K`)
    /// are the reader's business and come out as [`EntryKind::Other`].
    pub fn from_typeflag(flag: u8) -> EntryKind {
        match flag {
            b'0' | 0 | b'7' => EntryKind::Regular,
            b'5' => EntryKind::Directory,
            b'2' => EntryKind::Symlink,
            b'1' => EntryKind::HardLink,
            b'3' | b'4' => EntryKind::Device,
            b'6' => EntryKind::Fifo,
            other => EntryKind::Other(other),
        }
    }
}

/// What an accepted entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutEntry {
    /// A directory (`blobs`, `blobs/sha256`, or the root `.`): nothing to read.
    Directory,
    /// The `oci-layout` file.
    OciLayout,
    /// The `index.json` file.
    Index,
    /// `blobs/<alg>/<hex>`, with its digest.
    Blob(ValidDigest),
    /// A regular file or directory outside `blobs/` other than `oci-layout` and `index.json`
    /// (a store's staging files, `docker save`'s `manifest.json`): skipped unread.
    Ignored,
}

/// Why an entry was refused; the caller names the archive and the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The entry's name as the archive spells it (lossily decoded).
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the entry {:?} {}", self.name, self.reason)
    }
}

/// The name an entry is filed under: empty and `.` components dropped (so a leading `./` goes),
/// components joined by `/`. `Ok(None)` for a name that is not UTF-8 (no layout path is).
///
/// Errors: a reason, for an absolute path or a `..` component.
pub fn clean_name(raw: &[u8]) -> Result<Option<String>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("is an absolute path");
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("has a `..` component"),
            _ => parts.push(part),
        }
    }
    Ok(String::from_utf8(parts.join(&b'/')).ok())
}

/// Decides what the entry named `raw` of kind `kind` is.
///
/// Errors: a [`Rejection`] naming the entry for an absolute path, a `..` component, a link, a
/// device, a fifo or another typeflag, a name that is not UTF-8, a regular file named `blobs`
/// or under `blobs/` that is not `blobs/<alg>/<hex>` with a supported algorithm and lowercase
/// hex of the right length, and a directory under `blobs/` other than `blobs/<alg>`.
pub fn classify(raw: &[u8], kind: EntryKind) -> Result<LayoutEntry, Rejection> {
    let reject = |reason: String| Rejection {
        name: String::from_utf8_lossy(raw).into_owned(),
        reason,
    };
    let name = clean_name(raw)
        .map_err(|why| reject(why.to_string()))?
        .ok_or_else(|| reject("is not UTF-8".into()))?;
    match kind {
        EntryKind::Regular => {}
        EntryKind::Directory => {
            return match name.as_str() {
                "" | "blobs" => Ok(LayoutEntry::Directory),
                other => match other.strip_prefix("blobs/") {
                    Some(alg) if crate::digest::Algorithm::from_name(alg).is_some() => {
                        Ok(LayoutEntry::Directory)
                    }
                    Some(_) => Err(reject(
                        "is a directory under `blobs/` that is not `blobs/<algorithm>` (sha256, \
                         sha384 or sha512)"
                            .into(),
                    )),
                    None => Ok(LayoutEntry::Ignored),
                },
            };
        }
        EntryKind::Symlink => {
            return Err(reject(
                "is a symbolic link; a layout archive may hold only regular files and \
                 directories"
                    .into(),
            ))
        }
        EntryKind::HardLink => {
            return Err(reject(
                "is a hard link; a layout archive may hold only regular files and directories"
                    .into(),
            ))
        }
        EntryKind::Device => {
            return Err(reject(
                "is a device; a layout archive may hold only regular files and directories".into(),
            ))
        }
        EntryKind::Fifo => {
            return Err(reject(
                "is a fifo; a layout archive may hold only regular files and directories".into(),
            ))
        }
        EntryKind::Other(flag) => {
            return Err(reject(format!(
                "has the unsupported tar type {:?}; a layout archive may hold only regular \
                 files and directories",
                char::from(flag)
            )))
        }
    }
    match name.as_str() {
        "oci-layout" => return Ok(LayoutEntry::OciLayout),
        "index.json" => return Ok(LayoutEntry::Index),
        _ => {}
    }
    let not_a_blob = || {
        reject(
            "is under `blobs/` but not named `blobs/<algorithm>/<hex>` (sha256, sha384 or \
             sha512, lowercase hex of the digest's length)"
                .into(),
        )
    };
    let Some(rest) = name.strip_prefix("blobs/") else {
        return if name == "blobs" {
            Err(not_a_blob())
        } else {
            Ok(LayoutEntry::Ignored)
        };
    };
    let (alg, hex) = rest.split_once('/').ok_or_else(not_a_blob)?;
    let digest = ValidDigest::parse(&format!("{alg}:{hex}")).map_err(|_| not_a_blob())?;
    Ok(LayoutEntry::Blob(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn names_are_cleaned() {
        assert_eq!(
            clean_name(b"./blobs/sha256/ab"),
            Ok(Some("blobs/sha256/ab".into()))
        );
        assert_eq!(
            clean_name(b"blobs//sha256/./ab"),
            Ok(Some("blobs/sha256/ab".into()))
        );
        assert_eq!(clean_name(b"./"), Ok(Some(String::new())));
        assert_eq!(clean_name(b"blobs/"), Ok(Some("blobs".into())));
        assert_eq!(clean_name(b"a/\xff"), Ok(None));
        assert!(clean_name(b"../x").is_err());
        assert!(clean_name(b"blobs/../../x").is_err());
        assert!(clean_name(b"/etc/passwd").is_err());
        assert_eq!(clean_name(b"a..b/..c"), Ok(Some("a..b/..c".into())));
    }

    #[test]
    fn layout_names_are_accepted() {
        let regular = EntryKind::Regular;
        assert_eq!(classify(b"./index.json", regular), Ok(LayoutEntry::Index));
        assert_eq!(classify(b"oci-layout", regular), Ok(LayoutEntry::OciLayout));
        let blob = format!("./blobs/sha256/{HEX}");
        assert_eq!(
            classify(blob.as_bytes(), regular),
            Ok(LayoutEntry::Blob(
                ValidDigest::parse(&format!("sha256:{HEX}")).unwrap()
            ))
        );
        for dir in ["./", "blobs/", "./blobs/sha512/"] {
            assert_eq!(
                classify(dir.as_bytes(), EntryKind::Directory),
                Ok(LayoutEntry::Directory)
            );
        }
        assert_eq!(
            classify(b"manifest.json", regular),
            Ok(LayoutEntry::Ignored)
        );
    }

    #[test]
    fn everything_else_is_refused_naming_the_entry() {
        let blob = format!("blobs/sha256/{HEX}");
        let bad: Vec<(String, EntryKind)> = vec![
            (format!("../{blob}"), EntryKind::Regular),
            (format!("/{blob}"), EntryKind::Regular),
            (blob.clone(), EntryKind::Symlink),
            (blob.clone(), EntryKind::HardLink),
            (blob.clone(), EntryKind::Device),
            (blob.clone(), EntryKind::Fifo),
            (blob.clone(), EntryKind::Other(b'S')),
            (format!("blobs/md5/{HEX}"), EntryKind::Regular),
            (
                format!("blobs/sha256/{}", HEX.to_uppercase()),
                EntryKind::Regular,
            ),
            (format!("blobs/sha256/{HEX}0"), EntryKind::Regular),
            ("blobs/sha256".into(), EntryKind::Regular),
            ("blobs".into(), EntryKind::Regular),
            ("blobs/sha256/x/y".into(), EntryKind::Regular),
            ("blobs/tmp".into(), EntryKind::Directory),
            ("../etc".into(), EntryKind::Directory),
            ("etc/passwd".into(), EntryKind::Symlink),
        ];
        for (name, kind) in bad {
            let err = classify(name.as_bytes(), kind).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains(&name), "{err}");
        }
    }
}
