//! The test double's fault knobs: each makes the answer a client's tests need, and only while
//! it is set.

mod common;

use common::*;

use ocistore_test_registry::{
    BodyFault, DoubleAuth, FakeOptions, FakeRegistry, Fault, Malformed, TokenConfig, TokenServer,
    READER, READER_PASSWORD, WRITER, WRITER_PASSWORD,
};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn injected_429_and_5xx_answer_the_next_requests_then_stop() {
    let registry = double();
    let http = client();
    let url = format!("{}/v2/", registry.url());
    registry.fail_next(2, Fault::TooManyRequests { retry_after: 3 });
    registry.fail_next(1, Fault::Status(503));
    assert_eq!(registry.faults_pending(), 3);
    for _ in 0..2 {
        let response = http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header(&response, "retry-after").unwrap(), "3");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
    }
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(registry.faults_pending(), 0);
    // Every request was recorded, the failed ones too.
    assert_eq!(registry.requests_matching("GET", "/v2/").len(), 4);
}

#[tokio::test]
async fn dropped_connections_and_stalls() {
    let registry = double();
    let url = format!("{}/v2/", registry.url());
    registry.fail_next(1, Fault::Disconnect);
    let dropped = client().get(&url).send().await;
    assert!(dropped.is_err(), "{dropped:?}");
    // The next request is answered.
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    registry.fail_next(1, Fault::Stall(Duration::from_secs(30)));
    let impatient = Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let timed_out = impatient.get(&url).send().await.unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");
    registry.fail_next(1, Fault::Stall(Duration::from_millis(10)));
    assert_eq!(
        client().get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn digest_header_can_be_left_out() {
    let registry = double();
    let digest = registry.put_blob("r", b"abc".to_vec());
    let url = format!("{}/v2/r/blobs/{digest}", registry.url());
    let with = client().head(&url).send().await.unwrap();
    assert_eq!(header(&with, "docker-content-digest").unwrap(), digest);
    registry.set_omit_digest_header(true);
    let without = client().get(&url).send().await.unwrap();
    assert_eq!(without.status(), StatusCode::OK);
    assert_eq!(header(&without, "docker-content-digest"), None);
    assert_eq!(without.bytes().await.unwrap().as_ref(), b"abc");
}

#[tokio::test]
async fn chunk_min_length_is_announced_and_enforced() {
    let registry = double();
    registry.set_chunk_min_length(Some(4));
    let http = client();
    let base = registry.url();
    let data = b"abcdefghij".to_vec();

    // Chunks of at least 4 bytes and a short last one are fine.
    let start = http
        .post(format!("{base}/v2/r/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(header(&start, "oci-chunk-min-length").unwrap(), "4");
    let location = header(&start, "location").unwrap();
    for chunk in [&data[..4], &data[4..8], &data[8..]] {
        let patch = http
            .patch(format!("{base}{location}"))
            .body(chunk.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), StatusCode::ACCEPTED);
    }
    let put = http
        .put(format!("{base}{location}?digest={}", sha256(&data)))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);

    // A short chunk followed by more data breaks the rule.
    let start = http
        .post(format!("{base}/v2/r/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location").unwrap();
    let short = http
        .patch(format!("{base}{location}"))
        .body(data[..2].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::ACCEPTED);
    let more = http
        .patch(format!("{base}{location}"))
        .body(data[2..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(more.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let body: Value = more.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
}

#[tokio::test]
async fn body_faults_corrupt_truncate_or_grow_only_the_chosen_digest() {
    let registry = double();
    let good = registry.put_blob("r", b"good bytes".to_vec());
    let bad = registry.put_blob("r", b"bad bytes!".to_vec());
    let http = client();
    let url = |d: &str| format!("{}/v2/r/blobs/{d}", registry.url());

    registry.set_body_fault(Some(BodyFault::WrongBytes), Some(&bad));
    let wrong = http.get(url(&bad)).send().await.unwrap();
    assert_eq!(header(&wrong, "docker-content-digest").unwrap(), bad);
    let bytes = wrong.bytes().await.unwrap();
    assert_eq!(bytes.len(), 10);
    assert_ne!(sha256(&bytes), bad);
    let fine = http.get(url(&good)).send().await.unwrap();
    assert_eq!(fine.bytes().await.unwrap().as_ref(), b"good bytes");

    registry.set_body_fault(Some(BodyFault::Truncated), Some(&bad));
    let truncated = http.get(url(&bad)).send().await.unwrap();
    assert_eq!(header(&truncated, "content-length").unwrap(), "10");
    // The connection closes before the announced length: the read fails.
    assert!(truncated.bytes().await.is_err());

    registry.set_body_fault(Some(BodyFault::Oversized(100)), None);
    let grown = http.get(url(&good)).send().await.unwrap();
    assert_eq!(header(&grown, "content-length").unwrap(), "110");
    assert_eq!(header(&grown, "docker-content-digest").unwrap(), good);
    assert_eq!(grown.bytes().await.unwrap().len(), 110);

    registry.set_body_fault(Some(BodyFault::NoLength), Some(&good));
    let chunked = http.get(url(&good)).send().await.unwrap();
    assert_eq!(header(&chunked, "content-length"), None);
    assert_eq!(header(&chunked, "transfer-encoding").unwrap(), "chunked");
    assert_eq!(chunked.bytes().await.unwrap().as_ref(), b"good bytes");

    registry.set_body_fault(None, None);
    let healed = http.get(url(&bad)).send().await.unwrap();
    assert_eq!(healed.bytes().await.unwrap().as_ref(), b"bad bytes!");
}

#[tokio::test]
async fn redirected_blob_gets_are_served_by_another_host_and_recorded() {
    let registry = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Basic {
            user: WRITER.into(),
            password: WRITER_PASSWORD.into(),
        },
    })
    .unwrap();
    let digest = registry.put_blob("r", b"redirected".to_vec());
    registry.set_redirect_blobs(true);
    let http = client();
    let response = http
        .get(format!("{}/v2/r/blobs/{digest}", registry.url()))
        .basic_auth(WRITER, Some(WRITER_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let location = header(&response, "location").unwrap();
    assert!(location.starts_with(registry.redirect_url()), "{location}");
    assert_ne!(registry.redirect_url(), registry.url());

    // A client that drops credentials on the way, then one that wrongly keeps them: the
    // double records both and the test can tell them apart.
    let followed = http.get(&location).send().await.unwrap();
    assert_eq!(followed.bytes().await.unwrap().as_ref(), b"redirected");
    http.get(&location)
        .basic_auth(WRITER, Some(WRITER_PASSWORD))
        .send()
        .await
        .unwrap();
    let seen = registry.redirected_requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("authorization"), None);
    assert!(seen[1]
        .header("Authorization")
        .unwrap()
        .starts_with("Basic "));
}

#[tokio::test]
async fn malformed_challenge_link_and_error_body() {
    let server = Arc::new(TokenServer::start(TokenConfig::standard()).unwrap());
    let registry = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Token(server.clone()),
    })
    .unwrap();
    let http = client();
    let tags = format!("{}/v2/r/tags/list", registry.url());

    registry.set_malformed(Some(Malformed::WwwAuthenticate));
    let response = http.get(&tags).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&response, "www-authenticate").unwrap();
    assert!(!challenge.contains("service="), "{challenge}");
    assert_eq!(challenge.matches('"').count() % 2, 1, "{challenge}");

    registry.set_malformed(Some(Malformed::ErrorBody));
    let response = http.get(&tags).send().await.unwrap();
    assert_eq!(
        header(&response, "content-type").unwrap(),
        "application/json"
    );
    assert!(response.json::<Value>().await.is_err());

    registry.set_malformed(Some(Malformed::Link));
    let token = get_token(&server, WRITER, WRITER_PASSWORD, "repository:r:pull").await;
    let body = b"{}".to_vec();
    for tag in ["a", "b", "c"] {
        registry.put_manifest(
            "r",
            Some(tag),
            "application/vnd.oci.image.manifest.v1+json",
            body.clone(),
        );
    }
    let response = http
        .get(format!("{tags}?n=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let link = header(&response, "link").unwrap();
    assert!(!link.starts_with('<'), "{link}");
}

async fn get_token(server: &TokenServer, user: &str, password: &str, scope: &str) -> String {
    let response = client()
        .get(server.realm())
        .query(&[("service", server.service()), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn token_auth_on_the_double_grants_scopes_and_honours_revocation() {
    let server = Arc::new(TokenServer::start(TokenConfig::standard()).unwrap());
    let registry = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Token(server.clone()),
    })
    .unwrap();
    let http = client();
    let uploads = format!("{}/v2/team/app/blobs/uploads/", registry.url());

    let challenge = http.post(&uploads).send().await.unwrap();
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&challenge, "www-authenticate").unwrap(),
        format!(
            "Bearer realm=\"{}\",service=\"{}\",scope=\"repository:team/app:pull,push\"",
            server.realm(),
            server.service()
        )
    );

    let reader = get_token(
        &server,
        READER,
        READER_PASSWORD,
        "repository:team/app:pull,push",
    )
    .await;
    let denied = http
        .post(&uploads)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&denied, "www-authenticate")
        .unwrap()
        .ends_with(",error=\"insufficient_scope\""));

    let writer = get_token(
        &server,
        WRITER,
        WRITER_PASSWORD,
        "repository:team/app:pull,push",
    )
    .await;
    assert_eq!(
        http.post(&uploads)
            .bearer_auth(&writer)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    server.revoke_access_tokens();
    let revoked = http
        .post(&uploads)
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    assert!(header(&revoked, "www-authenticate")
        .unwrap()
        .ends_with(",error=\"invalid_token\""));
    let fresh = get_token(
        &server,
        WRITER,
        WRITER_PASSWORD,
        "repository:team/app:pull,push",
    )
    .await;
    assert_eq!(
        http.post(&uploads)
            .bearer_auth(&fresh)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(server.tokens_issued(), 3);
}

#[tokio::test]
async fn basic_auth_on_the_double_and_mount_needs_pull_on_the_source() {
    let server = Arc::new(TokenServer::start(TokenConfig::standard()).unwrap());
    let registry = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Token(server.clone()),
    })
    .unwrap();
    let digest = registry.put_blob("source", b"layer".to_vec());
    let http = client();
    let url = format!(
        "{}/v2/target/blobs/uploads/?mount={digest}&from=source",
        registry.url()
    );
    // A token for the target only: the mount becomes an upload.
    let target_only = get_token(
        &server,
        WRITER,
        WRITER_PASSWORD,
        "repository:target:pull,push",
    )
    .await;
    let upload = http
        .post(&url)
        .bearer_auth(&target_only)
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), StatusCode::ACCEPTED);
    assert!(registry.blob("target", &digest).is_none());
    // With pull on the source too (two scopes in one token request): mounted.
    let both = client()
        .get(server.realm())
        .query(&[
            ("service", server.service()),
            ("scope", "repository:target:pull,push"),
            ("scope", "repository:source:pull"),
        ])
        .basic_auth(WRITER, Some(WRITER_PASSWORD))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mounted = http
        .post(&url)
        .bearer_auth(both["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(registry.blob("target", &digest).unwrap(), "layer");

    let basic = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Basic {
            user: READER.into(),
            password: READER_PASSWORD.into(),
        },
    })
    .unwrap();
    let ping = format!("{}/v2/", basic.url());
    let refused = http
        .get(&ping)
        .basic_auth(READER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&refused, "www-authenticate").unwrap(),
        "Basic realm=\"ocistore-fake-registry\""
    );
    let allowed = http
        .get(&ping)
        .basic_auth(READER, Some(READER_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    // The Authorization header is recorded as sent (tests can check what a client sent).
    let recorded = basic.requests();
    assert!(recorded[1]
        .header("authorization")
        .unwrap()
        .starts_with("Basic "));
}
