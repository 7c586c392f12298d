//! The double's routes: parsing the path, faults, and each endpoint of the distribution spec.

use super::auth::{allows, check, Need};
use super::store::{self, is_digest, page, verifies, Upload};
use super::{BodyFault, DState, Fault, Knobs, Malformed, MountMode, RecordedRequest};
use crate::http::{disconnect, respond, Req, Resp, UnsizedBody};
use crate::token::lock;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// Which endpoint a path names.
enum Route {
    Ping,
    Catalog,
    Tags(String),
    Manifest(String, String),
    Blob(String, String),
    Uploads(String),
    Upload(String, String),
    Referrers(String, String),
}

fn parse(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/v2/")?;
    if rest.is_empty() {
        return Some(Route::Ping);
    }
    if rest == "_catalog" {
        return Some(Route::Catalog);
    }
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Route::Tags(name.to_string()));
    }
    if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
        return Some(Route::Uploads(name.to_string()));
    }
    let split = |marker: &str| {
        rest.rsplit_once(marker)
            .filter(|(name, tail)| !name.is_empty() && !tail.is_empty() && !tail.contains('/'))
            .map(|(name, tail)| (name.to_string(), tail.to_string()))
    };
    if let Some((name, id)) = split("/blobs/uploads/") {
        return Some(Route::Upload(name, id));
    }
    if let Some((name, reference)) = split("/manifests/") {
        return Some(Route::Manifest(name, reference));
    }
    if let Some((name, digest)) = split("/blobs/") {
        return Some(Route::Blob(name, digest));
    }
    if let Some((name, digest)) = split("/referrers/") {
        return Some(Route::Referrers(name, digest));
    }
    None
}

/// An error answer in the distribution spec's format (or not JSON at all, when the knob says
/// error bodies are malformed).
pub(crate) fn error(knobs: &Knobs, status: StatusCode, code: &str, message: &str) -> Resp {
    let body = if knobs.malformed == Some(Malformed::ErrorBody) {
        "{\"errors\": [{\"code\": \"UNKN".to_string()
    } else {
        json!({"errors": [{"code": code, "message": message}]}).to_string()
    };
    respond(
        status,
        &[("content-type", "application/json".to_string())],
        body,
    )
}

fn fault_response(knobs: &Knobs, fault: Fault) -> Resp {
    match fault {
        Fault::TooManyRequests { retry_after } => {
            let mut response = error(
                knobs,
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                "too many requests (injected by the test)",
            );
            if let Ok(value) = hyper::header::HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Fault::Disconnect => disconnect(),
        // Handled before the request is: it only delays it.
        Fault::Stall(_) => respond(StatusCode::INTERNAL_SERVER_ERROR, &[], Bytes::new()),
        Fault::Status(status) => error(
            knobs,
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "UNKNOWN",
            "failure injected by the test",
        ),
    }
}

/// Handles one request of the double.
pub(crate) async fn handle(state: Option<Arc<DState>>, req: Req) -> Resp {
    let Some(state) = state else {
        return respond(StatusCode::SERVICE_UNAVAILABLE, &[], "starting");
    };
    lock(&state.requests).push(RecordedRequest::of(&req));
    let (knobs, fault) = {
        let mut knobs = lock(&state.knobs);
        let fault = knobs.faults.pop_front();
        (knobs.clone(), fault)
    };
    match fault {
        Some(Fault::Stall(delay)) => tokio::time::sleep(delay).await,
        Some(fault) => return fault_response(&knobs, fault),
        None => {}
    }
    let Some(route) = parse(&req.path) else {
        return error(&knobs, StatusCode::NOT_FOUND, "NOT_FOUND", "no such route");
    };
    let need = match &route {
        Route::Ping => Need::Ping,
        Route::Catalog => Need::Catalog,
        Route::Tags(name) | Route::Referrers(name, _) => Need::Repo {
            name,
            action: "pull",
        },
        Route::Manifest(name, _) | Route::Blob(name, _) => Need::Repo {
            name,
            action: match req.method {
                Method::GET | Method::HEAD => "pull",
                Method::DELETE => "delete",
                _ => "push",
            },
        },
        Route::Uploads(name) | Route::Upload(name, _) => Need::Repo {
            name,
            action: "push",
        },
    };
    if let Err(challenge) = check(&state, &knobs, &req, &need) {
        return *challenge;
    }
    let ctx = Ctx {
        state: &state,
        knobs: &knobs,
        req: &req,
    };
    match (route, &req.method) {
        (Route::Ping, &Method::GET | &Method::HEAD) => respond(
            StatusCode::OK,
            &[(
                "docker-distribution-api-version",
                "registry/2.0".to_string(),
            )],
            "{}",
        ),
        (Route::Catalog, &Method::GET) => ctx.catalog(),
        (Route::Tags(name), &Method::GET) => ctx.tags(&name),
        (Route::Manifest(name, reference), method) => match *method {
            Method::GET | Method::HEAD => ctx.get_manifest(&name, &reference),
            Method::PUT => ctx.put_manifest(&name, &reference),
            Method::DELETE => ctx.delete_manifest(&name, &reference),
            _ => ctx.unsupported(),
        },
        (Route::Blob(name, digest), method) => match *method {
            Method::GET | Method::HEAD => ctx.get_blob(&name, &digest),
            Method::DELETE => ctx.delete_blob(&name, &digest),
            _ => ctx.unsupported(),
        },
        (Route::Uploads(name), &Method::POST) => ctx.start_upload(&name),
        (Route::Upload(name, id), method) => match *method {
            Method::PATCH => ctx.patch_upload(&name, &id),
            Method::PUT => ctx.finish_upload(&name, &id),
            Method::GET => ctx.upload_status(&name, &id),
            Method::DELETE => ctx.cancel_upload(&id),
            _ => ctx.unsupported(),
        },
        (Route::Referrers(name, digest), &Method::GET) => ctx.referrers(&name, &digest),
        _ => ctx.unsupported(),
    }
}

/// Serves a redirected blob GET on the other host: `/blob/<digest>?repo=<name>`. Records the
/// request with its headers.
pub(crate) fn redirected(state: Option<Arc<DState>>, req: Req) -> Resp {
    let Some(state) = state else {
        return respond(StatusCode::SERVICE_UNAVAILABLE, &[], "starting");
    };
    lock(&state.redirected).push(RecordedRequest::of(&req));
    let digest = req.path.strip_prefix("/blob/").unwrap_or_default();
    let repo = req.param("repo").unwrap_or_default();
    let bytes = lock(&state.store)
        .repos
        .get(&repo)
        .and_then(|r| r.blobs.get(digest).cloned());
    match bytes {
        Some(bytes) => respond(
            StatusCode::OK,
            &[("content-type", "application/octet-stream".to_string())],
            bytes,
        ),
        None => respond(StatusCode::NOT_FOUND, &[], "not found"),
    }
}

struct Ctx<'a> {
    state: &'a DState,
    knobs: &'a Knobs,
    req: &'a Req,
}

impl Ctx<'_> {
    fn unsupported(&self) -> Resp {
        error(
            self.knobs,
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )
    }

    fn err(&self, status: StatusCode, code: &str, message: &str) -> Resp {
        error(self.knobs, status, code, message)
    }

    /// `Docker-Content-Digest: digest`, unless the knob leaves it out.
    fn digest_header(&self, digest: &str) -> Vec<(&'static str, String)> {
        if self.knobs.omit_digest {
            Vec::new()
        } else {
            vec![("docker-content-digest", digest.to_string())]
        }
    }

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

    fn catalog(&self) -> Resp {
        let repos: Vec<String> = lock(&self.state.store).repos.keys().cloned().collect();
        self.paged("/v2/_catalog", "repositories", json!({}), repos)
    }

    fn tags(&self, name: &str) -> Resp {
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

    /// The body fault the knob sets for `digest`, if any.
    fn fault_for(&self, digest: &str) -> Option<BodyFault> {
        match &self.knobs.body_fault {
            Some((fault, None)) => Some(*fault),
            Some((fault, Some(only))) if only == digest => Some(*fault),
            _ => None,
        }
    }

    /// `bytes` as served under the body fault knob for `digest`, and the length announced.
    fn faulty(&self, digest: &str, bytes: Bytes) -> (Bytes, usize) {
        match self.fault_for(digest) {
            Some(BodyFault::NoLength) => {
                let len = bytes.len();
                (bytes, len)
            }
            None => {
                let len = bytes.len();
                (bytes, len)
            }
            Some(BodyFault::WrongBytes) => {
                let mut changed = bytes.to_vec();
                if let Some(first) = changed.first_mut() {
                    *first ^= 0x01;
                }
                let len = changed.len();
                (Bytes::from(changed), len)
            }
            Some(BodyFault::Truncated) => {
                let len = bytes.len();
                (bytes.slice(..len / 2), len)
            }
            Some(BodyFault::Oversized(extra)) => {
                let mut grown = bytes.to_vec();
                grown.extend(std::iter::repeat_n(b' ', extra));
                let len = grown.len();
                (Bytes::from(grown), len)
            }
        }
    }

    /// A GET or HEAD answer with `bytes` (corrupted as the knobs say) and `headers`.
    fn content(
        &self,
        digest: &str,
        bytes: Bytes,
        mut headers: Vec<(&'static str, String)>,
    ) -> Resp {
        let fault = self.fault_for(digest);
        let (bytes, len) = self.faulty(digest, bytes);
        headers.extend(self.digest_header(digest));
        if fault != Some(BodyFault::NoLength) {
            headers.push(("content-length", len.to_string()));
        }
        if self.req.method == Method::HEAD {
            return respond(StatusCode::OK, &headers, Bytes::new());
        }
        let mut response = respond(StatusCode::OK, &headers, Bytes::new());
        // hyper is not told the body's length: it sends what there is, chunked when no
        // Content-Length was set, cut short when the one set is more than there is.
        *response.body_mut() = UnsizedBody::new(bytes).boxed();
        response
    }

    fn get_manifest(&self, name: &str, reference: &str) -> Resp {
        let found = {
            let store = lock(&self.state.store);
            store.resolve(name, reference).and_then(|digest| {
                store
                    .repos
                    .get(name)
                    .and_then(|r| r.manifests.get(&digest).cloned())
                    .map(|m| (digest, m))
            })
        };
        match found {
            Some((digest, (media_type, bytes))) => {
                self.content(&digest, bytes, vec![("content-type", media_type)])
            }
            None => self.err(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ),
        }
    }

    fn put_manifest(&self, name: &str, reference: &str) -> Resp {
        let body = &self.req.body;
        if body.len() > self.knobs.max_manifest {
            return self.err(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                "manifest too big",
            );
        }
        let Some(media_type) = self.req.header("content-type").map(str::to_string) else {
            return self.err(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                "no Content-Type",
            );
        };
        let digest = if is_digest(reference) {
            if !verifies(reference, body) {
                return self.err(
                    StatusCode::BAD_REQUEST,
                    "DIGEST_INVALID",
                    "the manifest does not match its digest",
                );
            }
            reference.to_string()
        } else {
            store::sha256(body)
        };
        let Ok(manifest) = serde_json::from_slice::<Value>(body) else {
            return self.err(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", "not JSON");
        };
        let mut store = lock(&self.state.store);
        let missing = store.missing_references(name, &manifest);
        if let Some(first) = missing.first() {
            return self.err(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                &format!("{first} is not in the repository"),
            );
        }
        let repo = store.repo_mut(name);
        repo.manifests
            .insert(digest.clone(), (media_type, body.clone()));
        if !is_digest(reference) {
            repo.tags.insert(reference.to_string(), digest.clone());
        }
        drop(store);
        let mut headers = vec![("location", format!("/v2/{name}/manifests/{digest}"))];
        headers.extend(self.digest_header(&digest));
        if self.knobs.referrers_api {
            if let Some(subject) = manifest["subject"]["digest"].as_str() {
                headers.push(("oci-subject", subject.to_string()));
            }
        }
        respond(StatusCode::CREATED, &headers, Bytes::new())
    }

    fn delete_manifest(&self, name: &str, reference: &str) -> Resp {
        let mut store = lock(&self.state.store);
        let Some(digest) = store.resolve(name, reference) else {
            return self.err(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            );
        };
        let repo = store.repo_mut(name);
        if is_digest(reference) {
            repo.manifests.remove(&digest);
            repo.tags.retain(|_, d| *d != digest);
        } else {
            repo.tags.remove(reference);
        }
        respond(StatusCode::ACCEPTED, &[], Bytes::new())
    }

    fn get_blob(&self, name: &str, digest: &str) -> Resp {
        let bytes = lock(&self.state.store)
            .repos
            .get(name)
            .and_then(|r| r.blobs.get(digest).cloned());
        let Some(bytes) = bytes else {
            return self.err(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown");
        };
        if self.knobs.redirect_blobs && self.req.method == Method::GET {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("repo", name);
            let location = format!(
                "{}/blob/{digest}?{}",
                self.state.redirect_base,
                query.finish()
            );
            return respond(
                StatusCode::TEMPORARY_REDIRECT,
                &[("location", location)],
                Bytes::new(),
            );
        }
        self.content(
            digest,
            bytes,
            vec![("content-type", "application/octet-stream".to_string())],
        )
    }

    fn delete_blob(&self, name: &str, digest: &str) -> Resp {
        let removed = lock(&self.state.store)
            .repos
            .get_mut(name)
            .and_then(|r| r.blobs.remove(digest));
        match removed {
            Some(_) => respond(StatusCode::ACCEPTED, &[], Bytes::new()),
            None => self.err(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
        }
    }

    /// 201 for blob `digest` of `name`, now stored.
    fn blob_created(&self, name: &str, digest: &str) -> Resp {
        let mut headers = vec![("location", format!("/v2/{name}/blobs/{digest}"))];
        headers.extend(self.digest_header(digest));
        respond(StatusCode::CREATED, &headers, Bytes::new())
    }

    fn store_blob(&self, name: &str, digest: &str, bytes: Bytes) -> Resp {
        if !verifies(digest, &bytes) {
            return self.err(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the content does not match the digest",
            );
        }
        lock(&self.state.store)
            .repo_mut(name)
            .blobs
            .insert(digest.to_string(), bytes);
        self.blob_created(name, digest)
    }

    fn start_upload(&self, name: &str) -> Resp {
        if let (Some(mount), Some(from)) = (self.req.param("mount"), self.req.param("from")) {
            // Like distribution: the source needs pull access, else the mount quietly becomes
            // an upload.
            let source_allowed = allows(
                self.state,
                self.knobs,
                self.req,
                &Need::Repo {
                    name: &from,
                    action: "pull",
                },
            );
            if self.knobs.mount == MountMode::Created && source_allowed {
                let mut store = lock(&self.state.store);
                let source = store
                    .repos
                    .get(&from)
                    .and_then(|r| r.blobs.get(&mount).cloned());
                if let Some(bytes) = source {
                    store.repo_mut(name).blobs.insert(mount.clone(), bytes);
                    drop(store);
                    return self.blob_created(name, &mount);
                }
            }
        } else if let Some(digest) = self.req.param("digest") {
            return self.store_blob(name, &digest, self.req.body.clone());
        }
        let id = {
            let mut store = lock(&self.state.store);
            store.next_upload += 1;
            let id = format!("upload-{}", store.next_upload);
            store.uploads.insert(
                id.clone(),
                Upload {
                    repo: name.to_string(),
                    ..Upload::default()
                },
            );
            id
        };
        let mut headers = vec![
            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
            ("range", "0-0".to_string()),
            ("docker-upload-uuid", id),
        ];
        if let Some(min) = self.knobs.chunk_min {
            headers.push(("oci-chunk-min-length", min.to_string()));
        }
        respond(StatusCode::ACCEPTED, &headers, Bytes::new())
    }

    /// Appends the body to upload `id`, checking `Content-Range` and the chunk minimum;
    /// `Err` is the answer refusing it.
    fn append(&self, name: &str, id: &str, is_patch: bool) -> Result<usize, Box<Resp>> {
        let mut store = lock(&self.state.store);
        let Some(upload) = store.uploads.get_mut(id).filter(|u| u.repo == name) else {
            return Err(Box::new(self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            )));
        };
        let body = &self.req.body;
        if body.is_empty() {
            return Ok(upload.data.len());
        }
        if let Some(range) = self.req.header("content-range") {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<usize>().ok());
            if start != Some(upload.data.len()) {
                return Err(Box::new(range_error(self.knobs, upload.data.len())));
            }
        }
        if let Some(min) = self.knobs.chunk_min {
            if upload.short_chunk_seen {
                return Err(Box::new(range_error(self.knobs, upload.data.len())));
            }
            if is_patch && (body.len() as u64) < min {
                upload.short_chunk_seen = true;
            }
        }
        upload.data.extend_from_slice(body);
        Ok(upload.data.len())
    }

    fn patch_upload(&self, name: &str, id: &str) -> Resp {
        match self.append(name, id, true) {
            Ok(len) => respond(
                StatusCode::ACCEPTED,
                &[
                    ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("range", format!("0-{}", len.saturating_sub(1))),
                    ("docker-upload-uuid", id.to_string()),
                ],
                Bytes::new(),
            ),
            Err(response) => *response,
        }
    }

    fn finish_upload(&self, name: &str, id: &str) -> Resp {
        let Some(digest) = self.req.param("digest") else {
            return self.err(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "no digest given");
        };
        if let Err(response) = self.append(name, id, false) {
            return *response;
        }
        let data = lock(&self.state.store)
            .uploads
            .remove(id)
            .map(|u| Bytes::from(u.data))
            .unwrap_or_default();
        self.store_blob(name, &digest, data)
    }

    fn upload_status(&self, name: &str, id: &str) -> Resp {
        let len = lock(&self.state.store)
            .uploads
            .get(id)
            .filter(|u| u.repo == name)
            .map(|u| u.data.len());
        match len {
            Some(len) => respond(
                StatusCode::NO_CONTENT,
                &[
                    ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("range", format!("0-{}", len.saturating_sub(1))),
                    ("docker-upload-uuid", id.to_string()),
                ],
                Bytes::new(),
            ),
            None => self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            ),
        }
    }

    fn cancel_upload(&self, id: &str) -> Resp {
        match lock(&self.state.store).uploads.remove(id) {
            Some(_) => respond(StatusCode::NO_CONTENT, &[], Bytes::new()),
            None => self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            ),
        }
    }

    fn referrers(&self, name: &str, digest: &str) -> Resp {
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

fn range_error(knobs: &Knobs, have: usize) -> Resp {
    let mut response = error(
        knobs,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
        "chunk out of order or smaller than OCI-Chunk-Min-Length",
    );
    if let Ok(value) =
        hyper::header::HeaderValue::from_str(&format!("0-{}", have.saturating_sub(1)))
    {
        response.headers_mut().insert("range", value);
    }
    response
}
