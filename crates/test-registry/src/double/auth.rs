//! The double's authentication: Basic, or bearer tokens checked against the token server that
//! issued them, with the challenges a registry sends.

use super::routes::error;
use super::{DState, DoubleAuth, Knobs, Malformed};
use crate::http::{Req, Resp};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::StatusCode;

/// What a request needs to be allowed.
pub(crate) enum Need<'a> {
    /// `GET /v2/`: any valid credentials.
    Ping,
    /// `action` (`pull`, `push`, `delete`) on repository `name`.
    Repo { name: &'a str, action: &'static str },
    /// The catalog.
    Catalog,
}

/// Whether `req`'s credentials allow `need` (no answer made: for the source repository of a
/// mount, which a registry checks quietly and falls back to an upload when it is not allowed).
pub(crate) fn allows(state: &DState, knobs: &Knobs, req: &Req, need: &Need<'_>) -> bool {
    check(state, knobs, req, need).is_ok()
}

/// `Ok` when `req` may do what `need` says, else the 401 to answer (boxed: a response is
/// large and this is the rare path).
pub(crate) fn check(
    state: &DState,
    knobs: &Knobs,
    req: &Req,
    need: &Need<'_>,
) -> Result<(), Box<Resp>> {
    let challenge_error;
    let challenge = match &state.auth {
        DoubleAuth::None => return Ok(()),
        DoubleAuth::Basic { user, password } => {
            let given = req
                .header("authorization")
                .and_then(|h| h.strip_prefix("Basic "))
                .and_then(|b| STANDARD.decode(b.trim()).ok());
            if given.as_deref() == Some(format!("{user}:{password}").as_bytes()) {
                return Ok(());
            }
            "Basic realm=\"ocistore-fake-registry\"".to_string()
        }
        DoubleAuth::Token(server) => {
            let token = req
                .header("authorization")
                .and_then(|h| h.strip_prefix("Bearer "))
                .map(str::trim);
            let verdict = match (token, need) {
                (None, _) => Err(None),
                (Some(token), Need::Ping) => {
                    if server.is_valid(token) {
                        Ok(())
                    } else {
                        Err(Some("invalid_token"))
                    }
                }
                (Some(token), Need::Repo { name, action }) => server
                    .check(token, "repository", name, action)
                    .map_err(Some),
                (Some(token), Need::Catalog) => server
                    .check(token, "registry", "catalog", "*")
                    .map_err(Some),
            };
            match verdict {
                Ok(()) => return Ok(()),
                Err(reason) => challenge_error = reason,
            }
            let scope = match need {
                Need::Ping => String::new(),
                Need::Repo { name, action } => {
                    let actions = if *action == "push" {
                        "pull,push"
                    } else {
                        action
                    };
                    format!(",scope=\"repository:{name}:{actions}\"")
                }
                Need::Catalog => ",scope=\"registry:catalog:*\"".to_string(),
            };
            let error = challenge_error
                .map(|e| format!(",error=\"{e}\""))
                .unwrap_or_default();
            format!(
                "Bearer realm=\"{}\",service=\"{}\"{scope}{error}",
                server.realm(),
                server.service()
            )
        }
    };
    let challenge = if knobs.malformed == Some(Malformed::WwwAuthenticate) {
        // An unterminated quote, so no parameter can be read.
        "Bearer realm=\"http://127.0.0.1:1/unterminated".to_string()
    } else {
        challenge
    };
    let mut response = error(
        knobs,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    if let Ok(value) = hyper::header::HeaderValue::from_str(&challenge) {
        response.headers_mut().insert("www-authenticate", value);
    }
    Err(Box::new(response))
}
