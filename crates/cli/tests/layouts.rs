//! The binary over layouts and archives: copies both ways, output for scripts, fsck, gc, bad
//! input and Ctrl-C.

mod common;

use common::*;
use std::path::Path;

fn loc(dir: &Path, suffix: &str) -> String {
    format!("oci:{}{suffix}", dir.display())
}

#[test]
fn copy_through_an_archive_and_back_keeps_the_bytes_and_prints_json() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (image, sbom) = make_layout(&src);
    let archive = tmp.path().join("a.tar");
    let dst = tmp.path().join("dst");

    let out = run(&[
        "copy",
        "--referrers",
        &loc(&src, ":v1"),
        &format!("oci-archive:{}:app", archive.display()),
    ]);
    out.assert_ok();
    assert!(out.stdout.is_empty(), "stdout is for requested data only");
    assert!(
        out.stderr.contains("blob(s) copied"),
        "summary line: {}",
        out.stderr
    );

    let out = run(&[
        "--json",
        "copy",
        "--referrers",
        &format!("oci-archive:{}:app", archive.display()),
        &loc(&dst, ":v2"),
    ]);
    out.assert_ok();
    let json = out.json();
    assert_eq!(json["descriptor"]["digest"], image);
    assert!(json["summary"]["copied"].as_u64().unwrap() >= 3, "{json}");

    let tags = run(&["--json", "tags", &loc(&dst, "")]);
    tags.assert_ok();
    assert_eq!(tags.json(), serde_json::json!(["v2"]));

    let resolved = run(&["resolve", &loc(&dst, ":v2")]);
    resolved.assert_ok();
    assert_eq!(resolved.json()["digest"], image);

    let raw = run(&["inspect", "--raw", &loc(&dst, ":v2")]);
    raw.assert_ok();
    assert_eq!(raw.stdout, std::fs::read(blob_path(&src, &image)).unwrap());
    let pretty = run(&["inspect", &loc(&dst, ":v2")]);
    pretty.assert_ok();
    assert!(
        pretty.stdout_text().contains("\n  \"schemaVersion\": 2"),
        "{}",
        pretty.stdout_text()
    );

    // The SBOM came along through the archive.
    let refs = run(&[
        "--json",
        "referrers",
        "--artifact-type",
        "application/spdx+json",
        &loc(&dst, ":v2"),
    ]);
    refs.assert_ok();
    assert_eq!(refs.json()[0]["digest"], sbom);

    // A second copy finds everything there.
    let again = run(&["--json", "copy", &loc(&src, ":v1"), &loc(&dst, ":v2")]);
    again.assert_ok();
    assert_eq!(
        again.json()["summary"]["copied"],
        0,
        "{}",
        again.stdout_text()
    );

    let fsck = run(&["fsck", &loc(&dst, "")]);
    assert_eq!(fsck.status, 0, "{}", fsck.stderr);

    // fetch of the layer by digest, to a file.
    let manifest = pretty.json();
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let file = tmp.path().join("layer.bin");
    let fetched = run(&[
        "fetch",
        &loc(&dst, &format!("@{layer}")),
        "-o",
        file.to_str().unwrap(),
    ]);
    fetched.assert_ok();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(blob_path(&src, &layer)).unwrap()
    );
}

#[test]
fn archives_go_through_stdin_and_stdout() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (image, _) = make_layout(&src);
    let exported = run(&["export", &loc(&src, ":v1"), "-o", "-"]);
    exported.assert_ok();
    assert!(exported.stdout.len() > 65536);

    let dst = tmp.path().join("dst");
    let mut child = ocistore(&["--json", "import", "-", &loc(&dst, "")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&exported.stdout)
        .unwrap();
    let out = finish(child.wait_with_output().unwrap());
    out.assert_ok();
    let json = out.json();
    assert_eq!(json[0]["name"], "v1");
    assert_eq!(json[0]["descriptor"]["digest"], image);
    assert_eq!(run(&["tags", &loc(&dst, "")]).stdout_text(), "v1\n");
}

#[test]
fn tag_untag_delete_and_a_missing_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let (image, _) = make_layout(&dir);
    run(&["tag", &loc(&dir, ":v1"), "stable"]).assert_ok();
    assert_eq!(run(&["tags", &loc(&dir, "")]).stdout_text(), "stable\nv1\n");
    run(&["untag", &loc(&dir, ":v1")]).assert_ok();
    assert_eq!(run(&["tags", &loc(&dir, "")]).stdout_text(), "stable\n");

    let missing = run(&["resolve", &loc(&dir, ":v1")]);
    missing.assert_one_line_error(1);
    assert!(
        missing.stderr.contains("v1") && missing.stderr.contains("not found"),
        "{}",
        missing.stderr
    );

    run(&["delete", &loc(&dir, ":stable")]).assert_ok();
    assert!(!blob_path(&dir, &image).exists(), "the manifest is gone");
    assert_eq!(run(&["tags", &loc(&dir, "")]).stdout_text(), "");
}

#[test]
fn fsck_names_the_corrupt_blob_and_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let (image, _) = make_layout(&dir);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob_path(&dir, &image)).unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let path = blob_path(&dir, layer);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();

    let out = run(&["fsck", &loc(&dir, "")]);
    assert_eq!(out.status, 3, "{}", out.stderr);
    assert!(
        out.stdout_text().contains(&format!("corrupt\t{layer}")),
        "{}",
        out.stdout_text()
    );
    assert!(
        out.stderr.lines().any(|l| l.starts_with("error: ")),
        "{}",
        out.stderr
    );

    let json = run(&["--json", "fsck", &loc(&dir, "")]);
    assert_eq!(json.status, 3);
    let report = json.json();
    assert_eq!(report["clean"], false);
    assert!(
        report["corrupt"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c.as_str().unwrap().contains(layer)),
        "{report}"
    );

    // Copying the corrupt image fails, naming the blob.
    let copy = run(&[
        "copy",
        &loc(&dir, ":v1"),
        &loc(&tmp.path().join("d"), ":v1"),
    ]);
    copy.assert_one_line_error(1);
    assert!(copy.stderr.contains(layer), "{}", copy.stderr);
}

#[test]
fn gc_dry_run_removes_nothing_and_gc_removes_what_it_said() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("l");
    let (image, _) = make_layout(&dir);
    run(&["untag", &loc(&dir, ":v1")]).assert_ok();
    let before = snapshot(&dir);

    let dry = run(&["--json", "gc", "--grace", "0", "--dry-run", &loc(&dir, "")]);
    dry.assert_ok();
    let would = dry.json();
    assert!(would["blobs_removed"].as_u64().unwrap() >= 3, "{would}");
    assert_eq!(snapshot(&dir), before, "a dry run changes nothing");

    let real = run(&["--json", "gc", "--grace", "0", &loc(&dir, "")]);
    real.assert_ok();
    assert_eq!(real.json()["blobs_removed"], would["blobs_removed"]);
    assert!(!blob_path(&dir, &image).exists());

    let bad = run(&["gc", "--grace", "soon", &loc(&dir, "")]);
    assert_eq!(bad.status, 2, "{}", bad.stderr);
}

#[test]
fn bad_input_is_one_line_and_leaves_the_destination_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_layout(&src);
    let dst = tmp.path().join("dst");
    make_layout(&dst);
    let before = snapshot(&dst);
    let fresh = tmp.path().join("fresh");
    let unreadable = tmp.path().join("no-such.tar");
    let garbage = tmp.path().join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar archive at all").unwrap();

    let v1 = loc(&src, ":v1");
    let cases: Vec<(Vec<String>, i32)> = vec![
        (vec!["copy".into(), "src".into(), loc(&dst, ":x")], 2),
        (
            vec!["copy".into(), "ftp:somewhere".into(), loc(&dst, ":x")],
            2,
        ),
        (vec!["copy".into(), "oci:".into(), loc(&dst, ":x")], 2),
        (
            vec![
                "copy".into(),
                format!("oci:{}:bad tag!", src.display()),
                loc(&dst, ":x"),
            ],
            2,
        ),
        (
            vec![
                "copy".into(),
                format!("oci:{}@sha256:123", src.display()),
                loc(&dst, ":x"),
            ],
            2,
        ),
        (
            vec!["copy".into(), "docker://nohost".into(), loc(&dst, ":x")],
            2,
        ),
        (vec!["copy".into(), v1.clone(), "oci:".into()], 2),
        (
            vec![
                "copy".into(),
                v1.clone(),
                loc(&dst, ":x"),
                "--platform".into(),
                "linux".into(),
            ],
            2,
        ),
        (
            vec![
                "copy".into(),
                v1.clone(),
                loc(&dst, ":x"),
                "--platform".into(),
                "linux//v7".into(),
            ],
            2,
        ),
        (
            vec![
                "copy".into(),
                v1.clone(),
                loc(&dst, ":x"),
                "--platform".into(),
                "a/b/c/d".into(),
            ],
            2,
        ),
        (vec!["copy".into(), loc(&src, ":nope"), loc(&dst, ":x")], 1),
        (
            vec![
                "copy".into(),
                loc(&tmp.path().join("absent"), ":v1"),
                loc(&dst, ":x"),
            ],
            1,
        ),
        (
            vec![
                "copy".into(),
                format!("oci-archive:{}", unreadable.display()),
                loc(&dst, ":x"),
            ],
            1,
        ),
        (
            vec![
                "copy".into(),
                format!("oci-archive:{}", garbage.display()),
                loc(&dst, ":x"),
            ],
            1,
        ),
        (
            vec![
                "import".into(),
                unreadable.display().to_string(),
                loc(&dst, ""),
            ],
            1,
        ),
        (
            vec![
                "import".into(),
                garbage.display().to_string(),
                loc(&dst, ""),
            ],
            1,
        ),
        (
            vec![
                "copy".into(),
                v1.clone(),
                "docker://127.0.0.1:1/x:y".into(),
                "--creds".into(),
                "nocolon".into(),
            ],
            2,
        ),
        (vec!["tag".into(), loc(&dst, ":v1"), "bad tag".into()], 2),
        (vec!["fsck".into(), loc(&dst, ":v1")], 2),
    ];
    for (args, status) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        out.assert_one_line_error(status);
        assert_eq!(snapshot(&dst), before, "{args:?} changed the destination");
    }
    // Nothing is created for a destination when the source is bad.
    for args in [
        vec!["copy".to_string(), loc(&src, ":nope"), loc(&fresh, ":x")],
        vec![
            "import".to_string(),
            unreadable.display().to_string(),
            loc(&fresh, ""),
        ],
        vec![
            "copy".to_string(),
            v1.clone(),
            format!("oci-archive:{}", fresh.display()),
            "--platform".into(),
            "x".into(),
        ],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_ne!(run(&args).status, 0);
        assert!(!fresh.exists(), "{args:?} created {}", fresh.display());
    }
    // clap's own usage errors exit 2 too.
    assert_eq!(run(&["copy"]).status, 2);
    assert_eq!(run(&["frobnicate"]).status, 2);
}

#[test]
fn every_command_has_an_example_in_its_help() {
    for command in [
        "copy",
        "tags",
        "resolve",
        "inspect",
        "fetch",
        "tag",
        "untag",
        "delete",
        "referrers",
        "gc",
        "fsck",
        "import",
        "export",
    ] {
        let out = run(&[command, "--help"]);
        out.assert_ok();
        assert!(
            out.stdout_text().contains("ocistore "),
            "{command}: {}",
            out.stdout_text()
        );
        assert!(out.stdout_text().contains("Example"), "{command}");
    }
}

/// Ctrl-C during an import fed from a FIFO that stops half way through a blob: exit 130, and
/// the destination holds no partial blob and no temporary file.
#[test]
fn ctrl_c_during_a_stalled_import_leaves_nothing_partial() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    // An existing layout, so that the store's own clean-up is what is checked (a layout the
    // run created would be removed whole).
    let dst = tmp.path().join("dst");
    make_layout(&dst);
    let mut before = snapshot(&dst);
    let child = ocistore(&["import", fifo.to_str().unwrap(), &loc(&dst, "")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();

    // A tar entry announcing an 8 MiB blob, of which 1 MiB arrives; the writer stays open.
    let size = 8u64 << 20;
    let mut header = tar::Header::new_ustar();
    header
        .set_path(format!("blobs/sha256/{}", "ab".repeat(32)))
        .unwrap();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_cksum();
    use std::io::Write;
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(header.as_bytes()).unwrap();
    writer.write_all(&vec![7u8; 1 << 20]).unwrap();
    writer.flush().unwrap();

    // Wait for the partial blob to be on disk in the destination's ingest directory.
    let ingest = dst.join("ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while snapshot(&ingest)
        .iter()
        .map(|(_, b)| b.len())
        .sum::<usize>()
        < (1 << 20)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no partial blob appeared: {:?}",
            snapshot(&dst).iter().map(|f| &f.0).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = finish(child.wait_with_output().unwrap());
    drop(writer);
    assert_eq!(out.status, 130, "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // The index lock file may be created by the run; nothing else may change.
    let mut after = snapshot(&dst);
    after.retain(|(p, _)| p != "index.json.lock");
    before.retain(|(p, _)| p != "index.json.lock");
    let names = |v: &Vec<(String, Vec<u8>)>| v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before), "left behind");
    assert_eq!(after, before);
}

/// Ctrl-C during a copy whose source archive stalls half way through a blob: exit 130, the
/// staging layout under TMPDIR is gone and the destination was never created.
#[test]
fn ctrl_c_during_a_stalled_copy_leaves_no_staging_and_no_destination() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("pipe");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    let dst = tmp.path().join("dst");
    let child = ocistore(&[
        "copy",
        &format!("oci-archive:{}:v1", fifo.display()),
        &loc(&dst, ":v1"),
    ])
    .env("TMPDIR", &scratch)
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut header = tar::Header::new_ustar();
    header
        .set_path(format!("blobs/sha256/{}", "cd".repeat(32)))
        .unwrap();
    header.set_size(8 << 20);
    header.set_mode(0o644);
    header.set_cksum();
    use std::io::Write;
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writer.write_all(header.as_bytes()).unwrap();
    writer.write_all(&vec![9u8; 1 << 20]).unwrap();
    writer.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while snapshot(&scratch)
        .iter()
        .map(|(_, b)| b.len())
        .sum::<usize>()
        < (1 << 20)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the copy never started staging"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = finish(child.wait_with_output().unwrap());
    drop(writer);
    assert_eq!(out.status, 130, "{}", out.stderr);
    assert_eq!(
        std::fs::read_dir(&scratch).unwrap().count(),
        0,
        "staging left behind"
    );
    assert!(!dst.exists(), "the destination was created");
}

#[test]
fn platform_selects_or_refuses_and_concurrency_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let (image, _) = make_layout(&src);
    let dst = tmp.path().join("dst");
    let ok = run(&[
        "--json",
        "copy",
        "--platform",
        "linux/amd64",
        "--concurrency",
        "1",
        &loc(&src, ":v1"),
        &loc(&dst, ":v1"),
    ]);
    ok.assert_ok();
    assert_eq!(ok.json()["descriptor"]["digest"], image);

    let other = tmp.path().join("other");
    let none = run(&[
        "copy",
        "--platform",
        "linux/arm64",
        &loc(&src, ":v1"),
        &loc(&other, ":v1"),
    ]);
    none.assert_one_line_error(1);
    assert!(none.stderr.contains("not found"), "{}", none.stderr);
    assert_eq!(
        run(&[
            "copy",
            "--concurrency",
            "0",
            &loc(&src, ":v1"),
            &loc(&other, ":v1")
        ])
        .status,
        2
    );
}

/// Bars on a terminal (run under script(1), which gives the child one), none through pipes.
#[test]
fn progress_bars_only_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    make_layout(&src);
    let piped = run(&[
        "copy",
        &loc(&src, ":v1"),
        &loc(&tmp.path().join("a"), ":v1"),
    ]);
    piped.assert_ok();
    assert_eq!(
        piped.stderr.lines().count(),
        1,
        "only the summary: {}",
        piped.stderr
    );
    assert!(!piped.stderr.contains("total"), "{}", piped.stderr);

    let command = format!(
        "{} copy {} {}",
        env!("CARGO_BIN_EXE_ocistore"),
        loc(&src, ":v1"),
        loc(&tmp.path().join("b"), ":v1")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("total") && text.contains("ETA"),
        "no bars on a terminal: {text}"
    );
    assert!(text.contains("blob(s) copied"), "{text}");
}
