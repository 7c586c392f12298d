//! Running the built `ocistore` as a person would, and making layouts to run it on.

#![allow(dead_code)]

use ocistore::content::{push_artifact, push_image, Bytes};
use ocistore::fs::Store;
use ocistore::prelude::*;
use ocistore::spec::MediaType;
use std::path::Path;
use std::process::{Command, Output};

/// What a run gave.
pub struct Run {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout_text()))
    }

    /// Asserts a failure reported as exactly one `error: ` line, with `status`.
    pub fn assert_one_line_error(&self, status: i32) {
        assert_eq!(self.status, status, "stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "stderr: {:?}", self.stderr);
        assert!(lines[0].starts_with("error: "), "stderr: {:?}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout_text());
    }

    pub fn assert_ok(&self) {
        assert_eq!(self.status, 0, "stderr: {}", self.stderr);
    }
}

/// A command running the built binary, with no Docker config of the user's.
pub fn ocistore(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocistore"));
    cmd.args(args)
        .env("DOCKER_CONFIG", "/nonexistent-ocistore-test");
    cmd
}

pub fn run(args: &[&str]) -> Run {
    finish(ocistore(args).output().expect("running ocistore"))
}

pub fn finish(out: Output) -> Run {
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A layout at `dir` with an image tagged `v1` (a 64 KiB layer) and an SBOM referring to it;
/// returns the image's and the SBOM's digests.
pub fn make_layout(dir: &Path) -> (String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = Store::open(dir).await.expect("open");
        let config =
            r#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
        let layer = Bytes::from((0..65536u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
        let image = push_image(
            &store,
            MediaType::ImageConfig,
            config,
            [(MediaType::ImageLayer, layer)],
            None,
        )
        .await
        .expect("image");
        store.tag(&image, "v1").await.expect("tag");
        let sbom = Bytes::from_static(br#"{"spdxVersion":"SPDX-2.3"}"#);
        let spdx = "application/spdx+json";
        let artifact = push_artifact(
            &store,
            spdx,
            [(MediaType::Other(spdx.into()), sbom)],
            Some(&image),
            None,
        )
        .await
        .expect("sbom");
        store.close().await.expect("close");
        (image.digest().to_string(), artifact.digest().to_string())
    })
}

/// Every file under `dir`, relative, sorted, with its bytes (to see that nothing changed).
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn visit(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                visit(root, &path, out);
            } else {
                let rel = path
                    .strip_prefix(root)
                    .expect("under root")
                    .display()
                    .to_string();
                out.push((rel, std::fs::read(&path).unwrap_or_default()));
            }
        }
    }
    visit(dir, dir, &mut out);
    out.sort();
    out
}

/// The path of a blob in a layout.
pub fn blob_path(layout: &Path, digest: &str) -> std::path::PathBuf {
    let (alg, hex) = digest.split_once(':').expect("digest");
    layout.join("blobs").join(alg).join(hex)
}
