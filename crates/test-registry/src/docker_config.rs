//! Docker client config files (`config.json`) naming a test registry, for tests of code that
//! finds credentials the way docker does (`DOCKER_CONFIG`, `auths`).

use crate::Error;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;
use std::path::{Path, PathBuf};

/// A Docker `config.json` whose `auths` entry for `host` holds `user:password` (base64, as
/// `docker login` writes it).
pub fn docker_config_with_password(host: &str, user: &str, password: &str) -> String {
    let auth = STANDARD.encode(format!("{user}:{password}"));
    json!({"auths": {host: {"auth": auth}}}).to_string()
}

/// A Docker `config.json` whose `auths` entry for `host` holds an `identitytoken` (an OAuth2
/// refresh token, as `docker login` stores one for registries that issue them; the user name
/// is `<token>`, docker's convention).
pub fn docker_config_with_identity_token(host: &str, refresh_token: &str) -> String {
    let auth = STANDARD.encode("<token>:");
    json!({"auths": {host: {"auth": auth, "identitytoken": refresh_token}}}).to_string()
}

/// Writes `contents` as `dir/config.json` and returns its path; `dir` is then what
/// `DOCKER_CONFIG` should name. Fails when the file cannot be written.
pub fn write_docker_config(dir: &Path, contents: &str) -> Result<PathBuf, Error> {
    let path = dir.join("config.json");
    std::fs::write(&path, contents)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn configs_hold_what_docker_login_writes() {
        let config: Value =
            serde_json::from_str(&docker_config_with_password("127.0.0.1:5000", "u", "p:w"))
                .unwrap();
        let auth = config["auths"]["127.0.0.1:5000"]["auth"].as_str().unwrap();
        assert_eq!(STANDARD.decode(auth).unwrap(), b"u:p:w");
        let config: Value =
            serde_json::from_str(&docker_config_with_identity_token("h:1", "refresh")).unwrap();
        assert_eq!(config["auths"]["h:1"]["identitytoken"], "refresh");
        let dir = tempfile::tempdir().unwrap();
        let path = write_docker_config(dir.path(), "{}").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "{}");
    }
}
