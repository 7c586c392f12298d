//! The test double's content, in memory: blobs, manifests and tags per repository, uploads in
//! progress, and the queries over them (tags, catalog, referrers).

use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256, Sha384, Sha512};
use std::collections::{BTreeMap, HashMap};

/// One repository's content.
#[derive(Debug, Default, Clone)]
pub(crate) struct Repo {
    pub blobs: HashMap<String, Bytes>,
    /// digest -> (media type, bytes)
    pub manifests: HashMap<String, (String, Bytes)>,
    pub tags: BTreeMap<String, String>,
}

/// An upload in progress.
#[derive(Debug, Default)]
pub(crate) struct Upload {
    pub repo: String,
    pub data: Vec<u8>,
    /// A PATCH shorter than the chunk minimum was received: any further data breaks the rule.
    pub short_chunk_seen: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub repos: BTreeMap<String, Repo>,
    pub uploads: HashMap<String, Upload>,
    pub next_upload: u64,
}

/// `alg:hex` of `bytes` in `algorithm` (`sha256`, `sha384` or `sha512`, as distribution
/// does); `None` for another algorithm.
pub(crate) fn digest_with(algorithm: &str, bytes: &[u8]) -> Option<String> {
    let hex = match algorithm {
        "sha256" => hex(&Sha256::digest(bytes)),
        "sha384" => hex(&Sha384::digest(bytes)),
        "sha512" => hex(&Sha512::digest(bytes)),
        _ => return None,
    };
    Some(format!("{algorithm}:{hex}"))
}

/// The sha256 digest of `bytes`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `reference` is a digest (`alg:hex`) rather than a tag.
pub(crate) fn is_digest(reference: &str) -> bool {
    reference.contains(':')
}

/// Whether `bytes` hash to `digest`; false for an unknown algorithm or a malformed digest.
pub(crate) fn verifies(digest: &str, bytes: &[u8]) -> bool {
    digest
        .split_once(':')
        .and_then(|(alg, _)| digest_with(alg, bytes))
        .is_some_and(|d| d == digest)
}

impl Store {
    /// The repository `name`, created empty if new.
    pub fn repo_mut(&mut self, name: &str) -> &mut Repo {
        self.repos.entry(name.to_string()).or_default()
    }

    /// The digest `reference` (a tag or a digest) names in `repo`, if its manifest exists.
    pub fn resolve(&self, repo: &str, reference: &str) -> Option<String> {
        let repo = self.repos.get(repo)?;
        let digest = if is_digest(reference) {
            reference.to_string()
        } else {
            repo.tags.get(reference)?.clone()
        };
        repo.manifests.contains_key(&digest).then_some(digest)
    }

    /// The descriptors of the manifests of `repo` whose `subject` is `subject`, with
    /// `artifact_type` when given, sorted by digest.
    pub fn referrers(&self, repo: &str, subject: &str, artifact_type: Option<&str>) -> Vec<Value> {
        let Some(repo) = self.repos.get(repo) else {
            return Vec::new();
        };
        let mut found: Vec<(String, Value)> = repo
            .manifests
            .iter()
            .filter_map(|(digest, (media_type, bytes))| {
                let manifest: Value = serde_json::from_slice(bytes).ok()?;
                if manifest["subject"]["digest"].as_str() != Some(subject) {
                    return None;
                }
                // The spec: artifactType, else the config's media type of an image manifest.
                let kind = manifest["artifactType"]
                    .as_str()
                    .or_else(|| manifest["config"]["mediaType"].as_str())
                    .map(str::to_string);
                if artifact_type.is_some() && kind.as_deref() != artifact_type {
                    return None;
                }
                let mut descriptor = json!({
                    "mediaType": media_type,
                    "digest": digest,
                    "size": bytes.len(),
                });
                if let Some(kind) = kind {
                    descriptor["artifactType"] = json!(kind);
                }
                if let Some(annotations) = manifest.get("annotations") {
                    descriptor["annotations"] = annotations.clone();
                }
                Some((digest.clone(), descriptor))
            })
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found.into_iter().map(|(_, d)| d).collect()
    }

    /// The digests a manifest refers to that must exist before it may be pushed, as
    /// `(is_manifest, digest)`: an image manifest's config and layers (blobs), an index's
    /// manifests. The subject need not exist.
    pub fn missing_references(&self, repo: &str, manifest: &Value) -> Vec<String> {
        let Some(content) = self.repos.get(repo) else {
            return references(manifest).into_iter().map(|(_, d)| d).collect();
        };
        references(manifest)
            .into_iter()
            .filter(|(is_manifest, digest)| {
                if *is_manifest {
                    !content.manifests.contains_key(digest)
                } else {
                    !content.blobs.contains_key(digest)
                }
            })
            .map(|(_, d)| d)
            .collect()
    }
}

fn references(manifest: &Value) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    if let Some(digest) = manifest["config"]["digest"].as_str() {
        out.push((false, digest.to_string()));
    }
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        if let Some(digest) = layer["digest"].as_str() {
            out.push((false, digest.to_string()));
        }
    }
    for child in manifest["manifests"].as_array().into_iter().flatten() {
        if let Some(digest) = child["digest"].as_str() {
            out.push((true, digest.to_string()));
        }
    }
    out
}

/// One page of `items` (sorted) after `last`, at most `n`: the page and whether more remain.
pub(crate) fn page<'a>(
    items: &'a [String],
    last: Option<&str>,
    n: Option<usize>,
) -> (&'a [String], bool) {
    let start = match last {
        Some(last) => items.partition_point(|item| item.as_str() <= last),
        None => 0,
    };
    let rest = &items[start..];
    match n {
        Some(n) if n < rest.len() => (&rest[..n], true),
        _ => (rest, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_last_and_n() {
        let items: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        assert_eq!(page(&items, None, Some(2)), (&items[..2], true));
        assert_eq!(page(&items, Some("b"), Some(2)), (&items[2..], false));
        assert_eq!(page(&items, Some("bb"), None), (&items[2..], false));
        assert_eq!(page(&items, Some("d"), Some(2)).0.len(), 0);
    }

    #[test]
    fn digests_verify() {
        let d = sha256(b"hello");
        assert!(verifies(&d, b"hello"));
        assert!(!verifies(&d, b"hellO"));
        assert!(!verifies("md5:abc", b"hello"));
        assert!(verifies(&digest_with("sha512", b"x").unwrap(), b"x"));
    }
}
