//! The binary against a local docker-registry, anonymous and with basic auth: copies both
//! ways, tags, inspect, fetch of manifests and layers, delete, refused credentials.

mod common;

use common::*;
use ocistore_test_registry::{
    docker_config_with_password, write_docker_config, Auth, Registry, WRITER, WRITER_PASSWORD,
};
use std::path::Path;

fn loc(dir: &Path, suffix: &str) -> String {
    format!("oci:{}{suffix}", dir.display())
}

#[test]
fn copy_to_a_registry_and_back_then_delete() {
    let Some(reg) = Registry::start_or_skip(Auth::Anonymous) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (image, sbom) = make_layout(&src);
    let remote = format!("docker://{}/team/app", reg.host());

    let push = run(&[
        "--json",
        "copy",
        "--referrers",
        &loc(&src, ":v1"),
        &format!("{remote}:v1"),
    ]);
    push.assert_ok();
    assert_eq!(push.json()["descriptor"]["digest"], image);

    // To another repository of the same registry: the blobs are mounted, only the manifest
    // is pushed, and the mirror resolves to the same image.
    let mirror = format!("docker://{}/team/mirror", reg.host());
    let mounted = run(&[
        "--json",
        "copy",
        &format!("{remote}:v1"),
        &format!("{mirror}:v1"),
    ]);
    mounted.assert_ok();
    let summary = &mounted.json()["summary"];
    assert_eq!(summary["copied"], 1, "the manifest only: {summary}");
    assert!(
        summary["mounted"].as_u64().unwrap() >= 2,
        "config and layers: {summary}"
    );
    let manifest_size = run(&["resolve", &format!("{remote}:v1")]).json()["size"].clone();
    assert_eq!(
        summary["bytes"], manifest_size,
        "only the manifest was read: {summary}"
    );
    assert!(mounted.stderr.contains("mounted"), "{}", mounted.stderr);
    assert_eq!(
        run(&["resolve", &format!("{mirror}:v1")]).json()["digest"],
        image
    );

    let tags = run(&["--json", "tags", &remote]);
    tags.assert_ok();
    assert!(
        tags.json()
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("v1")),
        "{}",
        tags.stdout_text()
    );

    let raw = run(&["inspect", "--raw", &format!("{remote}:v1")]);
    raw.assert_ok();
    assert_eq!(raw.stdout, std::fs::read(blob_path(&src, &image)).unwrap());

    let back = tmp.path().join("back");
    let pull = run(&[
        "--json",
        "copy",
        "--referrers",
        &format!("{remote}:v1"),
        &loc(&back, ":v1"),
    ]);
    pull.assert_ok();
    assert_eq!(
        run(&["resolve", &loc(&back, ":v1")]).json()["digest"],
        image
    );
    // The SBOM made the round trip (through the referrers tag schema on distribution 2.8).
    let refs = run(&["--json", "referrers", &loc(&back, ":v1")]);
    assert_eq!(refs.json()[0]["digest"], sbom, "{}", refs.stdout_text());
    assert_eq!(run(&["fsck", &loc(&back, "")]).status, 0);

    // The manifest, by digest, to stdout.
    let fetched = run(&["fetch", &format!("{remote}@{image}")]);
    fetched.assert_ok();
    assert_eq!(fetched.stdout, raw.stdout);
    let manifest_file = tmp.path().join("manifest.json");
    let described = run(&[
        "--json",
        "fetch",
        &format!("{remote}@{image}"),
        "-o",
        manifest_file.to_str().unwrap(),
    ]);
    described.assert_ok();
    assert_eq!(std::fs::read(&manifest_file).unwrap(), raw.stdout);
    // Found as a manifest (the blob HEAD said 404), not as an untyped blob.
    assert_eq!(
        described.json()["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );

    // A layer, by digest: a blob HEAD gives its size; the bytes are verified on the way.
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let layer_bytes = std::fs::read(blob_path(&src, &layer)).unwrap();
    assert_eq!(layer_bytes.len(), 65536);
    let to_stdout = run(&["fetch", &format!("{remote}@{layer}")]);
    to_stdout.assert_ok();
    assert_eq!(to_stdout.stdout, layer_bytes);
    let out = tmp.path().join("layer.bin");
    let to_file = run(&[
        "--json",
        "fetch",
        &format!("{remote}@{layer}"),
        "-o",
        out.to_str().unwrap(),
    ]);
    to_file.assert_ok();
    assert_eq!(std::fs::read(&out).unwrap(), layer_bytes);
    assert_eq!(to_file.json()["digest"], layer.as_str());
    assert_eq!(to_file.json()["size"], 65536);
    assert_eq!(to_file.json()["mediaType"], "application/octet-stream");
    // A digest the repository has neither as manifest nor as blob.
    let absent = format!("sha256:{}", "0".repeat(64));
    let nowhere = tmp.path().join("nothing.bin");
    let nothing = run(&[
        "fetch",
        &format!("{remote}@{absent}"),
        "-o",
        nowhere.to_str().unwrap(),
    ]);
    nothing.assert_one_line_error(1);
    assert!(nothing.stderr.contains(&absent), "{}", nothing.stderr);
    assert!(!nowhere.exists());

    let missing = run(&["inspect", &format!("{remote}:nope")]);
    missing.assert_one_line_error(1);
    assert!(missing.stderr.contains("nope"), "{}", missing.stderr);

    run(&["delete", &format!("{remote}@{image}")]).assert_ok();
    run(&["resolve", &format!("{remote}@{image}")]).assert_one_line_error(1);
}

#[test]
fn basic_auth_with_creds_authfile_docker_config_and_wrong_credentials() {
    let Some(reg) = Registry::start_or_skip(Auth::basic()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (image, _) = make_layout(&src);
    let remote = format!("docker://{}/app", reg.host());
    let good = format!("{WRITER}:{WRITER_PASSWORD}");

    // Anonymous: refused, saying no credentials were found.
    let anon = run(&["copy", &loc(&src, ":v1"), &format!("{remote}:v1")]);
    anon.assert_one_line_error(1);
    assert!(anon.stderr.contains("anonymous"), "{}", anon.stderr);

    // Wrong password: refused, naming the user and never the password.
    let wrong = run(&[
        "copy",
        "--dest-creds",
        &format!("{WRITER}:hunter2-wrong"),
        &loc(&src, ":v1"),
        &format!("{remote}:v1"),
    ]);
    wrong.assert_one_line_error(1);
    assert!(
        wrong
            .stderr
            .contains(&format!("user \"{WRITER}\" from --creds")),
        "{}",
        wrong.stderr
    );
    assert!(
        !wrong.stderr.contains("hunter2"),
        "the secret leaked: {}",
        wrong.stderr
    );

    run(&[
        "copy",
        "--dest-creds",
        &good,
        &loc(&src, ":v1"),
        &format!("{remote}:v1"),
    ])
    .assert_ok();

    // A refused source leaves a layout destination uncreated.
    let dst = tmp.path().join("dst");
    let refused = run(&[
        "copy",
        "--src-creds",
        "mallory:nope",
        &format!("{remote}:v1"),
        &loc(&dst, ":v1"),
    ]);
    refused.assert_one_line_error(1);
    assert!(
        refused.stderr.contains("mallory") && !refused.stderr.contains("nope"),
        "{}",
        refused.stderr
    );
    assert!(!dst.exists());

    // --authfile, and DOCKER_CONFIG.
    let config_dir = tmp.path().join("docker");
    std::fs::create_dir(&config_dir).unwrap();
    let file = write_docker_config(
        &config_dir,
        &docker_config_with_password(&reg.host(), WRITER, WRITER_PASSWORD),
    )
    .unwrap();
    let tags = run(&["--authfile", file.to_str().unwrap(), "tags", &remote]);
    tags.assert_ok();
    assert_eq!(tags.stdout_text(), "v1\n");
    let out = finish(
        ocistore(&["resolve", &format!("{remote}:v1")])
            .env("DOCKER_CONFIG", &config_dir)
            .output()
            .unwrap(),
    );
    out.assert_ok();
    assert_eq!(out.json()["digest"], image);

    let pulled = finish(
        ocistore(&[
            "copy",
            &format!("{remote}:v1"),
            &format!("oci-archive:{}", tmp.path().join("a.tar").display()),
        ])
        .env("DOCKER_CONFIG", &config_dir)
        .output()
        .unwrap(),
    );
    pulled.assert_ok();
    let imported = run(&[
        "--json",
        "import",
        tmp.path().join("a.tar").to_str().unwrap(),
        &loc(&tmp.path().join("i"), ""),
    ]);
    imported.assert_ok();
    assert_eq!(imported.json()[0]["descriptor"]["digest"], image);
}

#[test]
fn messages_of_a_refusal_show_what_was_tried() {
    let Some(reg) = Registry::start_or_skip(Auth::basic()) else {
        return;
    };
    let remote = format!("docker://{}/app", reg.host());
    let out = run(&["--creds", "someone:s3cr3t-pw", "tags", &remote]);
    out.assert_one_line_error(1);
    eprintln!("{}", out.stderr);
    assert!(
        out.stderr.contains("user \"someone\" from --creds") && out.stderr.contains("--authfile"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("s3cr3t"), "{}", out.stderr);
}
