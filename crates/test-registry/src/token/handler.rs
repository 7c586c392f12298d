//! The token endpoint: who is asking, what they get, and the JWT that says so.

use super::grant::Scope;
use super::{jwt, Issued, State, TokenRequest};
use crate::http::{respond, Req, Resp};
use crate::lock;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hyper::{Method, StatusCode};
use rand::RngCore;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the request asked for, gathered from the query (GET) or the form (POST).
struct Ask {
    grant: String,
    user: Option<String>,
    password: Option<String>,
    refresh_token: Option<String>,
    scopes: Vec<String>,
    service: Option<String>,
    offline: bool,
}

pub(crate) async fn handle(state: Arc<State>, req: Req) -> Resp {
    state.request_count.fetch_add(1, Ordering::SeqCst);
    let (delay, failure) = {
        let mut knobs = lock(&state.knobs);
        let failure = if knobs.fail_next.is_empty() {
            None
        } else {
            Some(knobs.fail_next.remove(0))
        };
        (knobs.delay, failure)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let ask = match (req.path.as_str(), &req.method) {
        ("/token", &Method::GET) => ask_of_get(&req),
        ("/token", &Method::POST) => ask_of_post(&req),
        _ => return respond(StatusCode::NOT_FOUND, &[], "not found"),
    };
    let (status, body) = match failure {
        Some(status) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"errors": [{"code": "UNKNOWN", "message": "failure injected by the test"}]}),
        ),
        None => answer(&state, &ask),
    };
    lock(&state.requests).push(TokenRequest {
        method: req.method.to_string(),
        grant: ask.grant,
        user: ask.user,
        scopes: ask.scopes,
        service: ask.service,
        status: status.as_u16(),
    });
    let mut headers = vec![("content-type", "application/json".to_string())];
    if status == StatusCode::UNAUTHORIZED {
        headers.push((
            "www-authenticate",
            "Basic realm=\"ocistore-test-token\"".into(),
        ));
    }
    respond(status, &headers, body.to_string())
}

fn ask_of_get(req: &Req) -> Ask {
    let pairs = req.query_pairs();
    let basic = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Basic "))
        .and_then(|b| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    let (user, password) = basic.map_or((None, None), |(u, p)| (Some(u), Some(p)));
    Ask {
        grant: if user.is_some() { "basic" } else { "anonymous" }.into(),
        user,
        password,
        refresh_token: None,
        scopes: scopes_of(&pairs, false),
        service: first(&pairs, "service"),
        offline: first(&pairs, "offline_token").as_deref() == Some("true"),
    }
}

fn ask_of_post(req: &Req) -> Ask {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(&req.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    Ask {
        grant: first(&pairs, "grant_type").unwrap_or_default(),
        user: first(&pairs, "username"),
        password: first(&pairs, "password"),
        refresh_token: first(&pairs, "refresh_token"),
        scopes: scopes_of(&pairs, true),
        service: first(&pairs, "service"),
        offline: true,
    }
}

fn first(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Every `scope` value; a POST form separates several scopes in one value by spaces.
fn scopes_of(pairs: &[(String, String)], split_spaces: bool) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| {
            if split_spaces {
                v.split(' ').map(str::to_string).collect::<Vec<_>>()
            } else {
                vec![v.clone()]
            }
        })
        .filter(|s| !s.is_empty())
        .collect()
}

fn error(status: StatusCode, code: &str, message: &str) -> (StatusCode, Value) {
    (
        status,
        json!({"error": code, "error_description": message,
               "errors": [{"code": "UNAUTHORIZED", "message": message}]}),
    )
}

/// Authenticates, grants, signs: the status and JSON body to answer.
fn answer(state: &State, ask: &Ask) -> (StatusCode, Value) {
    let config = &state.config;
    // Who is asking: a user with the right password, the owner of a refresh token, or nobody.
    let user = match ask.grant.as_str() {
        "basic" | "password" => {
            let found = config.users.iter().find(|u| {
                Some(&u.name) == ask.user.as_ref() && Some(&u.password) == ask.password.as_ref()
            });
            match found {
                Some(user) => Some(user),
                None => {
                    return error(
                        StatusCode::UNAUTHORIZED,
                        "invalid_grant",
                        "incorrect username or password",
                    )
                }
            }
        }
        "refresh_token" => {
            let owner = ask
                .refresh_token
                .as_ref()
                .and_then(|t| lock(&state.refresh).get(t).cloned());
            match owner.and_then(|name| config.users.iter().find(|u| u.name == name)) {
                Some(user) => Some(user),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "unknown or revoked refresh token",
                    )
                }
            }
        }
        "anonymous" => None,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be password or refresh_token",
            )
        }
    };
    if let Some(service) = &ask.service {
        if service != &config.service {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "unknown service",
            );
        }
    }
    let grants = user.map_or(&config.anonymous, |u| &u.grants);
    let access: Vec<(String, String, Vec<String>)> = ask
        .scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .map(|s| {
            let granted = s.granted(grants);
            (s.resource_type, s.name, granted)
        })
        .collect();

    let knobs = lock(&state.knobs).clone();
    let lifetime = knobs.lifetime.unwrap_or(config.lifetime);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let issued_at = now.saturating_sub(knobs.backdate);
    let exp = if knobs.issue_expired {
        now.saturating_sub(Duration::from_secs(3600))
    } else {
        now + lifetime
    };
    let nbf = issued_at.min(exp).saturating_sub(Duration::from_secs(1));
    let claims = json!({
        "iss": config.issuer,
        "sub": user.map_or("", |u| u.name.as_str()),
        "aud": config.service,
        "exp": exp.as_secs(),
        "nbf": nbf.as_secs(),
        "iat": issued_at.as_secs(),
        "jti": random_hex(16),
        "access": access.iter().map(|(t, n, a)| json!({"type": t, "name": n, "actions": a})).collect::<Vec<_>>(),
    });
    let signer = match jwt::signer() {
        Ok(signer) => signer,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            )
        }
    };
    let token = signer.sign(&claims);
    lock(&state.issued).insert(
        token.clone(),
        Issued {
            access,
            revoked: false,
        },
    );
    state.tokens_issued.fetch_add(1, Ordering::SeqCst);

    let mut body = json!({
        "token": token,
        "access_token": token,
        "expires_in": lifetime.as_secs(),
        "issued_at": rfc3339(issued_at),
    });
    if let Some(user) = user {
        let wants_refresh = ask.grant == "password" || (ask.grant == "basic" && ask.offline);
        if wants_refresh {
            let refresh = random_hex(24);
            lock(&state.refresh).insert(refresh.clone(), user.name.clone());
            body["refresh_token"] = json!(refresh);
        } else if ask.grant == "refresh_token" {
            // The same refresh token stays valid (it is not rotated), as with distribution's
            // own token servers; the answer repeats it.
            body["refresh_token"] = json!(ask.refresh_token);
        }
    }
    if let Some(padding) = knobs.oversize {
        body["padding"] = json!("x".repeat(padding));
    }
    (StatusCode::OK, body)
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// `secs` since the epoch as RFC 3339 UTC (`2026-01-02T03:04:05Z`).
pub(crate) fn rfc3339(since_epoch: Duration) -> String {
    let secs = since_epoch.as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::rfc3339;
    use std::time::Duration;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(Duration::ZERO), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_798_769_045)),
            "2027-01-01T02:04:05Z"
        );
    }
}
