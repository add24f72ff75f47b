//! The browser SDK, web components and demo pages from `web/`, embedded in the binary and served
//! under `/web/`, so no bundler or separate web server is needed to use them.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir};
use protocol::ErrorCode;

use crate::error::ApiError;

/// The contents of `web/` at build time.
static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// `GET /web/{*path}`: an embedded file; a directory serves its `index.html`.
pub async fn file(Path(path): Path<String>) -> Response {
    let path = path.trim_start_matches('/');
    let file = WEB.get_file(path).or_else(|| {
        let index = if path.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{}/index.html", path.trim_end_matches('/'))
        };
        WEB.get_file(index)
    });
    match file {
        Some(file) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type(file.path())),
                // Revalidate every time: a new binary may carry a new SDK under the same path.
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            file.contents(),
        )
            .into_response(),
        None => ApiError::new(ErrorCode::NotFound, "no such file").into_response(),
    }
}

/// `GET /web` → `/web/`.
pub async fn root() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/web/")],
    )
        .into_response()
}

fn content_type(path: &std::path::Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "webmanifest" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ts" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
