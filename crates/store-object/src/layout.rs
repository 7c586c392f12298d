//! `oci-layout` in the bucket, and the check that the service has atomic conditional writes.

use crate::error::from_service;
use crate::keys::Keys;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use std::path::PathBuf;
use store_core::{Error, Result};

/// The layout version written and accepted.
pub const LAYOUT_VERSION: &str = "1.0.0";

/// Reads `oci-layout` under `keys`, creating it (whole, with one conditional put) when absent
/// and `create` allows.
///
/// Errors: `NotFound` naming the object when absent and `create` is false; `InvalidLayout`
/// naming it when it is not `{"imageLayoutVersion": ...}`; `UnsupportedVersion`; `Backend`.
pub(crate) async fn read_or_create(
    store: &dyn ObjectStore,
    keys: &Keys,
    create: bool,
) -> Result<()> {
    let key = keys.layout();
    let name = keys.name(&key);
    let bytes = match store.get(&key).await {
        Ok(got) => got
            .bytes()
            .await
            .map_err(|e| from_service("reading", &name, e))?,
        Err(object_store::Error::NotFound { .. }) if create => {
            let body = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
            let opts = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            return match store.put_opts(&key, PutPayload::from(body), opts).await {
                Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
                // A service without conditional writes: a plain put of the same bytes.
                Err(object_store::Error::NotImplemented { .. })
                | Err(object_store::Error::NotSupported { .. }) => store
                    .put(
                        &key,
                        PutPayload::from(format!(
                            "{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}"
                        )),
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| from_service("creating", &name, e)),
                Err(e) => Err(from_service("creating", &name, e)),
            };
        }
        Err(e) => return Err(from_service("reading", &name, e)),
    };
    check(&name, &bytes)
}

/// Checks the bytes of an `oci-layout` object named `name`.
fn check(name: &str, bytes: &[u8]) -> Result<()> {
    let invalid = |reason: String| Error::InvalidLayout {
        path: PathBuf::from(name),
        reason,
    };
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("oci-layout is not JSON: {e}")))?;
    let version = value
        .get("imageLayoutVersion")
        .and_then(|v| v.as_str())
        .ok_or_else(|| invalid("oci-layout has no imageLayoutVersion string".into()))?;
    if version != LAYOUT_VERSION {
        return Err(Error::UnsupportedVersion {
            path: PathBuf::from(name),
            version: version.to_string(),
        });
    }
    Ok(())
}

/// Whether the service honours conditional writes: a create of an existing object must fail
/// with `AlreadyExists`, and an update naming a stale ETag with `Precondition`. Writes and then
/// removes one probe object under `ingest/`.
///
/// Errors: `Backend` when the service fails otherwise (refused credentials, gone...).
pub(crate) async fn probe_conditional_writes(store: &dyn ObjectStore, keys: &Keys) -> Result<bool> {
    let key = keys
        .ingest()
        .join(format!("probe-{}", uuid::Uuid::new_v4().simple()));
    let name = keys.name(&key);
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    let first = match store.put_opts(&key, PutPayload::from("1"), create()).await {
        Ok(result) => result,
        Err(object_store::Error::NotImplemented { .. })
        | Err(object_store::Error::NotSupported { .. }) => return Ok(false),
        Err(e) => return Err(from_service("probing conditional writes with", &name, e)),
    };
    let honoured = async {
        let again = store.put_opts(&key, PutPayload::from("2"), create()).await;
        if !matches!(again, Err(object_store::Error::AlreadyExists { .. })) {
            return Ok(false);
        }
        let stale = UpdateVersion {
            e_tag: Some("\"0000000000000000\"".into()),
            version: None,
        };
        let opts = PutOptions {
            mode: PutMode::Update(stale),
            ..Default::default()
        };
        let update = store.put_opts(&key, PutPayload::from("3"), opts).await;
        if !matches!(update, Err(object_store::Error::Precondition { .. })) {
            return Ok(false);
        }
        let opts = PutOptions {
            mode: PutMode::Update(UpdateVersion::from(first)),
            ..Default::default()
        };
        match store.put_opts(&key, PutPayload::from("4"), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotImplemented { .. })
            | Err(object_store::Error::NotSupported { .. }) => Ok(false),
            Err(e) => Err(from_service("probing conditional writes with", &name, e)),
        }
    }
    .await;
    // The probe object is ours alone; a failed delete leaves it for gc (under ingest/).
    let _ = store.delete(&key).await;
    honoured
}
