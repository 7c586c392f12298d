//! Opening the store a location names: a layout, an archive staged in a temporary layout, or a
//! registry repository with its credentials.

use crate::fail::{CliResult, Failure};
use crate::location::Location;
use ocistore::archive::{import, ImportOptions};
use ocistore::fs::{ReadOnlyStore, Store, StoreOptions};
use ocistore::remote::{
    Client, ClientOptions, Credential, CredentialProvider, DockerConfig, Repository, Secret, Static,
};
use ocistore::{Deleter, GraphTarget, ReadOnlyGraphTarget, TagLister, Untagger};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Everything a command may read from.
pub trait Source: ReadOnlyGraphTarget + TagLister {}
impl<T: ReadOnlyGraphTarget + TagLister + ?Sized> Source for T {}

/// Everything a command may change.
pub trait Dest: Source + GraphTarget + Deleter + Untagger {}
impl<T: Source + GraphTarget + Deleter + Untagger + ?Sized> Dest for T {}

/// How to reach registries: transport and credentials.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `--plain-http`.
    pub plain_http: bool,
    /// `USER:PASS`, from `--creds` (or `--src-creds`/`--dest-creds`).
    pub creds: Option<String>,
    /// `--authfile`.
    pub authfile: Option<PathBuf>,
}

/// An opened source and what keeps it alive (a staged archive's directory).
pub struct Opened {
    /// The store.
    pub store: Arc<dyn Source>,
    /// Which credentials were used, for the hint of a refusal (registries only).
    pub credentials: Option<String>,
    /// The temporary layout an archive was staged in, removed on drop.
    pub _staging: Option<tempfile::TempDir>,
    /// The layout's `index.json` entries (layouts and archives).
    pub entries: Option<Vec<ocistore::spec::Descriptor>>,
}

/// The `index.json` of an `--authfile`: `auths` entries only (`auth` or `username`/`password`,
/// `identitytoken`).
struct AuthFile(serde_json::Value);

impl CredentialProvider for AuthFile {
    fn credential(&self, registry: &str) -> Credential {
        let entry = &self.0["auths"][registry];
        if let Some(token) = entry["identitytoken"].as_str() {
            return Credential::RefreshToken(Secret::new(token));
        }
        let pair = match (entry["username"].as_str(), entry["password"].as_str()) {
            (Some(u), Some(p)) => Some((u.to_string(), p.to_string())),
            _ => entry["auth"].as_str().and_then(decode_basic),
        };
        match pair {
            Some((username, password)) => Credential::Basic {
                username,
                password: Secret::new(password),
            },
            None => Credential::Anonymous,
        }
    }
}

/// `base64(user:pass)` as the Docker config stores it.
fn decode_basic(text: &str) -> Option<(String, String)> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    let text = String::from_utf8(out).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Which credentials a provider gives for `host`, said without the secret.
fn describe(credential: &Credential, origin: &str) -> String {
    match credential {
        Credential::Anonymous => format!("none (anonymous; nothing for this host in {origin})"),
        Credential::Basic { username, .. } => format!("user {username:?} from {origin}"),
        Credential::RefreshToken(_) => format!("an identity token from {origin}"),
    }
}

/// A client for `host` and the words that say which credentials it uses.
pub fn client(access: &Access, host: &str) -> CliResult<(Client, String)> {
    let options = ClientOptions {
        plain_http: access.plain_http,
        ..Default::default()
    };
    let (provider, said): (Arc<dyn CredentialProvider>, String) = if let Some(creds) = &access.creds
    {
        let (username, password) = creds
            .split_once(':')
            .ok_or_else(|| Failure::usage("bad --creds: write USER:PASS"))?;
        let c = Credential::Basic {
            username: username.into(),
            password: Secret::new(password),
        };
        let said = describe(&c, "--creds");
        (Arc::new(Static(c)), said)
    } else if let Some(file) = &access.authfile {
        let text = std::fs::read(file).map_err(|e| {
            Failure::error(format!("reading the auth file {}: {e}", file.display()))
        })?;
        let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            Failure::error(format!(
                "reading the auth file {}: not JSON: {e}",
                file.display()
            ))
        })?;
        let provider = AuthFile(json);
        let said = describe(
            &provider.credential(host),
            &format!("--authfile {}", file.display()),
        );
        (Arc::new(provider), said)
    } else {
        let origin = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => format!("the Docker config in {}", Path::new(&dir).display()),
            None => "the Docker config (~/.docker/config.json)".into(),
        };
        let said = describe(&DockerConfig.credential(host), &origin);
        (Arc::new(DockerConfig), said)
    };
    let client = Client::with_credentials(options, provider)
        .map_err(|e| Failure::store("creating the registry client", e, None))?;
    Ok((client, said))
}

/// A repository of `reference`'s registry and the words that say which credentials it uses.
pub fn repository(
    access: &Access,
    reference: &ocistore::remote::Reference,
) -> CliResult<(Repository, String)> {
    let (client, said) = client(access, &reference.registry)?;
    let repo = Repository::from_parts(&client, &reference.registry, &reference.repository)
        .map_err(|e| {
            Failure::store(
                &format!("opening {}/{}", reference.registry, reference.repository),
                e,
                None,
            )
        })?;
    Ok((repo, said))
}

/// Whether `path` holds an OCI layout.
fn is_layout(path: &Path) -> bool {
    path.join("oci-layout").is_file()
}

/// Opens `loc` for reading. An archive (a file or stdin, compressed or not) is imported into a
/// temporary layout first. Errors: a missing layout or file, unreadable content.
pub async fn source(loc: &Location, access: &Access) -> CliResult<Opened> {
    match loc {
        Location::Layout { path, .. } => {
            if !is_layout(path) {
                return Err(Failure::error(format!(
                    "{loc}: {} is not an OCI layout (no oci-layout file)",
                    path.display()
                )));
            }
            let store = ReadOnlyStore::open(path)
                .await
                .map_err(|e| Failure::store(&format!("opening {loc}"), e, None))?;
            let entries = Some(store.entries());
            Ok(Opened {
                store: Arc::new(store),
                credentials: None,
                _staging: None,
                entries,
            })
        }
        Location::Archive { path, .. } => {
            let dir = tempfile::Builder::new()
                .prefix("ocistore-archive-")
                .tempdir()
                .map_err(|e| Failure::error(format!("creating a temporary directory: {e}")))?;
            let store = Store::open_with(
                dir.path(),
                StoreOptions::default().auto_gc(false).durable(false),
            )
            .await
            .map_err(|e| Failure::store("opening a temporary layout", e, None))?;
            read_archive(path, &store).await?;
            let entries = Some(store.entries());
            Ok(Opened {
                store: Arc::new(store),
                credentials: None,
                _staging: Some(dir),
                entries,
            })
        }
        Location::Registry(reference) => {
            let (repo, said) = repository(access, reference)?;
            Ok(Opened {
                store: Arc::new(repo),
                credentials: Some(said),
                _staging: None,
                entries: None,
            })
        }
    }
}

/// Imports the archive at `path` (`-`: stdin) into `dst`; returns what was imported.
pub async fn read_archive(
    path: &str,
    dst: &dyn Dest,
) -> CliResult<Vec<ocistore::archive::Imported>> {
    let options = ImportOptions::default();
    let result = if path == "-" {
        import(tokio::io::stdin(), dst, &options).await
    } else {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Failure::error(format!("opening the archive {path}: {e}")))?;
        import(file, dst, &options).await
    };
    result.map_err(|e| Failure::store(&format!("reading the archive {path}"), e, None))
}

/// Opens the layout at `path` for writing; with `create`, makes it when missing.
pub async fn layout(path: &Path, create: bool, options: StoreOptions) -> CliResult<Store> {
    if !create && !is_layout(path) {
        return Err(Failure::error(format!(
            "oci:{}: not an OCI layout (no oci-layout file)",
            path.display()
        )));
    }
    Store::open_with(path, options)
        .await
        .map_err(|e| Failure::store(&format!("opening oci:{}", path.display()), e, None))
}

/// Opens `loc` for changes (tag, untag, delete): an existing layout or a repository.
/// Errors: archives (read-only here), a missing layout.
pub async fn editable(
    loc: &Location,
    access: &Access,
) -> CliResult<(Arc<dyn Dest>, Option<String>)> {
    match loc {
        Location::Layout { path, .. } => {
            let store = layout(path, false, StoreOptions::default()).await?;
            Ok((Arc::new(store), None))
        }
        Location::Archive { .. } => Err(Failure::usage(format!(
            "{loc}: archives cannot be changed in place; import it into a layout (ocistore import)"
        ))),
        Location::Registry(reference) => {
            let (repo, said) = repository(access, reference)?;
            Ok((Arc::new(repo), Some(said)))
        }
    }
}

/// The tag or digest `loc` names, or the one a layout or archive with a single entry has.
/// Errors: none given and none implied.
pub fn reference_of(loc: &Location, opened: &Opened) -> CliResult<String> {
    if let Some(r) = loc.reference() {
        return Ok(r);
    }
    if let Location::Registry(_) = loc {
        return Ok("latest".into());
    }
    match opened.entries.as_deref() {
        Some([only]) => Ok(only
            .annotations()
            .as_ref()
            .and_then(|a| a.get("org.opencontainers.image.ref.name").cloned())
            .unwrap_or_else(|| only.digest().to_string())),
        Some(entries) => Err(Failure::usage(format!(
            "{loc}: name a tag or digest (the layout has {} index.json entries), as in {loc}:TAG",
            entries.len()
        ))),
        None => Err(Failure::usage(format!("{loc}: name a tag or digest"))),
    }
}
