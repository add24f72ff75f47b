//! The browser SDK, web components and demo pages from `web/`, embedded in the binary and served
//! under `/web/`, so no bundler or separate web server is needed to use them. JavaScript is served
//! without its comments and indentation ([`crate::minify`]); the `ETag` stays the hash of the file
//! in `web/`, so it names the source a response was made from. Text files are served gzipped to clients that accept it (compressed once, on first request): a phone on a slow
//! network downloads a third of the bytes.
//!
//! Caching: every file has a strong `ETag` (a hash of its contents, computed once), so a browser
//! revalidates with `If-None-Match` and gets `304 Not Modified` without the body. Files under
//! `/web/` are `no-cache` (revalidated on every use: a new binary may carry a new SDK under the
//! same path). The same files are also served under `/web/v/{build}/`, where `{build}` is a short
//! hash of every embedded file ([`build`], also at `GET /web/build`): those URLs change whenever
//! any file does, so they are cached for a year without revalidation (`immutable`); an old build
//! hash answers 404, so a page never mixes files of two builds. Relative imports of a module
//! loaded from there stay under the same prefix.
//!
//! The demo pages hold a user token, so every response under `/web/` carries [`secure`]'s headers:
//! a Content-Security-Policy that runs only our own files (no inline script or style: the web
//! components style their shadow roots with constructed style sheets), framing limited to
//! `web_frame_ancestors`, no referrer, no MIME sniffing, and no camera, microphone or location.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use include_dir::{include_dir, Dir, DirEntry, File};
use protocol::ErrorCode;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::http::Path;
use crate::AppState;

/// The contents of `web/` at build time.
static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// Gzipped copies of text files, made on first request.
static GZIPPED: OnceLock<Mutex<HashMap<&'static str, &'static [u8]>>> = OnceLock::new();

/// How long a versioned file may be cached: a year, the most HTTP caches honour.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Every embedded file with its path.
fn files() -> Vec<&'static File<'static>> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<&'static File<'static>>) {
        for entry in dir.entries() {
            match entry {
                DirEntry::Dir(dir) => walk(dir, out),
                DirEntry::File(file) => out.push(file),
            }
        }
    }
    let mut out = Vec::new();
    walk(&WEB, &mut out);
    out.sort_by_key(|f| f.path());
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The strong entity tag of each embedded file: 128 bits of the SHA-256 of its contents.
fn etags() -> &'static HashMap<&'static std::path::Path, String> {
    static TAGS: OnceLock<HashMap<&'static std::path::Path, String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        files()
            .into_iter()
            .map(|f| {
                (
                    f.path(),
                    format!("\"{}\"", hex(&Sha256::digest(f.contents())[..16])),
                )
            })
            .collect()
    })
}

/// The build: 48 bits of a hash over every embedded file's path and contents, so it changes
/// whenever any file does. Versioned URLs are `/web/v/{build}/…`.
pub fn build() -> &'static str {
    static BUILD: OnceLock<String> = OnceLock::new();
    BUILD.get_or_init(|| {
        let mut hash = Sha256::new();
        for file in files() {
            let path = file.path().to_string_lossy();
            hash.update((path.len() as u64).to_le_bytes());
            hash.update(path.as_bytes());
            hash.update((file.contents().len() as u64).to_le_bytes());
            hash.update(file.contents());
        }
        hex(&hash.finalize()[..6])
    })
}

/// `GET /web/build`: the current build, as text (for embedders that load versioned URLs).
pub async fn build_id() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        build().to_owned(),
    )
        .into_response()
}

/// `GET /favicon.ico`: browsers ask for it on every page; the icon is `web/favicon.svg`.
pub async fn favicon() -> Response {
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, "/web/favicon.svg"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
    )
        .into_response()
}

/// Whether an `If-None-Match` header names `etag` (or is `*`). Weak and strong tags compare by
/// their opaque part, as RFC 9110 says for this header.
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// `GET /web/{*path}`: an embedded file; a directory serves its `index.html`. Under
/// `v/{build}/`, the same file cached for good (404 for another build).
pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    let mut path = path.trim_start_matches('/');
    let mut versioned = false;
    if let Some(rest) = path.strip_prefix("v/") {
        let (version, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if version != build() {
            return ApiError::new(ErrorCode::NotFound, "not a file of this build").into_response();
        }
        path = rest;
        versioned = true;
    }
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
    // Pages keep their URLs, versioned or not: always revalidated.
    let cache = if versioned && !kind.starts_with("text/html") {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let gzip = accepts_gzip && kind != "image/png";
    // Each encoding is its own representation, with its own strong tag.
    let etag = match (&etags()[file.path()], gzip) {
        (tag, true) => format!("{}-gzip\"", tag.trim_end_matches('"')),
        (tag, false) => tag.clone(),
    };
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if gzip {
        (
            StatusCode::OK,
            [(header::CONTENT_ENCODING, "gzip")],
            gzipped(file),
        )
            .into_response()
    } else {
        (StatusCode::OK, served(file)).into_response()
    };
    let modified = response.status() == StatusCode::OK;
    let headers = response.headers_mut();
    if modified {
        headers.insert(header::CONTENT_TYPE, kind.parse().expect("a valid header"));
    }
    headers.insert(header::ETAG, etag.parse().expect("a valid header"));
    headers.insert(
        header::CACHE_CONTROL,
        cache.parse().expect("a valid header"),
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
        Ok(bytes) => {
            // The same tag and the same stripping as the embedded copy, so a page (and a test)
            // sees what the binary would serve.
            let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..16]));
            let body = match String::from_utf8(bytes) {
                Ok(text) if is_javascript(&full) => crate::minify::strip_js(&text).into_bytes(),
                Ok(text) => text.into_bytes(),
                Err(err) => err.into_bytes(),
            };
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, content_type(&full).to_owned()),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                    (header::ETAG, etag),
                ],
                body,
            )
                .into_response()
        }
        Err(_) => ApiError::new(ErrorCode::NotFound, "no such file").into_response(),
    }
}

/// What is sent for a file: JavaScript without its comments and indentation
/// ([`crate::minify::strip_js`]: about 40 % fewer bytes for a phone on a slow network), anything
/// else as it is. Made once per file, on first request.
fn served(file: &'static File<'static>) -> &'static [u8] {
    static STRIPPED: OnceLock<Mutex<HashMap<&'static std::path::Path, &'static [u8]>>> =
        OnceLock::new();
    let Some(text) = is_javascript(file.path())
        .then(|| file.contents_utf8())
        .flatten()
    else {
        return file.contents();
    };
    let cache = STRIPPED.get_or_init(Mutex::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    // Leaked once per file: the set of embedded files is fixed for the life of the process.
    cache.entry(file.path()).or_insert_with(|| {
        Box::leak(
            crate::minify::strip_js(text)
                .into_bytes()
                .into_boxed_slice(),
        )
    })
}

fn is_javascript(path: &std::path::Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs")
    )
}

fn gzipped(file: &'static File<'static>) -> &'static [u8] {
    let key = file.path().to_str().unwrap_or_default();
    let cache = GZIPPED.get_or_init(Mutex::default);
    if let Some(bytes) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(key) {
        return bytes;
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(served(file)).expect("writing to memory");
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
        "ico" => "image/x-icon",
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
        // The module without its comments: what the browser runs, smaller than the source.
        let source = WEB.get_file("session.js").unwrap().contents_utf8().unwrap();
        assert_eq!(plain, crate::minify::strip_js(source).as_bytes());
        assert!(plain.len() < source.len() * 3 / 4, "comments stripped");
        assert!(body.len() * 2 < plain.len(), "compressed well");
        let response = file(Path("session.js".into()), HeaderMap::new()).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }

    fn with(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(name.clone(), value.parse().unwrap());
        }
        headers
    }

    async fn body(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn a_known_etag_is_answered_not_modified_without_a_body() {
        let first = file(Path("client.js".into()), HeaderMap::new()).await;
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert!(
            etag.len() == 34 && etag.starts_with('"') && etag.ends_with('"'),
            "{etag}"
        );
        // The same contents, the same tag; other contents, another tag.
        let again = file(Path("client.js".into()), HeaderMap::new()).await;
        assert_eq!(again.headers()[header::ETAG], etag.as_str());
        let other = file(Path("session.js".into()), HeaderMap::new()).await;
        assert_ne!(other.headers()[header::ETAG], etag.as_str());
        for asked in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"nope\", {etag}"),
            "*".into(),
        ] {
            let response = file(
                Path("client.js".into()),
                with(&[(header::IF_NONE_MATCH, &asked)]),
            )
            .await;
            assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{asked}");
            assert_eq!(response.headers()[header::ETAG], etag.as_str());
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
            assert!(body(response).await.is_empty());
        }
        let changed = file(
            Path("client.js".into()),
            with(&[(header::IF_NONE_MATCH, "\"0123\"")]),
        )
        .await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_eq!(
            body(changed).await,
            crate::minify::strip_js(WEB.get_file("client.js").unwrap().contents_utf8().unwrap())
                .as_bytes()
        );
        // The gzipped representation has a tag of its own: the plain one does not match it.
        let gzip = with(&[
            (header::ACCEPT_ENCODING, "gzip"),
            (header::IF_NONE_MATCH, &etag),
        ]);
        let zipped = file(Path("client.js".into()), gzip).await;
        assert_eq!(zipped.status(), StatusCode::OK);
        let zipped_tag = zipped.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_ne!(zipped_tag, etag);
        let gzip = with(&[
            (header::ACCEPT_ENCODING, "gzip"),
            (header::IF_NONE_MATCH, &zipped_tag),
        ]);
        assert_eq!(
            file(Path("client.js".into()), gzip).await.status(),
            StatusCode::NOT_MODIFIED
        );
    }

    #[tokio::test]
    async fn versioned_files_are_immutable_and_only_of_this_build() {
        let build = build();
        assert!(
            build.len() == 12 && build.bytes().all(|b| b.is_ascii_hexdigit()),
            "{build}"
        );
        let plain = file(Path("console/console.js".into()), HeaderMap::new()).await;
        let versioned = file(
            Path(format!("v/{build}/console/console.js")),
            HeaderMap::new(),
        )
        .await;
        assert_eq!(versioned.status(), StatusCode::OK);
        assert_eq!(versioned.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(
            versioned.headers()[header::ETAG],
            plain.headers()[header::ETAG]
        );
        assert_eq!(body(versioned).await, body(plain).await);
        // Pages are revalidated wherever they are.
        let page = file(Path(format!("v/{build}/console/")), HeaderMap::new()).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        for stale in ["v/000000000000/client.js", "v/client.js", "v//client.js"] {
            let response = file(Path(stale.into()), HeaderMap::new()).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{stale}");
        }
        let answered = body(build_id().await).await;
        assert_eq!(answered, build.as_bytes());
    }

    #[tokio::test]
    async fn the_favicon_is_embedded_and_found_where_browsers_look() {
        let icon = file(Path("favicon.svg".into()), HeaderMap::new()).await;
        assert_eq!(icon.status(), StatusCode::OK);
        assert_eq!(icon.headers()[header::CONTENT_TYPE], "image/svg+xml");
        let redirect = favicon().await;
        assert_eq!(redirect.status(), StatusCode::FOUND);
        assert_eq!(redirect.headers()[header::LOCATION], "/web/favicon.svg");
    }
}
