//! The test double: the spec's endpoints (uploads of each kind, mounts, manifests, tags,
//! catalog, referrers with pagination) and each fault knob, driven with a plain HTTP client.

mod common;

use common::*;

use ocistore_test_registry::{FakeRegistry, MountMode};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// An image manifest over a config and one layer already stored in `repo`, with `subject`
/// and `artifact_type` when given; returns its bytes.
fn manifest(
    registry: &FakeRegistry,
    repo: &str,
    layer: &[u8],
    subject: Option<(&str, usize)>,
    artifact_type: Option<&str>,
) -> Vec<u8> {
    let config = registry.put_blob(repo, b"{}".to_vec());
    let layer_digest = registry.put_blob(repo, layer.to_vec());
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer_digest, "size": layer.len()}],
    });
    if let Some((digest, size)) = subject {
        manifest["subject"] = json!({"mediaType": MANIFEST, "digest": digest, "size": size});
    }
    if let Some(kind) = artifact_type {
        manifest["artifactType"] = json!(kind);
    }
    manifest.to_string().into_bytes()
}

async fn put_manifest(
    registry: &FakeRegistry,
    repo: &str,
    reference: &str,
    body: &[u8],
) -> Response {
    client()
        .put(format!(
            "{}/v2/{repo}/manifests/{reference}",
            registry.url()
        ))
        .header("content-type", MANIFEST)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn uploads_monolithic_chunked_and_single_post_store_verified_blobs() {
    let registry = double();
    let http = client();
    let base = registry.url();
    let data = b"0123456789abcdef".to_vec();
    let digest = sha256(&data);

    // POST then PUT with the whole body.
    let start = http
        .post(format!("{base}/v2/a/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = header(&start, "location").unwrap();
    let put = http
        .put(format!("{base}{location}?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "docker-content-digest").unwrap(), digest);
    assert_eq!(registry.blob("a", &digest).unwrap(), data);

    // POST, two PATCHes with Content-Range, PUT without body.
    let start = http
        .post(format!("{base}/v2/b/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location").unwrap();
    let first = http
        .patch(format!("{base}{location}"))
        .header("content-range", "0-7")
        .body(data[..8].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&first, "range").unwrap(), "0-7");
    // Out of order: refused with the range the double has.
    let wrong = http
        .patch(format!("{base}{location}"))
        .header("content-range", "4-11")
        .body(data[4..12].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&wrong, "range").unwrap(), "0-7");
    let second = http
        .patch(format!("{base}{location}"))
        .header("content-range", "8-15")
        .body(data[8..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(header(&second, "range").unwrap(), "0-15");
    let put = http
        .put(format!("{base}{location}?digest={digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(registry.blob("b", &digest).unwrap(), data);

    // One POST with the digest and the body.
    let post = http
        .post(format!("{base}/v2/c/blobs/uploads/?digest={digest}"))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::CREATED);
    assert_eq!(registry.blob("c", &digest).unwrap(), data);

    // Bytes that do not match the digest are refused and nothing is stored.
    let start = http
        .post(format!("{base}/v2/d/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = header(&start, "location").unwrap();
    let put = http
        .put(format!("{base}{location}?digest={digest}"))
        .body(b"other bytes".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::BAD_REQUEST);
    let body: Value = put.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DIGEST_INVALID");
    assert!(registry.blob("d", &digest).is_none());
    assert_eq!(registry.uploads_in_progress(), 0);

    // HEAD gives the length and digest without a body.
    let head = http
        .head(format!("{base}/v2/a/blobs/{digest}"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "content-length").unwrap(), "16");
    assert_eq!(header(&head, "docker-content-digest").unwrap(), digest);
}

#[tokio::test]
async fn mount_answers_201_or_202_as_configured() {
    let registry = double();
    let http = client();
    let digest = registry.put_blob("source", b"shared layer".to_vec());
    let url = format!(
        "{}/v2/target/blobs/uploads/?mount={digest}&from=source",
        registry.url()
    );
    let mounted = http.post(&url).send().await.unwrap();
    assert_eq!(mounted.status(), StatusCode::CREATED);
    assert_eq!(registry.blob("target", &digest).unwrap(), "shared layer");

    registry.set_mount_mode(MountMode::Accepted);
    let other = format!(
        "{}/v2/third/blobs/uploads/?mount={digest}&from=source",
        registry.url()
    );
    let refused = http.post(&other).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::ACCEPTED);
    assert!(header(&refused, "location")
        .unwrap()
        .starts_with("/v2/third/blobs/uploads/"));
    assert!(registry.blob("third", &digest).is_none());
    assert_eq!(registry.uploads_in_progress(), 1);
}

#[tokio::test]
async fn manifests_by_tag_and_digest_with_content_type_and_digest_headers() {
    let registry = double();
    let http = client();
    let body = manifest(&registry, "img", b"layer", None, None);
    let digest = sha256(&body);

    let put = put_manifest(&registry, "img", "v1", &body).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "docker-content-digest").unwrap(), digest);
    assert_eq!(header(&put, "oci-subject"), None);

    for reference in ["v1", digest.as_str()] {
        let head = http
            .head(format!("{}/v2/img/manifests/{reference}", registry.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&head, "content-type").unwrap(), MANIFEST);
        assert_eq!(
            header(&head, "content-length").unwrap(),
            body.len().to_string()
        );
        assert_eq!(header(&head, "docker-content-digest").unwrap(), digest);
        let get = http
            .get(format!("{}/v2/img/manifests/{reference}", registry.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(get.bytes().await.unwrap().as_ref(), body.as_slice());
    }

    // A digest reference must match the body; a manifest over missing blobs is refused.
    let wrong = put_manifest(&registry, "img", &sha256(b"x"), &body).await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let orphan = json!({"schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "x", "digest": sha256(b"nowhere"), "size": 7}, "layers": []});
    let orphan = put_manifest(&registry, "img", "orphan", orphan.to_string().as_bytes()).await;
    let error: Value = orphan.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "MANIFEST_BLOB_UNKNOWN");

    // Too big for the limit: 413.
    registry.set_max_manifest_size(10);
    let big = put_manifest(&registry, "img", "big", &body).await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Deleting the tag leaves the manifest; deleting the digest removes it.
    let untag = http
        .delete(format!("{}/v2/img/manifests/v1", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(untag.status(), StatusCode::ACCEPTED);
    assert!(registry.tags("img").is_empty());
    assert!(registry.manifest("img", &digest).is_some());
    let delete = http
        .delete(format!("{}/v2/img/manifests/{digest}", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    assert!(registry.manifest("img", &digest).is_none());
}

/// Follows `Link: <...>; rel="next"` from `first` and returns every page's `key` entries.
async fn all_pages(registry: &FakeRegistry, first: &str, key: &str) -> (Vec<Vec<String>>, usize) {
    let http = client();
    let mut url = format!("{}{first}", registry.url());
    let mut pages = Vec::new();
    let mut requests = 0;
    loop {
        let response = http.get(&url).send().await.unwrap();
        requests += 1;
        assert_eq!(response.status(), StatusCode::OK);
        let link = header(&response, "link");
        let body: Value = response.json().await.unwrap();
        pages.push(
            body[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    v.as_str()
                        .map_or_else(|| v["digest"].as_str().unwrap().to_string(), str::to_string)
                })
                .collect(),
        );
        let Some(link) = link else { break };
        let target = link.strip_prefix('<').unwrap().split_once('>').unwrap();
        assert_eq!(target.1, "; rel=\"next\"");
        url = format!("{}{}", registry.url(), target.0);
    }
    (pages, requests)
}

#[tokio::test]
async fn tags_and_catalog_paginate_with_link() {
    let registry = double();
    let body = manifest(&registry, "many", b"l", None, None);
    for i in 0..7 {
        registry.put_manifest("many", Some(&format!("t{i}")), MANIFEST, body.clone());
    }
    for name in ["r1", "r2", "r3"] {
        registry.put_blob(name, b"x".to_vec());
    }
    let (pages, _) = all_pages(&registry, "/v2/many/tags/list?n=3", "tags").await;
    assert_eq!(
        pages,
        [vec!["t0", "t1", "t2"], vec!["t3", "t4", "t5"], vec!["t6"]]
    );
    // The server's own page size caps a larger n.
    registry.set_page_size(Some(2));
    let (pages, requests) = all_pages(&registry, "/v2/many/tags/list?n=100", "tags").await;
    assert_eq!(requests, 4);
    assert_eq!(pages.concat().len(), 7);
    let (pages, _) = all_pages(&registry, "/v2/_catalog", "repositories").await;
    assert_eq!(pages, [vec!["many", "r1"], vec!["r2", "r3"]]);

    let missing = client()
        .get(format!("{}/v2/nothing/tags/list", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let error: Value = missing.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "NAME_UNKNOWN");
}

#[tokio::test]
async fn referrers_api_lists_filters_and_paginates_or_is_absent() {
    let registry = double();
    let subject = manifest(&registry, "app", b"image", None, None);
    let subject_digest = sha256(&subject);
    assert_eq!(
        put_manifest(&registry, "app", "v1", &subject)
            .await
            .status(),
        StatusCode::CREATED
    );
    let mut signatures = Vec::new();
    for i in 0..3 {
        let kind = if i == 0 {
            "application/sbom"
        } else {
            "application/signature"
        };
        let body = manifest(
            &registry,
            "app",
            format!("referrer {i}").as_bytes(),
            Some((&subject_digest, subject.len())),
            Some(kind),
        );
        let put = put_manifest(&registry, "app", &sha256(&body), &body).await;
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(header(&put, "oci-subject").unwrap(), subject_digest);
        if i > 0 {
            signatures.push(sha256(&body));
        }
    }
    signatures.sort();

    let http = client();
    let url = format!("{}/v2/app/referrers/{subject_digest}", registry.url());
    let all = http.get(&url).send().await.unwrap();
    assert_eq!(header(&all, "content-type").unwrap(), INDEX);
    assert_eq!(header(&all, "oci-filters-applied"), None);
    let index: Value = all.json().await.unwrap();
    assert_eq!(index["mediaType"], INDEX);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);

    let filtered = http
        .get(&url)
        .query(&[("artifactType", "application/signature")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&filtered, "oci-filters-applied").unwrap(),
        "artifactType"
    );
    let index: Value = filtered.json().await.unwrap();
    let found: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["artifactType"], "application/signature");
            d["digest"].as_str().unwrap()
        })
        .collect();
    assert_eq!(found, signatures);

    // One referrer per page, the filter kept in the Link.
    registry.set_page_size(Some(1));
    let first = format!("/v2/app/referrers/{subject_digest}?artifactType=application%2Fsignature");
    let (pages, _) = all_pages(&registry, &first, "manifests").await;
    assert_eq!(
        pages,
        [vec![signatures[0].clone()], vec![signatures[1].clone()]]
    );

    // An unknown subject has an empty index, not a 404.
    let empty = http
        .get(format!(
            "{}/v2/app/referrers/{}",
            registry.url(),
            sha256(b"none")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), StatusCode::OK);
    let index: Value = empty.json().await.unwrap();
    assert_eq!(index["manifests"], json!([]));

    // Without the API: 404 and no OCI-Subject, as distribution 2.8.
    registry.set_referrers_api(false);
    assert_eq!(
        http.get(&url).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let body = manifest(
        &registry,
        "app",
        b"late",
        Some((&subject_digest, subject.len())),
        None,
    );
    let put = put_manifest(&registry, "app", "late", &body).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(header(&put, "oci-subject"), None);
}
