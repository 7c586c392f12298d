//! Picking the manifest of one platform: the `target_platform` of [`crate::copy::copy`].

use super::cache::MetadataCache;
use crate::descriptor::{
    DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};
use crate::error::{Error, Result};
use crate::manifest::ManifestParts;
use crate::traits::Fetcher;
use oci_spec::image::{Descriptor, Platform};
use serde::Deserialize;

/// The platform fields as the image spec spells them (`os.version`, `os.features`), read
/// leniently: oci-spec's `Platform` expects `os_version`/`os_features` and requires
/// `architecture` and `os`.
#[derive(Debug, Default, Deserialize)]
struct PlatformFields {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default, rename = "os.version", alias = "os_version")]
    os_version: Option<String>,
    #[serde(default, rename = "os.features", alias = "os_features")]
    os_features: Option<Vec<String>>,
    #[serde(default)]
    variant: Option<String>,
}

impl PlatformFields {
    fn of(platform: &Platform) -> Self {
        PlatformFields {
            architecture: Some(platform.architecture().to_string()),
            os: Some(platform.os().to_string()),
            os_version: platform.os_version().clone(),
            os_features: platform.os_features().clone(),
            variant: platform.variant().clone(),
        }
    }

    /// oras-go v2.6.2's rule: architecture and OS equal; variant and OS version compared only
    /// when the wanted one is non-empty; the wanted OS features a subset of these.
    fn matches(&self, wanted: &PlatformFields) -> bool {
        fn text(value: &Option<String>) -> &str {
            value.as_deref().unwrap_or("")
        }
        if text(&self.architecture) != text(&wanted.architecture)
            || text(&self.os) != text(&wanted.os)
        {
            return false;
        }
        for (got, want) in [
            (&self.variant, &wanted.variant),
            (&self.os_version, &wanted.os_version),
        ] {
            if !text(want).is_empty() && text(got) != text(want) {
                return false;
            }
        }
        let have = self.os_features.as_deref().unwrap_or_default();
        wanted
            .os_features
            .as_deref()
            .unwrap_or_default()
            .iter()
            .all(|feature| have.contains(feature))
    }
}

/// Whether a manifest of platform `got` can serve `wanted`: architecture and OS equal; variant
/// and OS version compared only when `wanted` has a non-empty one; every OS feature `wanted`
/// lists present in `got`.
pub fn platform_matches(got: &Platform, wanted: &Platform) -> bool {
    PlatformFields::of(got).matches(&PlatformFields::of(wanted))
}

fn invalid(desc: &Descriptor, reason: impl std::fmt::Display) -> Error {
    Error::InvalidManifest {
        digest: desc.digest().to_string(),
        media_type: desc.media_type().to_string(),
        reason: reason.to_string(),
    }
}

/// The manifest of `root` for `wanted`: for an OCI index or Docker manifest list, the first
/// child whose platform matches; for an OCI or Docker image manifest, `root` itself when the
/// platform in its config matches. Bodies read go through `cache`, so nothing is fetched twice.
///
/// Errors: `NotFound` when nothing matches; `Unsupported` for any other media type, or a
/// manifest whose config is not an image config of its kind; `InvalidManifest` for a body that
/// does not parse; the cache's fetch errors.
pub(crate) async fn select(
    src: &(impl Fetcher + ?Sized),
    cache: &MetadataCache,
    root: &Descriptor,
    wanted: &Platform,
) -> Result<Descriptor> {
    let wanted_fields = PlatformFields::of(wanted);
    let no_match = || {
        Error::not_found(format!(
            "a manifest for platform {}/{}{} in {} ({})",
            wanted.os(),
            wanted.architecture(),
            wanted
                .variant()
                .as_deref()
                .map(|v| format!("/{v}"))
                .unwrap_or_default(),
            root.digest(),
            root.media_type()
        ))
    };
    let media_type = root.media_type().to_string();
    match media_type.as_str() {
        OCI_INDEX | DOCKER_MANIFEST_LIST => {
            #[derive(Deserialize)]
            struct Children {
                #[serde(default)]
                manifests: Option<Vec<serde_json::Value>>,
            }
            let body = cache.body(src, root).await?;
            let children: Children = serde_json::from_slice(&body).map_err(|e| invalid(root, e))?;
            for child in children.manifests.unwrap_or_default() {
                let Some(platform) = child.get("platform") else {
                    continue;
                };
                let Ok(fields) = PlatformFields::deserialize(platform) else {
                    continue;
                };
                if fields.matches(&wanted_fields) {
                    return serde_json::from_value::<Descriptor>(child)
                        .map_err(|e| invalid(root, format!("a child descriptor: {e}")));
                }
            }
            Err(no_match())
        }
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let body = cache.body(src, root).await?;
            let parts = ManifestParts::parse(root.digest().as_ref(), &media_type, &body)?;
            let Some(config) = parts.config else {
                return Err(invalid(root, "the manifest has no config"));
            };
            let expected = if media_type == OCI_MANIFEST {
                OCI_CONFIG
            } else {
                DOCKER_CONFIG
            };
            if config.media_type().as_ref() != expected {
                return Err(Error::unsupported(format!(
                    "selecting a platform from {} ({}): its config is {}, not {expected}",
                    root.digest(),
                    media_type,
                    config.media_type()
                )));
            }
            let config_body = cache.body(src, &config).await?;
            let trimmed = config_body.trim_ascii();
            let fields = if trimmed.is_empty() || trimmed == b"null" {
                PlatformFields::default()
            } else {
                serde_json::from_slice::<PlatformFields>(&config_body)
                    .map_err(|e| invalid(&config, e))?
            };
            if fields.matches(&wanted_fields) {
                Ok(root.clone())
            } else {
                Err(no_match())
            }
        }
        _ => Err(Error::unsupported(format!(
            "selecting a platform from {} ({}): not an index or an image manifest",
            root.digest(),
            media_type
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::{Arch, Os, PlatformBuilder};

    fn platform(os: Os, arch: Arch, variant: Option<&str>, version: Option<&str>) -> Platform {
        let mut builder = PlatformBuilder::default().os(os).architecture(arch);
        if let Some(v) = variant {
            builder = builder.variant(v);
        }
        if let Some(v) = version {
            builder = builder.os_version(v);
        }
        match builder.build() {
            Ok(p) => p,
            Err(e) => panic!("platform: {e}"),
        }
    }

    #[test]
    fn os_and_architecture_must_match_and_empty_wanted_fields_match_anything() {
        let arm = platform(Os::Linux, Arch::ARM64, Some("v8"), None);
        assert!(platform_matches(
            &arm,
            &platform(Os::Linux, Arch::ARM64, None, None)
        ));
        assert!(platform_matches(
            &arm,
            &platform(Os::Linux, Arch::ARM64, Some("v8"), None)
        ));
        assert!(!platform_matches(
            &arm,
            &platform(Os::Linux, Arch::ARM64, Some("v7"), None)
        ));
        assert!(!platform_matches(
            &arm,
            &platform(Os::Linux, Arch::Amd64, None, None)
        ));
        assert!(!platform_matches(
            &arm,
            &platform(Os::Windows, Arch::ARM64, None, None)
        ));
        // A wanted variant the candidate lacks does not match.
        let plain = platform(Os::Linux, Arch::ARM64, None, None);
        assert!(!platform_matches(
            &plain,
            &platform(Os::Linux, Arch::ARM64, Some("v8"), None)
        ));
    }

    #[test]
    fn os_version_and_features() {
        let win = platform(Os::Windows, Arch::Amd64, None, Some("10.0.17763.1"));
        let any = platform(Os::Windows, Arch::Amd64, None, None);
        assert!(platform_matches(&win, &any));
        assert!(platform_matches(
            &win,
            &platform(Os::Windows, Arch::Amd64, None, Some("10.0.17763.1"))
        ));
        assert!(!platform_matches(
            &win,
            &platform(Os::Windows, Arch::Amd64, None, Some("10.0.20348.1"))
        ));

        let mut with_features = win.clone();
        with_features.set_os_features(Some(vec!["win32k".into(), "other".into()]));
        let mut wants_win32k = any.clone();
        wants_win32k.set_os_features(Some(vec!["win32k".into()]));
        assert!(platform_matches(&with_features, &wants_win32k));
        assert!(!platform_matches(&win, &wants_win32k));
    }

    #[test]
    fn spec_spelling_of_os_fields_is_read() {
        let fields: PlatformFields = serde_json::from_str(
            r#"{"architecture":"amd64","os":"windows","os.version":"10.0.1","os.features":["win32k"]}"#,
        )
        .unwrap_or_default();
        assert_eq!(fields.os_version.as_deref(), Some("10.0.1"));
        assert_eq!(
            fields.os_features.as_deref(),
            Some(&["win32k".to_string()][..])
        );
    }
}
