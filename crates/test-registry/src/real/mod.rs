//! The real registry: Debian's `docker-registry` (distribution 2.8) started by the test on a
//! free port of 127.0.0.1 with a config, storage and credentials of its own in a temporary
//! directory, killed and removed on drop.

mod config;

use crate::token::{TokenConfig, TokenServer, WRITER, WRITER_PASSWORD};
use crate::Error;
use config::AuthSection;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set to `1` (as `.ci/run` does) to make a missing `docker-registry` an error instead of a
/// skip.
pub const REQUIRE_ENV: &str = "OCISTORE_REQUIRE_INTEROP";
/// How to install the registry, for skip and error messages.
pub const INSTALL_HINT: &str = "install with apt-get install docker-registry";
/// The registry's program name.
const PROGRAM: &str = "docker-registry";
/// How long a registry may take to answer its first `GET /v2/`.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether `OCISTORE_REQUIRE_INTEROP=1` is set: a missing registry then fails the tests.
pub fn require_interop() -> bool {
    std::env::var(REQUIRE_ENV).as_deref() == Ok("1")
}

/// How a registry authenticates its clients.
#[derive(Debug, Clone)]
pub enum Auth {
    /// No authentication: every request is allowed.
    Anonymous,
    /// htpasswd basic auth with one user (bcrypt hash); any authenticated user may do anything.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
    /// Token auth: a [`TokenServer`] started with this config issues the tokens.
    Token(TokenConfig),
}

impl Auth {
    /// Basic auth as [`WRITER`] with [`WRITER_PASSWORD`].
    pub fn basic() -> Auth {
        Auth::Basic {
            user: WRITER.into(),
            password: WRITER_PASSWORD.into(),
        }
    }

    /// Token auth with [`TokenConfig::standard`] (a writer and a pull-only reader).
    pub fn token() -> Auth {
        Auth::Token(TokenConfig::standard())
    }
}

/// The registry could not be started because it is not installed, and nothing requires it:
/// the test should print this (see [`Skip::print`]) and return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip;

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "skipped: {PROGRAM} missing; {INSTALL_HINT}")
    }
}

impl Skip {
    /// Writes the skip line straight to stderr (not through the print macros, which the test
    /// harness captures), so a newcomer running `cargo test` sees what did not run and how to
    /// enable it.
    pub fn print(&self) {
        let _ = writeln!(std::io::stderr().lock(), "{self}");
    }
}

/// Starts registries; see [`Registry::start`].
#[derive(Debug)]
pub struct Registry;

impl Registry {
    /// Starts `docker-registry serve` with `auth` on a free port of 127.0.0.1 (and, for
    /// [`Auth::Token`], a token server beside it), and waits (at most 20 s) until `GET /v2/`
    /// answers. Blocks the calling thread meanwhile, which is harmless in a test.
    ///
    /// Errors: [`Error::Skipped`] when the program is missing and `OCISTORE_REQUIRE_INTEROP`
    /// is not `1`, [`Error::Required`] when it is; [`Error::NotReady`] (with the registry's
    /// stderr) when it exits or does not answer in time; [`Error::Io`] / [`Error::Crypto`]
    /// when the files, port or keys cannot be made.
    pub fn start(auth: Auth) -> Result<RunningRegistry, Error> {
        let Some(program) = find_program(PROGRAM) else {
            return Err(missing(require_interop()));
        };
        let dir = tempfile::Builder::new()
            .prefix("ocistore-test-registry-")
            .tempdir()
            .map_err(|e| Error::io("creating the registry's directory", e))?;
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage)
            .map_err(|e| Error::io("creating the registry's storage", e))?;

        let mut token_server = None;
        let htpasswd = dir.path().join("htpasswd");
        let bundle = dir.path().join("token-cert.pem");
        match &auth {
            Auth::Anonymous => {}
            Auth::Basic { user, password } => {
                std::fs::write(&htpasswd, config::htpasswd_line(user, password)?)
                    .map_err(|e| Error::io("writing the htpasswd file", e))?;
            }
            Auth::Token(token_config) => {
                let server = TokenServer::start(token_config.clone())?;
                std::fs::write(&bundle, server.certificate_pem()?)
                    .map_err(|e| Error::io("writing the certificate bundle", e))?;
                token_server = Some(server);
            }
        }
        let section = match (&auth, &token_server) {
            (Auth::Basic { .. }, _) => AuthSection::Htpasswd { path: &htpasswd },
            (Auth::Token(_), Some(server)) => AuthSection::Token {
                realm: server.realm(),
                service: server.service(),
                issuer: server.issuer(),
                bundle: &bundle,
            },
            _ => AuthSection::None,
        };

        // A port the kernel just handed out is free, but another process could take it before
        // the registry binds it: a registry that exits at once is retried on a new port.
        let mut last_error = None;
        for attempt in 0..3 {
            let port = free_port()?;
            let config_path = dir.path().join(format!("config-{attempt}.yml"));
            std::fs::write(&config_path, config::config_yaml(port, &storage, &section))
                .map_err(|e| Error::io("writing the registry's config", e))?;
            let log = dir.path().join(format!("registry-{attempt}.log"));
            let log_file = std::fs::File::create(&log)
                .map_err(|e| Error::io("creating the registry's log", e))?;
            let log_err = log_file
                .try_clone()
                .map_err(|e| Error::io("duplicating the log's descriptor", e))?;
            let child = Command::new(&program)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log_file)
                .stderr(log_err)
                .spawn()
                .map_err(|e| Error::io(format!("starting {}", program.display()), e))?;
            let mut running = RunningRegistry {
                child,
                port,
                log,
                auth: auth.clone(),
                token_server: None,
                dir: None,
            };
            match running.wait_ready() {
                Ok(()) => {
                    running.token_server = token_server;
                    running.dir = Some(dir);
                    return Ok(running);
                }
                Err(error) => {
                    let in_use = matches!(&error, Error::NotReady { stderr, .. }
                        if stderr.contains("address already in use"));
                    last_error = Some(error);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Crypto("no attempt was made".into())))
    }

    /// Whether `docker-registry` is on `PATH`, that is whether [`Registry::start`] starts the
    /// real registry (rather than skipping or failing for its absence). Never fails.
    pub fn installed() -> bool {
        find_program(PROGRAM).is_some()
    }

    /// [`Registry::start`] for tests: `None` after printing the skip line when the registry is
    /// not installed (and not required); panics with the error's message on any other
    /// failure, which fails the test.
    pub fn start_or_skip(auth: Auth) -> Option<RunningRegistry> {
        match Registry::start(auth) {
            Ok(running) => Some(running),
            Err(Error::Skipped(skip)) => {
                skip.print();
                None
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// A running `docker-registry`, killed (and its directory removed) on drop, also when the test
/// panics.
pub struct RunningRegistry {
    child: Child,
    port: u16,
    log: PathBuf,
    auth: Auth,
    token_server: Option<TokenServer>,
    // Last: removed after the process is killed (by `Drop`) and the token server stopped.
    dir: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for RunningRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningRegistry")
            .field("host", &self.host())
            .field("token_server", &self.token_server)
            .finish_non_exhaustive()
    }
}

impl Drop for RunningRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningRegistry {
    /// `127.0.0.1:PORT`, as a reference's host part.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The auth configuration it was started with.
    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The token server, for [`Auth::Token`].
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// Credentials that may do everything: the basic user, or the token config's first user
    /// ([`WRITER`] in the standard config); `None` for an anonymous registry.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        match &self.auth {
            Auth::Anonymous => None,
            Auth::Basic { user, password } => Some((user, password)),
            Auth::Token(config) => config
                .users
                .first()
                .map(|u| (u.name.as_str(), u.password.as_str())),
        }
    }

    /// The registry's storage directory (filesystem driver root).
    pub fn storage_dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.path().join("storage"))
    }

    /// What the registry wrote to stdout and stderr so far (warnings and errors only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `GET /v2/` until it answers 200 or 401, the process exits, or time runs out.
    fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.not_ready(format!("it exited with {status}")));
            }
            if let Some(status) = http_status(self.port, "/v2/") {
                if status == 200 || status == 401 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(
                    self.not_ready(format!("GET /v2/ did not answer within {READY_TIMEOUT:?}"))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn not_ready(&self, reason: String) -> Error {
        Error::NotReady {
            reason,
            log: self.log.clone(),
            stderr: self.log(),
        }
    }
}

/// The error for a missing registry: a failure when `required`, else a skip.
fn missing(required: bool) -> Error {
    if required {
        Error::Required
    } else {
        Error::Skipped(Skip)
    }
}

/// A free port of 127.0.0.1 (free when asked; see the retry in [`Registry::start`]).
fn free_port() -> Result<u16, Error> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port", e))
}

/// The status of `GET path` on 127.0.0.1:`port`, `None` when nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(500),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The full path of `program` on `PATH`, if it is there and executable.
fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_registry_skips_unless_required() {
        let skip = missing(false);
        assert!(skip.is_skip());
        assert_eq!(
            skip.to_string(),
            "skipped: docker-registry missing; install with apt-get install docker-registry"
        );
        let required = missing(true);
        assert!(!required.is_skip());
        assert!(required
            .to_string()
            .contains("OCISTORE_REQUIRE_INTEROP=1 requires it"));
    }

    #[test]
    fn programs_are_found_on_path_only_when_executable() {
        assert!(find_program("sh").is_some());
        assert!(find_program("surely-no-such-program-ocistore").is_none());
    }
}
