//! Where credentials come from: the Docker config (`auths`, `credHelpers`) as docker reads it,
//! and OAuth2 refresh tokens (`identitytoken`), against the real registry.

mod common;

use base64::Engine;
use common::*;
use ocistore_test_registry::{Auth, Registry as RealRegistry, WRITER, WRITER_PASSWORD};
use std::os::unix::fs::PermissionsExt;
use store_core::{ErrorKind, Resolver, Tagger};
use store_remote::{Client, Credential, CredentialProvider, DockerConfig, Secret};

/// The only test of this binary that touches the environment (DOCKER_CONFIG, PATH).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_auths_and_credential_helpers() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::basic()) else {
        return;
    };
    let (user, password) = registry.credentials().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let config = serde_json::json!({"auths": {registry.host(): {"auth": auth}}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    std::env::set_var("DOCKER_CONFIG", dir.path());

    let client = Client::new(test_options()).unwrap();
    let repo = repo(&client, &registry, "cfg/app");
    let manifest = push_small_image(&repo, "cfg").await;
    repo.tag(&manifest, "v1").await.unwrap();
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );

    // A credential helper named in credHelpers is run as `docker-credential-<name> get`.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-ocitest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{password}\"}}' \"$server\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = serde_json::json!({"credHelpers": {registry.host(): "ocitest"}});
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::set_var("PATH", format!("{}:{path}", bin.display()));
    match DockerConfig.credential(&registry.host()) {
        Credential::Basic {
            username,
            password: secret,
        } => {
            assert_eq!(username, user);
            assert_eq!(secret.expose(), password);
        }
        other => panic!("the helper's credential was not used: {other:?}"),
    }
    let helped = Client::new(test_options()).unwrap();
    let repo = common::repo(&helped, &registry, "cfg/app");
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );

    // No entry for the host: anonymous, which this registry refuses.
    std::fs::write(dir.path().join("config.json"), "{\"auths\":{}}").unwrap();
    let anonymous = Client::new(test_options()).unwrap();
    let err = common::repo(&anonymous, &registry, "cfg/app")
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_are_exchanged_for_access_tokens() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::token()) else {
        return;
    };
    let server = registry.token_server().unwrap();
    // What `docker login` stores as identitytoken: a refresh token from an offline grant.
    let response = reqwest::Client::new()
        .get(server.realm())
        .query(&[
            ("service", server.service()),
            ("offline_token", "true"),
            ("scope", ""),
        ])
        .basic_auth(WRITER, Some(WRITER_PASSWORD))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let refresh = body["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();

    server.reset_counters();
    let client = client_with(
        test_options(),
        Credential::RefreshToken(Secret::new(refresh.clone())),
    );
    let repo = repo(&client, &registry, "refresh/app");
    let manifest = push_small_image(&repo, "rt").await;
    repo.tag(&manifest, "v1").await.unwrap();
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    let requests = server.requests();
    assert!(!requests.is_empty());
    assert!(
        requests.iter().all(|r| r.grant == "refresh_token"),
        "{:?}",
        requests.iter().map(|r| r.grant.clone()).collect::<Vec<_>>()
    );

    server.revoke_refresh_tokens();
    let revoked = client_with(
        test_options(),
        Credential::RefreshToken(Secret::new(refresh.clone())),
    );
    let err = common::repo(&revoked, &registry, "refresh/app")
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!format!("{err} {err:?}").contains(&refresh));
}
