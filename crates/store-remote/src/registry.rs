//! [`Registry`]: one registry host, its repositories, catalog and ping.

use crate::client::{check, header, read_bounded, Call, Client};
use crate::reference::registry_host;
use crate::repository::Repository;
use crate::wire;
use reqwest::Method;
use store_core::{Error, ErrorKind, Result};
use url::Url;

/// One registry (`docker.io`, `127.0.0.1:5000`): gives its repositories, lists its catalog
/// and checks that it answers.
#[derive(Debug, Clone)]
pub struct Registry {
    client: Client,
    registry: String,
    base: Url,
}

impl Registry {
    /// The registry named `registry` as in references (`docker.io` is served by
    /// `registry-1.docker.io`).
    ///
    /// Errors: `InvalidReference` for a malformed host.
    pub fn new(client: &Client, registry: &str) -> Result<Registry> {
        let base = client.base_url(registry_host(registry))?;
        if base.host_str().is_none() || base.path() != "/v2/" {
            return Err(Error::InvalidReference {
                reference: registry.to_string(),
                reason: "not a host[:port]".into(),
            });
        }
        Ok(Registry {
            client: client.clone(),
            registry: registry.to_string(),
            base,
        })
    }

    /// The repository `name` of this registry.
    ///
    /// Errors: `InvalidReference` for a malformed name.
    pub fn repository(&self, name: &str) -> Result<Repository> {
        Repository::from_parts(&self.client, &self.registry, name)
    }

    /// `GET /v2/`: `Ok` when the registry answers as a distribution registry (authenticating
    /// first when it asks to).
    ///
    /// Errors: `Unauthorized` when the credentials are refused, `Backend` when nothing
    /// answers, the registry's error otherwise.
    pub async fn ping(&self) -> Result<()> {
        let call = Call::new(
            Method::GET,
            self.base.clone(),
            &self.registry,
            String::new(),
        );
        check(self.client.send(call).await?, &Method::GET).await?;
        Ok(())
    }

    /// The repository names of the catalog strictly after `last`, every page of them
    /// (`GET /v2/_catalog` following `Link` headers), ascending.
    ///
    /// Errors: `Unsupported` when the registry has no catalog (404), the registry's errors
    /// (`Unauthorized`, `Denied`, ...) otherwise.
    pub async fn catalog(&self, last: Option<&str>) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            repositories: Option<Vec<String>>,
        }
        let mut url = self
            .base
            .join("_catalog")
            .map_err(|e| Error::backend("catalog URL", e))?;
        if let Some(last) = last {
            url.query_pairs_mut().append_pair("last", last);
        }
        let limit = self.client.options().max_metadata_bytes;
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let call = Call::new(
                Method::GET,
                url.clone(),
                &self.registry,
                "registry:catalog:*".into(),
            );
            let response = self.client.send(call).await?;
            let response = match check(response, &Method::GET).await {
                Ok(response) => response,
                Err(err) if err.kind() == ErrorKind::NotFound => {
                    return Err(Error::unsupported(format!(
                        "{} has no catalog ({err})",
                        self.registry
                    )))
                }
                Err(err) => return Err(err),
            };
            let next = header(&response, "link").and_then(|l| wire::next_link(l, &url));
            let body = read_bounded(response, limit, &Method::GET, &url).await?;
            let page: Catalog = serde_json::from_slice(&body).map_err(|e| {
                crate::client::remote_error(
                    ErrorKind::Backend,
                    &Method::GET,
                    &url,
                    Some(200),
                    String::new(),
                    format!("the catalog is not JSON of repositories: {e}"),
                )
            })?;
            out.extend(page.repositories.unwrap_or_default());
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
        out.retain(|r| last.is_none_or(|last| r.as_str() > last));
        out.sort();
        out.dedup();
        Ok(out)
    }
}
