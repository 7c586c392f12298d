//! The token server: the GET and OAuth2 POST flows, refresh tokens (the client's
//! `identitytoken` path) accepted by the real registry, and the counters and knobs a client's
//! tests lean on.

use ocistore_test_registry::{
    decode_claims, Auth, Grant, Registry, TokenConfig, TokenServer, User, READER, READER_PASSWORD,
    WRITER, WRITER_PASSWORD,
};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn get(server: &TokenServer, auth: Option<(&str, &str)>, query: &[(&str, &str)]) -> Response {
    let mut request = client().get(server.realm()).query(query);
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.unwrap()
}

async fn post(server: &TokenServer, form: &[(&str, &str)]) -> Response {
    client()
        .post(server.realm())
        .form(form)
        .send()
        .await
        .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn refresh_tokens_from_the_password_grant_get_tokens_the_registry_accepts() {
    let Some(registry) = Registry::start_or_skip(Auth::token()) else {
        return;
    };
    let server = registry.token_server().unwrap();
    let scope = "repository:oauth/app:pull";
    let first = post(
        server,
        &[
            ("grant_type", "password"),
            ("username", WRITER),
            ("password", WRITER_PASSWORD),
            ("service", server.service()),
            ("scope", scope),
            ("client_id", "ocistore-tests"),
        ],
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first: Value = first.json().await.unwrap();
    let refresh = first["refresh_token"].as_str().unwrap().to_string();
    assert!(first["access_token"].as_str().is_some());

    // The refresh token alone (what a Docker config's identitytoken holds) gets a token.
    let refreshed = post(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", server.service()),
            ("scope", scope),
            ("client_id", "ocistore-tests"),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: Value = refreshed.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();
    assert_eq!(decode_claims(token).unwrap()["sub"], WRITER);
    let response = client()
        .get(format!("{}/v2/oauth/app/tags/list", registry.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    // Authorized: the repository is simply unknown.
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(server.tokens_issued(), 2);
    let grants: Vec<String> = server.requests().into_iter().map(|r| r.grant).collect();
    assert_eq!(grants, ["password", "refresh_token"]);

    // Revoked: the refresh grant fails and issues nothing.
    server.revoke_refresh_tokens();
    let revoked = post(
        server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", server.service()),
            ("scope", scope),
        ],
    )
    .await;
    assert_eq!(revoked.status(), StatusCode::BAD_REQUEST);
    let body: Value = revoked.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(server.tokens_issued(), 2);
    assert_eq!(server.request_count(), 3);
}

#[tokio::test]
async fn credentials_are_checked_and_grants_are_exact() {
    let config = TokenConfig {
        users: vec![User::new(
            "team",
            "pw",
            vec![
                Grant::repository("team/*", &["pull", "push"]),
                Grant::repository("shared", &["pull"]),
            ],
        )],
        anonymous: vec![Grant::repository("public", &["pull"])],
        ..TokenConfig::standard()
    };
    let server = TokenServer::start(config).unwrap();
    let service = server.service().to_string();

    let wrong = get(
        &server,
        Some(("team", "nope")),
        &[("service", &service), ("scope", "repository:team/a:pull")],
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong_post = post(
        &server,
        &[
            ("grant_type", "password"),
            ("username", "team"),
            ("password", "nope"),
        ],
    )
    .await;
    assert_eq!(wrong_post.status(), StatusCode::UNAUTHORIZED);
    let unknown_grant = post(&server, &[("grant_type", "client_credentials")]).await;
    assert_eq!(unknown_grant.status(), StatusCode::BAD_REQUEST);
    let wrong_service = get(
        &server,
        Some(("team", "pw")),
        &[
            ("service", "elsewhere"),
            ("scope", "repository:team/a:pull"),
        ],
    )
    .await;
    assert_eq!(wrong_service.status(), StatusCode::BAD_REQUEST);
    assert_eq!(server.tokens_issued(), 0);

    // Two scopes in one GET: each gets what the grants allow, no more.
    let granted = get(
        &server,
        Some(("team", "pw")),
        &[
            ("service", &service),
            ("scope", "repository:team/a:pull,push,delete"),
            ("scope", "repository:shared:pull,push"),
        ],
    )
    .await;
    assert_eq!(granted.status(), StatusCode::OK);
    let body: Value = granted.json().await.unwrap();
    assert!(body.get("refresh_token").is_none());
    assert_eq!(
        decode_claims(body["token"].as_str().unwrap()).unwrap()["access"],
        json!([
            {"type": "repository", "name": "team/a", "actions": ["pull", "push"]},
            {"type": "repository", "name": "shared", "actions": ["pull"]},
        ])
    );

    // Anonymous: only what the config grants anonymous users.
    let anonymous = get(
        &server,
        None,
        &[
            ("service", &service),
            ("scope", "repository:public:pull,push"),
        ],
    )
    .await;
    let body: Value = anonymous.json().await.unwrap();
    let claims = decode_claims(body["token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["sub"], "");
    assert_eq!(claims["access"][0]["actions"], json!(["pull"]));

    // offline_token=true with credentials: a refresh token too.
    let offline = get(
        &server,
        Some(("team", "pw")),
        &[
            ("service", &service),
            ("scope", "repository:team/a:pull"),
            ("offline_token", "true"),
            ("client_id", "tests"),
        ],
    )
    .await;
    let body: Value = offline.json().await.unwrap();
    assert!(body["refresh_token"].as_str().is_some());

    let recorded = server.requests();
    assert_eq!(recorded.len(), 7);
    assert_eq!(recorded[0].user.as_deref(), Some("team"));
    assert_eq!(recorded[0].status, 401);
    assert_eq!(recorded[4].scopes.len(), 2);
    assert_eq!(recorded[5].grant, "anonymous");
    assert_eq!(recorded[6].grant, "basic");
    server.reset_counters();
    assert_eq!((server.tokens_issued(), server.request_count()), (0, 0));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn knobs_change_lifetimes_failures_and_sizes() {
    let server = TokenServer::start(TokenConfig::standard()).unwrap();
    let service = server.service().to_string();
    let query = [
        ("service", service.as_str()),
        ("scope", "repository:x:pull"),
    ];
    let creds = Some((READER, READER_PASSWORD));

    server.set_lifetime(Duration::from_secs(90));
    let body: Value = get(&server, creds, &query).await.json().await.unwrap();
    assert_eq!(body["expires_in"], 90);
    let claims = decode_claims(body["token"].as_str().unwrap()).unwrap();
    let exp = claims["exp"].as_u64().unwrap();
    assert!(exp >= now() + 80 && exp <= now() + 90, "{claims}");

    // Backdated: issued_at an hour ago, exp untouched.
    server.set_backdate(Duration::from_secs(3600));
    let body: Value = get(&server, creds, &query).await.json().await.unwrap();
    let claims = decode_claims(body["token"].as_str().unwrap()).unwrap();
    assert!(claims["iat"].as_u64().unwrap() <= now() - 3500);
    assert!(claims["exp"].as_u64().unwrap() > now());
    let issued_at = body["issued_at"].as_str().unwrap();
    assert!(
        issued_at.ends_with('Z') && issued_at.len() == 20,
        "{issued_at}"
    );
    server.set_backdate(Duration::ZERO);

    server.set_issue_expired(true);
    let body: Value = get(&server, creds, &query).await.json().await.unwrap();
    let claims = decode_claims(body["token"].as_str().unwrap()).unwrap();
    assert!(claims["exp"].as_u64().unwrap() < now());
    assert_eq!(body["expires_in"], 90);
    server.set_issue_expired(false);

    server.fail_next(2, 503);
    for _ in 0..2 {
        assert_eq!(
            get(&server, creds, &query).await.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(get(&server, creds, &query).await.status(), StatusCode::OK);

    server.set_oversize(Some(1 << 20));
    let big = get(&server, creds, &query).await.bytes().await.unwrap();
    assert!(big.len() > 1 << 20);
    server.set_oversize(None);

    // Delayed answers: concurrent requests are all answered, each counted.
    server.reset_counters();
    server.set_delay(Duration::from_millis(100));
    let answers = futures_join(&server, creds, &query).await;
    assert!(answers.iter().all(|s| *s == StatusCode::OK));
    assert_eq!(server.request_count(), 4);
    assert_eq!(server.tokens_issued(), 4);
    // A token is valid for the double until revoked.
    let body: Value = get(&server, creds, &query).await.json().await.unwrap();
    let token = body["token"].as_str().unwrap();
    assert!(server.is_valid(token));
    assert_eq!(server.check(token, "repository", "x", "pull"), Ok(()));
    assert_eq!(
        server.check(token, "repository", "x", "push"),
        Err("insufficient_scope")
    );
    server.revoke_access_tokens();
    assert_eq!(
        server.check(token, "repository", "x", "pull"),
        Err("invalid_token")
    );
}

async fn futures_join(
    server: &TokenServer,
    creds: Option<(&str, &str)>,
    query: &[(&str, &str)],
) -> Vec<StatusCode> {
    let (a, b, c, d) = tokio::join!(
        get(server, creds, query),
        get(server, creds, query),
        get(server, creds, query),
        get(server, creds, query)
    );
    vec![a.status(), b.status(), c.status(), d.status()]
}
