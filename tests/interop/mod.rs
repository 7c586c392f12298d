//! Shared helpers of the interoperability tests: finding the tools (skip or fail), running them
//! with a bound on time, building real images (tar+gzip layers) and the layout "we write", and
//! reading layouts the way a tool-independent checker would.
#![allow(dead_code)]

use flate2::write::GzEncoder;
use ocistore::content::{fetch_all, push_bytes, successors};
use ocistore::descriptor::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, REF_NAME};
use ocistore::digest::{digest_of, Algorithm};
use ocistore::fs::{Store, StoreOptions};
use ocistore::spec::{Descriptor, MediaType, Platform};
use ocistore::{ErrorKind, Fetcher, Pusher, Resolver, Tagger};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The command that installs every tool these tests use.
pub const INSTALL: &str = "sudo apt-get install -y skopeo umoci oci-image-tool docker-registry jq";
/// Set to `1` (as `.ci/run` does) to make a missing tool fail the test instead of skipping it.
pub const REQUIRE_ENV: &str = "OCISTORE_REQUIRE_INTEROP";
/// No tool run may take longer than this (a hung tool fails the test instead of hanging it).
const TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// The full path of `tool` on `PATH`.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Whether every tool in `tools` is installed. When one is missing: with
/// `OCISTORE_REQUIRE_INTEROP=1` the test fails here; otherwise this prints that the test skipped
/// and how to enable it, and returns false (the caller returns, and the test passes).
pub fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| find_tool(tool).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(REQUIRE_ENV).as_deref() == Ok("1") {
        panic!(
            "{} not installed, and {REQUIRE_ENV}=1 requires the interop tools; install with: {INSTALL}",
            missing.join(", ")
        );
    }
    // Straight to stderr, not through the print macros that the test harness captures: a
    // newcomer running `cargo test` sees which tests skipped and how to enable them.
    let mut stderr = std::io::stderr().lock();
    for tool in missing {
        let _ = writeln!(
            stderr,
            "skipped: {tool} not installed; enable with: {INSTALL}"
        );
    }
    false
}

/// Runs `program` with `args` (stdin closed), at most [`TOOL_TIMEOUT`], and returns its output.
pub fn run(program: &str, args: &[&dyn AsRef<OsStr>]) -> Output {
    run_in(None, program, args)
}

/// [`run`] in the working directory `dir`.
pub fn run_in(dir: Option<&Path>, program: &str, args: &[&dyn AsRef<OsStr>]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args.iter().map(|a| a.as_ref()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program}: {e}"));
    // Drain both pipes on threads so a chatty tool never blocks on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        out.read_to_end(&mut buf).ok();
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        err.read_to_end(&mut buf).ok();
        buf
    });
    let deadline = Instant::now() + TOOL_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{program} {} ran longer than {TOOL_TIMEOUT:?}", show(args));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    }
}

fn show(args: &[&dyn AsRef<OsStr>]) -> String {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the command and fails the test, showing its output, unless it exits 0; returns stdout.
pub fn ok(program: &str, args: &[&dyn AsRef<OsStr>]) -> Vec<u8> {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "`{program} {}` failed ({}):\n{}{}",
        show(args),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Runs the command and fails the test if it exits 0; returns what it printed (stdout+stderr).
pub fn fails(program: &str, args: &[&dyn AsRef<OsStr>]) -> String {
    let out = run(program, args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "`{program} {}` succeeded, a failure was expected:\n{text}",
        show(args)
    );
    text
}

/// `--rootless` for umoci unpack when not root (root unpacks with real ownership).
pub fn umoci_unpack_args() -> Vec<&'static str> {
    if unsafe_geteuid() == 0 {
        vec![]
    } else {
        vec!["--rootless"]
    }
}

fn unsafe_geteuid() -> u32 {
    // The owner of /proc/self is the effective uid of this process.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
}

/// `skopeo` with the flags every run here uses: no signature policy lookups beyond the default,
/// and no registry configuration of the user involved.
pub fn skopeo(args: &[&dyn AsRef<OsStr>]) -> Vec<u8> {
    ok("skopeo", args)
}

// ----------------------------------------------------------------------------------------------
// Images
// ----------------------------------------------------------------------------------------------

/// One entry of a layer tar.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir(&'static str),
    File(&'static str, &'static [u8], u32),
    Symlink(&'static str, &'static str),
}

/// What a file system path holds after unpacking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    File(Vec<u8>, u32),
    Symlink(String),
}

/// A blob: descriptor and bytes.
#[derive(Debug, Clone)]
pub struct Blob {
    pub desc: Descriptor,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, algorithm: Algorithm, bytes: Vec<u8>) -> Blob {
        let desc = Descriptor::new(
            MediaType::from(media_type),
            bytes.len() as u64,
            digest_of(algorithm, &bytes),
        );
        Blob { desc, bytes }
    }

    pub fn digest(&self) -> String {
        self.desc.digest().to_string()
    }
}

/// A descriptor as JSON (mediaType, digest, size; plus platform and artifactType when set).
pub fn desc_json(desc: &Descriptor) -> Value {
    let mut out = json!({
        "mediaType": desc.media_type().to_string(),
        "digest": desc.digest().to_string(),
        "size": desc.size(),
    });
    if let Some(p) = desc.platform() {
        out["platform"] =
            json!({"architecture": p.architecture().to_string(), "os": p.os().to_string()});
    }
    if let Some(kind) = desc.artifact_type() {
        out["artifactType"] = Value::from(kind.to_string());
    }
    out
}

/// A tar+gzip layer holding `entries` (fixed mtime, root owner); returns (gzip bytes, diff_id of
/// the uncompressed tar in `algorithm`).
pub fn layer_tar_gz(entries: &[Entry], algorithm: Algorithm) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::Dir(path) => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                builder
                    .append_data(&mut header, format!("{path}/"), std::io::empty())
                    .unwrap();
            }
            Entry::File(path, data, mode) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(data.len() as u64);
                builder.append_data(&mut header, path, *data).unwrap();
            }
            Entry::Symlink(path, target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                header.set_size(0);
                builder.append_link(&mut header, path, target).unwrap();
            }
        }
    }
    let tar = builder.into_inner().unwrap();
    let diff_id = digest_of(algorithm, &tar).to_string();
    let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// The files and links an unpack of `layers` (applied in order) yields.
pub fn expected_tree(layers: &[&[Entry]]) -> BTreeMap<String, Node> {
    let mut tree = BTreeMap::new();
    for layer in layers {
        for entry in *layer {
            match entry {
                Entry::Dir(_) => {}
                Entry::File(path, data, mode) => {
                    tree.insert(path.to_string(), Node::File(data.to_vec(), *mode));
                }
                Entry::Symlink(path, target) => {
                    tree.insert(path.to_string(), Node::Symlink(target.to_string()));
                }
            }
        }
    }
    tree
}

/// Every file and symbolic link under `dir` (directories omitted), relative to it.
pub fn actual_tree(dir: &Path) -> BTreeMap<String, Node> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let rel = path.strip_prefix(base).unwrap().display().to_string();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, Node::Symlink(target.display().to_string()));
            } else if meta.is_dir() {
                walk(base, &path, out);
            } else {
                let data = std::fs::read(&path).unwrap();
                out.insert(rel, Node::File(data, meta.permissions().mode() & 0o7777));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// An OCI image: its layers, config and manifest, and the files it unpacks to.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<Blob>,
    pub config: Blob,
    pub manifest: Blob,
    pub files: BTreeMap<String, Node>,
}

impl Image {
    /// Builds an image for `arch` whose layers hold `layers`, every digest in `algorithm`.
    pub fn build(arch: &str, layers: &[&[Entry]], algorithm: Algorithm) -> Image {
        let mut blobs = Vec::new();
        let mut diff_ids = Vec::new();
        for entries in layers {
            let (gz, diff_id) = layer_tar_gz(entries, algorithm);
            blobs.push(Blob::new(
                "application/vnd.oci.image.layer.v1.tar+gzip",
                algorithm,
                gz,
            ));
            diff_ids.push(diff_id);
        }
        let config = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/usr/bin/tool"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = Blob::new(OCI_CONFIG, algorithm, serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc_json(&config.desc),
            "layers": blobs.iter().map(|b| desc_json(&b.desc)).collect::<Vec<_>>(),
            "annotations": {"org.opencontainers.image.title": format!("ocistore interop {arch}")},
        });
        let manifest = Blob::new(
            OCI_MANIFEST,
            algorithm,
            serde_json::to_vec_pretty(&manifest).unwrap(),
        );
        Image {
            layers: blobs,
            config,
            manifest,
            files: expected_tree(layers),
        }
    }

    /// Every blob, children first.
    pub fn blobs(&self) -> Vec<&Blob> {
        let mut out: Vec<&Blob> = self.layers.iter().collect();
        out.push(&self.config);
        out.push(&self.manifest);
        out
    }
}

/// An OCI index over `children` (each with its platform), optionally with a subject.
pub fn index_of(children: &[(&Blob, &str)], subject: Option<&Descriptor>) -> Blob {
    let mut body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children.iter().map(|(blob, arch)| {
            let mut d = desc_json(&blob.desc);
            d["platform"] = json!({"architecture": arch, "os": "linux"});
            d
        }).collect::<Vec<_>>(),
    });
    if let Some(subject) = subject {
        body["subject"] = desc_json(subject);
    }
    Blob::new(
        OCI_INDEX,
        Algorithm::Sha256,
        serde_json::to_vec(&body).unwrap(),
    )
}

/// An artifact (image manifest with artifactType and the empty config) whose subject is
/// `subject`, carrying one blob. Returns (empty config, payload, manifest).
pub fn referrer_of(subject: &Descriptor, payload: &[u8], kind: &str) -> (Blob, Blob, Blob) {
    let empty = Blob::new(
        "application/vnd.oci.empty.v1+json",
        Algorithm::Sha256,
        b"{}".to_vec(),
    );
    let payload = Blob::new(
        "application/vnd.example.payload.v1+json",
        Algorithm::Sha256,
        payload.to_vec(),
    );
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": kind,
        "config": desc_json(&empty.desc),
        "layers": [desc_json(&payload.desc)],
        "subject": desc_json(subject),
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    });
    let manifest = Blob::new(
        OCI_MANIFEST,
        Algorithm::Sha256,
        serde_json::to_vec(&body).unwrap(),
    );
    (empty, payload, manifest)
}

/// Pushes `blob`, content already present counting as success.
pub async fn push(store: &(impl Pusher + ?Sized), blob: &Blob) {
    match push_bytes(store, &blob.desc, blob.bytes.clone()).await {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => panic!("pushing {}: {e}", blob.digest()),
    }
}

// ----------------------------------------------------------------------------------------------
// The layout we write
// ----------------------------------------------------------------------------------------------

/// The base layer of every image we write (shared by all of them).
pub const BASE: &[Entry] = &[
    Entry::Dir("etc"),
    Entry::File("etc/hello.txt", b"hello from layer 1\n", 0o644),
    Entry::Symlink("etc/hello.link", "hello.txt"),
    Entry::Dir("usr"),
    Entry::Dir("usr/bin"),
    Entry::File("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o755),
];
/// The second layer of the app image: overrides a file of the first and adds one.
pub const APP: &[Entry] = &[
    Entry::Dir("etc"),
    Entry::File("etc/hello.txt", b"hello from layer 2, which wins\n", 0o644),
    Entry::Dir("srv"),
    Entry::File("srv/data.txt", b"some data\n", 0o600),
];
/// The layer that app v2 adds.
pub const APP_V2: &[Entry] = &[Entry::File("srv/version", b"2\n", 0o644)];
pub const AMD64: &[Entry] = &[Entry::File("arch.txt", b"amd64\n", 0o644)];
pub const ARM64: &[Entry] = &[Entry::File("arch.txt", b"arm64\n", 0o644)];
pub const SHA512: &[Entry] = &[
    Entry::Dir("opt"),
    Entry::File("opt/digest.txt", b"every digest here is sha512\n", 0o644),
];

/// The foreign annotation our tags carry, as containerd writes it.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What kind of content a tag names; decides which tools support it (interop.md section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An OCI image manifest with an OCI image config: every tool.
    Image,
    /// A one-level OCI index of images: skopeo and oci-image-tool, not umoci.
    Index,
    /// An artifact (empty config, artifactType, subject): skopeo only.
    Artifact,
    /// An image whose every digest is sha512: oci-image-tool and skopeo reading; skopeo cannot
    /// write sha512, umoci rejects it.
    Sha512Image,
}

impl Kind {
    pub fn oci_image_tool(self) -> bool {
        matches!(self, Kind::Image | Kind::Index | Kind::Sha512Image)
    }
    pub fn skopeo_inspect(self) -> bool {
        true
    }
    pub fn skopeo_copy(self) -> bool {
        !matches!(self, Kind::Sha512Image)
    }
    pub fn umoci(self) -> bool {
        matches!(self, Kind::Image)
    }
}

/// A tag of the layout we write.
#[derive(Debug, Clone)]
pub struct Tag {
    pub name: &'static str,
    pub kind: Kind,
    pub desc: Descriptor,
    /// What `umoci unpack` must yield (images only).
    pub files: BTreeMap<String, Node>,
}

/// The layout we write: every image, and the tags as they stand.
pub struct Ours {
    pub app: Image,
    pub app_v2: Image,
    pub amd64: Image,
    pub arm64: Image,
    pub multi: Blob,
    pub sig: (Blob, Blob, Blob),
    pub multi_sbom: (Blob, Blob, Blob),
    pub sha512: Image,
    /// An untagged manifest with no subject: garbage for gc.
    pub stray: Image,
    pub tags: Vec<Tag>,
}

impl Ours {
    pub fn build() -> Ours {
        let app = Image::build("amd64", &[BASE, APP], Algorithm::Sha256);
        let app_v2 = Image::build("amd64", &[BASE, APP, APP_V2], Algorithm::Sha256);
        let amd64 = Image::build("amd64", &[BASE, AMD64], Algorithm::Sha256);
        let arm64 = Image::build("arm64", &[BASE, ARM64], Algorithm::Sha256);
        let multi = index_of(
            &[(&amd64.manifest, "amd64"), (&arm64.manifest, "arm64")],
            None,
        );
        let sig = referrer_of(
            &app.manifest.desc,
            br#"{"signature":"not really"}"#,
            "application/vnd.example.signature.v1",
        );
        let multi_sbom = referrer_of(
            &multi.desc,
            br#"{"sbom":"two platforms"}"#,
            "application/vnd.example.sbom.v1",
        );
        let sha512 = Image::build("amd64", &[BASE, SHA512], Algorithm::Sha512);
        let stray = Image::build(
            "amd64",
            &[&[Entry::File("stray", b"nobody tags me\n", 0o644)]],
            Algorithm::Sha256,
        );
        Ours {
            app,
            app_v2,
            amd64,
            arm64,
            multi,
            sig,
            multi_sbom,
            sha512,
            stray,
            tags: Vec::new(),
        }
    }

    /// Writes the first state into `store`: `app` (with the containerd annotation), `app-sig`
    /// (a referrer of app), `multi` (a two-platform index), `multi-sbom` (a referrer of the
    /// index), and `sha512`. Returns the tags.
    pub async fn write(&mut self, store: &(impl Pusher + Tagger + ?Sized)) {
        for image in [&self.app, &self.amd64, &self.arm64, &self.sha512] {
            for blob in image.blobs() {
                push(store, blob).await;
            }
        }
        push(store, &self.multi).await;
        for (a, b, c) in [&self.sig, &self.multi_sbom] {
            push(store, a).await;
            push(store, b).await;
            push(store, c).await;
        }
        let mut app = self.app.manifest.desc.clone();
        app.set_annotations(Some(HashMap::from([(
            CONTAINERD_NAME.to_string(),
            "docker.io/example/app:1.0".to_string(),
        )])));
        let mut multi = self.multi.desc.clone();
        multi.set_annotations(Some(HashMap::from([(
            CONTAINERD_NAME.to_string(),
            "docker.io/example/multi:1.0".to_string(),
        )])));
        self.tags = vec![
            Tag {
                name: "app",
                kind: Kind::Image,
                desc: app,
                files: self.app.files.clone(),
            },
            Tag {
                name: "app-sig",
                kind: Kind::Artifact,
                desc: self.sig.2.desc.clone(),
                files: BTreeMap::new(),
            },
            Tag {
                name: "multi",
                kind: Kind::Index,
                desc: multi,
                files: BTreeMap::new(),
            },
            Tag {
                name: "multi-sbom",
                kind: Kind::Artifact,
                desc: self.multi_sbom.2.desc.clone(),
                files: BTreeMap::new(),
            },
            Tag {
                name: "sha512",
                kind: Kind::Sha512Image,
                desc: self.sha512.manifest.desc.clone(),
                files: self.sha512.files.clone(),
            },
        ];
        for tag in &self.tags {
            store.tag(&tag.desc, tag.name).await.unwrap();
        }
    }

    /// The second state: `app` moved to app v2; the old app manifest deleted with auto GC (which
    /// takes its referrer `app-sig` and the blobs only it used); an unreferenced manifest and a
    /// stray blob pushed and removed by `gc()`. `store` must have been opened with a zero grace.
    pub async fn mutate(&mut self, store: &Store) {
        for blob in self.app_v2.blobs() {
            push(store, blob).await;
        }
        let mut v2 = self.app_v2.manifest.desc.clone();
        v2.set_annotations(Some(HashMap::from([(
            CONTAINERD_NAME.to_string(),
            "docker.io/example/app:2.0".to_string(),
        )])));
        store.tag(&v2, "app").await.unwrap();
        assert_eq!(store.resolve("app").await.unwrap().digest(), v2.digest());
        // The old manifest is untagged now; deleting it cascades to its referrer.
        ocistore::Deleter::delete(store, &self.app.manifest.desc)
            .await
            .unwrap();
        let gone = store.resolve("app-sig").await.unwrap_err();
        assert_eq!(gone.kind(), ErrorKind::NotFound, "{gone}");
        assert!(
            !ocistore::ReadOnlyStorage::exists(store, &self.sig.1.desc)
                .await
                .unwrap(),
            "the referrer's payload went with it"
        );
        for blob in self.stray.blobs() {
            push(store, blob).await;
        }
        let report = store.gc().await.unwrap();
        assert!(
            report.blobs_removed >= self.stray.blobs().len(),
            "{report:?}"
        );
        assert!(report.entries_removed >= 1, "{report:?}");
        for blob in self.stray.blobs() {
            assert!(!ocistore::ReadOnlyStorage::exists(store, &blob.desc)
                .await
                .unwrap());
        }
        self.tags.retain(|t| t.name != "app-sig");
        let app = self.tags.iter_mut().find(|t| t.name == "app").unwrap();
        app.desc = v2;
        app.files = self.app_v2.files.clone();
    }
}

/// Opens a store that may gc everything at once (no grace period).
pub async fn open_store(root: &Path) -> Store {
    Store::open_with(root, StoreOptions::default().gc_grace(Duration::ZERO))
        .await
        .unwrap()
}

// ----------------------------------------------------------------------------------------------
// Reading layouts without our library
// ----------------------------------------------------------------------------------------------

/// The parsed index.json of a layout.
pub fn index_json(root: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap()
}

/// The `manifests` of index.json (`null` read as empty).
pub fn entries(root: &Path) -> Vec<Value> {
    index_json(root)["manifests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The entry tagged `tag` in index.json (the last one, if several).
pub fn entry_of(root: &Path, tag: &str) -> Option<Value> {
    entries(root)
        .into_iter()
        .rfind(|e| e["annotations"][REF_NAME].as_str() == Some(tag))
}

/// Every tag of index.json, sorted.
pub fn tags_of(root: &Path) -> BTreeSet<String> {
    entries(root)
        .iter()
        .filter_map(|e| e["annotations"][REF_NAME].as_str().map(str::to_string))
        .collect()
}

/// The path of the blob `digest` in the layout.
pub fn blob_path(root: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap();
    root.join("blobs").join(alg).join(hex)
}

/// Every blob file of the layout, as digests.
pub fn blob_digests(root: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(algs) = std::fs::read_dir(root.join("blobs")) else {
        return out;
    };
    for alg in algs {
        let alg = alg.unwrap();
        for blob in std::fs::read_dir(alg.path()).unwrap() {
            let blob = blob.unwrap();
            out.insert(format!(
                "{}:{}",
                alg.file_name().to_string_lossy(),
                blob.file_name().to_string_lossy()
            ));
        }
    }
    out
}

/// Every digest reachable from `digest` (included) through config, layers, manifests and
/// legacy `blobs` (not `subject`), read straight from the files of the layout. A node whose file
/// is missing is listed but not descended into.
pub fn reachable(root: &Path, digest: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![digest.to_string()];
    while let Some(next) = stack.pop() {
        if !out.insert(next.clone()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(blob_path(root, &next)) else {
            continue;
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            continue;
        };
        if value.get("schemaVersion").is_none() {
            continue; // a config or another JSON blob, not a manifest
        }
        let mut children: Vec<&Value> = Vec::new();
        if let Some(config) = value.get("config") {
            children.push(config);
        }
        for key in ["layers", "manifests", "blobs"] {
            if let Some(list) = value.get(key).and_then(Value::as_array) {
                children.extend(list.iter());
            }
        }
        for child in children {
            if let Some(d) = child.get("digest").and_then(Value::as_str) {
                stack.push(d.to_string());
            }
        }
    }
    out
}

/// Makes `to` a layout holding only the index.json entry tagged `tag` of `from`; blobs are hard
/// links (so the copy costs nothing), `oci-layout` is copied. For tools that can only take a
/// whole layout or cannot pick an entry reliably (oci-image-tool's `--ref` is broken with
/// several entries).
pub fn one_entry_copy(from: &Path, tag: &str, to: &Path) {
    let entry = entry_of(from, tag).unwrap_or_else(|| panic!("no tag {tag} in {from:?}"));
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join("oci-layout"), to.join("oci-layout")).unwrap();
    for digest in blob_digests(from) {
        let target = blob_path(to, &digest);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::hard_link(blob_path(from, &digest), &target).unwrap();
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]});
    std::fs::write(to.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

/// Copies a directory tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let file_type = entry.file_type().unwrap();
        if file_type.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if file_type.is_file() {
            std::fs::copy(entry.path(), &target).unwrap();
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            perms.set_mode(perms.mode() | 0o600);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}

// ----------------------------------------------------------------------------------------------
// Reading layouts with our library
// ----------------------------------------------------------------------------------------------

/// Fetches (verified) every node reachable from `root` through `successors`; returns their
/// digests. Digests in `absent` may be missing (fetch says NotFound) and are not descended into.
pub async fn fetch_graph(
    target: &(impl Fetcher + ?Sized),
    root: &Descriptor,
    absent: &BTreeSet<String>,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![root.clone()];
    while let Some(desc) = stack.pop() {
        let digest = desc.digest().to_string();
        if !seen.insert(digest.clone()) {
            continue;
        }
        if absent.contains(&digest) {
            let err = fetch_all(target, &desc).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{digest}: {err}");
            continue;
        }
        let bytes = fetch_all(target, &desc)
            .await
            .unwrap_or_else(|e| panic!("fetching {digest}: {e}"));
        assert_eq!(bytes.len() as u64, desc.size());
        stack.extend(successors(target, &desc).await.unwrap());
    }
    seen
}

/// Fetches every blob file of the layout at `root` through `target` (resolved by digest), each
/// verified against its name.
pub async fn fetch_every_blob(target: &(impl Fetcher + Resolver + ?Sized), root: &Path) -> usize {
    let digests = blob_digests(root);
    for digest in &digests {
        let desc = target
            .resolve(digest)
            .await
            .unwrap_or_else(|e| panic!("resolving {digest}: {e}"));
        let bytes = fetch_all(target, &desc)
            .await
            .unwrap_or_else(|e| panic!("fetching {digest}: {e}"));
        assert_eq!(bytes.len() as u64, desc.size(), "{digest}");
    }
    digests.len()
}

/// A platform, for descriptors.
pub fn platform(arch: &str) -> Platform {
    serde_json::from_value(json!({"architecture": arch, "os": "linux"})).unwrap()
}
