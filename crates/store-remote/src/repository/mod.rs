//! [`Repository`]: one repository on one registry, as an ocistore target.

mod fetch;
mod manifest;
mod referrers;
mod traits;
mod upload;

use crate::client::{check, read_bounded, Call, Client};
use crate::reference::{is_valid_repository, registry_host, Reference};
use crate::wire;
use reqwest::Method;
use std::sync::atomic::{AtomicU8, Ordering};
use store_core::{Error, Result};
use url::Url;

pub use upload::ContentSource;

/// The media types a manifest request accepts.
pub(crate) const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.artifact.manifest.v1+json";

/// Whether the registry has the referrers API, as far as this handle knows.
const REFERRERS_UNKNOWN: u8 = 0;
const REFERRERS_API: u8 = 1;
const REFERRERS_TAG_SCHEMA: u8 = 2;

/// One repository on one registry: `Fetcher`, `Pusher`, `ReadOnlyStorage`, `Resolver`,
/// `Tagger`, `PredecessorFinder`, `Deleter`, `TagLister` and `Untagger`, so that
/// `ocistore::copy` works between a registry and any other store.
///
/// Referrers: `predecessors` asks the referrers API and falls back to the referrers tag
/// schema (the index tagged `<alg>-<hex>`) when the registry has none; pushing or deleting a
/// manifest with a `subject` on such a registry updates that index, and deletes it (its tag
/// with it) once it lists no referrer, as oras-go does. The update is a read, a
/// change and a write: pushes through one `Repository` are serialised, but two writers on
/// different machines (or handles) that update one subject's index at the same moment can
/// each write an index lacking the other's referrer (the last write wins). The referrer
/// manifests themselves stay; pushing one again re-adds it.
pub struct Repository {
    client: Client,
    registry: String,
    name: String,
    /// `scheme://host/v2/<name>/`.
    base: Url,
    referrers: AtomicU8,
    tag_index_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repository")
            .field("registry", &self.registry)
            .field("name", &self.name)
            .finish()
    }
}

impl Repository {
    /// The repository named by `reference` (`host[:port]/path`, Docker Hub short names
    /// accepted; a tag or digest in it is ignored).
    ///
    /// Errors: [`store_core::ErrorKind::InvalidReference`] when it does not parse.
    pub fn new(client: &Client, reference: &str) -> Result<Repository> {
        let parsed = Reference::parse(reference)?;
        Repository::from_parts(client, &parsed.registry, &parsed.repository)
    }

    /// The repository `name` on `registry` (a registry name as in references: `docker.io`,
    /// `127.0.0.1:5000`).
    ///
    /// Errors: [`store_core::ErrorKind::InvalidReference`] for a malformed name or host.
    pub fn from_parts(client: &Client, registry: &str, name: &str) -> Result<Repository> {
        if !is_valid_repository(name) {
            return Err(Error::InvalidReference {
                reference: name.chars().take(300).collect(),
                reason: "not a valid repository name".into(),
            });
        }
        let host = registry_host(registry);
        let base = client
            .base_url(host)?
            .join(&format!("{name}/"))
            .map_err(|e| Error::InvalidReference {
                reference: name.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Repository {
            client: client.clone(),
            registry: registry.to_string(),
            name: name.to_string(),
            base,
            referrers: AtomicU8::new(REFERRERS_UNKNOWN),
            tag_index_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The repository's name (`library/alpine`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The registry as named in references (`docker.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The client this repository sends its requests through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| Error::InvalidReference {
            reference: path.to_string(),
            reason: e.to_string(),
        })
    }

    fn scope(&self, actions: &str) -> String {
        format!("repository:{}:{actions}", self.name)
    }

    fn call(&self, method: Method, url: Url, actions: &str) -> Call {
        Call::new(method, url, &self.registry, self.scope(actions))
    }

    /// The tags of the repository strictly after `last`, every page of them, ascending (none
    /// for a repository the registry does not know).
    async fn list_tags(&self, last: Option<&str>) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut url = self.url("tags/list")?;
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let limit = self.client.options().max_metadata_bytes;
        let mut out = Vec::new();
        // A registry whose links go round in circles is cut off.
        for _ in 0..10_000 {
            let response = self
                .client
                .send(self.call(Method::GET, url.clone(), "pull"))
                .await?;
            // Registries create repositories on first push: one they do not know has no tags.
            if response.status() == reqwest::StatusCode::NOT_FOUND && out.is_empty() {
                return Ok(Vec::new());
            }
            let response = check(response, &Method::GET).await?;
            let next = crate::client::header(&response, "link")
                .and_then(|link| wire::next_link(link, &url));
            let body = read_bounded(response, limit, &Method::GET, &url).await?;
            let page: TagList = serde_json::from_slice(&body).map_err(|e| {
                crate::client::remote_error(
                    store_core::ErrorKind::Backend,
                    &Method::GET,
                    &url,
                    Some(200),
                    String::new(),
                    format!("the tag list is not JSON of tags: {e}"),
                )
            })?;
            out.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        out.retain(|t| last.is_none_or(|last| t.as_str() > last));
        out.sort();
        out.dedup();
        Ok(out)
    }

    fn referrers_state(&self) -> u8 {
        self.referrers.load(Ordering::Relaxed)
    }

    fn set_referrers_state(&self, state: u8) {
        self.referrers.store(state, Ordering::Relaxed);
    }
}
