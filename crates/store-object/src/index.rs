//! `index.json` in the bucket: read with its version (ETag and version id), written by
//! compare-and-swap. A write whose condition fails (another store wrote meanwhile) re-reads
//! the object, merges three ways per entry exactly as the layout store merges under its file
//! lock ([`store_fs::index_model`]), and tries again; so concurrent stores on one bucket lose
//! no tag. Under last-writer-wins (opted into for services without conditional writes) the
//! write overwrites, after the same merge with what was last read.

use crate::error::from_service;
use crate::keys::Keys;
use bytes::Bytes;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use oci_spec::image::Descriptor;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store_core::{Error, Result};
use store_fs::index_model::{IndexModel, ParsedIndex};

/// How many times a write retries after losing a race before giving up.
const MAX_ATTEMPTS: u32 = 200;

/// What we last read from or wrote to `index.json`.
#[derive(Debug, Default)]
struct View {
    /// Its bytes: the base of the next merge.
    bytes: Vec<u8>,
    /// Its version, for the condition of the next write; `None` when it did not exist.
    version: Option<UpdateVersion>,
}

/// One layout's `index.json` object.
#[derive(Debug)]
pub(crate) struct RemoteIndex {
    store: Arc<dyn ObjectStore>,
    keys: Keys,
    conditional: bool,
    view: Mutex<View>,
}

impl RemoteIndex {
    /// The `index.json` under `keys`; `conditional` says whether writes are compare-and-swap.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, keys: Keys, conditional: bool) -> Self {
        RemoteIndex {
            store,
            keys,
            conditional,
            view: Mutex::default(),
        }
    }

    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The object's name, for messages.
    pub(crate) fn name(&self) -> String {
        self.keys.name(&self.keys.index())
    }

    /// Reads `index.json`: `None` when absent.
    ///
    /// Errors: `InvalidLayout` naming the object; `Backend`.
    async fn fetch(&self) -> Result<Option<(ParsedIndex, Vec<u8>, UpdateVersion)>> {
        let key = self.keys.index();
        let got = match self.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(from_service("reading", &self.name(), e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| from_service("reading", &self.name(), e))?;
        let doc = ParsedIndex::parse(&self.name(), &bytes)?;
        Ok(Some((doc, bytes.to_vec(), version)))
    }

    /// Reads `index.json`, creating an empty one (`model`'s encoding) when there is none and
    /// `create` allows. Remembers what was read as the base of the next merge.
    ///
    /// Errors: `NotFound` naming the object when absent and `create` is false;
    /// `InvalidLayout`; `Backend`.
    pub(crate) async fn read_or_create(
        &self,
        model: &IndexModel,
        create: bool,
    ) -> Result<ParsedIndex> {
        for _ in 0..3 {
            if let Some((doc, bytes, version)) = self.fetch().await? {
                *self.view() = View {
                    bytes,
                    version: Some(version),
                };
                return Ok(doc);
            }
            if !create {
                return Err(Error::not_found(self.name()));
            }
            let bytes = model.encode();
            match self.put(bytes, None).await {
                Ok(_) => {}
                // Another store created it meanwhile: read theirs.
                Err(PutError::Lost) => continue,
                Err(PutError::Failed(e)) => return Err(e),
            }
        }
        Err(Error::backend(
            format!("creating {}", self.name()),
            std::io::Error::other("it kept appearing and disappearing"),
        ))
    }

    /// A put of `bytes`: conditional on `version` (or on absence when `None`) when the service
    /// has conditional writes, an overwrite otherwise.
    async fn put(
        &self,
        bytes: Vec<u8>,
        version: Option<UpdateVersion>,
    ) -> std::result::Result<UpdateVersion, PutError> {
        let mode = match (self.conditional, version) {
            (false, _) => PutMode::Overwrite,
            (true, Some(v)) => PutMode::Update(v),
            (true, None) => PutMode::Create,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(
                &self.keys.index(),
                PutPayload::from(Bytes::from(bytes)),
                opts,
            )
            .await
        {
            Ok(result) => Ok(UpdateVersion::from(result)),
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::NotFound { .. }) => Err(PutError::Lost),
            Err(e) => Err(PutError::Failed(from_service("writing", &self.name(), e))),
        }
    }

    /// Writes what `model` holds, merging other stores' changes in first when the service says
    /// the object changed since we last read or wrote it. A write whose bytes equal what we
    /// last saw is skipped. Returns the descriptors learnt from other writers.
    ///
    /// Errors: `InvalidLayout` when another writer left an `index.json` that does not parse;
    /// `Backend` (the object is unchanged then, and the changes stay pending).
    pub(crate) async fn write(&self, model: &IndexModel) -> Result<Vec<Descriptor>> {
        let mut learnt = Vec::new();
        for attempt in 0..MAX_ATTEMPTS {
            let bytes = model.encode();
            let version = {
                let view = self.view();
                if view.version.is_some() && view.bytes == bytes {
                    return Ok(learnt);
                }
                view.version.clone()
            };
            match self.put(bytes.clone(), version).await {
                Ok(version) => {
                    *self.view() = View {
                        bytes,
                        version: Some(version),
                    };
                    return Ok(learnt);
                }
                Err(PutError::Failed(e)) => return Err(e),
                Err(PutError::Lost) => {
                    learnt.extend(self.absorb(model).await?);
                    // Writers racing in lock step would keep colliding: spread them out.
                    let spread = u64::from(attempt.min(6)) * 3 + u64::from(jitter() % 7);
                    tokio::time::sleep(Duration::from_millis(spread)).await;
                }
            }
        }
        Err(Error::backend(
            format!("writing {}", self.name()),
            std::io::Error::other(format!(
                "lost the race to other writers {MAX_ATTEMPTS} times in a row"
            )),
        ))
    }

    /// Re-reads `index.json` and takes in what other writers changed since we last read or
    /// wrote it. Returns the descriptors learnt.
    ///
    /// Errors: `InvalidLayout`; `Backend`.
    pub(crate) async fn absorb(&self, model: &IndexModel) -> Result<Vec<Descriptor>> {
        let Some((theirs, bytes, version)) = self.fetch().await? else {
            // Removed behind our back: the next write recreates it from what we hold.
            *self.view() = View::default();
            return Ok(Vec::new());
        };
        let base_bytes = std::mem::take(&mut self.view().bytes);
        let learnt = if base_bytes == bytes {
            Vec::new()
        } else {
            // Bytes we read or wrote ourselves always parse; none yet is an empty base.
            let base = ParsedIndex::parse(&self.name(), &base_bytes)
                .map(|doc| doc.keyed())
                .unwrap_or_default();
            model.absorb(&base, &theirs)
        };
        *self.view() = View {
            bytes,
            version: Some(version),
        };
        Ok(learnt)
    }
}

/// Why a put did not happen.
enum PutError {
    /// Its condition failed: another writer got there first.
    Lost,
    Failed(Error),
}

/// A few bits of per-call randomness, for spreading retries.
fn jitter() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}
