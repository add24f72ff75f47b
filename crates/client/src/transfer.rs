//! Uploads and downloads over HTTP (protocol §14), carried out for the driver. An upload is
//! created under the device's id (`PUT`, idempotent), its offset asked with `HEAD` when an
//! earlier try may have got somewhere, and its bytes sent in chunks (`PATCH`) always from the
//! offset the server gives — never from what the device believes it sent. What to upload and
//! when to try again is the session's to decide; this module only reports how a try went.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::api::{CreateUpload, Problem, UploadView};
use protocol::limits::UPLOAD_CHUNK_BYTES_MAX;
use protocol::ErrorCode;

use crate::http::{self, HttpBase, HttpError, Response};
use crate::session::{UploadFailure, UploadOrder};
use crate::store::{LocalStore, StoreError};

/// Largest JSON answer taken from the upload routes (an upload's description, a problem).
const JSON_BYTES_MAX: usize = 64 * 1024;

/// Largest download taken: well above the default `attachment_bytes_max` (25 MiB), so a server
/// configured for larger files is still served, while a broken one cannot exhaust memory.
pub const DOWNLOAD_BYTES_MAX: usize = 256 * 1024 * 1024;

/// Chunk size an upload starts with before the link is measured (or the configured size, if
/// smaller): what the browser SDK sends too.
const CHUNK_START_BYTES: usize = 512 * 1024;

/// Smallest chunk on a slow link (or the configured size, if smaller): below this, requests
/// cost more than they carry.
const CHUNK_MIN_BYTES: usize = 64 * 1024;

/// Time one chunk should take on the measured link: well inside the server's body timeout
/// (`http_body_read_timeout_ms`, 30 s by default), so a slow link still completes chunks, and
/// a cut costs a few seconds of transfer at most.
const CHUNK_TARGET_S: f64 = 8.0;

/// Chunks shorter than this are not measured: their time is latency, not throughput.
const MEASURED_BYTES_MIN: usize = 16 * 1024;

/// `offset_mismatch` answers in a row after which a try gives up (another writer, such as a
/// second copy of this device, keeps moving the offset): the session tries again later.
const MISMATCHES_MAX: u32 = 8;

/// How one try of an upload went, as the driver reports it to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// The server holds this many bytes.
    Progress(u64),
    /// Complete on the server.
    Done,
    /// Stopped.
    Failed(UploadFailure),
}

/// Files of a client without a local store: upload id → (message id, bytes), until the message
/// is acknowledged.
pub(crate) type MemoryFiles = Arc<Mutex<HashMap<String, (String, Arc<Vec<u8>>)>>>;

/// Where the bytes of outbox files are: the local store, or memory for a client without one.
#[derive(Clone)]
pub(crate) enum Files {
    Store(Arc<Mutex<LocalStore>>),
    Memory(MemoryFiles),
}

impl Files {
    /// Up to `len` bytes of an outbox file from `offset`; `None` if it is no longer kept.
    fn chunk(
        &self,
        upload_id: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Files::Store(store) => store
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .file_chunk(upload_id, offset, len),
            Files::Memory(files) => {
                let files = files.lock().unwrap_or_else(|p| p.into_inner());
                Ok(files.get(upload_id).map(|(_, bytes)| {
                    let start = (offset as usize).min(bytes.len());
                    let end = start.saturating_add(len).min(bytes.len());
                    bytes[start..end].to_vec()
                }))
            }
        }
    }

    /// Forgets the in-memory files of an acknowledged message (the store forgets its own in
    /// the transaction that records the acknowledgement).
    pub(crate) fn forget_message(&self, message: &str) {
        if let Files::Memory(files) = self {
            files
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|_, (owner, _)| owner != message);
        }
    }
}

/// How to reach the HTTP API.
#[derive(Debug)]
pub(crate) struct Transfer {
    /// The server, or why its URL cannot serve HTTP.
    pub base: Result<HttpBase, String>,
    /// How long a request may make no progress.
    pub idle: Duration,
    /// Most bytes per `PATCH`.
    pub chunk_bytes: usize,
    /// The link's measured throughput, bytes per second (shared by every upload of the client).
    pub link: Mutex<Option<f64>>,
}

impl Transfer {
    pub(crate) fn new(base: Result<HttpBase, String>, idle: Duration, chunk_bytes: usize) -> Self {
        Transfer {
            base,
            idle,
            chunk_bytes: chunk_bytes.clamp(1, UPLOAD_CHUNK_BYTES_MAX),
            link: Mutex::new(None),
        }
    }

    /// Bytes for the next `PATCH`: sized for the link, so a chunk takes about
    /// [`CHUNK_TARGET_S`], between [`CHUNK_MIN_BYTES`] and the configured size.
    fn next_chunk(&self) -> usize {
        let max = self.chunk_bytes;
        let min = CHUNK_MIN_BYTES.min(max);
        match *self.link.lock().unwrap_or_else(|p| p.into_inner()) {
            None => CHUNK_START_BYTES.min(max),
            Some(rate) => ((rate * CHUNK_TARGET_S) as usize).clamp(min, max),
        }
    }

    /// A chunk of `bytes` was stored in `took`.
    fn measured(&self, bytes: usize, took: Duration) {
        if bytes < MEASURED_BYTES_MIN {
            return;
        }
        let sample = bytes as f64 / took.as_secs_f64().max(0.001);
        let mut link = self.link.lock().unwrap_or_else(|p| p.into_inner());
        *link = Some(link.map_or(sample, |rate| (rate + sample) / 2.0));
    }

    /// A chunk of `bytes` did not get through: the next is half as big.
    fn shrink(&self, bytes: usize) {
        *self.link.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(bytes as f64 / 2.0 / CHUNK_TARGET_S);
    }

    async fn call(
        &self,
        token: &str,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
        body_max: usize,
    ) -> Result<Response, UploadFailure> {
        let base = self.base.as_ref().map_err(|why| UploadFailure::Refused {
            code: ErrorCode::BadRequest,
            message: why.clone(),
        })?;
        let bearer = format!("Bearer {token}");
        let mut headers = vec![("Authorization", bearer.as_str())];
        headers.extend_from_slice(extra);
        http::request(base, method, path, &headers, body, self.idle, body_max)
            .await
            .map_err(|err| {
                tracing::debug!(%err, method, path, "upload request failed; tried again later");
                UploadFailure::Transient {
                    retry_after_ms: None,
                }
            })
    }
}

/// What a refusal over HTTP means for an upload: a problem with a permanent code fails the
/// message; anything else (a transient code, a refused token — the WebSocket sorts tokens
/// out —, a server error, an answer that is not a problem) is tried again.
fn failure(response: &Response) -> UploadFailure {
    match serde_json::from_slice::<Problem>(&response.body) {
        Ok(problem)
            if problem.code.is_permanent()
                && !matches!(
                    problem.code,
                    ErrorCode::Unauthorized | ErrorCode::TokenInvalid | ErrorCode::Internal
                ) =>
        {
            UploadFailure::Refused {
                code: problem.code,
                message: problem.detail,
            }
        }
        Ok(problem) => UploadFailure::Transient {
            retry_after_ms: problem.retry_after_ms,
        },
        Err(_) if response.status >= 500 || matches!(response.status, 401 | 408 | 409 | 429) => {
            UploadFailure::Transient {
                retry_after_ms: None,
            }
        }
        Err(_) => UploadFailure::Refused {
            code: ErrorCode::BadRequest,
            message: format!("the server answered HTTP {} to an upload", response.status),
        },
    }
}

fn refused_type(name: &str) -> UploadFailure {
    UploadFailure::Refused {
        code: ErrorCode::UnsupportedType,
        message: format!("the content of `{name}` is not a type the server accepts"),
    }
}

fn view(response: &Response) -> Result<UploadView, UploadFailure> {
    serde_json::from_slice(&response.body).map_err(|_| UploadFailure::Transient {
        retry_after_ms: None,
    })
}

/// One try of an upload: to completion, or to the first failure. `report` hears progress.
pub(crate) async fn upload(
    transfer: &Transfer,
    token: &str,
    order: &UploadOrder,
    files: &Files,
    report: &(dyn Fn(Report) + Send + Sync),
) -> Result<(), UploadFailure> {
    let file = &order.file;
    let path = format!("/v1/uploads/{}", file.upload_id);
    let mut offset = None;
    if order.resume {
        let head = transfer.call(token, "HEAD", &path, &[], &[], 0).await?;
        match head.status {
            200 => {
                offset = head
                    .header("upload-offset")
                    .and_then(|v| v.parse::<u64>().ok());
            }
            // Never created (or removed since): create it.
            404 => {}
            _ => return Err(failure(&head)),
        }
    }
    let mut created = false;
    let mut mismatches = 0;
    // Each round moves the offset by a chunk, or corrects it (bounded by MISMATCHES_MAX), or
    // creates the upload (once: a `not_found` after creating it fails the try).
    let smallest = CHUNK_MIN_BYTES.min(transfer.chunk_bytes);
    let rounds = file.length / smallest as u64 + u64::from(MISMATCHES_MAX) + 4;
    for _ in 0..rounds {
        let Some(at) = offset else {
            let create = CreateUpload {
                conversation: order.conversation.clone(),
                length: file.length,
                name: file.name.clone(),
                declared_type: file.content_type.clone(),
            };
            let body = serde_json::to_vec(&create).expect("an upload serializes");
            let headers = [("Content-Type", "application/json")];
            let answer = transfer
                .call(token, "PUT", &path, &headers, &body, JSON_BYTES_MAX)
                .await?;
            if !matches!(answer.status, 200 | 201) {
                return Err(failure(&answer));
            }
            created = true;
            let upload = view(&answer)?;
            match upload.state.as_str() {
                "complete" => return Ok(()),
                "refused" => return Err(refused_type(&file.name)),
                _ => {}
            }
            offset = Some(upload.offset);
            report(Report::Progress(upload.offset));
            continue;
        };
        let len = (file.length.saturating_sub(at) as usize).min(transfer.next_chunk());
        let bytes = match files.chunk(&file.upload_id, at, len) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                // The outbox no longer holds the file: its message was acknowledged meanwhile.
                return Err(UploadFailure::Transient {
                    retry_after_ms: None,
                });
            }
            Err(err) => {
                tracing::error!(%err, "cannot read an outbox file; trying again later");
                return Err(UploadFailure::Transient {
                    retry_after_ms: None,
                });
            }
        };
        let at_text = at.to_string();
        let headers = [
            ("Upload-Offset", at_text.as_str()),
            ("Content-Type", "application/offset+octet-stream"),
        ];
        let started = std::time::Instant::now();
        let answer = match transfer
            .call(token, "PATCH", &path, &headers, &bytes, JSON_BYTES_MAX)
            .await
        {
            Ok(answer) => answer,
            Err(failure) => {
                transfer.shrink(bytes.len());
                return Err(failure);
            }
        };
        match answer.status {
            200 => {
                transfer.measured(bytes.len(), started.elapsed());
                mismatches = 0;
                let upload = view(&answer)?;
                report(Report::Progress(upload.offset));
                match upload.state.as_str() {
                    "complete" => return Ok(()),
                    "refused" => return Err(refused_type(&file.name)),
                    _ => offset = Some(upload.offset),
                }
            }
            409 => {
                let problem = serde_json::from_slice::<Problem>(&answer.body).ok();
                let stored = problem
                    .as_ref()
                    .filter(|p| p.code == ErrorCode::OffsetMismatch)
                    .and_then(|p| p.offset)
                    .or_else(|| answer.header("upload-offset").and_then(|v| v.parse().ok()));
                mismatches += 1;
                match stored {
                    // Resume from the server's offset, whatever this device believed.
                    Some(stored) if mismatches <= MISMATCHES_MAX => {
                        offset = Some(stored);
                        report(Report::Progress(stored));
                    }
                    _ => return Err(failure(&answer)),
                }
            }
            // Removed since (unnamed uploads expire): create it again.
            404 if !created => offset = None,
            _ => return Err(failure(&answer)),
        }
    }
    Err(UploadFailure::Transient {
        retry_after_ms: None,
    })
}

/// Why a download gave no file.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The request failed (connection, timeout, malformed answer).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The server refused: `not_found` for a file that does not exist or that this user may
    /// not see.
    #[error("the server refused the download: {code}: {message}")]
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// Its reason.
        message: String,
    },
    /// The server URL cannot serve HTTP.
    #[error("{0}")]
    Unsupported(String),
}

/// Downloads attachment `id` whole.
pub(crate) async fn download(
    transfer: &Transfer,
    token: &str,
    id: &str,
) -> Result<Vec<u8>, DownloadError> {
    let base = transfer
        .base
        .as_ref()
        .map_err(|why| DownloadError::Unsupported(why.clone()))?;
    if protocol::ids::parse_message_id(id).is_err() {
        return Err(DownloadError::Refused {
            code: ErrorCode::NotFound,
            message: "an attachment id is a hyphenated UUID".into(),
        });
    }
    let bearer = format!("Bearer {token}");
    let response = http::request(
        base,
        "GET",
        &format!("/v1/attachments/{id}"),
        &[("Authorization", &bearer)],
        &[],
        transfer.idle,
        DOWNLOAD_BYTES_MAX,
    )
    .await?;
    if response.status == 200 {
        return Ok(response.body);
    }
    Err(match serde_json::from_slice::<Problem>(&response.body) {
        Ok(problem) => DownloadError::Refused {
            code: problem.code,
            message: problem.detail,
        },
        Err(_) => DownloadError::Refused {
            code: ErrorCode::Internal,
            message: format!("HTTP {}", response.status),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_sized_for_the_link() {
        let transfer = Transfer::new(Err("no server".into()), Duration::from_secs(30), 1 << 20);
        assert_eq!(
            transfer.next_chunk(),
            CHUNK_START_BYTES,
            "before any measure"
        );
        // A slow phone link, 20 KB/s: chunks of about 8 s.
        transfer.measured(200_000, Duration::from_secs(10));
        assert_eq!(transfer.next_chunk(), 160_000);
        // Fast: up to the configured size, never more.
        for _ in 0..8 {
            transfer.measured(1 << 20, Duration::from_millis(10));
        }
        assert_eq!(transfer.next_chunk(), 1 << 20);
        // A chunk that did not get through halves the next.
        transfer.shrink(1 << 20);
        assert_eq!(transfer.next_chunk(), 1 << 19);
        // Never below the floor, nor above a small configured size.
        for _ in 0..8 {
            transfer.measured(1 << 20, Duration::from_secs(10_000));
        }
        assert_eq!(transfer.next_chunk(), CHUNK_MIN_BYTES);
        let small = Transfer::new(Err("no server".into()), Duration::from_secs(30), 32 * 1024);
        assert_eq!(small.next_chunk(), 32 * 1024);
        small.measured(32 * 1024, Duration::from_secs(100));
        assert_eq!(small.next_chunk(), 32 * 1024);
    }
}
