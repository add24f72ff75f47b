//! The browser SDK, web components and demo pages from `web/`, embedded in the binary and served
//! under `/web/`, so no bundler or separate web server is needed to use them. Text files are
//! served gzipped to clients that accept it (compressed once, on first request): a phone on a slow
//! network downloads a third of the bytes.
//!
//! The demo pages hold a user token, so every response under `/web/` carries [`secure`]'s headers:
//! a Content-Security-Policy that runs only our own files (no inline script or style: the web
//! components style their shadow roots with constructed style sheets), framing limited to
//! `web_frame_ancestors`, no referrer, no MIME sniffing, and no camera, microphone or location.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir, File};
use protocol::ErrorCode;

use crate::error::ApiError;
use crate::http::Path;
use crate::AppState;

/// The contents of `web/` at build time.
static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Gzipped copies of text files, made on first request.
static GZIPPED: OnceLock<Mutex<HashMap<&'static str, &'static [u8]>>> = OnceLock::new();

/// `GET /web/{*path}`: an embedded file; a directory serves its `index.html`.
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let path = path.trim_start_matches('/');
    if let Some(dir) = development_dir() {
        return from_disk(dir, path);
    }
    let file = WEB.get_file(path).or_else(|| {
        let index = if path.is_empty() {
            "index.html".to_owned()
        } else {
            format!("{}/index.html", path.trim_end_matches('/'))
        };
        WEB.get_file(index)
    });
    let Some(file) = file else {
        return ApiError::new(ErrorCode::NotFound, "no such file").into_response();
    };
    let kind = content_type(file.path());
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = if accepts_gzip && kind != "image/png" {
        (
            StatusCode::OK,
            [(header::CONTENT_ENCODING, "gzip")],
            gzipped(file),
        )
            .into_response()
    } else {
        (StatusCode::OK, file.contents()).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, kind.parse().expect("a valid header"));
    // Revalidate every time: a new binary may carry a new SDK under the same path.
    headers.insert(
        header::CACHE_CONTROL,
        "no-cache".parse().expect("a valid header"),
    );
    headers.insert(
        header::VARY,
        "accept-encoding".parse().expect("a valid header"),
    );
    response
}

/// `SURECHAT_WEB_DIR`: a `web/` directory on disk served instead of the embedded copy, so pages and
/// SDK can be changed and reloaded without rebuilding the server. For development only: read on
/// every request, never compressed or cached.
fn development_dir() -> Option<&'static std::path::Path> {
    static DIR: OnceLock<Option<std::path::PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| std::env::var_os("SURECHAT_WEB_DIR").map(Into::into))
        .as_deref()
}

fn from_disk(dir: &std::path::Path, path: &str) -> Response {
    let relative = std::path::Path::new(path);
    // Only plain names below the directory: no `..`, no absolute paths.
    if !relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return ApiError::new(ErrorCode::NotFound, "no such file").into_response();
    }
    let mut full = dir.join(relative);
    if full.is_dir() {
        full = full.join("index.html");
    }
    match std::fs::read(&full) {
        Ok(bytes) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, content_type(&full)),
                (header::CACHE_CONTROL, "no-store"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => ApiError::new(ErrorCode::NotFound, "no such file").into_response(),
    }
}

fn gzipped(file: &'static File<'static>) -> &'static [u8] {
    let key = file.path().to_str().unwrap_or_default();
    let cache = GZIPPED.get_or_init(Mutex::default);
    if let Some(bytes) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return bytes;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(file.contents())
        .expect("writing to memory");
    // Leaked once per file: the set of embedded files is fixed for the life of the process.
    let bytes: &'static [u8] = Box::leak(
        encoder
            .finish()
            .expect("writing to memory")
            .into_boxed_slice(),
    );
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, bytes);
    bytes
}

/// Adds the security headers of pages to a response under `/web/` (a `map_response` layer).
pub async fn secure(
    State(app): State<std::sync::Arc<AppState>>,
    mut response: Response,
) -> Response {
    let headers = response.headers_mut();
    let ancestors = &app.config.web_frame_ancestors;
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors {ancestors}"
    );
    // `Config::validate` keeps `web_frame_ancestors` to one header-safe line.
    if let Ok(value) = csp.parse() {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    // For browsers without `frame-ancestors`, the same rule where X-Frame-Options can say it.
    match ancestors.trim() {
        "'self'" => {
            headers.insert(
                header::X_FRAME_OPTIONS,
                "SAMEORIGIN".parse().expect("valid"),
            );
        }
        "'none'" => {
            headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("valid"));
        }
        _ => {}
    }
    // Page URLs carry the token in their fragment, which is never sent; the path and query of a
    // page are nobody else's business either.
    headers.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("valid"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        "nosniff".parse().expect("valid"),
    );
    headers.insert(
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
            .parse()
            .expect("valid"),
    );
    response
}

/// `/console`: the operator console (the pages live under `/web/console/`, next to the SDK
/// modules they import; a redirect keeps the URL people type short). The fragment, if any,
/// survives the redirect.
pub async fn console() -> Response {
    (StatusCode::FOUND, [(header::LOCATION, "/web/console/")]).into_response()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn text_files_are_gzipped_for_clients_that_accept_it() {
        use std::io::Read;
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT_ENCODING,
            "gzip, deflate, br".parse().unwrap(),
        );
        let response = file(Path("session.js".into()), headers).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut plain)
            .unwrap();
        assert_eq!(plain, WEB.get_file("session.js").unwrap().contents());
        assert!(body.len() * 2 < plain.len(), "compressed well");
        let response = file(Path("session.js".into()), HeaderMap::new()).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
