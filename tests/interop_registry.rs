//! A real registry round trip: `docker-registry serve` (distribution 2.8) on a free port of
//! 127.0.0.1, with a config and storage written by the test and the process killed when the test
//! ends (also when it fails). Our layout's tags are pushed with `skopeo copy
//! --dest-tls-verify=false`, pulled back into a new layout, opened with our store: the same
//! digests resolve, every graph fetches and verifies, fsck is clean, the referrers are still found
//! through their `subject`, and `ocistore::copy::copy` from it into a third layout works.
//!
//! What the registry changes: nothing in the content. Distribution 2.8 stores every manifest
//! verbatim and serves it back byte for byte, so every digest survives (asserted below). It has
//! no referrers API (`GET /v2/<name>/referrers/<digest>` is a 404) and ignores `subject` on a
//! manifest PUT: a referrer only travels because we push it under its own tag; skopeo 1.9 does
//! not write a referrers tag-schema index (`sha256-<hex>`), so there is none for the registry to
//! rewrite (interop.md section 2: when one exists, skopeo cannot copy it faithfully). What
//! changes is index.json: the pulled layout's is skopeo's (compact, no top-level mediaType, only
//! the tags pulled; our foreign annotations such as `io.containerd.image.name` live in our
//! index.json, not in the manifests, so they do not travel through a registry).

mod interop;

use interop::*;
use ocistore::content::referrers;
use ocistore::descriptor::{OCI_INDEX, OCI_MANIFEST};
use ocistore::fs::{ReadOnlyStore, Store};
use ocistore::TagLister;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository our tags are pushed to.
const REPO: &str = "ocistore/interop";

/// A running `docker-registry serve`, killed and reaped on drop (so also when the test panics).
struct Registry {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry on a free loopback port with storage under `dir`, and waits (bounded)
    /// until `GET /v2/` answers 200.
    fn start(dir: &Path) -> Registry {
        // A port the kernel just handed out is free; another process could take it before the
        // registry binds it, so a registry that exits at once is retried on a new port.
        for attempt in 0..3 {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let storage = dir.join("storage");
            std::fs::create_dir_all(&storage).unwrap();
            let config = dir.join(format!("config-{attempt}.yml"));
            // Listens on 127.0.0.1 only (the packaged config listens on :5000, every interface).
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    storage.display()
                ),
            )
            .unwrap();
            let log = dir.join(format!("registry-{attempt}.log"));
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(&log).unwrap())
                .stderr(std::fs::File::create(dir.join(format!("registry-{attempt}.err"))).unwrap())
                .spawn()
                .expect("starting docker-registry");
            let mut registry = Registry { child, port, log };
            if registry.wait_ready(dir, attempt) {
                return registry;
            }
        }
        panic!("docker-registry did not start on a free port in 3 attempts");
    }

    /// Polls `GET /v2/` for at most 20 s; false if the process exited (port taken).
    fn wait_ready(&mut self, dir: &Path, attempt: u32) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let err = std::fs::read_to_string(dir.join(format!("registry-{attempt}.err")))
                    .unwrap_or_default();
                eprintln!("docker-registry exited ({status}): {err}");
                return false;
            }
            if let Some((200, _)) = self.get("/v2/") {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not answer GET /v2/ within 20 s (log {:?})",
                self.log
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A plain HTTP/1.0 GET to the registry: (status, body), or None when it does not answer.
    /// Distribution answers 404 for an OCI manifest the client does not list in `Accept`.
    fn get(&self, path: &str) -> Option<(u16, Vec<u8>)> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nAccept: {OCI_MANIFEST}, {OCI_INDEX}\r\n\r\n",
            self.port
        )
        .ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let text = String::from_utf8_lossy(&response);
        let status = text.split_whitespace().nth(1)?.parse().ok()?;
        let body_at = text.find("\r\n\r\n")? + 4;
        Some((status, response[body_at..].to_vec()))
    }

    fn reference(&self, tag: &str) -> String {
        format!("docker://127.0.0.1:{}/{REPO}:{tag}", self.port)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_tags_survive_a_registry_round_trip() {
    if !have(&["docker-registry", "skopeo"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("ours");
    let store = open_store(&src).await;
    let mut ours = Ours::build();
    ours.write(&store).await;
    store.close().await.unwrap();

    let registry = Registry::start(&tmp.path().join("registry"));
    let oci = |dir: &Path, tag: &str| format!("oci:{}:{tag}", dir.display());
    // Every tag skopeo can copy: not the sha512 one (skopeo writes no sha512 blobs).
    let tags: Vec<&Tag> = ours.tags.iter().filter(|t| t.kind.skopeo_copy()).collect();
    assert_eq!(tags.len(), 4);
    for tag in &tags {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"copy",
            &"--quiet",
            &"--dest-tls-verify=false",
            &"--preserve-digests",
        ];
        if tag.kind == Kind::Index {
            args.push(&"--all");
        }
        let (from, to) = (oci(&src, tag.name), registry.reference(tag.name));
        args.extend([&from as &dyn AsRef<_>, &to]);
        skopeo(&args);
    }

    // The registry serves our exact manifest bytes under each tag.
    for tag in &tags {
        let (status, body) = registry
            .get(&format!("/v2/{REPO}/manifests/{}", tag.name))
            .unwrap();
        assert_eq!(status, 200, "{}", tag.name);
        let ours = std::fs::read(blob_path(&src, tag.desc.digest().as_ref())).unwrap();
        assert_eq!(
            body, ours,
            "the registry changed the manifest of {}",
            tag.name
        );
    }

    // Pull every tag back, and the signature once more by digest.
    let pulled = tmp.path().join("pulled");
    for tag in &tags {
        let mut args: Vec<&dyn AsRef<std::ffi::OsStr>> = vec![
            &"copy",
            &"--quiet",
            &"--src-tls-verify=false",
            &"--preserve-digests",
        ];
        if tag.kind == Kind::Index {
            args.push(&"--all");
        }
        let (from, to) = (registry.reference(tag.name), oci(&pulled, tag.name));
        args.extend([&from as &dyn AsRef<_>, &to]);
        skopeo(&args);
    }
    let sig = &ours.sig.2;
    skopeo(&[
        &"copy",
        &"--quiet",
        &"--src-tls-verify=false",
        &"--preserve-digests",
        &format!(
            "docker://127.0.0.1:{}/{REPO}@{}",
            registry.port,
            sig.digest()
        ),
        &oci(&pulled, "sig-by-digest"),
    ]);
    drop(registry);

    // Our store reads what came back: the same digests, every node verified, fsck clean.
    let store = Store::open(&pulled).await.unwrap();
    let mut names: Vec<String> = tags.iter().map(|t| t.name.to_string()).collect();
    names.push("sig-by-digest".into());
    names.sort();
    assert_eq!(store.tags(None).await.unwrap(), names);
    for tag in &tags {
        let resolved = store.resolve(tag.name).await.unwrap();
        assert_eq!(resolved.digest(), tag.desc.digest(), "{}", tag.name);
        assert_eq!(resolved.size(), tag.desc.size(), "{}", tag.name);
        assert_eq!(
            reachable(&pulled, tag.desc.digest().as_ref()),
            reachable(&src, tag.desc.digest().as_ref()),
            "{}",
            tag.name
        );
        fetch_graph(&store, &resolved, &BTreeSet::new()).await;
    }
    assert_eq!(
        store.resolve("sig-by-digest").await.unwrap().digest(),
        sig.desc.digest()
    );
    let report = store.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty(),
        "{report:?}"
    );
    // The subjects survived: the referrers are found again from what was pulled.
    let app = store.resolve("app").await.unwrap();
    let found = referrers(&store, &app, None).await.unwrap();
    assert_eq!(
        found.iter().map(|d| d.digest().clone()).collect::<Vec<_>>(),
        [sig.desc.digest().clone()]
    );
    let multi = store.resolve("multi").await.unwrap();
    let found = referrers(&store, &multi, None).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].digest(), ours.multi_sbom.2.desc.digest());
    let read_only = ReadOnlyStore::open(&pulled).await.unwrap();
    fetch_every_blob(&read_only, &pulled).await;

    copy_into_a_third_layout(&store, &tags, &tmp.path().join("third")).await;
    store.close().await.unwrap();
}

/// `ocistore::copy::copy` of every tag from the pulled layout into a third one: the same
/// digests resolve there, fsck is clean, and skopeo reads our copy.
async fn copy_into_a_third_layout(pulled: &Store, tags: &[&Tag], third: &Path) {
    let dst = Store::open(third).await.unwrap();
    for tag in tags {
        let copied = ocistore::copy::copy(
            pulled,
            tag.name,
            &dst,
            tag.name,
            &ocistore::copy::CopyOptions::default(),
        )
        .await
        .unwrap_or_else(|e| panic!("copy of {}: {e}", tag.name));
        assert_eq!(copied.digest(), tag.desc.digest(), "{}", tag.name);
        let resolved = dst.resolve(tag.name).await.unwrap();
        assert_eq!(resolved.digest(), tag.desc.digest(), "{}", tag.name);
        fetch_graph(&dst, &resolved, &BTreeSet::new()).await;
    }
    let report = dst.fsck().await.unwrap();
    assert!(
        report.is_clean() && report.orphaned.is_empty(),
        "{report:?}"
    );
    dst.close().await.unwrap();
    for tag in tags {
        let raw = skopeo(&[
            &"inspect",
            &"--raw",
            &format!("oci:{}:{}", third.display(), tag.name),
        ]);
        assert_eq!(
            raw,
            std::fs::read(blob_path(third, tag.desc.digest().as_ref())).unwrap()
        );
    }
}
