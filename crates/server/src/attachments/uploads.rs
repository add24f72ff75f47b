//! `/v1/uploads/{id}`: create, probe, append, read and remove an upload.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::api::{CreateUpload, UploadView};
use protocol::ids::{check_conversation_id, parse_message_id};
use protocol::limits::{UPLOAD_CHUNK_BYTES_MAX, UPLOAD_NAME_BYTES_MAX};
use protocol::ErrorCode;

use super::decide;
use crate::error::ApiError;
use crate::http::{Body, User};
use crate::store::uploads::{Created, NewUpload, Upload, UploadState};
use crate::{now_ms, AppState};

/// The tus version whose core this follows.
const TUS_VERSION: &str = "1.0.0";

/// The content type of a chunk, as tus names it.
const CHUNK_TYPE: &str = "application/offset+octet-stream";

fn view(upload: &Upload) -> UploadView {
    let content = upload.content.as_ref();
    UploadView {
        id: upload.id.clone(),
        conversation: upload.conversation.clone(),
        name: upload.name.clone(),
        length: upload.length,
        offset: upload.offset,
        state: upload.state.as_str().to_owned(),
        content_type: content.map(|c| c.content_type.clone()),
        size: content.map(|c| c.size),
        sha256: content.map(|c| c.sha256.clone()),
        width: content.and_then(|c| c.width),
        height: content.and_then(|c| c.height),
        thumb: content.is_some_and(|c| c.thumb),
    }
}

/// The upload as JSON, with the tus headers.
fn answer(status: StatusCode, upload: &Upload) -> Response {
    let mut response = (status, Json(view(upload))).into_response();
    offset_headers(response.headers_mut(), upload);
    response
}

fn offset_headers(headers: &mut HeaderMap, upload: &Upload) {
    let number = |n: u64| HeaderValue::from_str(&n.to_string()).expect("digits");
    headers.insert("upload-offset", number(upload.offset));
    headers.insert("upload-length", number(upload.length));
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn upload_id(id: &str) -> Result<String, ApiError> {
    parse_message_id(id)
        .map(|id| id.to_string())
        .map_err(|_| ApiError::new(ErrorCode::InvalidId, "an upload id is a hyphenated UUID"))
}

fn no_such_upload() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such upload")
}

/// The caller's own upload: anyone else's does not exist for them.
async fn own(app: &AppState, user: &str, id: &str) -> Result<Upload, ApiError> {
    match app.store.upload(id.to_owned()).await? {
        Some(upload) if upload.uploader == user => Ok(upload),
        _ => Err(no_such_upload()),
    }
}

/// Decides an upload whose bytes all arrived but whose decision was cut short (a crash, a lost
/// answer), so that every way of asking about it moves it on.
async fn settled(app: &AppState, upload: Upload) -> Result<Upload, ApiError> {
    if upload.awaits_decision() {
        return Ok(decide::decide(app, upload).await?);
    }
    Ok(upload)
}

/// The refusal of a decided upload whose content is not allowed.
fn refused(upload: &Upload) -> ApiError {
    let mut error = ApiError::new(
        ErrorCode::UnsupportedType,
        format!(
            "the content of `{}` is not one of the allowed types (attachment_types)",
            crate::validate::truncate(&upload.name)
        ),
    );
    error.offset = Some(upload.offset);
    error
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() || name.len() > UPLOAD_NAME_BYTES_MAX || name.chars().any(char::is_control) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("`name` must be 1 to {UPLOAD_NAME_BYTES_MAX} bytes without control characters"),
        ));
    }
    Ok(())
}

/// The per-user rate and daily budget. Checked only for new uploads: repeating a create is
/// always answered.
async fn check_budget(app: &AppState, user: &str, length: u64, now: u64) -> Result<(), ApiError> {
    const MINUTE: u64 = 60_000;
    const DAY: u64 = 24 * 3600 * 1000;
    let usage = app
        .store
        .upload_usage(
            user.to_owned(),
            now.saturating_sub(MINUTE),
            now.saturating_sub(DAY),
        )
        .await?;
    if usage.created_in_minute >= u64::from(app.config.uploads_per_minute) {
        let mut error = ApiError::new(ErrorCode::RateLimited, "too many uploads; retry later");
        error.retry_after_ms = Some(MINUTE / u64::from(app.config.uploads_per_minute.max(1)));
        return Err(error);
    }
    if usage.bytes_in_day.saturating_add(length) > app.config.upload_bytes_per_day {
        let mut error = ApiError::new(
            ErrorCode::UploadQuota,
            format!(
                "{} bytes uploaded in the last 24 hours; the limit is {}",
                usage.bytes_in_day, app.config.upload_bytes_per_day
            ),
        );
        let frees = usage.oldest_in_day.map_or(DAY, |oldest| oldest + DAY);
        error.retry_after_ms = Some(frees.saturating_sub(now).max(1000));
        return Err(error);
    }
    Ok(())
}

/// `PUT /v1/uploads/{id}`.
pub(super) async fn create(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
    Body(body): Body<CreateUpload>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    check_conversation_id(&body.conversation).map_err(ApiError::from)?;
    check_name(&body.name)?;
    if body.declared_type.as_ref().is_some_and(|t| t.len() > 255) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`type` is at most 255 bytes",
        ));
    }
    if body.length == 0 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "`length` must be at least 1",
        ));
    }
    if body.length > app.config.attachment_bytes_max {
        return Err(ApiError::new(
            ErrorCode::AttachmentTooLarge,
            format!(
                "a file of {} bytes is over the limit of {} bytes",
                body.length, app.config.attachment_bytes_max
            ),
        ));
    }
    let now = now_ms();
    let repeat = app.store.upload(id.clone()).await?.is_some();
    if !repeat {
        check_budget(&app, &claims.sub, body.length, now).await?;
    }
    let created = app
        .store
        .create_upload(NewUpload {
            id,
            uploader: claims.sub,
            conversation: body.conversation,
            name: body.name,
            declared_type: body.declared_type,
            length: body.length,
            now,
        })
        .await?;
    Ok(match created {
        Created::New(upload) => {
            app.metrics.uploads_created.fetch_add(1, Ordering::Relaxed);
            answer(StatusCode::CREATED, &upload)
        }
        Created::Existing(upload) => answer(StatusCode::OK, &settled(&app, upload).await?),
    })
}

/// `HEAD /v1/uploads/{id}`: the offset to resume from.
pub(super) async fn head(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let upload = own(&app, &claims.sub, &upload_id(&id)?).await?;
    let mut response = StatusCode::OK.into_response();
    offset_headers(response.headers_mut(), &upload);
    Ok(response)
}

/// `GET /v1/uploads/{id}`.
pub(super) async fn get(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let upload = own(&app, &claims.sub, &upload_id(&id)?).await?;
    Ok(answer(StatusCode::OK, &settled(&app, upload).await?))
}

/// `PATCH /v1/uploads/{id}`: bytes at `Upload-Offset`.
pub(super) async fn patch(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    let headers = request.headers();
    let offset: u64 = headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::BadRequest,
                "an `Upload-Offset` header with the byte offset of this chunk is required",
            )
        })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.eq_ignore_ascii_case(CHUNK_TYPE) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("a chunk's Content-Type is `{CHUNK_TYPE}`"),
        ));
    }
    // Ownership before reading the body: nobody streams bytes at someone else's upload.
    own(&app, &claims.sub, &id).await?;
    let bytes = axum::body::to_bytes(request.into_body(), UPLOAD_CHUNK_BYTES_MAX)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::FrameTooLarge,
                format!("a chunk is at most {UPLOAD_CHUNK_BYTES_MAX} bytes, sent whole"),
            )
        })?;
    let received = bytes.len() as u64;
    let upload = app.store.write_chunk(id, offset, bytes).await?;
    app.metrics
        .upload_bytes_received
        .fetch_add(received, Ordering::Relaxed);
    let upload = settled(&app, upload).await?;
    if upload.state == UploadState::Refused {
        return Err(refused(&upload));
    }
    Ok(answer(StatusCode::OK, &upload))
}

/// `DELETE /v1/uploads/{id}`: an upload no message names.
pub(super) async fn delete(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = upload_id(&id)?;
    own(&app, &claims.sub, &id).await?;
    match app.store.delete_upload(id).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT.into_response()),
        Ok(false) => Err(no_such_upload()),
        Err(crate::store::StoreError::IdConflict) => Err(ApiError::new(
            ErrorCode::IdConflict,
            "a message names this upload; it stays as long as the message",
        )),
        Err(err) => Err(err.into()),
    }
}
