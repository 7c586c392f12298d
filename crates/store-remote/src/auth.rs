//! What the client knows about each host's authentication: the scheme a host asked for, and
//! bearer tokens cached per host and scope, fetched once however many requests wait for them.

use crate::secret::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How a host asked to be authenticated (learnt from a 401 challenge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostAuth {
    /// HTTP Basic on every request.
    Basic,
    /// Bearer tokens from `realm` for `service`.
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A cached bearer token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) value: Secret,
    expires: Instant,
}

impl Token {
    /// A token valid for `lifetime` from now; it is treated as expired a little early (a tenth
    /// of its life, at most 30 s) so that it does not lapse while a request is on its way.
    pub(crate) fn new(value: Secret, lifetime: Duration) -> Token {
        let margin = (lifetime / 10).min(Duration::from_secs(30));
        Token {
            value,
            expires: Instant::now() + lifetime.saturating_sub(margin),
        }
    }

    fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// One slot per (host, scope): its async mutex is what merges concurrent fetches of one token.
type Slot = Arc<tokio::sync::Mutex<Option<Token>>>;

/// The per-client authentication state.
#[derive(Default)]
pub(crate) struct AuthState {
    hosts: Mutex<HashMap<String, HostAuth>>,
    slots: Mutex<HashMap<(String, String), Slot>>,
    refresh_tokens: Mutex<HashMap<String, Secret>>,
}

impl AuthState {
    pub(crate) fn host_auth(&self, host: &str) -> Option<HostAuth> {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    pub(crate) fn set_host_auth(&self, host: &str, auth: HostAuth) {
        self.hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_string(), auth);
    }

    pub(crate) fn slot(&self, host: &str, scope: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            slots
                .entry((host.to_string(), scope.to_string()))
                .or_default(),
        )
    }

    /// The refresh token a token server issued for `host` most recently, if any.
    pub(crate) fn refresh_token(&self, host: &str) -> Option<Secret> {
        self.refresh_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    pub(crate) fn set_refresh_token(&self, host: &str, token: Secret) {
        self.refresh_tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_string(), token);
    }
}

/// The fresh token in `slot`, fetching one with `fetch` when there is none or it expired or
/// equals `rejected` (a token the registry just refused). Callers that arrive while a fetch is
/// under way wait for it and share its result: one request to the token server per key.
pub(crate) async fn token_for<F, Fut>(
    slot: &Slot,
    rejected: Option<&Secret>,
    fetch: F,
) -> store_core::Result<Secret>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = store_core::Result<Token>>,
{
    let mut guard = slot.lock().await;
    if let Some(token) = guard.as_ref() {
        let refused = rejected.is_some_and(|r| *r == token.value);
        if token.is_fresh() && !refused {
            return Ok(token.value.clone());
        }
    }
    *guard = None;
    let token = fetch().await?;
    let value = token.value.clone();
    *guard = Some(token);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_for_one_token_fetch_once() {
        let state = Arc::new(AuthState::default());
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let state = Arc::clone(&state);
            let fetches = Arc::clone(&fetches);
            tasks.push(tokio::spawn(async move {
                let slot = state.slot("h", "repository:a:pull");
                token_for(&slot, None, || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok(Token::new(Secret::new("t1"), Duration::from_secs(60)))
                })
                .await
            }));
        }
        for task in tasks {
            let token = task.await.unwrap().unwrap();
            assert_eq!(token.expose(), "t1");
        }
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        // Another scope is another token.
        let other = state.slot("h", "repository:b:pull");
        let token = token_for(&other, None, || async {
            fetches.fetch_add(1, Ordering::SeqCst);
            Ok(Token::new(Secret::new("t2"), Duration::from_secs(60)))
        })
        .await
        .unwrap();
        assert_eq!(token.expose(), "t2");
        assert_eq!(fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn expired_or_rejected_tokens_are_refetched() {
        let state = AuthState::default();
        let slot = state.slot("h", "s");
        let short = token_for(&slot, None, || async {
            Ok(Token::new(Secret::new("old"), Duration::from_millis(0)))
        })
        .await
        .unwrap();
        let next = token_for(&slot, None, || async {
            Ok(Token::new(Secret::new("new"), Duration::from_secs(60)))
        })
        .await
        .unwrap();
        assert_eq!((short.expose(), next.expose()), ("old", "new"));
        // A rejection of a token that was already replaced does not refetch.
        let same = token_for(&slot, Some(&Secret::new("old")), || async {
            Ok(Token::new(Secret::new("unwanted"), Duration::from_secs(60)))
        })
        .await
        .unwrap();
        assert_eq!(same.expose(), "new");
        let refreshed = token_for(&slot, Some(&Secret::new("new")), || async {
            Ok(Token::new(Secret::new("newer"), Duration::from_secs(60)))
        })
        .await
        .unwrap();
        assert_eq!(refreshed.expose(), "newer");
        // A failed fetch leaves the slot empty and reports the error.
        let failed = token_for(&slot, Some(&Secret::new("newer")), || async {
            Err(store_core::Error::unsupported("no"))
        })
        .await;
        assert!(failed.is_err());
    }
}
