//! A spec-following registry *test double*: an in-process HTTP server implementing enough of
//! the OCI distribution spec for a client's tests, with knobs for what no installable registry
//! does and for broken answers. It is not a registry: content lives in a `HashMap`, nothing is
//! garbage-collected, and only what a client's tests need is there.

mod auth;
mod listing;
mod routes;
mod store;
mod uploads;

use crate::http::{Req, Server};
use crate::lock;
use crate::token::TokenServer;
use crate::Error;
use bytes::Bytes;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use store::Store;

/// How the double authenticates requests.
#[derive(Debug, Clone, Default)]
pub enum DoubleAuth {
    /// Everything is allowed.
    #[default]
    None,
    /// HTTP Basic with one user, who may do everything.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// Bearer tokens from this token server: the double challenges with its realm and service
    /// and accepts exactly the tokens it issued and did not revoke
    /// ([`TokenServer::revoke_access_tokens`]), for the actions they grant.
    Token(Arc<TokenServer>),
}

/// What the double answers to a cross-repository mount (`POST ?mount=&from=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MountMode {
    /// 201 Created when the blob is in the source repository (else 202 and an upload).
    #[default]
    Created,
    /// Always 202 Accepted with an upload session, as registries that do not mount do: the
    /// client must fall back to uploading.
    Accepted,
}

/// An answer the double gives instead of the real one, for the next requests
/// ([`FakeRegistry::fail_next`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 Too Many Requests with `Retry-After: retry_after` (seconds) and a `TOOMANYREQUESTS`
    /// error body.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after: u64,
    },
    /// This status (e.g. 500, 502, 503) with an `UNKNOWN` error body.
    Status(u16),
    /// The connection is closed without an answer (a dropped connection).
    Disconnect,
    /// The request is handled normally, after this long (for a client's timeouts).
    Stall(std::time::Duration),
}

/// A way the double corrupts the bodies of blob and manifest GETs (and their HEAD lengths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// The right length, one byte flipped: the bytes do not match the digest.
    WrongBytes,
    /// `Content-Length` says the full size, but only half the bytes are sent before the
    /// connection closes.
    Truncated,
    /// No `Content-Length`: the body goes out chunked, so only the bytes tell the size.
    NoLength,
    /// `n` extra spaces after the content (the `Content-Length` says so, `Docker-Content-Digest`
    /// is still the stored one): too big, and the digest does not match.
    Oversized(usize),
}

/// A header or body the double makes unparseable on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Every 401 carries a `WWW-Authenticate` that does not parse (unterminated quote, no
    /// realm).
    WwwAuthenticate,
    /// Paginated answers carry a `Link` header that does not parse.
    Link,
    /// Error answers carry a body that is not JSON although the `Content-Type` says it is.
    ErrorBody,
}

/// Options fixed when the double starts; everything else is a knob of [`FakeRegistry`].
#[derive(Debug, Clone)]
pub struct FakeOptions {
    /// How requests are authenticated.
    pub auth: DoubleAuth,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            auth: DoubleAuth::None,
        }
    }
}

/// One request the double (or its redirect target) received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The method (`GET`, `HEAD`, `PUT`...).
    pub method: String,
    /// The path (`/v2/repo/blobs/sha256:...`).
    pub path: String,
    /// The raw query, if any.
    pub query: Option<String>,
    /// Every header, names lower-case, in order.
    pub headers: Vec<(String, String)>,
    /// The length of the body received.
    pub body_len: usize,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    fn of(req: &Req) -> RecordedRequest {
        RecordedRequest {
            method: req.method.to_string(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body_len: req.body.len(),
        }
    }
}

/// The knobs' current values.
#[derive(Debug, Clone)]
pub(crate) struct Knobs {
    pub mount: MountMode,
    pub referrers_api: bool,
    pub page_size: Option<usize>,
    pub omit_digest: bool,
    pub faults: VecDeque<Fault>,
    pub chunk_min: Option<u64>,
    pub body_fault: Option<(BodyFault, Option<String>)>,
    pub redirect_blobs: bool,
    pub malformed: Option<Malformed>,
    pub max_manifest: usize,
    pub blob_as_manifest_fails: bool,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            mount: MountMode::Created,
            referrers_api: true,
            page_size: None,
            omit_digest: false,
            faults: VecDeque::new(),
            chunk_min: None,
            body_fault: None,
            redirect_blobs: false,
            malformed: None,
            max_manifest: 4 << 20,
            blob_as_manifest_fails: false,
        }
    }
}

pub(crate) struct DState {
    pub auth: DoubleAuth,
    pub knobs: Mutex<Knobs>,
    pub store: Mutex<Store>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub redirected: Mutex<Vec<RecordedRequest>>,
    /// `http://HOST:PORT` of the redirect target.
    pub redirect_base: String,
}

/// The OCI distribution **test double**: an in-process server on 127.0.0.1 for a client's
/// tests, stopped on drop. See the crate's README for what it implements and what it is for.
///
/// Routes: `GET /v2/`; `GET /v2/_catalog?n=&last=`; `GET /v2/<name>/tags/list?n=&last=`;
/// `HEAD|GET|PUT|DELETE /v2/<name>/manifests/<tag-or-digest>`; `HEAD|GET|DELETE
/// /v2/<name>/blobs/<digest>`; `POST /v2/<name>/blobs/uploads/` (with `?digest=` for a
/// one-request upload, `?mount=&from=` for a mount), `PATCH|PUT|GET|DELETE
/// /v2/<name>/blobs/uploads/<id>`; `GET /v2/<name>/referrers/<digest>?artifactType=`.
/// Paginated answers carry `Link: <...>; rel="next"` when more remain.
pub struct FakeRegistry {
    state: Arc<DState>,
    server: Server,
    // Kept for its lifetime: it serves the redirected blob GETs.
    _redirect: Server,
}

impl std::fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("host", &self.host())
            .finish_non_exhaustive()
    }
}

impl FakeRegistry {
    /// Starts the double on a free port of 127.0.0.1, and its redirect target on a free port
    /// of 127.0.0.2 (a different host; 127.0.0.1 where that address cannot be bound). Fails
    /// when no port or thread can be had.
    pub fn start(options: FakeOptions) -> Result<FakeRegistry, Error> {
        let pending: Arc<Mutex<Option<Arc<DState>>>> = Arc::new(Mutex::new(None));
        let redirect_pending = pending.clone();
        let redirect = Server::start(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), {
            Arc::new(move |req| {
                let state = lock(&redirect_pending).clone();
                Box::pin(async move { routes::redirected(state, req) })
            })
        })
        .or_else(|_| {
            let redirect_pending = pending.clone();
            Server::start(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                Arc::new(move |req| {
                    let state = lock(&redirect_pending).clone();
                    Box::pin(async move { routes::redirected(state, req) })
                }),
            )
        })?;
        let main_pending = pending.clone();
        let server = Server::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Arc::new(move |req| {
                let state = lock(&main_pending).clone();
                Box::pin(async move { routes::handle(state, req).await })
            }),
        )?;
        let state = Arc::new(DState {
            auth: options.auth,
            knobs: Mutex::new(Knobs::default()),
            store: Mutex::new(Store::default()),
            requests: Mutex::new(Vec::new()),
            redirected: Mutex::new(Vec::new()),
            redirect_base: format!("http://{}", redirect.addr()),
        });
        *lock(&pending) = Some(state.clone());
        Ok(FakeRegistry {
            state,
            server,
            _redirect: redirect,
        })
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// `http://HOST:PORT` of the redirect target (127.0.0.2 where it could be bound).
    pub fn redirect_url(&self) -> &str {
        &self.state.redirect_base
    }

    /// Every request received so far, in order (the redirect target's are apart, in
    /// [`FakeRegistry::redirected_requests`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.requests).clone()
    }

    /// The requests received so far with `method` whose path contains `path_part`.
    pub fn requests_matching(&self, method: &str, path_part: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_part))
            .collect()
    }

    /// Forgets the recorded requests (of both listeners).
    pub fn clear_requests(&self) {
        lock(&self.state.requests).clear();
        lock(&self.state.redirected).clear();
    }

    /// The requests that followed a redirect to the other host, with their headers (did an
    /// `Authorization` header follow?).
    pub fn redirected_requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.redirected).clone()
    }

    /// What a cross-repository mount answers (201 by default).
    pub fn set_mount_mode(&self, mode: MountMode) {
        lock(&self.state.knobs).mount = mode;
    }

    /// Whether the referrers API exists (by default it does); without it, `GET .../referrers/`
    /// is a 404 and a manifest PUT with a subject gets no `OCI-Subject`, as with distribution
    /// 2.8, so the client must keep the referrers tag schema.
    pub fn set_referrers_api(&self, on: bool) {
        lock(&self.state.knobs).referrers_api = on;
    }

    /// The most entries one page of tags, catalog or referrers holds, whatever `n` asks
    /// (`None`: only `n` limits).
    pub fn set_page_size(&self, size: Option<usize>) {
        lock(&self.state.knobs).page_size = size;
    }

    /// Whether answers leave out `Docker-Content-Digest`.
    pub fn set_omit_digest_header(&self, on: bool) {
        lock(&self.state.knobs).omit_digest = on;
    }

    /// Whether a manifest request naming the digest of a blob (not a manifest) is answered
    /// with 500 `UNKNOWN`, as distribution 2.8 does (it reads the blob as a manifest and fails
    /// to parse it), instead of 404 `MANIFEST_UNKNOWN`.
    pub fn set_blob_as_manifest_fails(&self, on: bool) {
        lock(&self.state.knobs).blob_as_manifest_fails = on;
    }

    /// Answers the next `count` requests (any route) with `fault` instead of handling them.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut knobs = lock(&self.state.knobs);
        knobs.faults.extend(std::iter::repeat_n(fault, count));
    }

    /// How many injected faults are still to be answered.
    pub fn faults_pending(&self) -> usize {
        lock(&self.state.knobs).faults.len()
    }

    /// Announces `OCI-Chunk-Min-Length: n` on upload POSTs and enforces it: data sent after a
    /// chunk shorter than `n` (a second short PATCH, or a PUT with a body after one) is
    /// refused with 416 `BLOB_UPLOAD_INVALID`. `None` announces and enforces nothing.
    pub fn set_chunk_min_length(&self, min: Option<u64>) {
        lock(&self.state.knobs).chunk_min = min;
    }

    /// Corrupts the bodies of blob and manifest GETs: of `digest` only, or of every one when
    /// `digest` is `None`. `fault = None` stops it.
    pub fn set_body_fault(&self, fault: Option<BodyFault>, digest: Option<&str>) {
        lock(&self.state.knobs).body_fault = fault.map(|f| (f, digest.map(str::to_string)));
    }

    /// Whether blob GETs answer 307 to the redirect target (another host), which serves the
    /// bytes and records the request.
    pub fn set_redirect_blobs(&self, on: bool) {
        lock(&self.state.knobs).redirect_blobs = on;
    }

    /// Makes one kind of header or body malformed (`None`: all well-formed).
    pub fn set_malformed(&self, malformed: Option<Malformed>) {
        lock(&self.state.knobs).malformed = malformed;
    }

    /// The largest manifest a PUT may carry (4 MiB by default); larger is 413
    /// `SIZE_INVALID`. Seeding with [`FakeRegistry::put_manifest`] is not limited, to serve
    /// oversized manifests.
    pub fn set_max_manifest_size(&self, bytes: usize) {
        lock(&self.state.knobs).max_manifest = bytes;
    }

    /// Stores `bytes` as a blob of `repo` (seeding, no request); returns its sha256 digest.
    pub fn put_blob(&self, repo: &str, bytes: impl Into<Bytes>) -> String {
        let bytes = bytes.into();
        let digest = store::sha256(&bytes);
        lock(&self.state.store)
            .repo_mut(repo)
            .blobs
            .insert(digest.clone(), bytes);
        digest
    }

    /// Stores `bytes` as a manifest of `repo` with `media_type`, tagged `tag` if given (seeding,
    /// unchecked); returns its sha256 digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: impl Into<Bytes>,
    ) -> String {
        let bytes = bytes.into();
        let digest = store::sha256(&bytes);
        let mut store = lock(&self.state.store);
        let content = store.repo_mut(repo);
        content
            .manifests
            .insert(digest.clone(), (media_type.to_string(), bytes));
        if let Some(tag) = tag {
            content.tags.insert(tag.to_string(), digest.clone());
        }
        digest
    }

    /// The bytes of blob `digest` in `repo`, if stored.
    pub fn blob(&self, repo: &str, digest: &str) -> Option<Bytes> {
        lock(&self.state.store)
            .repos
            .get(repo)
            .and_then(|r| r.blobs.get(digest).cloned())
    }

    /// The media type and bytes of the manifest `reference` (tag or digest) names in `repo`.
    pub fn manifest(&self, repo: &str, reference: &str) -> Option<(String, Bytes)> {
        let store = lock(&self.state.store);
        let digest = store.resolve(repo, reference)?;
        store
            .repos
            .get(repo)
            .and_then(|r| r.manifests.get(&digest).cloned())
    }

    /// The tags of `repo`, sorted.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        lock(&self.state.store)
            .repos
            .get(repo)
            .map(|r| r.tags.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The repositories, sorted.
    pub fn repositories(&self) -> Vec<String> {
        lock(&self.state.store).repos.keys().cloned().collect()
    }

    /// How many uploads were started and neither finished nor cancelled.
    pub fn uploads_in_progress(&self) -> usize {
        lock(&self.state.store).uploads.len()
    }
}
