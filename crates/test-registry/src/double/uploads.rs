//! The double's blob uploads: monolithic, chunked, single-request, and cross-repository
//! mounts, with the chunk minimum enforced when the knob sets one.

use super::auth::{allows, Need};
use super::routes::{error, Ctx};
use super::store::{verifies, Upload};
use super::{Knobs, MountMode};
use crate::http::{respond, Resp};
use crate::lock;
use bytes::Bytes;
use hyper::StatusCode;

impl Ctx<'_> {
    /// 201 for blob `digest` of `name`, now stored.
    pub(crate) fn blob_created(&self, name: &str, digest: &str) -> Resp {
        let mut headers = vec![("location", format!("/v2/{name}/blobs/{digest}"))];
        headers.extend(self.digest_header(digest));
        respond(StatusCode::CREATED, &headers, Bytes::new())
    }

    pub(crate) fn store_blob(&self, name: &str, digest: &str, bytes: Bytes) -> Resp {
        if !verifies(digest, &bytes) {
            return self.err(
                StatusCode::BAD_REQUEST,
                "DIGEST_INVALID",
                "the content does not match the digest",
            );
        }
        lock(&self.state.store)
            .repo_mut(name)
            .blobs
            .insert(digest.to_string(), bytes);
        self.blob_created(name, digest)
    }

    pub(crate) fn start_upload(&self, name: &str) -> Resp {
        if let (Some(mount), Some(from)) = (self.req.param("mount"), self.req.param("from")) {
            // Like distribution: the source needs pull access, else the mount quietly becomes
            // an upload.
            let source_allowed = allows(
                self.state,
                self.knobs,
                self.req,
                &Need::Repo {
                    name: &from,
                    action: "pull",
                },
            );
            if self.knobs.mount == MountMode::Created && source_allowed {
                let mut store = lock(&self.state.store);
                let source = store
                    .repos
                    .get(&from)
                    .and_then(|r| r.blobs.get(&mount).cloned());
                if let Some(bytes) = source {
                    store.repo_mut(name).blobs.insert(mount.clone(), bytes);
                    drop(store);
                    return self.blob_created(name, &mount);
                }
            }
        } else if let Some(digest) = self.req.param("digest") {
            return self.store_blob(name, &digest, self.req.body.clone());
        }
        let id = {
            let mut store = lock(&self.state.store);
            store.next_upload += 1;
            let id = format!("upload-{}", store.next_upload);
            store.uploads.insert(
                id.clone(),
                Upload {
                    repo: name.to_string(),
                    ..Upload::default()
                },
            );
            id
        };
        let mut headers = vec![
            ("location", format!("/v2/{name}/blobs/uploads/{id}")),
            ("range", "0-0".to_string()),
            ("docker-upload-uuid", id),
        ];
        if let Some(min) = self.knobs.chunk_min {
            headers.push(("oci-chunk-min-length", min.to_string()));
        }
        respond(StatusCode::ACCEPTED, &headers, Bytes::new())
    }

    /// Appends the body to upload `id`, checking `Content-Range` and the chunk minimum;
    /// `Err` is the answer refusing it.
    fn append(&self, name: &str, id: &str, is_patch: bool) -> Result<usize, Box<Resp>> {
        let mut store = lock(&self.state.store);
        let Some(upload) = store.uploads.get_mut(id).filter(|u| u.repo == name) else {
            return Err(Box::new(self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            )));
        };
        let body = &self.req.body;
        if body.is_empty() {
            return Ok(upload.data.len());
        }
        if let Some(range) = self.req.header("content-range") {
            let start = range
                .split('-')
                .next()
                .and_then(|s| s.trim().parse::<usize>().ok());
            if start != Some(upload.data.len()) {
                return Err(Box::new(range_error(self.knobs, upload.data.len())));
            }
        }
        if let Some(min) = self.knobs.chunk_min {
            if upload.short_chunk_seen {
                return Err(Box::new(range_error(self.knobs, upload.data.len())));
            }
            if is_patch && (body.len() as u64) < min {
                upload.short_chunk_seen = true;
            }
        }
        upload.data.extend_from_slice(body);
        Ok(upload.data.len())
    }

    pub(crate) fn patch_upload(&self, name: &str, id: &str) -> Resp {
        match self.append(name, id, true) {
            Ok(len) => respond(
                StatusCode::ACCEPTED,
                &[
                    ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("range", format!("0-{}", len.saturating_sub(1))),
                    ("docker-upload-uuid", id.to_string()),
                ],
                Bytes::new(),
            ),
            Err(response) => *response,
        }
    }

    pub(crate) fn finish_upload(&self, name: &str, id: &str) -> Resp {
        let Some(digest) = self.req.param("digest") else {
            return self.err(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "no digest given");
        };
        if let Err(response) = self.append(name, id, false) {
            return *response;
        }
        let data = lock(&self.state.store)
            .uploads
            .remove(id)
            .map(|u| Bytes::from(u.data))
            .unwrap_or_default();
        self.store_blob(name, &digest, data)
    }

    pub(crate) fn upload_status(&self, name: &str, id: &str) -> Resp {
        let len = lock(&self.state.store)
            .uploads
            .get(id)
            .filter(|u| u.repo == name)
            .map(|u| u.data.len());
        match len {
            Some(len) => respond(
                StatusCode::NO_CONTENT,
                &[
                    ("location", format!("/v2/{name}/blobs/uploads/{id}")),
                    ("range", format!("0-{}", len.saturating_sub(1))),
                    ("docker-upload-uuid", id.to_string()),
                ],
                Bytes::new(),
            ),
            None => self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            ),
        }
    }

    pub(crate) fn cancel_upload(&self, id: &str) -> Resp {
        match lock(&self.state.store).uploads.remove(id) {
            Some(_) => respond(StatusCode::NO_CONTENT, &[], Bytes::new()),
            None => self.err(
                StatusCode::NOT_FOUND,
                "BLOB_UPLOAD_UNKNOWN",
                "upload unknown",
            ),
        }
    }
}

fn range_error(knobs: &Knobs, have: usize) -> Resp {
    let mut response = error(
        knobs,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "BLOB_UPLOAD_INVALID",
        "chunk out of order or smaller than OCI-Chunk-Min-Length",
    );
    if let Ok(value) =
        hyper::header::HeaderValue::from_str(&format!("0-{}", have.saturating_sub(1)))
    {
        response.headers_mut().insert("range", value);
    }
    response
}
