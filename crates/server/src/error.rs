//! The one place where errors become wire answers: HTTP problem documents
//! (`application/problem+json`, RFC 9457) and WebSocket `error` frames. Bad-input errors say what
//! was wrong; internal ones say "internal error" and are logged once, here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use protocol::api::Problem;
use protocol::frames::ErrorFrame;
use protocol::ErrorCode;

use crate::store::StoreError;

/// An error answered to an HTTP request.
#[derive(Debug)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// What was wrong with this request.
    pub detail: String,
    /// For `rate_limited`.
    pub retry_after_ms: Option<u64>,
    /// For `offset_mismatch`: the upload's stored offset.
    pub offset: Option<u64>,
}

impl ApiError {
    /// An error with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            retry_after_ms: None,
            offset: None,
        }
    }

    /// `not_found`, worded the same whether the conversation is missing or hidden.
    pub fn not_found() -> Self {
        ApiError::new(ErrorCode::NotFound, "no such conversation")
    }
}

impl From<ErrorCode> for ApiError {
    fn from(code: ErrorCode) -> Self {
        ApiError::new(code, code.title())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        // The store logged the cause once already.
        if let StoreError::Unavailable(_) = &err {
            return ApiError::new(
                ErrorCode::Unavailable,
                "storage is unavailable; retry later",
            );
        }
        let mut error = ApiError::new(err.code(), err.to_string());
        if let StoreError::OffsetMismatch(offset) = err {
            error.offset = Some(offset);
        }
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut problem = Problem::new(self.code, self.detail);
        problem.retry_after_ms = self.retry_after_ms;
        problem.offset = self.offset;
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&problem).expect("problems serialise");
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        // For the refusal counter (`crate::metrics`), which sees responses, not errors.
        response.extensions_mut().insert(self.code);
        if let Some(offset) = self.offset {
            response.headers_mut().insert(
                "upload-offset",
                HeaderValue::from_str(&offset.to_string()).expect("digits are a valid header"),
            );
        }
        if let Some(ms) = self.retry_after_ms {
            // Whole seconds, rounded up: `Retry-After` has no finer unit.
            let seconds = ms.div_ceil(1000).max(1);
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&seconds.to_string()).expect("digits are a valid header"),
            );
        }
        if matches!(
            self.code,
            ErrorCode::Unauthorized | ErrorCode::TokenInvalid | ErrorCode::TokenExpired
        ) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The `error` frame answering a store failure for request `reference`.
pub fn store_error_frame(err: &StoreError, reference: Option<String>) -> ErrorFrame {
    match err {
        // The store logged the cause once already.
        StoreError::Unavailable(_) => ErrorFrame::new(
            ErrorCode::Unavailable,
            "storage is unavailable; retry later",
            reference,
        ),
        other => ErrorFrame::new(other.code(), other.to_string(), reference),
    }
}
