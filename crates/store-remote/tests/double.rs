//! What no installable registry does, against the spec-following **test double** of
//! ocistore-test-registry: the referrers API, a 202 on mount, a missing Docker-Content-Digest,
//! Link pagination, 429 with Retry-After, OCI-Chunk-Min-Length, redirects to another host,
//! broken bodies and headers.

mod common;

use bytes::Bytes;
use common::*;
use ocistore_test_registry::{
    BodyFault, DoubleAuth, FakeOptions, FakeRegistry, Fault, Malformed, MountMode, TokenConfig,
    TokenServer,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_core::content::{descriptor_from_bytes, fetch_all, push_bytes, reader_from_bytes};
use store_core::spec::MediaType;
use store_core::{
    ErrorKind, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, Resolver, TagLister, Tagger,
};
use store_remote::{ClientOptions, Credential, Registry, Repository, Secret};

fn double() -> FakeRegistry {
    FakeRegistry::start(FakeOptions::default()).expect("double")
}

fn repo_on(double: &FakeRegistry, options: ClientOptions, name: &str) -> Repository {
    let client = client_with(options, Credential::Anonymous);
    Repository::new(&client, &format!("{}/{name}", double.host())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn referrers_api_is_used_with_its_filter_and_pages() {
    let double = double();
    double.set_page_size(Some(1));
    let repo = repo_on(&double, test_options(), "ref/app");
    let manifest = push_small_image(&repo, "r").await;
    let sbom1 = push_sbom(&repo, &manifest, "1").await;
    let sbom2 = push_sbom(&repo, &manifest, "2").await;
    let sig = store_core::content::push_artifact(
        &repo,
        "application/vnd.example.signature",
        [],
        Some(&manifest),
        None,
    )
    .await
    .unwrap();
    let mut found: Vec<String> = repo
        .predecessors(&manifest)
        .await
        .unwrap()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    found.sort();
    let mut expected = vec![
        sbom1.digest().to_string(),
        sbom2.digest().to_string(),
        sig.digest().to_string(),
    ];
    expected.sort();
    assert_eq!(found, expected);
    let sboms = repo
        .referrers(&manifest, Some("application/vnd.example.sbom"))
        .await
        .unwrap();
    assert_eq!(sboms.len(), 2);
    // With the API there, no referrers tag was written.
    assert!(double
        .tags("ref/app")
        .iter()
        .all(|t| !t.starts_with("sha256-")));
    assert!(
        double.requests_matching("GET", "/referrers/").len() >= 3,
        "paginated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_api_the_tag_schema_is_kept() {
    let double = double();
    double.set_referrers_api(false);
    let repo = repo_on(&double, test_options(), "ref/schema");
    let manifest = push_small_image(&repo, "s").await;
    let sbom = push_sbom(&repo, &manifest, "1").await;
    let found = repo.predecessors(&manifest).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest(), sbom.digest());
    let tag = format!(
        "sha256-{}",
        manifest.digest().to_string().trim_start_matches("sha256:")
    );
    assert!(double.tags("ref/schema").contains(&tag));
    // Deleting the referrer takes it out of the index.
    store_core::Deleter::delete(&repo, &sbom).await.unwrap();
    assert!(repo.predecessors(&manifest).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_falls_back_to_an_upload_on_202() {
    let double = double();
    let a = repo_on(&double, test_options(), "mnt/a");
    let b = repo_on(&double, test_options(), "mnt/b");
    let data = Bytes::from_static(b"blob to mount");
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    push_bytes(&a, &desc, data.clone()).await.unwrap();
    b.mount(&desc, "mnt/a", None).await.unwrap();
    assert!(b.exists(&desc).await.unwrap());

    double.set_mount_mode(MountMode::Accepted);
    let c = repo_on(&double, test_options(), "mnt/c");
    let err = c.mount(&desc, "mnt/a", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let source = data.clone();
    c.mount(
        &desc,
        "mnt/a",
        Some(Box::new(move || {
            Box::pin(async move { Ok(reader_from_bytes(source)) })
        })),
    )
    .await
    .unwrap();
    assert_eq!(fetch_all(&c, &desc).await.unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_hashes_the_body_when_the_digest_header_is_missing() {
    let double = double();
    let repo = repo_on(&double, test_options(), "nodigest/app");
    let manifest = push_small_image(&repo, "nd").await;
    repo.tag(&manifest, "v1").await.unwrap();
    double.set_omit_digest_header(true);
    let resolved = repo.resolve("v1").await.unwrap();
    assert_eq!(resolved.digest(), manifest.digest());
    assert_eq!(resolved.size(), manifest.size());
    assert!(!double.requests_matching("GET", "/manifests/v1").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_and_catalog_follow_link_pages() {
    let double = double();
    double.set_page_size(Some(2));
    let repo = repo_on(&double, test_options(), "pages/app");
    let manifest = push_small_image(&repo, "p").await;
    for tag in ["a", "b", "c", "d", "e"] {
        repo.tag(&manifest, tag).await.unwrap();
    }
    assert_eq!(
        repo.tags(None).await.unwrap(),
        vec!["a", "b", "c", "d", "e"]
    );
    assert_eq!(repo.tags(Some("b")).await.unwrap(), vec!["c", "d", "e"]);
    for name in ["pages/x", "pages/y"] {
        push_small_image(&repo_on(&double, test_options(), name), name).await;
    }
    let client = client_with(test_options(), Credential::Anonymous);
    let registry = Registry::new(&client, &double.host()).unwrap();
    assert_eq!(
        registry.catalog(None).await.unwrap(),
        vec!["pages/app", "pages/x", "pages/y"]
    );

    // A malformed Link header ends the listing at the first page instead of failing.
    double.set_malformed(Some(Malformed::Link));
    assert_eq!(repo.tags(None).await.unwrap(), vec!["a", "b"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_and_5xx_are_retried_honouring_retry_after() {
    let double = double();
    let repo = repo_on(&double, test_options(), "retry/app");
    let manifest = push_small_image(&repo, "r").await;
    repo.tag(&manifest, "v1").await.unwrap();

    double.fail_next(2, Fault::TooManyRequests { retry_after: 1 });
    let opts = ClientOptions {
        backoff_max: Duration::from_millis(300),
        ..test_options()
    };
    let patient = repo_on(&double, opts, "retry/app");
    let started = Instant::now();
    assert_eq!(
        patient.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    // Retry-After: 1 capped at backoff_max (300 ms), twice.
    assert!(
        started.elapsed() >= Duration::from_millis(550),
        "{:?}",
        started.elapsed()
    );

    double.fail_next(2, Fault::Status(503));
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );

    let impatient = repo_on(
        &double,
        ClientOptions {
            retries: 1,
            ..test_options()
        },
        "retry/app",
    );
    double.fail_next(3, Fault::TooManyRequests { retry_after: 0 });
    let err = impatient.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRequests, "{err}");
    // A HEAD answer has no body, so only the status tells.
    assert!(
        err.to_string().contains("HEAD") && err.to_string().contains("429"),
        "{err}"
    );
    double.fail_next(3, Fault::TooManyRequests { retry_after: 0 });
    let err = impatient.tags(None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TooManyRequests, "{err}");
    assert!(err.to_string().contains("TOOMANYREQUESTS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_blobs_go_in_chunks_of_at_least_the_registry_minimum() {
    let double = double();
    double.set_chunk_min_length(Some(4096));
    let opts = ClientOptions {
        monolithic_limit: 1000,
        chunk_size: 1000,
        ..test_options()
    };
    let repo = repo_on(&double, opts, "chunk/app");
    let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    repo.push(
        &desc,
        store_core::testkit::fixtures::yielding_reader(Bytes::from(data.clone()), 333),
    )
    .await
    .unwrap();
    assert_eq!(fetch_all(&repo, &desc).await.unwrap(), data);
    let patches = double.requests_matching("PATCH", "/blobs/uploads/");
    assert_eq!(patches.len(), 3, "10000 bytes in chunks of 4096");
    assert!(patches.iter().take(2).all(|p| p.body_len == 4096));

    // A chunked push whose bytes do not match leaves nothing and no open upload.
    let mut wrong = data.clone();
    wrong[5000] ^= 1;
    let err = repo
        .push(
            &desc_of_other(&wrong, &data),
            reader_from_bytes(wrong.clone()),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert_eq!(double.uploads_in_progress(), 0);
}

/// The descriptor of `claimed` with `actual`'s size: pushing `actual` under it is a mismatch.
fn desc_of_other(actual: &[u8], claimed: &[u8]) -> store_core::spec::Descriptor {
    let mut other = claimed.to_vec();
    other.push(0);
    let mut desc = descriptor_from_bytes(MediaType::ImageLayer, &other);
    desc.set_size(actual.len() as u64);
    desc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused() {
    let double = double();
    let repo = repo_on(&double, test_options(), "bad/app");
    // Small blobs are hashed inline, large ones on a thread beside the reader: both paths.
    for len in [5000usize, 5 << 20] {
        let data = Bytes::from((0..len).map(|i| (i % 253) as u8).collect::<Vec<u8>>());
        let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
        push_bytes(&repo, &desc, data.clone()).await.unwrap();
        assert_eq!(fetch_all(&repo, &desc).await.unwrap(), data);
        for fault in [
            BodyFault::WrongBytes,
            BodyFault::Truncated,
            BodyFault::NoLength,
            BodyFault::Oversized(10),
        ] {
            double.set_body_fault(Some(fault), Some(desc.digest().as_ref()));
            let result = fetch_all(&repo, &desc).await;
            match (fault, result) {
                (BodyFault::NoLength, Ok(got)) => assert_eq!(got, data),
                (_, Err(err)) => assert!(
                    matches!(
                        err.kind(),
                        ErrorKind::Mismatch | ErrorKind::Backend | ErrorKind::Io
                    ),
                    "{fault:?}: {err}"
                ),
                (_, Ok(_)) => panic!("{fault:?}: unverified bytes were handed out"),
            }
            // Copying into a layout leaves no blob behind.
            let dir = tempfile::tempdir().unwrap();
            let layout = store_fs::Store::open(dir.path()).await.unwrap();
            let reader = repo.fetch(&desc).await;
            if let Ok(reader) = reader {
                let pushed = layout.push(&desc, reader).await;
                if fault != BodyFault::NoLength {
                    assert!(pushed.is_err(), "{fault:?}");
                    assert!(!layout.exists(&desc).await.unwrap(), "{fault:?}");
                }
            }
        }
        double.set_body_fault(None, None);
    }

    // An oversized manifest: refused by size before being read.
    let repo_small = repo_on(
        &double,
        ClientOptions {
            max_metadata_bytes: 100,
            ..test_options()
        },
        "bad/app",
    );
    let manifest = push_small_image(&repo, "big").await;
    repo.tag(&manifest, "v1").await.unwrap();
    let err = repo_small.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
    double.set_omit_digest_header(true);
    let err = repo_small.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_follow_a_redirect_to_another_host() {
    let double = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Basic {
            user: "u".into(),
            password: "pw-9931".into(),
        },
    })
    .unwrap();
    let client = client_with(
        test_options(),
        Credential::Basic {
            username: "u".into(),
            password: Secret::new("pw-9931"),
        },
    );
    let repo = Repository::new(&client, &format!("{}/redir/app", double.host())).unwrap();
    let data = Bytes::from_static(b"redirected blob");
    let desc = descriptor_from_bytes(MediaType::ImageLayer, &data);
    push_bytes(&repo, &desc, data.clone()).await.unwrap();
    double.set_redirect_blobs(true);
    assert_eq!(fetch_all(&repo, &desc).await.unwrap(), data);
    let redirected = double.redirected_requests();
    assert!(!redirected.is_empty(), "the blob GET was redirected");
    assert!(redirected
        .iter()
        .all(|r| r.header("authorization").is_none()));
    // The registry itself did get credentials.
    assert!(double
        .requests_matching("GET", "/blobs/")
        .iter()
        .any(|r| r.header("authorization").is_some()));
    // Wrong password: Unauthorized, without the password in the error.
    let wrong = client_with(
        test_options(),
        Credential::Basic {
            username: "u".into(),
            password: Secret::new("nope-1234"),
        },
    );
    let err = Repository::new(&wrong, &format!("{}/redir/app", double.host()))
        .unwrap()
        .fetch(&desc)
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!format!("{err} {err:?}").contains("nope-1234"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_single_flight_and_malformed_challenges() {
    let server = Arc::new(TokenServer::start(TokenConfig::standard()).unwrap());
    let double = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Token(Arc::clone(&server)),
    })
    .unwrap();
    let client = client_with(
        test_options(),
        Credential::Basic {
            username: ocistore_test_registry::WRITER.into(),
            password: Secret::new(ocistore_test_registry::WRITER_PASSWORD),
        },
    );
    let repo = Repository::new(&client, &format!("{}/tok/app", double.host())).unwrap();
    let manifest = push_small_image(&repo, "t").await;
    repo.tag(&manifest, "v1").await.unwrap();
    server.reset_counters();
    // Revoked tokens are refused by the double: one new token for all concurrent callers.
    server.revoke_access_tokens();
    server.set_delay(Duration::from_millis(50));
    let results = futures::future::join_all((0..6).map(|_| repo.resolve("v1"))).await;
    for result in results {
        assert_eq!(result.unwrap().digest(), manifest.digest());
    }
    assert_eq!(server.tokens_issued(), 1);

    // An oversized token answer is refused, bounded, and no token comes of it.
    server.set_oversize(Some(3 << 20));
    let fresh = client_with(
        test_options(),
        Credential::Basic {
            username: ocistore_test_registry::WRITER.into(),
            password: Secret::new(ocistore_test_registry::WRITER_PASSWORD),
        },
    );
    let err = Repository::new(&fresh, &format!("{}/tok/app", double.host()))
        .unwrap()
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
    server.set_oversize(None);

    double.set_malformed(Some(Malformed::WwwAuthenticate));
    let other = client_with(test_options(), Credential::Anonymous);
    let err = Repository::new(&other, &format!("{}/tok/app", double.host()))
        .unwrap()
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_error_bodies_still_give_typed_errors() {
    let double = double();
    double.set_malformed(Some(Malformed::ErrorBody));
    let repo = repo_on(&double, test_options(), "errbody/app");
    let err = repo.resolve("missing").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    double.set_malformed(None);
    let fetched = repo
        .fetch(&descriptor_from_bytes(MediaType::ImageManifest, b"{}"))
        .await
        .err()
        .unwrap();
    assert_eq!(fetched.kind(), ErrorKind::NotFound, "{fetched}");
    if let store_core::Error::Remote {
        code,
        status,
        method,
        ..
    } = &fetched
    {
        assert_eq!(code, "MANIFEST_UNKNOWN");
        assert_eq!(*status, Some(404));
        assert_eq!(method, "GET");
    } else {
        panic!("not a Remote error: {fetched:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried_and_stalls_time_out() {
    let double = double();
    let repo = repo_on(&double, test_options(), "drop/app");
    let manifest = push_small_image(&repo, "d").await;
    repo.tag(&manifest, "v1").await.unwrap();
    double.fail_next(2, Fault::Disconnect);
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(double.faults_pending(), 0);

    let once = repo_on(
        &double,
        ClientOptions {
            retries: 0,
            ..test_options()
        },
        "drop/app",
    );
    double.fail_next(1, Fault::Disconnect);
    let err = once.resolve("v1").await.unwrap_err();
    assert!(
        matches!(err, store_core::Error::Remote { status: None, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("no response"), "{err}");

    let hasty = repo_on(
        &double,
        ClientOptions {
            retries: 0,
            read_timeout: Duration::from_millis(200),
            ..test_options()
        },
        "drop/app",
    );
    double.fail_next(1, Fault::Stall(Duration::from_secs(2)));
    let started = Instant::now();
    let err = hasty.resolve("v1").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_requests_are_retried_like_registry_requests() {
    let server = Arc::new(TokenServer::start(TokenConfig::standard()).unwrap());
    let double = FakeRegistry::start(FakeOptions {
        auth: DoubleAuth::Token(Arc::clone(&server)),
    })
    .unwrap();
    let writer = || Credential::Basic {
        username: ocistore_test_registry::WRITER.into(),
        password: Secret::new(ocistore_test_registry::WRITER_PASSWORD),
    };
    let seed = Repository::new(
        &client_with(test_options(), writer()),
        &format!("{}/tok/retry", double.host()),
    )
    .unwrap();
    let manifest = push_small_image(&seed, "r").await;
    seed.tag(&manifest, "v1").await.unwrap();

    // A fresh client has no token yet: its first token request meets the failures.
    server.reset_counters();
    server.fail_next(1, 503);
    server.fail_next(1, 429);
    server.fail_next(1, 502);
    let repo = Repository::new(
        &client_with(test_options(), writer()),
        &format!("{}/tok/retry", double.host()),
    )
    .unwrap();
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(server.request_count(), 4);
    assert_eq!(server.tokens_issued(), 1);

    // Retries run out: the last refusal is the error, after exactly 1 + retries requests.
    server.reset_counters();
    server.fail_next(2, 503);
    let impatient = Repository::new(
        &client_with(
            ClientOptions {
                retries: 1,
                ..test_options()
            },
            writer(),
        ),
        &format!("{}/tok/retry", double.host()),
    )
    .unwrap();
    let err = impatient.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(server.request_count(), 2);
    assert_eq!(server.tokens_issued(), 0);

    // A refusal of the credentials is not retried.
    server.reset_counters();
    let wrong = Repository::new(
        &client_with(
            test_options(),
            Credential::Basic {
                username: ocistore_test_registry::WRITER.into(),
                password: Secret::new("not-the-password"),
            },
        ),
        &format!("{}/tok/retry", double.host()),
    )
    .unwrap();
    let err = wrong.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert_eq!(server.request_count(), 1, "{:?}", server.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_descriptor_heads_the_blob() {
    let double = double();
    let repo = repo_on(&double, test_options(), "blobs/app");
    let layer = b"a layer known only by its digest".to_vec();
    let digest = double.put_blob("blobs/app", Bytes::from(layer.clone()));

    double.clear_requests();
    let desc = repo.blob_descriptor(&digest).await.unwrap();
    assert_eq!(desc.digest().to_string(), digest);
    assert_eq!(desc.size(), layer.len() as u64);
    assert_eq!(
        desc.media_type(),
        &MediaType::Other("application/octet-stream".into())
    );
    let heads = double.requests_matching("HEAD", &format!("/blobs/{digest}"));
    assert_eq!(heads.len(), 1, "{:?}", double.requests());
    assert_eq!(fetch_all(&repo, &desc).await.unwrap(), layer);

    // The descriptor's size and digest are what a fetch verifies against.
    double.set_body_fault(Some(BodyFault::WrongBytes), Some(&digest));
    let err = fetch_all(&repo, &desc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    double.set_body_fault(None, None);

    let missing = store_core::digest::digest_string(store_core::digest::Algorithm::Sha256, b"x");
    let err = repo.blob_descriptor(&missing).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let err = repo.blob_descriptor("not-a-digest").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidReference, "{err}");

    double.fail_next(2, Fault::Status(503));
    assert_eq!(repo.blob_descriptor(&digest).await.unwrap(), desc);
}

/// distribution 2.8 answers a manifest request for a blob's digest with 500. Resolving a blob's
/// digest asks once and says `NotFound` (no retries, whose backoff would cost seconds), while
/// a 500 for a digest that names no blob is still a fault that is retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_a_blob_digest_is_not_found_without_retries() {
    let double = double();
    double.set_blob_as_manifest_fails(true);
    let repo = repo_on(&double, test_options(), "blobs/resolve");
    let manifest = push_small_image(&repo, "r").await;
    let layer = double.put_blob("blobs/resolve", Bytes::from_static(b"a layer, no manifest"));

    double.clear_requests();
    let err = repo.resolve(&layer).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("a blob"), "{err}");
    let manifest_heads = double.requests_matching("HEAD", &format!("/manifests/{layer}"));
    assert_eq!(manifest_heads.len(), 1, "{:?}", double.requests());

    // A 500 on a manifest's own digest is a fault: tried again, and resolved.
    let digest = manifest.digest().to_string();
    double.clear_requests();
    double.fail_next(1, Fault::Status(500));
    assert_eq!(repo.resolve(&digest).await.unwrap(), manifest);
    assert_eq!(double.faults_pending(), 0);
    let manifest_heads = double.requests_matching("HEAD", &format!("/manifests/{digest}"));
    assert_eq!(manifest_heads.len(), 2, "{:?}", double.requests());

    // A digest naming nothing at all, answered 500 every time: the registry's fault, reported
    // as such after the retries.
    let missing = store_core::digest::digest_string(store_core::digest::Algorithm::Sha256, b"y");
    double.fail_next(20, Fault::Status(500));
    let err = repo.resolve(&missing).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("500"), "{err}");
}

/// A copy into a registry pushes its root under the tag: one `PUT` that stores and tags it
/// (oras-go's `ReferencePusher`), where a push by digest and a tag made four requests (`HEAD`,
/// `PUT` by digest, `GET`, `PUT` by tag). Counting requests is what the double is for here:
/// no installable registry reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_pushes_its_root_under_the_tag_in_one_put() {
    let double = double();
    let src = repo_on(&double, test_options(), "src/app");
    let dst = repo_on(&double, test_options(), "dst/app");
    let manifest = push_small_image(&src, "copied").await;
    src.tag(&manifest, "v1").await.unwrap();
    double.clear_requests();
    store_core::copy::copy(
        &src,
        "v1",
        &dst,
        "v2",
        &store_core::copy::CopyOptions::default(),
    )
    .await
    .unwrap();
    let puts: Vec<String> = double
        .requests_matching("PUT", "/dst/app/manifests/")
        .into_iter()
        .map(|r| r.path)
        .collect();
    assert_eq!(puts, ["/v2/dst/app/manifests/v2"], "{puts:?}");
    assert!(
        double
            .requests_matching("GET", "/dst/app/manifests/")
            .is_empty(),
        "the tag fetched the manifest back"
    );
    assert_eq!(dst.resolve("v2").await.unwrap().digest(), manifest.digest());
    let fetched = fetch_all(&dst, &manifest).await.unwrap();
    assert_eq!(fetched.len() as u64, manifest.size());
}
