//! A small HTTP/1.1 client for uploads and downloads, over the same plain TCP the WebSocket
//! uses: no new stack, no TLS (this SDK speaks `ws://`; `wss://` and `https://` are refused
//! alike, with [`HttpError::UnsupportedUrl`]). One request per connection (`Connection:
//! close`): a cut connection costs one request, and there is no pool to go stale. Every read and
//! write must make progress within the idle timeout, so a half-open connection is found.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head (status line and headers) taken.
const HEAD_BYTES_MAX: usize = 16 * 1024;

/// Most response headers taken.
const HEADERS_MAX: usize = 64;

/// Bytes written per write call, so the idle timeout measures progress, not the whole body.
const WRITE_PIECE_BYTES: usize = 64 * 1024;

/// Why an HTTP request got no response.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The server URL is not `ws://` or `http://` (this SDK has no TLS).
    #[error("unsupported server URL `{0}`: ws:// or http:// only (no TLS in this SDK)")]
    UnsupportedUrl(String),
    /// Connecting, writing or reading failed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// Nothing moved for the idle timeout.
    #[error("no progress for {0:?}")]
    Timeout(Duration),
    /// The response was not HTTP/1.1 as expected.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response body was larger than the caller takes.
    #[error("response body over {0} bytes")]
    TooLarge(usize),
}

/// Where the server's HTTP API is: derived from its WebSocket URL (`ws://host:port/v1/ws` →
/// `host:port`, with any path before `/v1/ws` kept as a prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpBase {
    /// `host:port`, to connect to and for the `Host` header.
    authority: String,
    /// Path before `/v1/…` (empty when the server is at the root).
    prefix: String,
}

impl HttpBase {
    pub(crate) fn from_ws_url(url: &str) -> Result<Self, HttpError> {
        let unsupported = || HttpError::UnsupportedUrl(url.to_owned());
        let rest = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(unsupported)?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() {
            return Err(unsupported());
        }
        let has_port = match authority.rfind(']') {
            // [v6]:port
            Some(close) => authority[close..].contains(':'),
            None => authority.contains(':'),
        };
        let authority = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let path = path.split(['?', '#']).next().unwrap_or("");
        let prefix = path
            .trim_end_matches('/')
            .trim_end_matches("/v1/ws")
            .trim_end_matches('/')
            .to_owned();
        Ok(HttpBase { authority, prefix })
    }
}

/// A response.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A header's value (names compared without case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request to `path` (under the base's prefix) and reads the whole response, taking
/// at most `body_max` bytes of body.
pub(crate) async fn request(
    base: &HttpBase,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    idle: Duration,
    body_max: usize,
) -> Result<Response, HttpError> {
    let mut stream = within(idle, TcpStream::connect(&base.authority)).await??;
    let mut head = format!(
        "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        base.prefix,
        base.authority,
        body.len()
    );
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    within(idle, stream.write_all(head.as_bytes())).await??;
    for piece in body.chunks(WRITE_PIECE_BYTES) {
        within(idle, stream.write_all(piece)).await??;
    }
    within(idle, stream.flush()).await??;
    read_response(&mut stream, method == "HEAD", idle, body_max).await
}

async fn within<T>(
    idle: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, HttpError> {
    tokio::time::timeout(idle, work)
        .await
        .map_err(|_| HttpError::Timeout(idle))
}

/// Reads more into `buffer`; `false` at the end of the stream.
async fn fill(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    idle: Duration,
) -> Result<bool, HttpError> {
    let mut piece = [0u8; 16 * 1024];
    let read = within(idle, stream.read(&mut piece)).await??;
    buffer.extend_from_slice(&piece[..read]);
    Ok(read > 0)
}

async fn read_response(
    stream: &mut TcpStream,
    head_only: bool,
    idle: Duration,
    body_max: usize,
) -> Result<Response, HttpError> {
    let mut buffer = Vec::new();
    let (status, headers, body_start) = loop {
        let mut slots = [httparse::EMPTY_HEADER; HEADERS_MAX];
        let mut parsed = httparse::Response::new(&mut slots);
        match parsed.parse(&buffer) {
            Ok(httparse::Status::Complete(len)) => {
                let status = parsed.code.ok_or(HttpError::Malformed("no status"))?;
                let headers = parsed
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).trim().to_owned(),
                        )
                    })
                    .collect::<Vec<_>>();
                break (status, headers, len);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(HttpError::Malformed("not an HTTP/1.1 response head")),
        }
        if buffer.len() > HEAD_BYTES_MAX {
            return Err(HttpError::Malformed("response head too long"));
        }
        if !fill(stream, &mut buffer, idle).await? {
            return Err(HttpError::Malformed(
                "connection closed before the response",
            ));
        }
    };
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = buffer.split_off(body_start);
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = response
        .header("content-length")
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| HttpError::Malformed("Content-Length"))
        })
        .transpose()?;
    response.body = if chunked {
        read_chunked(stream, rest, idle, body_max).await?
    } else {
        read_plain(stream, rest, length, idle, body_max).await?
    };
    Ok(response)
}

/// A body of `length` bytes, or up to the end of the stream when no length was given.
async fn read_plain(
    stream: &mut TcpStream,
    mut body: Vec<u8>,
    length: Option<usize>,
    idle: Duration,
    body_max: usize,
) -> Result<Vec<u8>, HttpError> {
    if length.is_some_and(|l| l > body_max) {
        return Err(HttpError::TooLarge(body_max));
    }
    loop {
        if let Some(length) = length {
            if body.len() >= length {
                body.truncate(length);
                return Ok(body);
            }
        }
        if body.len() > body_max {
            return Err(HttpError::TooLarge(body_max));
        }
        if !fill(stream, &mut body, idle).await? {
            return match length {
                Some(_) => Err(HttpError::Malformed("connection closed inside the body")),
                None => Ok(body),
            };
        }
    }
}

/// A `Transfer-Encoding: chunked` body.
async fn read_chunked(
    stream: &mut TcpStream,
    mut buffer: Vec<u8>,
    idle: Duration,
    body_max: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    loop {
        // The size line.
        let line_end = loop {
            if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
                break at;
            }
            if buffer.len() > HEAD_BYTES_MAX {
                return Err(HttpError::Malformed("chunk size line too long"));
            }
            if !fill(stream, &mut buffer, idle).await? {
                return Err(HttpError::Malformed("connection closed inside the body"));
            }
        };
        let line = std::str::from_utf8(&buffer[..line_end])
            .map_err(|_| HttpError::Malformed("chunk size"))?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| HttpError::Malformed("chunk size"))?;
        buffer.drain(..line_end + 2);
        if size == 0 {
            // Trailers are not used by the server; the body is complete.
            return Ok(body);
        }
        if body.len().saturating_add(size) > body_max {
            return Err(HttpError::TooLarge(body_max));
        }
        while buffer.len() < size + 2 {
            if !fill(stream, &mut buffer, idle).await? {
                return Err(HttpError::Malformed("connection closed inside the body"));
            }
        }
        body.extend_from_slice(&buffer[..size]);
        buffer.drain(..size + 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_http_base_derives_from_the_websocket_url() {
        let base = |url: &str| HttpBase::from_ws_url(url).map(|b| (b.authority, b.prefix));
        assert_eq!(
            base("ws://127.0.0.1:8080/v1/ws").unwrap(),
            ("127.0.0.1:8080".into(), String::new())
        );
        assert_eq!(
            base("ws://chat.example/v1/ws").unwrap(),
            ("chat.example:80".into(), String::new())
        );
        assert_eq!(
            base("ws://[::1]:9000/chat/v1/ws?x=1").unwrap(),
            ("[::1]:9000".into(), "/chat".into())
        );
        assert_eq!(
            base("http://127.0.0.1:8080/").unwrap(),
            ("127.0.0.1:8080".into(), String::new())
        );
        assert!(matches!(
            base("wss://chat.example/v1/ws"),
            Err(HttpError::UnsupportedUrl(_))
        ));
        assert!(matches!(
            base("ws:///v1/ws"),
            Err(HttpError::UnsupportedUrl(_))
        ));
    }

    /// Serves `answer` to one connection after reading the request head, then closes.
    async fn serve_once(answer: &'static [u8]) -> HttpBase {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let mut piece = [0u8; 1024];
                let n = socket.read(&mut piece).await.unwrap();
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&piece[..n]);
            }
            socket.write_all(answer).await.unwrap();
        });
        HttpBase::from_ws_url(&format!("ws://{address}/v1/ws")).unwrap()
    }

    #[tokio::test]
    async fn reads_sized_chunked_and_closed_bodies() {
        let idle = Duration::from_secs(5);
        let cases: [(&'static [u8], &[u8]); 3] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nUpload-Offset: 7\r\n\r\nhello", b"hello"),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2;x=y\r\nlo\r\n0\r\n\r\n",
                b"hello",
            ),
            (b"HTTP/1.1 404 Not Found\r\n\r\nhello", b"hello"),
        ];
        for (answer, body) in cases {
            let base = serve_once(answer).await;
            let response = request(&base, "GET", "/v1/x", &[], &[], idle, 1024)
                .await
                .unwrap();
            assert_eq!(response.body, body);
        }
        let base =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nUpload-Offset: 7\r\n\r\n").await;
        let head = request(&base, "HEAD", "/v1/x", &[], &[], idle, 1024)
            .await
            .unwrap();
        assert_eq!(
            (head.status, head.header("upload-offset")),
            (200, Some("7"))
        );
        let base = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n").await;
        assert!(matches!(
            request(&base, "GET", "/v1/x", &[], &[], idle, 1024).await,
            Err(HttpError::TooLarge(1024))
        ));
        let base = serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello").await;
        assert!(matches!(
            request(&base, "GET", "/v1/x", &[], &[], idle, 1024).await,
            Err(HttpError::Malformed(_))
        ));
    }
}
