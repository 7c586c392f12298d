//! The read-write checks: each takes a fresh, empty store and panics with a message naming the
//! operation and what differed.

use super::fixtures::{
    descriptor_with, descriptor_with_algorithm, layer, malformed_digests, small_image, unreadable,
    yielding_reader, Blob, GraphFixture, LAYER,
};
use super::{assert_graph, expect_err, plain_names, Capabilities};
use crate::content::{fetch_all, push_bytes, reader_from_bytes};
use crate::descriptor::{
    self, without_ref_name, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, MAX_MANIFEST_SIZE,
    OCI_ARTIFACT_MANIFEST, OCI_INDEX, OCI_MANIFEST, OCTET_STREAM,
};
use crate::digest::{digest_string, Algorithm};
use crate::traits::{Deleter, GraphTarget, TagLister, Untagger};
use crate::ErrorKind;
use bytes::Bytes;
use futures::future::join_all;
use oci_spec::image::{Descriptor, MediaType};
use std::collections::HashMap;
use tokio::io::AsyncReadExt;

/// Every store the read-write suite runs against implements these.
pub trait ConformanceStore: GraphTarget + Deleter + Untagger + TagLister {}
impl<T: GraphTarget + Deleter + Untagger + TagLister + ?Sized> ConformanceStore for T {}

/// Pushes `blob`, panicking with a message when that fails.
async fn push_ok<S: ConformanceStore + ?Sized>(store: &S, blob: &Blob, what: &str) {
    if let Err(err) = blob.push_to(store).await {
        panic!("push of {what} ({}) failed: {err}", blob.digest());
    }
}

/// Fetches `desc` fully (verified) and checks the bytes.
async fn assert_content<S: ConformanceStore + ?Sized>(store: &S, desc: &Descriptor, data: &[u8]) {
    match fetch_all(store, desc).await {
        Ok(got) => assert!(
            got == data,
            "fetch of {} returned {} bytes that differ from the {} pushed",
            desc.digest(),
            got.len(),
            data.len()
        ),
        Err(err) => panic!("fetch of {} failed: {err}", desc.digest()),
    }
}

/// Checks that nothing is stored under `desc`'s digest: exists is false, fetch is NotFound.
async fn assert_absent<S: ConformanceStore + ?Sized>(store: &S, desc: &Descriptor, after: &str) {
    match store.exists(desc).await {
        Ok(false) => {}
        Ok(true) => panic!("after {after}: exists({}) is true", desc.digest()),
        Err(err) => panic!("after {after}: exists({}) failed: {err}", desc.digest()),
    }
    expect_err(
        store.fetch(desc).await,
        ErrorKind::NotFound,
        &format!("after {after}: fetch({})", desc.digest()),
    );
}

async fn tags_of<S: ConformanceStore + ?Sized>(store: &S, last: Option<&str>) -> Vec<String> {
    match store.tags(last).await {
        Ok(tags) => tags,
        Err(err) => panic!("tags({last:?}) failed: {err}"),
    }
}

async fn resolve_ok<S: ConformanceStore + ?Sized>(store: &S, reference: &str) -> Descriptor {
    match store.resolve(reference).await {
        Ok(desc) => desc.into_owned(),
        Err(err) => panic!("resolve({reference:?}) failed: {err}"),
    }
}

async fn tag_ok<S: ConformanceStore + ?Sized>(store: &S, desc: &Descriptor, reference: &str) {
    if let Err(err) = store.tag(desc, reference).await {
        panic!("tag({}, {reference:?}) failed: {err}", desc.digest());
    }
}

/// Push, exists and fetch of a layer, an empty blob, a manifest and sha384/sha512 content; an
/// absent digest is `exists == false` and `NotFound` on fetch.
pub async fn push_fetch_round_trip<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let image = small_image("round-trip");
    let empty = layer(b"");
    for (what, blob) in [
        ("config", &image.config),
        ("layer", &image.layer),
        ("manifest", &image.manifest),
        ("empty blob", &empty),
    ] {
        push_ok(store, blob, what).await;
        assert!(
            matches!(store.exists(&blob.desc).await, Ok(true)),
            "exists({what}) is not Ok(true) after its push"
        );
        assert_content(store, &blob.desc, &blob.data).await;
        // The raw reader yields the same bytes.
        let mut raw = Vec::new();
        match store.fetch(&blob.desc).await {
            Ok(mut reader) => {
                if let Err(err) = reader.read_to_end(&mut raw).await {
                    panic!("reading the fetched {what} failed: {err}");
                }
            }
            Err(err) => panic!("fetch({what}) failed: {err}"),
        }
        assert!(
            raw == blob.data,
            "the raw reader of {what} gave other bytes"
        );
    }

    for algorithm in [Algorithm::Sha384, Algorithm::Sha512] {
        let data = format!("content hashed with {algorithm}").into_bytes();
        let desc = descriptor_with_algorithm(LAYER, algorithm, &data);
        if let Err(err) = push_bytes(store, &desc, data.clone()).await {
            panic!("push of {algorithm} content failed: {err}");
        }
        assert!(
            matches!(store.exists(&desc).await, Ok(true)),
            "exists({algorithm} content) is not Ok(true)"
        );
        assert_content(store, &desc, &data).await;
    }

    let absent = layer(b"never pushed");
    assert_absent(store, &absent.desc, "nothing").await;
    let err = expect_err(
        store.fetch(&absent.desc).await,
        ErrorKind::NotFound,
        "fetch of absent content",
    );
    assert!(
        err.to_string().contains(absent.digest()),
        "the NotFound error does not name the digest: {err}"
    );
}

/// A second push of stored content is `AlreadyExists`, without reading the new reader, and
/// leaves the content as it was.
pub async fn push_twice_is_already_exists<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let image = small_image("twice");
    image
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the image failed: {err}"));
    for blob in image.blobs() {
        expect_err(
            blob.push_to(store).await,
            ErrorKind::AlreadyExists,
            &format!("second push of {}", blob.digest()),
        );
        expect_err(
            store.push(&blob.desc, unreadable()).await,
            ErrorKind::AlreadyExists,
            &format!(
                "second push of {} with a reader that fails when read (the store must not read it)",
                blob.digest()
            ),
        );
        assert_content(store, &blob.desc, &blob.data).await;
    }
}

/// Wrong bytes of the right length, short input and trailing data are `Mismatch`, and nothing
/// is stored; a correct push afterwards succeeds.
pub async fn mismatched_content_is_not_stored<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let blob = layer(b"the right content");
    let cases: [(&str, &[u8]); 5] = [
        ("wrong bytes", b"the wrong content"),
        ("short input", b"the right"),
        ("empty input", b""),
        ("trailing data", b"the right content, and more"),
        ("one trailing byte", b"the right content!"),
    ];
    for (what, data) in cases {
        // Bytes in memory (`push_bytes`, which a store may store without asking first) and a
        // reader (`push`) alike.
        for how in ["bytes", "a reader"] {
            let result = match how {
                "bytes" => push_bytes(store, &blob.desc, data.to_vec()).await,
                _ => {
                    store
                        .push(&blob.desc, reader_from_bytes(data.to_vec()))
                        .await
                }
            };
            let err = expect_err(
                result,
                ErrorKind::Mismatch,
                &format!("push of {how} with {what}"),
            );
            assert!(
                err.to_string().contains(blob.digest()),
                "the Mismatch error does not name the digest: {err}"
            );
            assert_absent(store, &blob.desc, &format!("a push of {how} with {what}")).await;
        }
    }
    let manifest = small_image("mismatch").manifest;
    let mut tampered = manifest.data.to_vec();
    if let Some(last) = tampered.last_mut() {
        *last = b' ';
    }
    expect_err(
        push_bytes(store, &manifest.desc, tampered).await,
        ErrorKind::Mismatch,
        "push of a manifest with a changed byte",
    );
    assert_absent(store, &manifest.desc, "a tampered manifest push").await;
    expect_err(
        store.resolve(manifest.digest()).await,
        ErrorKind::NotFound,
        "resolve of a manifest whose push failed",
    );

    push_ok(store, &blob, "the right content after failed pushes").await;
    assert_content(store, &blob.desc, &blob.data).await;
}

/// Malformed digests and unsupported algorithms are `InvalidDigest` on push, fetch, exists,
/// tag and delete; as strings they resolve and untag to `NotFound`; predecessors either are
/// empty or `InvalidDigest`.
pub async fn invalid_digests_are_refused<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let image = small_image("invalid digests");
    image
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the image failed: {err}"));
    let digests = malformed_digests();
    assert!(!digests.is_empty(), "no malformed digest parsed");
    for digest in digests {
        let text = digest.to_string();
        for media_type in [LAYER, OCI_MANIFEST] {
            let desc = descriptor_with(media_type, 3, digest.clone());
            let what = |op: &str| format!("{op} of {media_type} {text}");
            let err = expect_err(
                push_bytes(store, &desc, &b"abc"[..]).await,
                ErrorKind::InvalidDigest,
                &what("push"),
            );
            assert!(
                err.to_string().contains(&text),
                "the InvalidDigest error does not name {text}: {err}"
            );
            expect_err(
                store.fetch(&desc).await,
                ErrorKind::InvalidDigest,
                &what("fetch"),
            );
            expect_err(
                store.exists(&desc).await,
                ErrorKind::InvalidDigest,
                &what("exists"),
            );
            expect_err(
                store.tag(&desc, "v1").await,
                ErrorKind::InvalidDigest,
                &what("tag"),
            );
            expect_err(
                store.delete(&desc).await,
                ErrorKind::InvalidDigest,
                &what("delete"),
            );
            match store.predecessors(&desc).await {
                Ok(list) => assert!(list.is_empty(), "{} has predecessors", what("predecessors")),
                Err(err) => assert_eq!(
                    err.kind(),
                    ErrorKind::InvalidDigest,
                    "{} failed with {err}",
                    what("predecessors")
                ),
            }
        }
        expect_err(
            store.resolve(&text).await,
            ErrorKind::NotFound,
            &format!("resolve({text:?})"),
        );
        expect_err(
            store.untag(&text).await,
            ErrorKind::NotFound,
            &format!("untag({text:?})"),
        );
    }
    // A sha256 digest string with a wrong length or upper case cannot become a Descriptor
    // (oci-spec refuses it), but it can be a reference.
    let manifest_digest = image.manifest.digest();
    for text in [
        manifest_digest.to_uppercase(),
        manifest_digest[..manifest_digest.len() - 1].to_string(),
        format!("{manifest_digest}0"),
    ] {
        expect_err(
            store.resolve(&text).await,
            ErrorKind::NotFound,
            &format!("resolve({text:?})"),
        );
        expect_err(
            store.untag(&text).await,
            ErrorKind::NotFound,
            &format!("untag({text:?})"),
        );
    }
    assert!(
        tags_of(store, None).await.is_empty(),
        "a failed tag left a tag"
    );
}

/// A descriptor claiming 2^62 bytes is `SizeExceedsLimit` on push before anything is read; one
/// claiming 2^40 bytes with three bytes of content is `Mismatch` (nothing is reserved for the
/// claimed size); a manifest claiming more than 4 MiB is `SizeExceedsLimit` before it is read.
pub async fn absurd_sizes_are_refused<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let blob = layer(b"abc");
    let mut absurd = blob.desc.clone();
    absurd.set_size(1 << 62);
    expect_err(
        store.push(&absurd, unreadable()).await,
        ErrorKind::SizeExceedsLimit,
        "push of a descriptor claiming 2^62 bytes (with a reader that must not be read)",
    );
    expect_err(
        push_bytes(store, &absurd, blob.data.clone()).await,
        ErrorKind::SizeExceedsLimit,
        "push of a descriptor claiming 2^62 bytes",
    );
    assert_absent(store, &blob.desc, "a push claiming 2^62 bytes").await;

    let mut large = blob.desc.clone();
    large.set_size(1 << 40);
    expect_err(
        push_bytes(store, &large, blob.data.clone()).await,
        ErrorKind::Mismatch,
        "push of 3 bytes under a descriptor claiming 2^40 bytes",
    );
    assert_absent(store, &blob.desc, "a push claiming 2^40 bytes").await;

    let manifest = small_image("absurd").manifest;
    let mut huge = manifest.desc.clone();
    huge.set_size(MAX_MANIFEST_SIZE + 1);
    expect_err(
        store.push(&huge, unreadable()).await,
        ErrorKind::SizeExceedsLimit,
        "push of a manifest claiming 4 MiB + 1 (with a reader that must not be read)",
    );
    assert_absent(store, &manifest.desc, "a push of an oversized manifest").await;

    push_ok(store, &blob, "the content after refused pushes").await;
}

/// A body that does not parse as its manifest media type is `InvalidManifest` and nothing is
/// stored, for all five manifest media types.
pub async fn invalid_manifest_is_not_stored<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let negative_size = br#"{"schemaVersion":2,"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}]}"#;
    let bodies: [&[u8]; 4] = [
        b"this is not JSON",
        b"[]",
        br#"{"manifests":"x","layers":7,"blobs":false}"#,
        negative_size,
    ];
    for media_type in [
        OCI_MANIFEST,
        OCI_INDEX,
        OCI_ARTIFACT_MANIFEST,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ] {
        for body in bodies {
            let blob = Blob::new(media_type, Bytes::copy_from_slice(body));
            let what = format!(
                "push of {media_type} body {:?}",
                String::from_utf8_lossy(body)
            );
            // The negative size only matters where the layers field is read.
            let expected_fails =
                body != negative_size || matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST);
            if !expected_fails {
                continue;
            }
            let err = expect_err(blob.push_to(store).await, ErrorKind::InvalidManifest, &what);
            assert!(
                err.to_string().contains(blob.digest()),
                "the InvalidManifest error does not name the digest: {err}"
            );
            assert_absent(store, &blob.desc, &what).await;
            expect_err(
                store.resolve(blob.digest()).await,
                ErrorKind::NotFound,
                &format!("resolve after the failed {what}"),
            );
        }
    }
    // The same bytes as a plain blob are fine.
    let plain = Blob::new(LAYER, &b"this is not JSON"[..]);
    push_ok(store, &plain, "non-JSON bytes as a layer").await;
}

/// Resolve: a tag gives the full descriptor it was tagged with (annotations kept; the plain
/// descriptor without [`Capabilities::keeps_tag_annotations`]), a manifest digest the plain
/// descriptor, a blob digest `application/octet-stream` with the blob's size (`NotFound`
/// without [`Capabilities::references_blobs`]); empty is `MissingReference`, unknown tags and
/// absent digests `NotFound`.
pub async fn resolve_tag_digest_and_blob<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let image = small_image("resolve");
    image
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the image failed: {err}"));
    let mut tagged = image.manifest.desc.clone();
    let annotations = HashMap::from([
        ("org.example.note".to_string(), "hello".to_string()),
        (
            "org.opencontainers.image.created".to_string(),
            "2024-01-01T00:00:00Z".to_string(),
        ),
    ]);
    tagged.set_annotations(Some(annotations.clone()));
    tag_ok(store, &tagged, "v1").await;

    let by_tag = resolve_ok(store, "v1").await;
    assert!(
        descriptor::same_content(&by_tag, &tagged),
        "resolve(\"v1\") gave {by_tag:?}, tagged {tagged:?}"
    );
    if capabilities.keeps_tag_annotations {
        assert_eq!(
            without_ref_name(&by_tag).annotations().as_ref(),
            Some(&annotations),
            "resolve(\"v1\") lost the annotations it was tagged with"
        );
    } else {
        assert_eq!(
            by_tag,
            descriptor::plain(&image.manifest.desc),
            "resolve(\"v1\") of a store keeping no tag annotations is the plain descriptor"
        );
    }

    let by_digest = resolve_ok(store, image.manifest.digest()).await;
    assert_eq!(
        by_digest,
        descriptor::plain(&image.manifest.desc),
        "resolve(manifest digest) is not the plain descriptor"
    );

    for (what, blob) in [("layer", &image.layer), ("config", &image.config)] {
        if !capabilities.references_blobs {
            expect_err(
                store.resolve(blob.digest()).await,
                ErrorKind::NotFound,
                &format!("resolve({what} digest) where references name manifests only"),
            );
            continue;
        }
        let got = resolve_ok(store, blob.digest()).await;
        let expected = Descriptor::new(
            MediaType::from(OCTET_STREAM),
            blob.data.len() as u64,
            blob.desc.digest().clone(),
        );
        assert_eq!(got, expected, "resolve({what} digest)");
    }

    expect_err(
        store.resolve("").await,
        ErrorKind::MissingReference,
        "resolve(\"\")",
    );
    expect_err(
        store.resolve("v2").await,
        ErrorKind::NotFound,
        "resolve of an unknown tag",
    );
    let absent = digest_string(Algorithm::Sha256, b"absent");
    expect_err(
        store.resolve(&absent).await,
        ErrorKind::NotFound,
        "resolve of an absent digest",
    );
}

/// Tag errors: absent content `NotFound`, empty `MissingReference`, strings outside the
/// store's [`TagGrammar`](super::TagGrammar) and foreign digests `InvalidReference`, a wrong size `Mismatch`; none
/// leaves a tag. Odd but valid tags are accepted; tagging a blob makes its digest resolve to its
/// own plain descriptor (without [`Capabilities::references_blobs`]: tagging a blob is
/// `Unsupported` and leaves no tag).
pub async fn tag_errors<S: ConformanceStore + ?Sized>(store: &S, capabilities: &Capabilities) {
    let image = small_image("tag errors");
    let absent = small_image("never pushed").manifest;
    image
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the image failed: {err}"));
    let manifest = &image.manifest.desc;

    expect_err(
        store.tag(&absent.desc, "v1").await,
        ErrorKind::NotFound,
        "tag of absent content",
    );
    expect_err(
        store.tag(manifest, "").await,
        ErrorKind::MissingReference,
        "tag(\"\")",
    );
    for bad in capabilities.tag_grammar.bad_tags() {
        expect_err(
            store.tag(manifest, &bad).await,
            ErrorKind::InvalidReference,
            &format!("tag({bad:?})"),
        );
    }
    let foreign = image.layer.digest();
    expect_err(
        store.tag(manifest, foreign).await,
        ErrorKind::InvalidReference,
        "tag with another content's digest as the tag",
    );
    let mut wrong_size = manifest.clone();
    wrong_size.set_size(manifest.size() + 1);
    expect_err(
        store.tag(&wrong_size, "v1").await,
        ErrorKind::Mismatch,
        "tag with a wrong size",
    );
    assert!(
        tags_of(store, None).await.is_empty(),
        "a failed tag left a tag"
    );

    tag_ok(store, manifest, image.manifest.digest()).await;
    assert!(
        tags_of(store, None).await.is_empty(),
        "tagging by the own digest listed a tag"
    );
    let good = capabilities.tag_grammar.good_tags();
    for reference in &good {
        tag_ok(store, manifest, reference).await;
        assert_eq!(
            resolve_ok(store, reference).await.digest(),
            manifest.digest(),
            "resolve({reference:?})"
        );
    }
    let mut sorted = good;
    sorted.sort();
    assert_eq!(tags_of(store, None).await, sorted);

    if !capabilities.references_blobs {
        expect_err(
            store.tag(&image.layer.desc, "layer-tag").await,
            ErrorKind::Unsupported,
            "tag of a layer where references name manifests only",
        );
        assert_eq!(
            tags_of(store, None).await,
            sorted,
            "a refused tag left a tag"
        );
        expect_err(
            store.resolve("layer-tag").await,
            ErrorKind::NotFound,
            "resolve of a refused tag",
        );
        return;
    }

    tag_ok(store, &image.layer.desc, "layer-tag").await;
    assert_eq!(
        resolve_ok(store, "layer-tag").await,
        image.layer.desc,
        "resolve of a tagged layer"
    );
    assert_eq!(
        resolve_ok(store, image.layer.digest()).await,
        descriptor::plain(&image.layer.desc),
        "a tagged blob resolves by digest to its own plain descriptor"
    );
}

/// A tag moved to another manifest resolves to the new one; the old manifest still resolves by
/// digest; the tag list follows (an untag too; without [`Capabilities::untag`] it is
/// `Unsupported` and the list keeps the tag).
pub async fn tag_moves_between_manifests<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let (one, two) = (small_image("one"), small_image("two"));
    for image in [&one, &two] {
        image
            .push_to(store)
            .await
            .unwrap_or_else(|err| panic!("pushing an image failed: {err}"));
    }
    tag_ok(store, &one.manifest.desc, "v1").await;
    assert_eq!(
        resolve_ok(store, "v1").await.digest(),
        one.manifest.desc.digest()
    );
    tag_ok(store, &two.manifest.desc, "v1").await;
    assert_eq!(
        resolve_ok(store, "v1").await.digest(),
        two.manifest.desc.digest(),
        "v1 did not move to the second manifest"
    );
    assert_eq!(
        resolve_ok(store, one.manifest.digest()).await,
        descriptor::plain(&one.manifest.desc),
        "the old manifest no longer resolves by digest"
    );
    assert_eq!(tags_of(store, None).await, ["v1"]);

    tag_ok(store, &one.manifest.desc, "stable").await;
    assert_eq!(tags_of(store, None).await, ["stable", "v1"]);
    tag_ok(store, &one.manifest.desc, "v1").await;
    assert_eq!(
        resolve_ok(store, "v1").await.digest(),
        one.manifest.desc.digest(),
        "v1 moved back"
    );
    if capabilities.untag {
        if let Err(err) = store.untag("v1").await {
            panic!("untag(\"v1\") failed: {err}");
        }
        assert_eq!(tags_of(store, None).await, ["stable"]);
    } else {
        expect_err(
            store.untag("v1").await,
            ErrorKind::Unsupported,
            "untag where untag is not supported",
        );
        assert_eq!(tags_of(store, None).await, ["stable", "v1"]);
        assert_eq!(
            resolve_ok(store, "v1").await.digest(),
            one.manifest.desc.digest(),
            "a refused untag moved v1"
        );
    }
    for image in [&one, &two] {
        assert_eq!(
            resolve_ok(store, image.manifest.digest()).await,
            descriptor::plain(&image.manifest.desc)
        );
        assert_content(store, &image.manifest.desc, &image.manifest.data).await;
    }
}

/// Untag: empty `MissingReference`, unknown `NotFound`, a manifest digest `InvalidReference`;
/// removing a tag keeps the content and its digest resolvable. Without [`Capabilities::untag`],
/// every untag of a tag (known or not) is `Unsupported` and changes nothing; without
/// [`Capabilities::references_blobs`], a blob digest is `InvalidReference` like any digest.
pub async fn untag_errors_and_effects<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let image = small_image("untag");
    image
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the image failed: {err}"));
    tag_ok(store, &image.manifest.desc, "v1").await;

    expect_err(
        store.untag("").await,
        ErrorKind::MissingReference,
        "untag(\"\")",
    );
    expect_err(
        store.untag("nope").await,
        if capabilities.untag {
            ErrorKind::NotFound
        } else {
            ErrorKind::Unsupported
        },
        "untag of an unknown tag",
    );
    expect_err(
        store.untag(image.manifest.digest()).await,
        ErrorKind::InvalidReference,
        "untag of a manifest digest",
    );
    expect_err(
        store.untag(image.layer.digest()).await,
        if capabilities.references_blobs {
            ErrorKind::NotFound
        } else {
            ErrorKind::InvalidReference
        },
        "untag of an untagged layer's digest",
    );
    assert_eq!(
        resolve_ok(store, image.manifest.digest()).await,
        descriptor::plain(&image.manifest.desc),
        "a refused untag changed the digest entry"
    );

    if !capabilities.untag {
        expect_err(
            store.untag("v1").await,
            ErrorKind::Unsupported,
            "untag where untag is not supported",
        );
        assert_eq!(
            resolve_ok(store, "v1").await.digest(),
            image.manifest.desc.digest(),
            "a refused untag changed the tag"
        );
        assert_eq!(tags_of(store, None).await, ["v1"]);
        return;
    }
    if let Err(err) = store.untag("v1").await {
        panic!("untag(\"v1\") failed: {err}");
    }
    expect_err(
        store.resolve("v1").await,
        ErrorKind::NotFound,
        "resolve after untag",
    );
    expect_err(store.untag("v1").await, ErrorKind::NotFound, "second untag");
    assert!(tags_of(store, None).await.is_empty());
    assert!(
        matches!(store.exists(&image.manifest.desc).await, Ok(true)),
        "untag removed content"
    );
    assert_eq!(
        resolve_ok(store, image.manifest.digest()).await,
        descriptor::plain(&image.manifest.desc)
    );
}

/// `tags(last)`: ascending byte order, strictly after `last`, digest entries never listed;
/// walking it one tag at a time gives the whole list. One tag has the separator of the store's
/// [`TagGrammar`](super::TagGrammar) (`release/1.0` or `release_1.0`).
pub async fn tags_pagination<S: ConformanceStore + ?Sized>(store: &S, capabilities: &Capabilities) {
    let (one, two) = (small_image("page one"), small_image("page two"));
    for image in [&one, &two] {
        image
            .push_to(store)
            .await
            .unwrap_or_else(|err| panic!("pushing an image failed: {err}"));
    }
    assert!(
        tags_of(store, None).await.is_empty(),
        "an empty store lists tags"
    );
    let release = capabilities.tag_grammar.separated_tag();
    for (i, tag) in ["v2", "v10", "v1", "B", "a", release, "a-b", "a.b", "Z9"]
        .into_iter()
        .enumerate()
    {
        let target = if i % 2 == 0 { &one } else { &two };
        tag_ok(store, &target.manifest.desc, tag).await;
    }
    let all = ["B", "Z9", "a", "a-b", "a.b", release, "v1", "v10", "v2"];
    assert_eq!(tags_of(store, None).await, all);
    assert_eq!(tags_of(store, Some("")).await, all);
    assert_eq!(
        tags_of(store, Some("a")).await,
        ["a-b", "a.b", release, "v1", "v10", "v2"]
    );
    assert_eq!(
        tags_of(store, Some("b")).await,
        [release, "v1", "v10", "v2"]
    );
    assert_eq!(tags_of(store, Some("v1")).await, ["v10", "v2"]);
    assert!(tags_of(store, Some("v2")).await.is_empty());
    assert!(tags_of(store, Some("zzz")).await.is_empty());

    let mut walked: Vec<String> = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let page = tags_of(store, last.as_deref()).await;
        let Some(first) = page.into_iter().next() else {
            break;
        };
        assert!(walked.len() < all.len(), "pagination does not end");
        walked.push(first.clone());
        last = Some(first);
    }
    assert_eq!(walked, all);
}

/// Predecessors of every node of the 15-node graph equal the hand-made table (its referrers
/// only, without [`Capabilities::indexes_parents`]), and `content::referrers` finds the two
/// artifacts, with and without an artifact-type filter. The SBOM is an artifact manifest or,
/// without [`Capabilities::artifact_manifest`], an image manifest with an `artifactType`.
pub async fn predecessors_of_the_graph<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let graph = GraphFixture::with_artifact_manifest(capabilities.artifact_manifest);
    graph
        .push_to(store)
        .await
        .unwrap_or_else(|err| panic!("pushing the graph failed: {err}"));
    assert_graph(store, &graph, capabilities).await;
    let unknown = layer(b"not in the graph");
    match store.predecessors(&unknown.desc).await {
        Ok(list) => assert!(
            list.is_empty(),
            "an unknown node has predecessors {:?}",
            plain_names(&graph, &list)
        ),
        Err(err) => panic!("predecessors of an unknown node failed: {err}"),
    }
}

/// 64 concurrent pushes of one blob (their readers interleave): exactly one `Ok`, the others
/// `AlreadyExists` (at least one `Ok` and no other error without
/// [`Capabilities::exclusive_concurrent_push`]), and the content is right; a push afterwards is
/// `AlreadyExists`.
pub async fn concurrent_pushes_of_one_blob<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    let blob = Blob::new(LAYER, data);
    let pushes = (0..64).map(|_| store.push(&blob.desc, yielding_reader(blob.data.clone(), 4096)));
    let results = join_all(pushes).await;
    let mut ok = 0;
    for result in &results {
        match result {
            Ok(()) => ok += 1,
            Err(err) => assert_eq!(
                err.kind(),
                ErrorKind::AlreadyExists,
                "a concurrent push failed with something other than AlreadyExists: {err}"
            ),
        }
    }
    if capabilities.exclusive_concurrent_push {
        assert_eq!(ok, 1, "{ok} of 64 concurrent pushes of one blob succeeded");
    } else {
        assert!(
            ok >= 1,
            "none of 64 concurrent pushes of one blob succeeded"
        );
    }
    assert_content(store, &blob.desc, &blob.data).await;
    expect_err(
        blob.push_to(store).await,
        ErrorKind::AlreadyExists,
        "a push after the concurrent ones",
    );
}

/// 64 concurrent verified fetches of one blob all return its content.
pub async fn concurrent_fetches<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let data: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 241) as u8).collect();
    let blob = Blob::new(LAYER, data);
    push_ok(store, &blob, "the blob").await;
    let results = join_all((0..64).map(|_| fetch_all(store, &blob.desc))).await;
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(got) => assert!(
                got == blob.data,
                "concurrent fetch {i} returned other bytes"
            ),
            Err(err) => panic!("concurrent fetch {i} failed: {err}"),
        }
    }
}

/// Delete: the content is gone (exists false, fetch `NotFound`), its tags and digest no longer
/// resolve, a second delete is `NotFound`, other content is untouched, and it can be pushed
/// again. Holds with or without automatic garbage collection.
pub async fn delete_removes_content<S: ConformanceStore + ?Sized>(
    store: &S,
    _capabilities: &Capabilities,
) {
    let (gone, kept) = (small_image("deleted"), small_image("kept"));
    for image in [&gone, &kept] {
        image
            .push_to(store)
            .await
            .unwrap_or_else(|err| panic!("pushing an image failed: {err}"));
    }
    tag_ok(store, &gone.manifest.desc, "doomed").await;
    tag_ok(store, &gone.manifest.desc, "doomed-too").await;
    tag_ok(store, &kept.manifest.desc, "kept").await;

    if let Err(err) = store.delete(&gone.manifest.desc).await {
        panic!("delete of a tagged manifest failed: {err}");
    }
    assert_absent(store, &gone.manifest.desc, "delete").await;
    for reference in ["doomed", "doomed-too", gone.manifest.digest()] {
        expect_err(
            store.resolve(reference).await,
            ErrorKind::NotFound,
            &format!("resolve({reference:?}) after delete"),
        );
    }
    expect_err(
        store.delete(&gone.manifest.desc).await,
        ErrorKind::NotFound,
        "second delete",
    );
    assert_eq!(tags_of(store, None).await, ["kept"], "tags after delete");

    assert_eq!(
        resolve_ok(store, "kept").await.digest(),
        kept.manifest.desc.digest()
    );
    for blob in kept.blobs() {
        assert_content(store, &blob.desc, &blob.data).await;
    }

    let lone = layer(b"a lone blob");
    push_ok(store, &lone, "a lone blob").await;
    if let Err(err) = store.delete(&lone.desc).await {
        panic!("delete of a blob failed: {err}");
    }
    assert_absent(store, &lone.desc, "delete of a blob").await;
    expect_err(
        store.delete(&lone.desc).await,
        ErrorKind::NotFound,
        "second delete of a blob",
    );
    expect_err(
        store.delete(&layer(b"never pushed").desc).await,
        ErrorKind::NotFound,
        "delete of absent content",
    );

    push_ok(store, &lone, "a deleted blob, again").await;
    assert_content(store, &lone.desc, &lone.data).await;
    push_ok(store, &gone.manifest, "a deleted manifest, again").await;
    assert_eq!(
        resolve_ok(store, gone.manifest.digest()).await,
        descriptor::plain(&gone.manifest.desc),
        "a manifest pushed again after its delete does not resolve by digest"
    );
    expect_err(
        store.resolve("doomed").await,
        ErrorKind::NotFound,
        "a tag of a deleted manifest came back with the manifest",
    );
}

/// A store that pushes with references ([`crate::Tagger::as_reference_pusher`]): a manifest
/// pushed with a tag is stored and tagged at once; content already stored is tagged; an empty
/// or malformed tag, or another content's digest, is refused before anything is stored. A
/// store without it has nothing to check here.
pub async fn push_reference_stores_and_tags<S: ConformanceStore + ?Sized>(
    store: &S,
    capabilities: &Capabilities,
) {
    let Some(pusher) = store.as_reference_pusher() else {
        return;
    };
    let image = small_image("pushed with a reference");
    for blob in [&image.config, &image.layer] {
        push_ok(store, blob, "a blob of the image").await;
    }
    let manifest = &image.manifest;
    let push = |reference: &'static str| {
        pusher.push_reference(
            &manifest.desc,
            crate::content::reader_from_bytes(manifest.data.clone()),
            reference,
        )
    };
    if let Err(err) = push("pushed").await {
        panic!(
            "push_reference({}, \"pushed\") failed: {err}",
            manifest.digest()
        );
    }
    assert_eq!(
        resolve_ok(store, "pushed").await.digest(),
        manifest.desc.digest(),
        "the tag pushed with the manifest"
    );
    assert_content(store, &manifest.desc, &manifest.data).await;
    if let Err(err) = push("again").await {
        panic!("push_reference of stored content failed: {err}");
    }
    assert_eq!(
        resolve_ok(store, "again").await.digest(),
        manifest.desc.digest(),
        "stored content pushed with a reference is tagged"
    );

    let other = small_image("refused with a bad reference");
    for blob in [&other.config, &other.layer] {
        push_ok(store, blob, "a blob of the second image").await;
    }
    let mut bad: Vec<(String, ErrorKind)> = capabilities
        .tag_grammar
        .bad_tags()
        .into_iter()
        .map(|tag| (tag, ErrorKind::InvalidReference))
        .collect();
    bad.push((String::new(), ErrorKind::MissingReference));
    bad.push((
        other.layer.digest().to_string(),
        ErrorKind::InvalidReference,
    ));
    for (reference, kind) in bad {
        expect_err(
            pusher
                .push_reference(
                    &other.manifest.desc,
                    crate::content::reader_from_bytes(other.manifest.data.clone()),
                    &reference,
                )
                .await,
            kind,
            &format!("push_reference with {reference:?}"),
        );
    }
    assert_absent(
        store,
        &other.manifest.desc,
        "push_reference with bad references",
    )
    .await;
    assert_eq!(tags_of(store, None).await, ["again", "pushed"]);
}
