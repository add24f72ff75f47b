//! A request id on every HTTP answer and in every log line the request causes: the
//! `x-request-id` the caller sent, when it is a short token (so a load balancer's id carries
//! through), or a new random one. A WebSocket connection keeps the id of its upgrade request, so
//! the gateway's lines about it carry it too.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The header, in both directions.
pub const HEADER: &str = "x-request-id";

/// Longest id taken from a caller.
const ID_CHARS_MAX: usize = 64;

/// The caller's id if it is 1 to 64 characters of `A-Z a-z 0-9 . _ -` (nothing that could forge a
/// log line or smuggle a token-sized secret), else `None`.
pub fn accepted(value: &str) -> Option<&str> {
    let fits = (1..=ID_CHARS_MAX).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    fits.then_some(value)
}

/// The middleware: runs the request inside a `request` span named by its id, logs its answer at
/// `debug`, and sets `x-request-id` on the response.
pub async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(accepted)
        .map_or_else(|| crate::auth::random_hex(8), str::to_owned);
    // The path only: query strings may hold cursors and the like, never needed to find a line.
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = std::time::Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "answered"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::accepted;

    #[test]
    fn only_short_plain_ids_are_taken() {
        assert_eq!(accepted("lb-7f3a.9c_01"), Some("lb-7f3a.9c_01"));
        for bad in ["", "has space", "new\nline", "ünï", "a=b", &"x".repeat(65)] {
            assert_eq!(accepted(bad), None, "{bad:?}");
        }
        assert!(accepted(&"x".repeat(64)).is_some());
    }
}
