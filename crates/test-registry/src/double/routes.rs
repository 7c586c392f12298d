//! The double's routes: parsing the path, injected faults, auth, dispatch, and the blob and
//! manifest endpoints (uploads and listings have modules of their own).

use super::auth::{check, Need};
use super::store::{self, is_digest, verifies};
use super::{BodyFault, DState, Fault, Knobs, Malformed, RecordedRequest};
use crate::http::{disconnect, respond, Req, Resp, UnsizedBody};
use crate::lock;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;

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

/// One request being handled, with the state and the knobs as they were when it arrived.
pub(crate) struct Ctx<'a> {
    pub state: &'a DState,
    pub knobs: &'a Knobs,
    pub req: &'a Req,
}

impl Ctx<'_> {
    pub(crate) fn unsupported(&self) -> Resp {
        error(
            self.knobs,
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the operation is unsupported",
        )
    }

    pub(crate) fn err(&self, status: StatusCode, code: &str, message: &str) -> Resp {
        error(self.knobs, status, code, message)
    }

    /// `Docker-Content-Digest: digest`, unless the knob leaves it out.
    pub(crate) fn digest_header(&self, digest: &str) -> Vec<(&'static str, String)> {
        if self.knobs.omit_digest {
            Vec::new()
        } else {
            vec![("docker-content-digest", digest.to_string())]
        }
    }

    /// The body fault the knob sets for `digest`, if any.
    pub(crate) fn fault_for(&self, digest: &str) -> Option<BodyFault> {
        match &self.knobs.body_fault {
            Some((fault, None)) => Some(*fault),
            Some((fault, Some(only))) if only == digest => Some(*fault),
            _ => None,
        }
    }

    /// `bytes` as served under the body fault knob for `digest`, and the length announced.
    pub(crate) fn faulty(&self, digest: &str, bytes: Bytes) -> (Bytes, usize) {
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
    pub(crate) fn content(
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

    pub(crate) fn get_manifest(&self, name: &str, reference: &str) -> Resp {
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
            None if self.knobs.blob_as_manifest_fails && self.names_a_blob(name, reference) => self
                .err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "unknown error: the blob is no manifest",
                ),
            None => self.err(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                "manifest unknown",
            ),
        }
    }

    /// Whether `reference` is the digest of a blob stored in repository `name`.
    fn names_a_blob(&self, name: &str, reference: &str) -> bool {
        lock(&self.state.store)
            .repos
            .get(name)
            .is_some_and(|r| r.blobs.contains_key(reference))
    }

    pub(crate) fn put_manifest(&self, name: &str, reference: &str) -> Resp {
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

    pub(crate) fn delete_manifest(&self, name: &str, reference: &str) -> Resp {
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

    pub(crate) fn get_blob(&self, name: &str, digest: &str) -> Resp {
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

    pub(crate) fn delete_blob(&self, name: &str, digest: &str) -> Resp {
        let removed = lock(&self.state.store)
            .repos
            .get_mut(name)
            .and_then(|r| r.blobs.remove(digest));
        match removed {
            Some(_) => respond(StatusCode::ACCEPTED, &[], Bytes::new()),
            None => self.err(StatusCode::NOT_FOUND, "BLOB_UNKNOWN", "blob unknown"),
        }
    }
}
