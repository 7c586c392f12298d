//! The files a registry is started with: its YAML config and, for basic auth, an htpasswd file.

use crate::Error;
use std::path::Path;

/// How the registry authenticates, as its config says it.
pub(crate) enum AuthSection<'a> {
    None,
    Htpasswd {
        path: &'a Path,
    },
    Token {
        realm: &'a str,
        service: &'a str,
        issuer: &'a str,
        bundle: &'a Path,
    },
}

/// The config of a registry listening on 127.0.0.1:`port` with filesystem storage at
/// `storage`, deletes enabled and redirects off.
pub(crate) fn config_yaml(port: u16, storage: &Path, auth: &AuthSection<'_>) -> String {
    let auth = match auth {
        AuthSection::None => String::new(),
        AuthSection::Htpasswd { path } => format!(
            "auth:\n  htpasswd:\n    realm: ocistore-test-registry\n    path: {}\n",
            quoted(&path.display().to_string())
        ),
        AuthSection::Token {
            realm,
            service,
            issuer,
            bundle,
        } => format!(
            "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
            quoted(realm),
            quoted(service),
            quoted(issuer),
            quoted(&bundle.display().to_string())
        ),
    };
    // Only 127.0.0.1 (the packaged config listens on :5000 on every interface); no access log
    // (it would flood the captured stderr).
    format!(
        "version: 0.1\n\
         log:\n  level: error\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  redirect:\n    disable: true\n\
         http:\n  addr: 127.0.0.1:{port}\n\
         {auth}",
        quoted(&storage.display().to_string())
    )
}

/// `text` as a double-quoted YAML scalar.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// One htpasswd line for `user` with a bcrypt hash of `password` (`$2y$`, as `htpasswd -B`
/// writes, at the lowest cost so tests stay fast).
pub(crate) fn htpasswd_line(user: &str, password: &str) -> Result<String, Error> {
    let hash =
        bcrypt::hash_with_result(password, 4).map_err(|e| Error::Crypto(format!("bcrypt: {e}")))?;
    Ok(format!(
        "{user}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htpasswd_line_verifies_with_bcrypt() {
        let line = htpasswd_line("alice", "pa:ss word").unwrap();
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "alice");
        assert!(hash.starts_with("$2y$04$"), "{hash}");
        assert!(bcrypt::verify("pa:ss word", hash).unwrap());
        assert!(!bcrypt::verify("wrong", hash).unwrap());
    }

    #[test]
    fn config_names_the_port_storage_and_auth() {
        let yaml = config_yaml(
            5123,
            Path::new("/tmp/x y"),
            &AuthSection::Htpasswd {
                path: Path::new("/tmp/h"),
            },
        );
        assert!(yaml.contains("addr: 127.0.0.1:5123\n"));
        assert!(yaml.contains("rootdirectory: \"/tmp/x y\"\n"));
        assert!(yaml.contains("enabled: true\n"));
        assert!(yaml.contains("path: \"/tmp/h\"\n"));
    }
}
