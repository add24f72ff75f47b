//! Downloads: `/v1/attachments/{id}` (and `/thumb`), by token or signed link, and
//! `/v1/attachments/{id}/link`. Whoever may not see a file gets exactly the answer of a missing
//! one. Files are served so that a browser never runs them in the chat's origin: `nosniff`, a
//! sandboxing CSP, and `Content-Disposition: attachment` for everything but plain images.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::api::AttachmentLink;
use protocol::ids::parse_message_id;
use protocol::ErrorCode;

use super::links::{self, Holder, Variant};
use crate::error::ApiError;
use crate::http::{Query, User};
use crate::store::uploads::{may_download, Upload};
use crate::{now_s, AppState};

fn missing() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such attachment")
}

/// The upload `id`, if `holder` may download it; [`missing`] for anything else, whatever the
/// reason (no such id, not complete, not theirs to see).
async fn visible(app: &AppState, id: &str, holder: &Holder) -> Result<Upload, ApiError> {
    let id = parse_message_id(id).map_err(|_| missing())?.to_string();
    let Some(upload) = app.store.upload(id.clone()).await? else {
        return Err(missing());
    };
    let participant = app
        .store
        .participant(upload.conversation.clone(), holder.user.clone())
        .await?;
    let role = participant.map(|p| crate::store::lesser(p.role, holder.role));
    let kinds = app.store.naming_kinds(id).await?;
    if may_download(&upload, &holder.user, role, &kinds) {
        Ok(upload)
    } else {
        Err(missing())
    }
}

/// Who asks: the bearer of a token, else the holder of a valid signed link.
async fn holder(
    app: &Arc<AppState>,
    parts: &mut Parts,
    id: &str,
    variant: Variant,
    query: &Query,
) -> Result<Holder, ApiError> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        use axum::extract::FromRequestParts;
        let User(claims) = User::from_request_parts(parts, app).await?;
        return Ok(Holder {
            user: claims.sub,
            role: claims.role,
        });
    }
    let holder = links::verify(&app.auth, id, variant, &query.0, now_s()).ok_or_else(missing)?;
    // A link made before its user's tokens were revoked stops with them.
    if let Ok(Some(revoked_at)) = app.store.tokens_revoked_at(holder.user.clone()).await {
        let made_s = query
            .0
            .get("exp")
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(0);
        if made_s.saturating_sub(app.config.attachment_link_ttl_s) <= revoked_at {
            return Err(missing());
        }
    }
    Ok(holder)
}

/// Headers every served file carries.
fn safe_headers(headers: &mut HeaderMap, upload: &Upload, content_type: &str, inline: bool) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-site"),
    );
    let disposition = format!(
        "{}; filename=\"{}\"; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        ascii_name(&upload.name),
        percent_encode(&upload.name)
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
}

/// The name with anything but safe ASCII replaced, for the `filename=` of old clients.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || " ._-()[]".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 8187 encoding of the name, for `filename*=`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"._-".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A `Range` header that cannot be served: past the end of the file, or not a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsatisfiable;

/// A single byte range of a file of `size` bytes: `Ok(None)` for no (or a multi-part) range,
/// which is served whole; [`Unsatisfiable`] for one that lies past the end.
pub fn range(value: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, Unsatisfiable> {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (first, last) = spec.split_once('-').ok_or(Unsatisfiable)?;
    let (first, last) = (first.trim(), last.trim());
    let (start, end) = if first.is_empty() {
        let suffix: u64 = last.parse().map_err(|_| Unsatisfiable)?;
        if suffix == 0 {
            return Err(Unsatisfiable);
        }
        (size.saturating_sub(suffix), size)
    } else {
        let start: u64 = first.parse().map_err(|_| Unsatisfiable)?;
        let end = if last.is_empty() {
            size
        } else {
            last.parse::<u64>()
                .map_err(|_| Unsatisfiable)?
                .saturating_add(1)
                .min(size)
        };
        (start, end)
    };
    if start >= size || start >= end {
        return Err(Unsatisfiable);
    }
    Ok(Some((start, end)))
}

/// `GET /v1/attachments/{id}`.
pub(super) async fn file(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Query,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let holder = holder(&app, &mut parts, &id, Variant::File, &query).await?;
    let upload = visible(&app, &id, &holder).await?;
    let content = upload.content.clone().ok_or_else(missing)?;
    let etag = format!("\"{}\"", content.sha256);
    let inline = media::is_inline_image(&content.content_type);
    if parts
        .headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response
            .headers_mut()
            .insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
        return Ok(response);
    }
    let requested = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let size = content.size;
    let (status, start, end) = match range(requested, size) {
        Ok(None) => (StatusCode::OK, 0, size),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end),
        Err(Unsatisfiable) => {
            let mut response = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                format!("the file has {size} bytes"),
            )
            .into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{size}")).expect("digits"),
            );
            return Ok(response);
        }
    };
    let bytes = app
        .store
        .upload_range(upload.id.clone(), start, end)
        .await?;
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    safe_headers(headers, &upload, &content.content_type, inline);
    headers.insert(header::ETAG, HeaderValue::from_str(&etag).expect("hex"));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1)).expect("digits"),
        );
    }
    Ok(response)
}

/// `GET /v1/attachments/{id}/thumb`.
pub(super) async fn thumb(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    query: Query,
    mut parts: Parts,
) -> Result<Response, ApiError> {
    let holder = holder(&app, &mut parts, &id, Variant::Thumb, &query).await?;
    let upload = visible(&app, &id, &holder).await?;
    let bytes = app
        .store
        .upload_thumb(upload.id.clone())
        .await?
        .ok_or_else(missing)?;
    let mut response = bytes.into_response();
    safe_headers(response.headers_mut(), &upload, "image/jpeg", true);
    Ok(response)
}

/// `GET /v1/attachments/{id}/link`.
pub(super) async fn link(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<Json<AttachmentLink>, ApiError> {
    let holder = Holder {
        user: claims.sub,
        role: claims.role,
    };
    let upload = visible(&app, &id, &holder).await?;
    let expires_s = now_s() + app.config.attachment_link_ttl_s;
    let sign = |variant| {
        links::sign(
            &app.auth,
            &upload.id,
            variant,
            &holder.user,
            holder.role,
            expires_s,
        )
    };
    let thumb = upload.content.as_ref().is_some_and(|c| c.thumb);
    Ok(Json(AttachmentLink {
        url: sign(Variant::File),
        thumb_url: thumb.then(|| sign(Variant::Thumb)),
        expires_at: expires_s * 1000,
    }))
}

#[cfg(test)]
mod tests {
    use super::{range, Unsatisfiable};

    #[test]
    fn one_range_is_served_and_a_range_past_the_end_refused() {
        assert_eq!(range(None, 10), Ok(None));
        assert_eq!(range(Some("bytes=0-3"), 10), Ok(Some((0, 4))));
        assert_eq!(range(Some("bytes=4-"), 10), Ok(Some((4, 10))));
        assert_eq!(range(Some("bytes=-3"), 10), Ok(Some((7, 10))));
        assert_eq!(range(Some("bytes=-30"), 10), Ok(Some((0, 10))));
        assert_eq!(range(Some("bytes=5-100"), 10), Ok(Some((5, 10))));
        assert_eq!(range(Some("bytes=0-1,4-5"), 10), Ok(None));
        assert_eq!(range(Some("items=0-1"), 10), Ok(None));
        assert_eq!(range(Some("bytes=10-"), 10), Err(Unsatisfiable));
        assert_eq!(range(Some("bytes=-0"), 10), Err(Unsatisfiable));
        assert_eq!(range(Some("bytes=x-1"), 10), Err(Unsatisfiable));
        assert_eq!(range(Some("bytes=5-2"), 10), Err(Unsatisfiable));
    }
}
