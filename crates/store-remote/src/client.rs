//! The HTTP core shared by every repository: sends a request with the right credentials,
//! answers a 401 challenge, retries what is safe to retry, and turns failures into
//! [`store_core::Error::Remote`].

use crate::auth::{token_for, AuthState, HostAuth, Token};
use crate::challenge::{parse_challenge, Scheme};
use crate::credentials::{Credential, DockerConfig, SharedProvider, Static};
use crate::options::ClientOptions;
use crate::secret::Secret;
use crate::wire;
use base64::Engine;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use std::sync::Arc;
use store_core::{Error, ErrorKind, Result};
use url::Url;

/// The most of an error body read to find the registry's code and message.
const MAX_ERROR_BODY: u64 = 64 * 1024;

/// A registry client: one connection pool, one credential source and one token cache, shared
/// by every [`crate::Registry`] and [`crate::Repository`] made from it. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    opts: ClientOptions,
    credentials: SharedProvider,
    /// The credential of each registry, asked of the provider once (reading the Docker config
    /// or running a helper costs a file read or a process); dropped when the registry refuses it.
    known: std::sync::Mutex<std::collections::HashMap<String, Credential>>,
    auth: AuthState,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

/// The body of a request: always replayable, so that a 401 can be answered and the request
/// sent again (uploads send large blobs as a series of chunk requests).
pub(crate) enum Body {
    Empty,
    Bytes(Bytes),
}

/// One request as the repository code describes it.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    /// The registry (as named in references) whose credentials apply.
    pub(crate) registry: String,
    /// The token scope this request needs (`repository:a/b:pull`), empty for none.
    pub(crate) scope: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
    /// Whether a 5xx answer is tried again (429 and dropped connections always are, for an
    /// idempotent method).
    pub(crate) retry_server_errors: bool,
}

impl Call {
    pub(crate) fn new(method: Method, url: Url, registry: &str, scope: String) -> Call {
        Call {
            method,
            url,
            registry: registry.to_string(),
            scope,
            headers: HeaderMap::new(),
            body: Body::Empty,
            retry_server_errors: true,
        }
    }

    /// Returns a 5xx answer at once instead of retrying it, for a caller that can tell a
    /// registry's known misanswer from a fault (and retries the fault itself).
    pub(crate) fn without_server_error_retries(mut self) -> Call {
        self.retry_server_errors = false;
        self
    }

    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Call {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub(crate) fn body(mut self, body: Body) -> Call {
        self.body = body;
        self
    }
}

impl Client {
    /// A client with `options` whose credentials come from the Docker config (see
    /// [`DockerConfig`]).
    ///
    /// Errors: [`ErrorKind::Backend`] when the HTTP client cannot be built (no TLS roots).
    pub fn new(options: ClientOptions) -> Result<Client> {
        Client::with_credentials(options, Arc::new(DockerConfig))
    }

    /// A client with anonymous access only.
    ///
    /// Errors: as [`Client::new`].
    pub fn anonymous(options: ClientOptions) -> Result<Client> {
        Client::with_credentials(options, Arc::new(Static(Credential::Anonymous)))
    }

    /// A client whose credentials come from `credentials`.
    ///
    /// Errors: as [`Client::new`].
    pub fn with_credentials(options: ClientOptions, credentials: SharedProvider) -> Result<Client> {
        let http = reqwest::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            // reqwest drops Authorization on a redirect to another host, port or scheme, so
            // credentials never follow a blob redirect to a storage backend.
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .map_err(|e| Error::backend("building the HTTP client", e))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                opts: options,
                credentials,
                known: std::sync::Mutex::default(),
                auth: AuthState::default(),
            }),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.opts
    }

    /// The base URL of `host`'s API: `http(s)://host/v2/`.
    pub(crate) fn base_url(&self, host: &str) -> Result<Url> {
        let text = format!("{}://{}/v2/", self.inner.opts.scheme_for(host), host);
        Url::parse(&text).map_err(|e| Error::InvalidReference {
            reference: host.to_string(),
            reason: e.to_string(),
        })
    }

    /// Sends `call`, authenticating and retrying as needed, and returns the response whatever
    /// its status (callers check it with [`check`]). Only a transport failure or an
    /// authentication that cannot succeed is an error here.
    pub(crate) async fn send(&self, mut call: Call) -> Result<Response> {
        let opts = &self.inner.opts;
        let idempotent = matches!(
            call.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        let replay = match std::mem::replace(&mut call.body, Body::Empty) {
            Body::Bytes(bytes) => Some(bytes),
            Body::Empty => None,
        };
        let mut attempt = 0u32;
        let mut authenticated_after_401 = false;
        let mut rejected: Option<Secret> = None;
        loop {
            let sent_token = self.authorization(&call, rejected.take()).await?;
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .headers(call.headers.clone());
            if let Some((header, _)) = &sent_token {
                request = request.header(AUTHORIZATION, header.clone());
            }
            if let Some(bytes) = &replay {
                request = request.body(bytes.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(err) => {
                    if idempotent && attempt < opts.retries && is_transient(&err) {
                        tokio::time::sleep(opts.backoff(attempt, None)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(transport_error(&call.method, &call.url, &err));
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && authenticated_after_401 {
                self.forget_credential(&call.registry);
            }
            if status == StatusCode::UNAUTHORIZED && !authenticated_after_401 {
                let challenge = response
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                if let Some(challenge) = challenge {
                    let host = origin_host(&call.url);
                    match challenge.scheme {
                        Scheme::Basic => self.inner.auth.set_host_auth(&host, HostAuth::Basic),
                        Scheme::Bearer => {
                            let Some(realm) = challenge.param("realm") else {
                                return Ok(response);
                            };
                            self.inner.auth.set_host_auth(
                                &host,
                                HostAuth::Bearer {
                                    realm: realm.to_string(),
                                    service: challenge.param("service").map(str::to_string),
                                },
                            );
                        }
                        Scheme::Other(_) => return Ok(response),
                    }
                    authenticated_after_401 = true;
                    rejected = sent_token.map(|(_, token)| token);
                    continue;
                }
                return Ok(response);
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || (call.retry_server_errors && matches!(status.as_u16(), 500 | 502 | 503 | 504));
            if retryable && idempotent && attempt < opts.retries {
                let asked = wire::retry_after(
                    response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok()),
                );
                drop(response);
                tokio::time::sleep(opts.backoff(attempt, asked)).await;
                attempt += 1;
                continue;
            }
            return Ok(response);
        }
    }

    /// The `Authorization` header for `call` (and the secret in it, to recognise a rejected
    /// token), or `None` when the host has not asked for credentials or the URL is not the
    /// registry's own host.
    async fn authorization(
        &self,
        call: &Call,
        rejected: Option<Secret>,
    ) -> Result<Option<(HeaderValue, Secret)>> {
        let host = origin_host(&call.url);
        let Some(auth) = self.inner.auth.host_auth(&host) else {
            return Ok(None);
        };
        match auth {
            HostAuth::Basic => match self.credential(&call.registry).await {
                Credential::Basic { username, password } => {
                    let raw = format!("{username}:{}", password.expose());
                    let encoded = base64::engine::general_purpose::STANDARD.encode(raw);
                    let secret = Secret::new(format!("Basic {encoded}"));
                    Ok(sensitive_header(&secret).map(|h| (h, secret)))
                }
                _ => Ok(None),
            },
            HostAuth::Bearer { realm, service } => {
                let slot = self.inner.auth.slot(&host, &call.scope);
                let token = token_for(&slot, rejected.as_ref(), || {
                    self.fetch_token(call, &host, &realm, service.as_deref())
                })
                .await?;
                let secret = Secret::new(format!("Bearer {}", token.expose()));
                Ok(sensitive_header(&secret).map(|h| (h, token)))
            }
        }
    }

    async fn credential(&self, registry: &str) -> Credential {
        let known = |inner: &Inner| {
            inner
                .known
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(registry)
                .cloned()
        };
        if let Some(credential) = known(&self.inner) {
            return credential;
        }
        let provider = Arc::clone(&self.inner.credentials);
        let name = registry.to_string();
        // Reading the Docker config and running a credential helper block.
        let credential = tokio::task::spawn_blocking(move || provider.credential(&name))
            .await
            .unwrap_or(Credential::Anonymous);
        self.inner
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(registry.to_string(), credential.clone());
        credential
    }

    /// Forgets the credential of `registry`, so that the next request asks the provider again
    /// (after a refusal: the user may have logged in meanwhile).
    fn forget_credential(&self, registry: &str) {
        self.inner
            .known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(registry);
    }

    /// Asks the token server at `realm` for a token for the call's scope: an OAuth2 refresh
    /// token grant when there is a refresh token, else a GET with the basic credentials (or
    /// none).
    async fn fetch_token(
        &self,
        call: &Call,
        host: &str,
        realm: &str,
        service: Option<&str>,
    ) -> Result<Token> {
        let opts = &self.inner.opts;
        let mut url = Url::parse(realm).map_err(|_| {
            remote_error(
                ErrorKind::Unauthorized,
                &Method::GET,
                &call.url,
                None,
                String::new(),
                "the registry's token realm is not a URL".into(),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(remote_error(
                ErrorKind::Unauthorized,
                &Method::GET,
                &call.url,
                None,
                String::new(),
                "the registry's token realm is not an http(s) URL".into(),
            ));
        }
        let credential = self.credential(&call.registry).await;
        let refresh = match &credential {
            Credential::RefreshToken(token) => Some(
                self.inner
                    .auth
                    .refresh_token(host)
                    .unwrap_or_else(|| token.clone()),
            ),
            _ => None,
        };
        let request = if let Some(refresh) = &refresh {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", refresh.expose().to_string()),
                ("client_id", "ocistore".to_string()),
            ];
            if let Some(service) = service {
                form.push(("service", service.to_string()));
            }
            for scope in call.scope.split_whitespace() {
                form.push(("scope", scope.to_string()));
            }
            self.inner.http.post(url.clone()).form(&form)
        } else {
            {
                let mut query = url.query_pairs_mut();
                if let Some(service) = service {
                    query.append_pair("service", service);
                }
                for scope in call.scope.split_whitespace() {
                    query.append_pair("scope", scope);
                }
                if let Credential::Basic { username, .. } = &credential {
                    query.append_pair("account", username);
                }
            }
            let mut request = self.inner.http.get(url.clone());
            if let Credential::Basic { username, password } = &credential {
                request = request.basic_auth(username, Some(password.expose()));
            }
            request
        };
        let method = if refresh.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let shown = without_query(&url);
        let response = self.send_token_request(request, &method, &shown).await?;
        let status = response.status();
        if !status.is_success() {
            let kind = match status.as_u16() {
                400 | 401 => ErrorKind::Unauthorized,
                403 => ErrorKind::Denied,
                429 => ErrorKind::TooManyRequests,
                _ => ErrorKind::Backend,
            };
            let body = read_bounded_lossy(response, MAX_ERROR_BODY).await;
            let (code, message) = wire::error_code_message(&body);
            let message = if message.is_empty() {
                "the token server refused the credentials".to_string()
            } else {
                message
            };
            return Err(remote_error(
                kind,
                &method,
                &shown,
                Some(status.as_u16()),
                code,
                message,
            ));
        }
        let limit = opts.max_metadata_bytes.min(1 << 20);
        let body = read_bounded(response, limit, &method, &shown).await?;
        let parsed = wire::parse_token_response(&body).ok_or_else(|| {
            remote_error(
                ErrorKind::Unauthorized,
                &method,
                &shown,
                Some(status.as_u16()),
                String::new(),
                "the token server's answer carries no token".into(),
            )
        })?;
        if let Some(new_refresh) = parsed.refresh_token {
            self.inner.auth.set_refresh_token(host, new_refresh);
        }
        Ok(Token::new(parsed.token, parsed.expires_in))
    }
}

impl Client {
    /// Sends a token request with the retry policy of idempotent registry requests: a dropped
    /// connection, a 5xx gateway/unavailable answer or a 429 is tried again after the backoff
    /// (or the `Retry-After` asked for), up to `retries` times. Asking for a token grants
    /// nothing new when repeated (a refresh grant echoes the same refresh token), so the POST
    /// form is retried too. Returns the last answer whatever its status; errors only on a
    /// transport failure that outlived the retries.
    async fn send_token_request(
        &self,
        request: reqwest::RequestBuilder,
        method: &Method,
        shown: &Url,
    ) -> Result<Response> {
        let opts = &self.inner.opts;
        let mut attempt = 0u32;
        loop {
            // Query and form bodies are in memory, so the builder always clones; a builder
            // that cannot is sent once, unretried.
            let Some(this) = request.try_clone() else {
                return request
                    .send()
                    .await
                    .map_err(|e| transport_error(method, shown, &e));
            };
            let again = attempt < opts.retries;
            let response = match this.send().await {
                Ok(response) => response,
                Err(err) => {
                    if again && is_transient(&err) {
                        tokio::time::sleep(opts.backoff(attempt, None)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(transport_error(method, shown, &err));
                }
            };
            let status = response.status();
            let retryable = status == StatusCode::TOO_MANY_REQUESTS
                || matches!(status.as_u16(), 500 | 502 | 503 | 504);
            if !(retryable && again) {
                return Ok(response);
            }
            let asked = wire::retry_after(
                response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok()),
            );
            drop(response);
            tokio::time::sleep(opts.backoff(attempt, asked)).await;
            attempt += 1;
        }
    }
}

/// A header value marked sensitive (hyper keeps it out of its own debug output).
fn sensitive_header(secret: &Secret) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(secret.expose()).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// `scheme://host:port` of `url`, the key of what the client learnt about a host.
pub(crate) fn origin_host(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// `url` without userinfo, query or fragment: what errors show.
pub(crate) fn without_query(url: &Url) -> Url {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown
}

fn is_transient(err: &reqwest::Error) -> bool {
    err.is_connect() || err.is_timeout() || err.is_request() || err.is_body()
}

/// A [`Error::Remote`] for a request that got no usable response.
pub(crate) fn transport_error(method: &Method, url: &Url, err: &reqwest::Error) -> Error {
    let mut message = String::new();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(err);
    message.push_str(if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    });
    while let Some(inner) = cause {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    remote_error(
        if err.is_timeout() {
            ErrorKind::Io
        } else {
            ErrorKind::Backend
        },
        method,
        &without_query(url),
        None,
        String::new(),
        message,
    )
}

pub(crate) fn remote_error(
    kind: ErrorKind,
    method: &Method,
    url: &Url,
    status: Option<u16>,
    code: String,
    message: String,
) -> Error {
    Error::Remote {
        kind,
        method: method.to_string(),
        url: without_query(url).to_string(),
        status,
        code,
        message,
    }
}

/// The kind a registry's failure status (and error code) means.
pub(crate) fn kind_of(status: u16, code: &str) -> ErrorKind {
    match status {
        400 => {
            if code.contains("DIGEST_INVALID") || code.contains("SIZE_INVALID") {
                ErrorKind::Mismatch
            } else if code.contains("MANIFEST_INVALID")
                || code.contains("MANIFEST_BLOB_UNKNOWN")
                || code.contains("MANIFEST_UNVERIFIED")
            {
                ErrorKind::InvalidManifest
            } else if code.contains("NAME_INVALID") || code.contains("TAG_INVALID") {
                ErrorKind::InvalidReference
            } else if code.contains("UNSUPPORTED") {
                ErrorKind::Unsupported
            } else {
                ErrorKind::Backend
            }
        }
        401 => ErrorKind::Unauthorized,
        403 => ErrorKind::Denied,
        404 => ErrorKind::NotFound,
        405 => ErrorKind::Unsupported,
        413 => ErrorKind::SizeExceedsLimit,
        429 => ErrorKind::TooManyRequests,
        _ => ErrorKind::Backend,
    }
}

/// `response` when its status is a success; otherwise the error it stands for, with the
/// registry's code and message from its body.
pub(crate) async fn check(response: Response, method: &Method) -> Result<Response> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    Err(error_of(response, method).await)
}

/// The [`Error::Remote`] a failed `response` stands for.
pub(crate) async fn error_of(response: Response, method: &Method) -> Error {
    let status = response.status().as_u16();
    let url = response.url().clone();
    let body = read_bounded_lossy(response, MAX_ERROR_BODY).await;
    let (code, mut message) = wire::error_code_message(&body);
    if message.is_empty() {
        message = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
            .to_string();
    }
    remote_error(
        kind_of(status, &code),
        method,
        &url,
        Some(status),
        code,
        message,
    )
}

/// The body of `response`, refused with `SizeExceedsLimit` once it passes `limit` bytes (by
/// its `Content-Length` or as read).
pub(crate) async fn read_bounded(
    response: Response,
    limit: u64,
    method: &Method,
    url: &Url,
) -> Result<Bytes> {
    let what = format!("{method} {}", without_query(url));
    if let Some(length) = content_length(&response) {
        if length > limit {
            return Err(Error::SizeExceedsLimit {
                what,
                size: length,
                limit,
            });
        }
    }
    let mut out = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| transport_error(method, url, &e))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(Error::SizeExceedsLimit {
                what,
                size: out.len() as u64 + chunk.len() as u64,
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Up to `limit` bytes of the body, ignoring failures: for error bodies.
async fn read_bounded_lossy(response: Response, limit: u64) -> Bytes {
    let mut out = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = (limit as usize).saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() as u64 >= limit {
            break;
        }
    }
    out.freeze()
}

/// The `Content-Length` header, when present and numeric.
pub(crate) fn content_length(response: &Response) -> Option<u64> {
    response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A response header as text.
pub(crate) fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        assert_eq!(kind_of(401, ""), ErrorKind::Unauthorized);
        assert_eq!(kind_of(403, "DENIED"), ErrorKind::Denied);
        assert_eq!(kind_of(404, "MANIFEST_UNKNOWN"), ErrorKind::NotFound);
        assert_eq!(kind_of(429, "TOOMANYREQUESTS"), ErrorKind::TooManyRequests);
        assert_eq!(kind_of(400, "DIGEST_INVALID"), ErrorKind::Mismatch);
        assert_eq!(kind_of(400, "MANIFEST_INVALID"), ErrorKind::InvalidManifest);
        assert_eq!(kind_of(400, "TAG_INVALID"), ErrorKind::InvalidReference);
        assert_eq!(kind_of(405, "UNSUPPORTED"), ErrorKind::Unsupported);
        assert_eq!(kind_of(500, ""), ErrorKind::Backend);
    }

    #[test]
    fn shown_urls_carry_no_credentials_or_query() {
        let url =
            Url::parse("https://user:pw@r.example/v2/a/blobs/uploads/x?_state=secret").unwrap();
        let shown = without_query(&url).to_string();
        assert_eq!(shown, "https://r.example/v2/a/blobs/uploads/x");
        let err = remote_error(
            ErrorKind::Backend,
            &Method::PUT,
            &url,
            Some(500),
            String::new(),
            String::new(),
        );
        assert!(
            !err.to_string().contains("pw") && !err.to_string().contains("secret"),
            "{err}"
        );
    }

    #[test]
    fn client_debug_shows_no_credentials() {
        let client = Client::with_credentials(
            ClientOptions::default(),
            Arc::new(Static(Credential::Basic {
                username: "u".into(),
                password: Secret::new("hunter2"),
            })),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("hunter2"));
    }
}
