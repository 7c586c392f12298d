//! The launcher against the real `docker-registry` (distribution 2.8): each auth mode accepts
//! the right credentials or token and refuses wrong ones with the challenge a client needs,
//! and content round-trips through a registry behind token auth.

mod common;

use common::*;

use ocistore_test_registry::{
    decode_claims, Auth, Registry, RunningRegistry, READER, READER_PASSWORD, WRITER,
    WRITER_PASSWORD,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The `key="value"` parameters of a `WWW-Authenticate` challenge (values without commas).
fn challenge_params(header: &str) -> Vec<(String, String)> {
    let (_, params) = header.split_once(' ').unwrap();
    params
        .split("\",")
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.trim_matches('"').to_string())
        })
        .collect()
}

/// A token for `scope` from the registry's token server, as `user`.
async fn token(registry: &RunningRegistry, user: &str, password: &str, scope: &str) -> String {
    let server = registry.token_server().unwrap();
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
async fn anonymous_registry_answers_without_credentials() {
    let Some(registry) = Registry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    assert!(registry.host().starts_with("127.0.0.1:"));
    assert_eq!(registry.credentials(), None);
    let response = client()
        .get(format!("{}/v2/", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
}

#[tokio::test]
async fn basic_registry_accepts_the_password_and_refuses_others() {
    let Some(registry) = Registry::start_or_skip(Auth::basic()) else {
        return;
    };
    assert_eq!(registry.credentials(), Some((WRITER, WRITER_PASSWORD)));
    let url = format!("{}/v2/", registry.url());
    let http = client();

    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()["www-authenticate"],
        "Basic realm=\"ocistore-test-registry\""
    );
    let wrong = http
        .get(&url)
        .basic_auth(WRITER, Some("not-the-password"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http
        .get(&url)
        .basic_auth(WRITER, Some(WRITER_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
}

#[tokio::test]
async fn token_registry_challenges_and_accepts_its_tokens_only() {
    let Some(registry) = Registry::start_or_skip(Auth::token()) else {
        return;
    };
    let server = registry.token_server().unwrap();
    let http = client();
    let repo_url = format!("{}/v2/team/app/tags/list", registry.url());

    // No token: the challenge names the realm, the service and the scope needed.
    let response = http.get(&repo_url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let params = challenge_params(&challenge);
    assert!(
        params.contains(&("realm".into(), server.realm().into())),
        "{challenge}"
    );
    assert!(
        params.contains(&("service".into(), server.service().into())),
        "{challenge}"
    );
    assert!(
        params.contains(&("scope".into(), "repository:team/app:pull".into())),
        "{challenge}"
    );

    // A wrong password gets no token.
    let wrong = http
        .get(server.realm())
        .query(&[
            ("service", server.service()),
            ("scope", "repository:team/app:pull"),
        ])
        .basic_auth(WRITER, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(server.tokens_issued(), 0);

    // A token the registry did not issue (any garbage) is refused.
    let forged = http
        .get(&repo_url)
        .bearer_auth("e30.e30.AAAA")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    // A real token for the scope is accepted: the repository does not exist yet, which the
    // registry may only say to an authorized client.
    let token = token(
        &registry,
        READER,
        READER_PASSWORD,
        "repository:team/app:pull",
    )
    .await;
    assert_eq!(server.tokens_issued(), 1);
    let claims = decode_claims(&token).unwrap();
    assert_eq!(
        claims["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
    );
    let response = http
        .get(&repo_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "NAME_UNKNOWN");

    // The same token does not reach another repository, and an expired one is refused.
    let other = http
        .get(format!("{}/v2/other/tags/list", registry.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    server.set_issue_expired(true);
    let expired = token_for(&registry, "repository:team/app:pull").await;
    let refused = http
        .get(&repo_url)
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

async fn token_for(registry: &RunningRegistry, scope: &str) -> String {
    token(registry, WRITER, WRITER_PASSWORD, scope).await
}

#[tokio::test]
async fn reader_is_denied_a_push_that_the_writer_may_do() {
    let Some(registry) = Registry::start_or_skip(Auth::token()) else {
        return;
    };
    let http = client();
    let uploads = format!("{}/v2/team/app/blobs/uploads/", registry.url());
    let reader = token(
        &registry,
        READER,
        READER_PASSWORD,
        "repository:team/app:pull,push",
    )
    .await;
    // The token server granted only what the reader may do: pull.
    assert_eq!(
        decode_claims(&reader).unwrap()["access"][0]["actions"],
        json!(["pull"])
    );
    let denied = http
        .post(&uploads)
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let challenge = denied.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    let writer = token_for(&registry, "repository:team/app:pull,push").await;
    let accepted = http
        .post(&uploads)
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn content_round_trips_through_a_token_registry() {
    let Some(registry) = Registry::start_or_skip(Auth::token()) else {
        return;
    };
    let http = client();
    let base = registry.url();
    let token = token_for(&registry, "repository:rt/image:pull,push,delete").await;

    // One blob per upload style: monolithic POST+PUT, and POST, PATCH, PUT.
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    let layer = b"layer bytes of the round trip".to_vec();
    let start = http
        .post(format!("{base}/v2/rt/image/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = absolute(&base, start.headers()["location"].to_str().unwrap());
    let put = http
        .put(with_digest(&location, &sha256(&config)))
        .bearer_auth(&token)
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        put.headers()["docker-content-digest"],
        sha256(&config).as_str()
    );

    let start = http
        .post(format!("{base}/v2/rt/image/blobs/uploads/"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let location = absolute(&base, start.headers()["location"].to_str().unwrap());
    let patch = http
        .patch(&location)
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("0-{}", layer.len() - 1))
        .body(layer.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), StatusCode::ACCEPTED);
    let location = absolute(&base, patch.headers()["location"].to_str().unwrap());
    let put = http
        .put(with_digest(&location, &sha256(&layer)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);

    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": sha256(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let put = http
        .put(format!("{base}/v2/rt/image/manifests/v1"))
        .bearer_auth(&token)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(
        put.headers()["docker-content-digest"],
        sha256(&manifest).as_str()
    );

    let got = http
        .get(format!("{base}/v2/rt/image/manifests/v1"))
        .bearer_auth(&token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(
        got.headers()["content-type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(got.bytes().await.unwrap().as_ref(), manifest.as_slice());
    let blob = http
        .get(format!("{base}/v2/rt/image/blobs/{}", sha256(&layer)))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), StatusCode::OK);
    assert_eq!(blob.bytes().await.unwrap().as_ref(), layer.as_slice());

    // Deletes are enabled: the manifest goes away by digest.
    let delete = http
        .delete(format!(
            "{base}/v2/rt/image/manifests/{}",
            sha256(&manifest)
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    let gone = http
        .get(format!(
            "{base}/v2/rt/image/manifests/{}",
            sha256(&manifest)
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_string()
    } else {
        format!("{base}{location}")
    }
}

fn with_digest(location: &str, digest: &str) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}digest={digest}")
}

/// What distribution 2.8 does and does not do, as the crate's README says: the reasons the
/// test double exists. If a later registry package changes one of these, this test says which.
#[tokio::test]
async fn distribution_2_8_lacks_what_the_double_provides() {
    let Some(registry) = Registry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let http = client();
    let base = registry.url();
    let config = b"{}".to_vec();
    let start = http
        .post(format!("{base}/v2/probe/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    // No chunk minimum announced.
    assert!(start.headers().get("oci-chunk-min-length").is_none());
    let location = absolute(&base, start.headers()["location"].to_str().unwrap());
    let put = http
        .put(with_digest(&location, &sha256(&config)))
        .body(config.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [],
    })
    .to_string();
    for tag in ["a", "b", "c"] {
        let put = http
            .put(format!("{base}/v2/probe/manifests/{tag}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
    }
    // Tags: `n` is ignored, every tag comes back at once, and no Link.
    let tags = http
        .get(format!("{base}/v2/probe/tags/list?n=1"))
        .send()
        .await
        .unwrap();
    assert!(tags.headers().get("link").is_none());
    let body: Value = tags.json().await.unwrap();
    let mut all: Vec<&str> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, ["a", "b", "c"]);

    // A mount of a blob the source has: always 201, never the 202 fallback.
    let mount = http
        .post(format!(
            "{base}/v2/other/blobs/uploads/?mount={}&from=probe",
            sha256(&config)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), StatusCode::CREATED);
    assert_eq!(
        mount.headers()["docker-content-digest"],
        sha256(&config).as_str()
    );

    // The catalog does paginate, with a Link to the next page.
    let catalog = http
        .get(format!("{base}/v2/_catalog?n=1"))
        .send()
        .await
        .unwrap();
    let link = catalog.headers()["link"].to_str().unwrap().to_string();
    assert_eq!(link, "</v2/_catalog?last=other&n=1>; rel=\"next\"");

    // No referrers API, and a subject on a manifest PUT gets no OCI-Subject.
    let subject = sha256(manifest.as_bytes());
    let referrers = http
        .get(format!("{base}/v2/probe/referrers/{subject}"))
        .send()
        .await
        .unwrap();
    assert_eq!(referrers.status(), StatusCode::NOT_FOUND);
    let mut referrer: Value = serde_json::from_str(&manifest).unwrap();
    referrer["subject"] = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                 "digest": subject, "size": manifest.len()});
    let put = http
        .put(format!("{base}/v2/probe/manifests/sig"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(referrer.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert!(put.headers().get("oci-subject").is_none());

    // Untag is not supported: a DELETE by tag is a 400 DIGEST_INVALID (the tag is parsed as a
    // digest), and the tag stays.
    let untag = http
        .delete(format!("{base}/v2/probe/manifests/a"))
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::BAD_REQUEST);
    let body: Value = untag.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    let still = http
        .head(format!("{base}/v2/probe/manifests/a"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), StatusCode::OK);

    // A manifest PUT over 4 MiB is refused.
    let big = http
        .put(format!("{base}/v2/probe/manifests/big"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(format!("{}{}", manifest, " ".repeat(4 << 20)))
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), StatusCode::BAD_REQUEST);
    let body: Value = big.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "MANIFEST_INVALID");
}
