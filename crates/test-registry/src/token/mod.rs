//! A token server inside the test process: the Docker registry token flow, RS256 JWTs a real
//! registry verifies, and knobs and counters for a client's tests.

mod grant;
mod handler;
mod jwt;

pub use grant::{Grant, User};

use crate::http::Server;
use crate::lock;
use crate::Error;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The user of [`TokenConfig::standard`] who may pull, push and delete everywhere and list the
/// catalog.
pub const WRITER: &str = "writer";
/// [`WRITER`]'s password.
pub const WRITER_PASSWORD: &str = "writer-secret-1";
/// The user of [`TokenConfig::standard`] who may only pull (a push gives `Denied`).
pub const READER: &str = "reader";
/// [`READER`]'s password.
pub const READER_PASSWORD: &str = "reader-secret-2";

/// Who may do what, and how the token server names itself.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// The users and their grants.
    pub users: Vec<User>,
    /// What a request without credentials is granted (nothing by default: the token it gets
    /// carries no access, and the registry answers 401 `insufficient_scope`).
    pub anonymous: Vec<Grant>,
    /// The `service` the registry names in its challenge and the tokens' audience.
    pub service: String,
    /// The tokens' issuer.
    pub issuer: String,
    /// How long a token lives (its `exp` and `expires_in`); 300 s by default.
    pub lifetime: Duration,
}

impl TokenConfig {
    /// [`WRITER`] with pull, push and delete on every repository and the catalog, and
    /// [`READER`] with pull on every repository; anonymous gets nothing.
    pub fn standard() -> TokenConfig {
        TokenConfig {
            users: vec![
                User::new(
                    WRITER,
                    WRITER_PASSWORD,
                    vec![
                        Grant::repository("*", &["pull", "push", "delete"]),
                        Grant::catalog(),
                    ],
                ),
                User::new(
                    READER,
                    READER_PASSWORD,
                    vec![Grant::repository("*", &["pull"])],
                ),
            ],
            anonymous: Vec::new(),
            service: "ocistore-test-registry".into(),
            issuer: "ocistore-test-issuer".into(),
            lifetime: Duration::from_secs(300),
        }
    }
}

impl Default for TokenConfig {
    fn default() -> Self {
        TokenConfig::standard()
    }
}

/// One request the token server answered, as recorded for the tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// `basic` (GET with credentials), `anonymous` (GET without), `password` or
    /// `refresh_token` (POST grants), or what else the POST's `grant_type` said.
    pub grant: String,
    /// The user the request authenticated as (or claimed to be, when it failed).
    pub user: Option<String>,
    /// The scopes asked for, one per entry (`repository:name:pull,push`).
    pub scopes: Vec<String>,
    /// The `service` parameter.
    pub service: Option<String>,
    /// The status answered.
    pub status: u16,
}

/// What the knobs currently say.
#[derive(Debug, Clone, Default)]
pub(crate) struct Knobs {
    pub lifetime: Option<Duration>,
    pub issue_expired: bool,
    pub backdate: Duration,
    pub delay: Duration,
    pub fail_next: Vec<u16>,
    pub oversize: Option<usize>,
}

/// What the token server remembers of one access token it issued.
#[derive(Debug, Clone)]
pub(crate) struct Issued {
    /// `(type, name) -> actions` granted.
    pub access: Vec<(String, String, Vec<String>)>,
    pub revoked: bool,
}

pub(crate) struct State {
    pub config: TokenConfig,
    pub knobs: Mutex<Knobs>,
    pub requests: Mutex<Vec<TokenRequest>>,
    pub issued: Mutex<HashMap<String, Issued>>,
    /// refresh token -> user name; removed when revoked.
    pub refresh: Mutex<HashMap<String, String>>,
    pub tokens_issued: AtomicUsize,
    pub request_count: AtomicUsize,
    pub realm: String,
}

/// The claims of a JWT (its middle part, not verified), e.g. to see what a token grants:
/// `claims["access"]`. `None` when `token` is not a JWT with a JSON payload.
pub fn decode_claims(token: &str) -> Option<serde_json::Value> {
    jwt::claims_of(token)
}

/// A running token server (on 127.0.0.1), stopped on drop.
///
/// Endpoint: `GET /token?service=S&scope=repository:NAME:pull,push[&offline_token=true]` with
/// or without Basic credentials, and `POST /token` with a form (`grant_type=password` with
/// `username`/`password`, or `grant_type=refresh_token` with `refresh_token`; `service`,
/// `scope` space-separated, `client_id`). Answers `{"token", "access_token", "expires_in",
/// "issued_at"}` and, for a POST or a GET with `offline_token=true` and credentials, a
/// `refresh_token`. A wrong password gets 401, an unknown refresh token 400 `invalid_grant`.
/// Each token grants exactly the requested actions the user is entitled to.
pub struct TokenServer {
    state: Arc<State>,
    server: Server,
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.state.realm)
            .finish_non_exhaustive()
    }
}

impl TokenServer {
    /// Starts a token server for `config` on a free port of 127.0.0.1. Fails when the port,
    /// the thread or the signing key cannot be had.
    pub fn start(config: TokenConfig) -> Result<TokenServer, Error> {
        // Make the key before the first request needs it (and fail here if it cannot be).
        jwt::signer()?;
        // The realm names the port, which is only known once bound: the handler finds the
        // state in a cell filled right after (a request before that gets 503).
        let pending = Arc::new(Mutex::new(None::<Arc<State>>));
        let handler_state = pending.clone();
        let server = Server::start(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Arc::new(move |req| {
                let state = lock(&handler_state).clone();
                Box::pin(async move {
                    match state {
                        Some(state) => handler::handle(state, req).await,
                        None => crate::http::respond(
                            hyper::StatusCode::SERVICE_UNAVAILABLE,
                            &[],
                            "starting",
                        ),
                    }
                })
            }),
        )?;
        let realm = format!("http://{}/token", server.addr());
        let state = Arc::new(State {
            config,
            knobs: Mutex::new(Knobs::default()),
            requests: Mutex::new(Vec::new()),
            issued: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
            tokens_issued: AtomicUsize::new(0),
            request_count: AtomicUsize::new(0),
            realm,
        });
        *lock(&pending) = Some(state.clone());
        Ok(TokenServer { state, server })
    }

    /// The token endpoint's URL (`http://127.0.0.1:PORT/token`), the registry's `realm`.
    pub fn realm(&self) -> &str {
        &self.state.realm
    }

    /// `127.0.0.1:PORT` of the token server.
    pub fn host(&self) -> String {
        self.server.addr().to_string()
    }

    /// The service name (the `service` of challenges, the tokens' audience).
    pub fn service(&self) -> &str {
        &self.state.config.service
    }

    /// The tokens' issuer.
    pub fn issuer(&self) -> &str {
        &self.state.config.issuer
    }

    /// The certificate (PEM) the tokens are signed with, for a registry's `rootcertbundle`.
    pub fn certificate_pem(&self) -> Result<String, Error> {
        Ok(jwt::signer()?.cert_pem().to_string())
    }

    /// The configuration the server was started with.
    pub fn config(&self) -> &TokenConfig {
        &self.state.config
    }

    /// How many access tokens were issued so far (failed requests issue none).
    pub fn tokens_issued(&self) -> usize {
        self.state.tokens_issued.load(Ordering::SeqCst)
    }

    /// How many requests reached the token endpoint so far, answered or failed.
    pub fn request_count(&self) -> usize {
        self.state.request_count.load(Ordering::SeqCst)
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        lock(&self.state.requests).clone()
    }

    /// Forgets the recorded requests and resets both counters.
    pub fn reset_counters(&self) {
        lock(&self.state.requests).clear();
        self.state.tokens_issued.store(0, Ordering::SeqCst);
        self.state.request_count.store(0, Ordering::SeqCst);
    }

    /// Sets the lifetime (`exp` and `expires_in`) of the tokens issued from now on.
    pub fn set_lifetime(&self, lifetime: Duration) {
        lock(&self.state.knobs).lifetime = Some(lifetime);
    }

    /// From now on (while `on`), issue tokens whose JWT expired an hour ago while the response
    /// still says `expires_in` = the lifetime: a real registry rejects them with 401
    /// `invalid_token`, which lets a test see what a client does with a token the registry
    /// refuses right after it was issued (it must not loop).
    pub fn set_issue_expired(&self, on: bool) {
        lock(&self.state.knobs).issue_expired = on;
    }

    /// Backdates the `issued_at` (and `iat`, `nbf`) of tokens issued from now on by `by`,
    /// leaving their `exp` as it is: a client that computes expiry as `issued_at +
    /// expires_in` sees a token already expired when `by` exceeds the lifetime, without any
    /// test having to wait. The registry still accepts the token.
    pub fn set_backdate(&self, by: Duration) {
        lock(&self.state.knobs).backdate = by;
    }

    /// Delays every answer by `delay`, so that concurrent requests of a client certainly
    /// overlap (to prove they are merged into one token request).
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.state.knobs).delay = delay;
    }

    /// Makes the next `count` requests fail with `status` (e.g. 500, 503) and a JSON error.
    pub fn fail_next(&self, count: usize, status: u16) {
        let mut knobs = lock(&self.state.knobs);
        knobs.fail_next.extend(std::iter::repeat_n(status, count));
    }

    /// Pads every successful answer with a string field of `bytes` bytes (`None`: no padding),
    /// to test that a client bounds what it reads from a token server.
    pub fn set_oversize(&self, bytes: Option<usize>) {
        lock(&self.state.knobs).oversize = bytes;
    }

    /// Revokes every access token issued so far: [`TokenServer::check`] (which the test double
    /// uses) refuses them from now on. A real registry cannot be told; there use
    /// [`TokenServer::set_issue_expired`].
    pub fn revoke_access_tokens(&self) {
        for issued in lock(&self.state.issued).values_mut() {
            issued.revoked = true;
        }
    }

    /// Revokes every refresh token issued so far: using one answers 400 `invalid_grant`.
    pub fn revoke_refresh_tokens(&self) {
        lock(&self.state.refresh).clear();
    }

    /// Whether `token` is an access token this server issued and did not revoke (whatever it
    /// grants).
    pub fn is_valid(&self, token: &str) -> bool {
        lock(&self.state.issued)
            .get(token)
            .is_some_and(|issued| !issued.revoked)
    }

    /// Whether `token` is an access token this server issued, not revoked, that grants
    /// `action` on `name` of type `resource_type` (`repository`, or `registry` for
    /// `catalog`). `Err` says why not: `invalid_token` or `insufficient_scope`.
    pub fn check(
        &self,
        token: &str,
        resource_type: &str,
        name: &str,
        action: &str,
    ) -> Result<(), &'static str> {
        let issued = lock(&self.state.issued);
        let Some(entry) = issued.get(token) else {
            return Err("invalid_token");
        };
        if entry.revoked {
            return Err("invalid_token");
        }
        let granted = entry.access.iter().any(|(t, n, actions)| {
            t == resource_type && n == name && actions.iter().any(|a| a == action || a == "*")
        });
        if granted {
            Ok(())
        } else {
            Err("insufficient_scope")
        }
    }
}
