//! Against the real `docker-registry` (distribution 2.8) in its three auth configurations:
//! push, resolve, fetch, tags, copy both ways with a layout, referrers through the tag schema,
//! and the typed errors of wrong credentials, missing content and hostile sizes.

mod common;

use common::*;
use ocistore_test_registry::{Auth, Registry as RealRegistry, READER, READER_PASSWORD};
use store_core::content::fetch_all;
use store_core::copy::{copy, extended_copy, CopyOptions, ExtendedCopyOptions};
use store_core::spec::Descriptor;
use store_core::{
    Deleter, ErrorKind, Fetcher, PredecessorFinder, Pusher, ReadOnlyStorage, Resolver, TagLister,
    Tagger, Untagger,
};
use store_remote::{Client, ClientOptions, Credential, Registry, Secret};

fn digests_of<D: std::borrow::Borrow<Descriptor>>(descs: &[D]) -> Vec<String> {
    let mut out: Vec<String> = descs
        .iter()
        .map(|d| d.borrow().digest().to_string())
        .collect();
    out.sort();
    out
}

/// Every node under `root` in `store`, as (digest, bytes), for comparing two stores.
async fn graph_bytes(
    store: &(impl store_core::Fetcher + ?Sized),
    root: &Descriptor,
) -> Vec<(String, Vec<u8>)> {
    let nodes = store_core::content::walk(store, root).await.expect("walk");
    let mut out = Vec::new();
    for node in nodes {
        let data = fetch_all(store, &node).await.expect("fetch");
        out.push((node.digest().to_string(), data.to_vec()));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_resolve_fetch_tag_and_list_anonymously() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "demo/app");
    let manifest = push_small_image(&repo, "one").await;
    assert!(repo.exists(&manifest).await.unwrap());
    repo.tag(&manifest, "v1").await.unwrap();
    repo.tag(&manifest, "v2").await.unwrap();

    let resolved = repo.resolve("v1").await.unwrap();
    assert_eq!(resolved.digest(), manifest.digest());
    assert_eq!(resolved.size(), manifest.size());
    assert_eq!(resolved.media_type(), manifest.media_type());
    let by_digest = repo.resolve(manifest.digest().as_ref()).await.unwrap();
    assert_eq!(by_digest.digest(), manifest.digest());
    let full = format!("{}/demo/app:v2", registry.host());
    assert_eq!(
        repo.resolve(&full).await.unwrap().digest(),
        manifest.digest()
    );

    let body = fetch_all(&repo, &manifest).await.unwrap();
    assert_eq!(body.len() as u64, manifest.size());
    let successors = store_core::content::successors(&repo, &manifest)
        .await
        .unwrap();
    assert_eq!(successors.len(), 2);
    for blob in &successors {
        assert!(repo.exists(blob).await.unwrap());
        assert_eq!(
            fetch_all(&repo, blob).await.unwrap().len() as u64,
            blob.size()
        );
    }

    assert_eq!(repo.tags(None).await.unwrap(), vec!["v1", "v2"]);
    assert_eq!(repo.tags(Some("v1")).await.unwrap(), vec!["v2"]);
    assert!(repo.tags(Some("v2")).await.unwrap().is_empty());

    let handle = Registry::new(&client, &registry.host()).unwrap();
    handle.ping().await.unwrap();
    let other = handle.repository("demo/other").unwrap();
    push_small_image(&other, "two").await;
    // The catalog only lists repositories holding a tag or manifest revision.
    let catalog = handle.catalog(None).await.unwrap();
    assert!(catalog.contains(&"demo/app".to_string()), "{catalog:?}");
    assert!(catalog.contains(&"demo/other".to_string()), "{catalog:?}");
    assert_eq!(
        handle.catalog(Some("demo/app")).await.unwrap(),
        vec!["demo/other"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_content_and_refused_operations_are_typed() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "demo/errors");
    let err = repo.resolve("nope").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    let text = err.to_string();
    assert!(
        text.contains("HEAD") && text.contains("/v2/demo/errors/manifests/nope"),
        "{text}"
    );
    // A repository nobody pushed to has no tags (registries create them on push); what is
    // asked of it is NotFound.
    assert!(repo.tags(None).await.unwrap().is_empty());
    let absent = store_core::content::descriptor_from_bytes(
        store_core::spec::MediaType::ImageManifest,
        b"{}",
    );
    assert_eq!(
        repo.fetch(&absent).await.err().unwrap().kind(),
        ErrorKind::NotFound
    );
    assert!(!repo.exists(&absent).await.unwrap());

    let manifest = push_small_image(&repo, "e").await;
    repo.tag(&manifest, "v1").await.unwrap();
    // distribution 2.8 deletes no tags.
    let err = repo.untag("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );

    // 2.8 answers a manifest request for a blob's digest with HTTP 500; that is a digest
    // naming no manifest, NotFound, not a server fault.
    let layer = store_core::content::successors(&repo, &manifest)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let err = repo.resolve(layer.digest().as_ref()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    assert!(err.to_string().contains("a blob"), "{err}");
    // Something shaped like a digest of an unknown algorithm is no tag to set.
    let err = repo.tag(&manifest, "v1:z").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidReference, "{err}");

    // A blob whose bytes do not match its digest is never committed.
    let data = b"the real bytes".to_vec();
    let mut desc = store_core::content::descriptor_from_bytes(
        store_core::spec::MediaType::ImageLayer,
        b"other bytes!!!",
    );
    desc.set_size(data.len() as u64);
    let err = store_core::content::push_bytes(&repo, &desc, data.clone())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Mismatch, "{err}");
    assert!(!repo.exists(&desc).await.unwrap());

    // A manifest over the limit is refused before any byte is read into memory.
    let small = client_with(
        ClientOptions {
            max_metadata_bytes: 64,
            ..test_options()
        },
        Credential::Anonymous,
    );
    let limited = common::repo(&small, &registry, "demo/errors");
    let err = limited.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
    let err = limited.fetch(&manifest).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
    // ... and a copy into a layout leaves nothing there.
    let dir = tempfile::tempdir().unwrap();
    let layout = store_fs::Store::open(dir.path()).await.unwrap();
    let err = copy(&limited, "v1", &layout, "v1", &CopyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SizeExceedsLimit, "{err}");
    assert!(layout.tags(None).await.unwrap().is_empty());
    assert!(!layout.exists(&manifest).await.unwrap());

    // Deletes are off in the test configuration unless the launcher enables them.
    match repo.delete(&manifest).await {
        Ok(()) => assert!(!repo.exists(&manifest).await.unwrap()),
        Err(err) => assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_registry_layout_registry_layout_keeps_every_digest() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let first = repo(&client, &registry, "trip/first");
    let manifest = push_small_image(&first, "trip").await;
    first.tag(&manifest, "v1").await.unwrap();
    let sbom = push_sbom(&first, &manifest, "trip").await;
    // No referrers API on 2.8: the referrer is found through the tag schema.
    let found = first.predecessors(&manifest).await.unwrap();
    assert_eq!(digests_of(&found), vec![sbom.digest().to_string()]);
    assert_eq!(
        found[0]
            .artifact_type()
            .as_ref()
            .map(|t| t.to_string())
            .as_deref(),
        Some("application/vnd.example.sbom")
    );
    let tag_schema = format!(
        "sha256-{}",
        manifest.digest().to_string().trim_start_matches("sha256:")
    );
    assert!(first.tags(None).await.unwrap().contains(&tag_schema));

    let dir1 = tempfile::tempdir().unwrap();
    let layout1 = store_fs::Store::open(dir1.path()).await.unwrap();
    let root = extended_copy(
        &first,
        "v1",
        &layout1,
        "v1",
        &ExtendedCopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(root.digest(), manifest.digest());
    assert!(layout1.exists(&sbom).await.unwrap());

    let second = repo(&client, &registry, "trip/second");
    extended_copy(
        &layout1,
        "v1",
        &second,
        "copied",
        &ExtendedCopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        second.resolve("copied").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(
        digests_of(&second.predecessors(&manifest).await.unwrap()),
        vec![sbom.digest().to_string()]
    );

    let dir2 = tempfile::tempdir().unwrap();
    let layout2 = store_fs::Store::open(dir2.path()).await.unwrap();
    extended_copy(
        &second,
        "copied",
        &layout2,
        "v1",
        &ExtendedCopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        graph_bytes(&first, &manifest).await,
        graph_bytes(&layout2, &manifest).await
    );
    assert_eq!(
        graph_bytes(&first, &sbom).await,
        graph_bytes(&layout2, &sbom).await
    );
    assert!(layout2.fsck().await.unwrap().is_clean());
}

/// A subject's referrers tag goes with its last referrer: its index is deleted, not replaced
/// by an empty one. Every empty index has the same bytes, so replacing one emptied index (when
/// its subject has a referrer again) used to delete the empty index of every other subject,
/// and whatever else had those bytes: here an index of the user's, tag and all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referrers_index_left_empty_is_deleted_with_its_tag() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "referrers/emptied");
    let tag_of = |d: &Descriptor| d.digest().to_string().replacen(':', "-", 1);
    let empty = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
    let users =
        store_core::content::descriptor_from_bytes(store_core::spec::MediaType::ImageIndex, empty);
    store_core::content::push_bytes(&repo, &users, empty.to_vec())
        .await
        .unwrap();
    repo.tag(&users, "empty").await.unwrap();

    let first = push_small_image(&repo, "first").await;
    let second = push_small_image(&repo, "second").await;
    let sbom1 = push_sbom(&repo, &first, "1").await;
    let sbom2 = push_sbom(&repo, &second, "2").await;
    let tags = repo.tags(None).await.unwrap();
    assert!(tags.contains(&tag_of(&first)) && tags.contains(&tag_of(&second)));

    repo.delete(&sbom1).await.unwrap();
    repo.delete(&sbom2).await.unwrap();
    assert!(repo.predecessors(&first).await.unwrap().is_empty());

    let again = push_sbom(&repo, &first, "again").await;
    assert!(repo.exists(&users).await.unwrap());
    assert_eq!(
        repo.resolve("empty").await.unwrap().digest(),
        users.digest()
    );
    assert_eq!(
        digests_of(&repo.predecessors(&first).await.unwrap()),
        vec![again.digest().to_string()]
    );
    assert!(repo.predecessors(&second).await.unwrap().is_empty());
    assert_eq!(
        repo.tags(None).await.unwrap(),
        vec!["empty".to_string(), tag_of(&first)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_right_and_wrong_password() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::basic()) else {
        return;
    };
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "basic/app");
    let manifest = push_small_image(&repo, "basic").await;
    repo.tag(&manifest, "v1").await.unwrap();
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );

    let (user, _) = registry.credentials().unwrap();
    let wrong = client_with(
        test_options(),
        Credential::Basic {
            username: user.to_string(),
            password: Secret::new("not-the-password-7731"),
        },
    );
    let bad = common::repo(&wrong, &registry, "basic/app");
    let err = bad.resolve("v1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!format!("{err} {err:?}").contains("not-the-password-7731"));
    // Nothing lands in a layout when the source refuses.
    let dir = tempfile::tempdir().unwrap();
    let layout = store_fs::Store::open(dir.path()).await.unwrap();
    let err = copy(&bad, "v1", &layout, "v1", &CopyOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(layout.tags(None).await.unwrap().is_empty());

    let anonymous = client_with(test_options(), Credential::Anonymous);
    let err = common::repo(&anonymous, &registry, "basic/app")
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_pull_push_and_denied() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::token()) else {
        return;
    };
    let server = registry.token_server().unwrap();
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "tok/app");
    let manifest = push_small_image(&repo, "tok").await;
    repo.tag(&manifest, "v1").await.unwrap();
    server.reset_counters();

    // Many concurrent reads with one fresh client: one token per scope.
    let fresh = client_for(&registry);
    let reader_repo = common::repo(&fresh, &registry, "tok/app");
    let results = futures::future::join_all((0..8).map(|_| reader_repo.resolve("v1"))).await;
    for result in results {
        assert_eq!(result.unwrap().digest(), manifest.digest());
    }
    assert_eq!(
        server.tokens_issued(),
        1,
        "concurrent requests share one token"
    );

    // The pull-only user reads and is denied pushes.
    let reader = client_with(
        test_options(),
        Credential::Basic {
            username: READER.into(),
            password: Secret::new(READER_PASSWORD),
        },
    );
    let read_only = common::repo(&reader, &registry, "tok/app");
    assert_eq!(
        read_only.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    let err = read_only.tag(&manifest, "v2").await.unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::Unauthorized | ErrorKind::Denied),
        "{err}"
    );
    let err = client_with(
        test_options(),
        Credential::Basic {
            username: READER.into(),
            password: Secret::new("wrong-password-5521"),
        },
    );
    let err = common::repo(&err, &registry, "tok/app")
        .resolve("v1")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthorized, "{err}");
    assert!(!format!("{err:?}").contains("wrong-password-5521"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_refreshed() {
    let Some(registry) = RealRegistry::start_or_skip(Auth::token()) else {
        return;
    };
    let server = registry.token_server().unwrap();
    let client = client_for(&registry);
    let repo = repo(&client, &registry, "tok/expiry");
    let manifest = push_small_image(&repo, "exp").await;
    repo.tag(&manifest, "v1").await.unwrap();
    // Tokens that live one second: a second request after it asks for a new one, once.
    server.set_lifetime(std::time::Duration::from_secs(1));
    let fresh = client_for(&registry);
    let repo = common::repo(&fresh, &registry, "tok/expiry");
    let issued = server.tokens_issued();
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(
        server.tokens_issued(),
        issued + 1,
        "a fresh token is reused"
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        repo.resolve("v1").await.unwrap().digest(),
        manifest.digest()
    );
    assert_eq!(
        server.tokens_issued(),
        issued + 2,
        "an expired token is replaced"
    );
    assert!(Client::anonymous(ClientOptions::default()).is_ok());
}

/// A copy between two repositories of one registry mounts every blob the `mount_from` hook
/// names a holder for, pushes only the manifest, and falls back to fetch and push where the
/// registry declines the mount (a repository that lacks the blob): the destination is whole
/// either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_mounts_blobs_between_repositories_and_falls_back_to_pushing() {
    use std::sync::{Arc, Mutex};
    use store_core::copy::CopyGraphOptions;
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let source = repo(&client, &registry, "mount/source");
    let manifest = push_small_image(&source, "mounted").await;
    source.tag(&manifest, "v1").await.unwrap();
    let blobs = store_core::content::successors(&source, &manifest)
        .await
        .unwrap();

    for (destination, from, expect_mounts) in [
        ("mount/by-mount", "mount/source", true),
        ("mount/by-push", "mount/empty", false),
    ] {
        let dst = repo(&client, &registry, destination);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let mounted = Arc::new(Mutex::new(Vec::new()));
        let (asked_in, mounted_in) = (Arc::clone(&asked), Arc::clone(&mounted));
        let from = from.to_string();
        let graph = CopyGraphOptions::default()
            .with_mount_from(move |desc: Descriptor| {
                asked_in.lock().unwrap().push(desc.digest().to_string());
                let from = from.clone();
                async move { Ok(vec![from]) }
            })
            .with_on_mounted(move |desc: Descriptor| {
                mounted_in.lock().unwrap().push(desc.digest().to_string());
                async { Ok(()) }
            });
        let opts = CopyOptions {
            graph,
            ..CopyOptions::default()
        };
        let root = copy(&source, "v1", &dst, "v1", &opts).await.unwrap();
        assert_eq!(root.digest(), manifest.digest());
        let mut asked = asked.lock().unwrap().clone();
        asked.sort();
        assert_eq!(
            asked,
            digests_of(&blobs),
            "{destination}: asked for blobs only"
        );
        let mut mounted = mounted.lock().unwrap().clone();
        mounted.sort();
        let expected: Vec<String> = if expect_mounts {
            digests_of(&blobs)
        } else {
            Vec::new()
        };
        assert_eq!(mounted, expected, "{destination}: mounted blobs");
        assert_eq!(
            graph_bytes(&dst, &manifest).await,
            graph_bytes(&source, &manifest).await,
            "{destination}: the copy is whole"
        );
        assert_eq!(dst.resolve("v1").await.unwrap().digest(), manifest.digest());
    }
}

/// A destination without a cross-repository mount (a layout, memory) answers `Unsupported`
/// and the copy pushes as usual.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_with_a_mount_hook_into_a_store_that_cannot_mount_pushes() {
    use store_core::copy::CopyGraphOptions;
    let Some(registry) = RealRegistry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let client = client_for(&registry);
    let source = repo(&client, &registry, "mount/source");
    let manifest = push_small_image(&source, "unmountable").await;
    source.tag(&manifest, "v1").await.unwrap();
    let dst = store_core::memory::MemoryStore::new();
    let err = dst
        .mount_from(&manifest, "mount/source")
        .await
        .expect_err("memory cannot mount");
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let graph = CopyGraphOptions::default()
        .with_mount_from(|_| async { Ok(vec!["mount/source".to_string()]) })
        .with_on_mounted(|desc: Descriptor| async move {
            panic!(
                "nothing can be mounted into memory, yet {} was",
                desc.digest()
            )
        });
    let opts = CopyOptions {
        graph,
        ..CopyOptions::default()
    };
    copy(&source, "v1", &dst, "v1", &opts).await.unwrap();
    assert_eq!(
        graph_bytes(&dst, &manifest).await,
        graph_bytes(&source, &manifest).await
    );
}
