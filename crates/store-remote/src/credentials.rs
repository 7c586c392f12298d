//! Where credentials come from: given explicitly, or the Docker config as docker reads it.

use crate::reference::DOCKER_HUB;
use crate::secret::Secret;
use std::sync::Arc;

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No credentials: anonymous tokens only.
    Anonymous,
    /// A username and password, sent as HTTP Basic to the registry or the token server.
    Basic {
        /// The username.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token (the Docker config's `identitytoken`), exchanged at the token
    /// server for access tokens.
    RefreshToken(Secret),
}

/// Gives the credential for a registry host; implement it to plug a secret store of one's own.
pub trait CredentialProvider: Send + Sync {
    /// The credential for `registry` (as named in references: `docker.io`, `host:port`).
    /// Errors are reported as anonymous access: a provider that cannot answer gives `Anonymous`.
    fn credential(&self, registry: &str) -> Credential;
}

/// The same credential for every registry.
#[derive(Debug, Clone)]
pub struct Static(pub Credential);

impl CredentialProvider for Static {
    fn credential(&self, _registry: &str) -> Credential {
        self.0.clone()
    }
}

/// The Docker config as docker finds it: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `auths` entries, `credsStore` and `credHelpers` (through the
/// `docker-credential-<name> get` helpers), by way of the `docker_credential` crate.
#[derive(Debug, Clone, Default)]
pub struct DockerConfig;

impl CredentialProvider for DockerConfig {
    fn credential(&self, registry: &str) -> Credential {
        // Docker stores Hub credentials under its v1 index URL.
        let server = if registry == DOCKER_HUB {
            "https://index.docker.io/v1/"
        } else {
            registry
        };
        match docker_credential::get_credential(server) {
            Ok(docker_credential::DockerCredential::UsernamePassword(username, password)) => {
                Credential::Basic {
                    username,
                    password: Secret::new(password),
                }
            }
            Ok(docker_credential::DockerCredential::IdentityToken(token)) => {
                Credential::RefreshToken(Secret::new(token))
            }
            // The crate's errors can carry a helper's output; none of it is kept.
            Err(_) => Credential::Anonymous,
        }
    }
}

/// A shared provider.
pub type SharedProvider = Arc<dyn CredentialProvider>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credential::Basic {
            username: "u".into(),
            password: Secret::new("hunter2"),
        };
        let text = format!("{c:?} {:?}", Static(c.clone()));
        assert!(!text.contains("hunter2"), "{text}");
        let text = format!("{:?}", Credential::RefreshToken(Secret::new("tok123")));
        assert!(!text.contains("tok123"), "{text}");
    }
}
