//! The double's listings: tags, catalog and referrers, each paginated with `n`, `last` and a
//! `Link` to the next page.

use super::routes::Ctx;
use super::store::page;
use super::Malformed;
use crate::http::{respond, Resp};
use crate::lock;
use hyper::StatusCode;
use serde_json::{json, Value};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

impl Ctx<'_> {
    /// `n` from the query, capped by the page size knob.
    fn page_limit(&self) -> Result<Option<usize>, Box<Resp>> {
        let asked = match self.req.param("n") {
            Some(n) => match n.parse::<usize>() {
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(Box::new(self.err(
                        StatusCode::BAD_REQUEST,
                        "PAGINATION_NUMBER_INVALID",
                        "n is not a number",
                    )))
                }
            },
            None => None,
        };
        Ok(match (asked, self.knobs.page_size) {
            (Some(a), Some(p)) => Some(a.min(p)),
            (a, p) => a.or(p),
        })
    }

    /// The `Link` header to the next page at `path` after `last`.
    fn link(&self, path: &str, n: Option<usize>, last: &str) -> (&'static str, String) {
        if self.knobs.malformed == Some(Malformed::Link) {
            return ("link", format!("{path}?last={last}; rel=next <"));
        }
        let mut query = form_urlencoded::Serializer::new(String::new());
        if let Some(n) = n {
            query.append_pair("n", &n.to_string());
        }
        query.append_pair("last", last);
        ("link", format!("<{path}?{}>; rel=\"next\"", query.finish()))
    }

    fn paged(&self, path: &str, key: &str, extra: Value, items: Vec<String>) -> Resp {
        let n = match self.page_limit() {
            Ok(n) => n,
            Err(response) => return *response,
        };
        let last = self.req.param("last");
        let (items, more) = page(&items, last.as_deref(), n);
        let mut headers = vec![("content-type", "application/json".to_string())];
        if more {
            if let Some(last) = items.last() {
                headers.push(self.link(path, n, last));
            }
        }
        let mut body = extra;
        body[key] = json!(items);
        respond(StatusCode::OK, &headers, body.to_string())
    }

    pub(crate) fn catalog(&self) -> Resp {
        let repos: Vec<String> = lock(&self.state.store).repos.keys().cloned().collect();
        self.paged("/v2/_catalog", "repositories", json!({}), repos)
    }

    pub(crate) fn tags(&self, name: &str) -> Resp {
        let tags: Option<Vec<String>> = lock(&self.state.store)
            .repos
            .get(name)
            .map(|r| r.tags.keys().cloned().collect());
        match tags {
            Some(tags) => self.paged(
                &format!("/v2/{name}/tags/list"),
                "tags",
                json!({"name": name}),
                tags,
            ),
            None => self.err(
                StatusCode::NOT_FOUND,
                "NAME_UNKNOWN",
                "repository name not known",
            ),
        }
    }

    pub(crate) fn referrers(&self, name: &str, digest: &str) -> Resp {
        if !self.knobs.referrers_api {
            // What distribution 2.8 answers: the route does not exist.
            return respond(
                StatusCode::NOT_FOUND,
                &[("content-type", "text/plain; charset=utf-8".to_string())],
                "404 page not found\n",
            );
        }
        let artifact_type = self.req.param("artifactType");
        let all = lock(&self.state.store).referrers(name, digest, artifact_type.as_deref());
        let n = match self.page_limit() {
            Ok(n) => n,
            Err(response) => return *response,
        };
        let keys: Vec<String> = all
            .iter()
            .map(|d| d["digest"].as_str().unwrap_or_default().to_string())
            .collect();
        let last = self.req.param("last");
        let (page_keys, more) = page(&keys, last.as_deref(), n);
        let manifests: Vec<&Value> = all
            .iter()
            .filter(|d| {
                page_keys
                    .iter()
                    .any(|k| d["digest"].as_str() == Some(k.as_str()))
            })
            .collect();
        let mut headers = vec![("content-type", INDEX.to_string())];
        if artifact_type.is_some() {
            headers.push(("oci-filters-applied", "artifactType".to_string()));
        }
        if more {
            if let Some(last) = page_keys.last() {
                let mut link = self.link(&format!("/v2/{name}/referrers/{digest}"), n, last);
                if let (Some(kind), false) = (
                    &artifact_type,
                    self.knobs.malformed == Some(Malformed::Link),
                ) {
                    let mut query = form_urlencoded::Serializer::new(String::new());
                    query.append_pair("artifactType", kind);
                    link.1 = link.1.replacen("?", &format!("?{}&", query.finish()), 1);
                }
                headers.push(link);
            }
        }
        let body = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests});
        respond(StatusCode::OK, &headers, body.to_string())
    }
}
