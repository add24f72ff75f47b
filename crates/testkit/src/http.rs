//! A minimal HTTP/1.1 client over a TCP stream: one request per connection (`Connection: close`).
//! Enough to test a JSON API without pulling an HTTP client stack into the build.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server's base address, e.g. `http://127.0.0.1:8080`.
#[derive(Clone, Debug)]
pub struct Http {
    host: String,
}

/// A response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy for binary bodies: read those from `bytes`).
    pub body: String,
    /// The body as received.
    pub bytes: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `code` of a problem document, checking its content type.
    pub fn problem_code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.body
        );
        self.json()["code"].as_str().expect("a code").to_owned()
    }
}

impl Http {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: &str) -> Self {
        Http {
            host: base
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned(),
        }
    }

    /// Sends a request with an optional bearer token and raw body.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> HttpResponse {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer
            .as_deref()
            .map(|b| ("Authorization", b))
            .into_iter()
            .collect();
        self.with_headers(method, path, &headers, body).await
    }

    /// Sends a request with the given headers and a binary body (a `Content-Length` is added).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let mut stream = TcpStream::connect(&self.host)
            .await
            .expect("connecting to the server");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).await.expect("writing the request");
        let mut raw = Vec::new();
        tokio::time::timeout(crate::WAIT, stream.read_to_end(&mut raw))
            .await
            .expect("the server answers in time")
            .expect("reading the response");
        parse(&raw)
    }

    /// Sends a request with the given headers (a session cookie, a CSRF token) and raw body.
    pub async fn with_headers(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> HttpResponse {
        let mut stream = TcpStream::connect(&self.host)
            .await
            .expect("connecting to the server");
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.host
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = body.unwrap_or("");
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("content-type"));
        if typed {
            request.push_str(&format!("Content-Length: {}\r\n", body.len()));
        } else if !body.is_empty() || method == "POST" || method == "PUT" {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream
            .write_all(request.as_bytes())
            .await
            .expect("writing the request");
        let mut raw = Vec::new();
        tokio::time::timeout(crate::WAIT, stream.read_to_end(&mut raw))
            .await
            .expect("the server answers in time")
            .expect("reading the response");
        parse(&raw)
    }

    /// Sends a request with a JSON body.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> HttpResponse {
        self.raw(method, path, token, Some(&body.to_string())).await
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: Option<&str>) -> HttpResponse {
        self.raw("GET", path, token, None).await
    }

    /// A token for `user` with `role`, minted with the admin key `admin`.
    pub async fn token(&self, admin: &str, user: &str, role: protocol::Role) -> String {
        let body = serde_json::json!({"user_id": user, "role": role});
        let response = self.json("POST", "/v1/tokens", Some(admin), &body).await;
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()["token"]
            .as_str()
            .expect("a token")
            .to_owned()
    }

    /// Every message of `conversation` as `token`'s user reads it, page by page, in `seq` order.
    pub async fn history(&self, token: &str, conversation: &str) -> Vec<protocol::frames::Message> {
        let mut out: Vec<protocol::frames::Message> = Vec::new();
        loop {
            let after = out.last().map_or(0, |m| m.seq);
            let path =
                format!("/v1/conversations/{conversation}/messages?after={after}&limit=1000");
            let page = self.get(&path, Some(token)).await;
            assert_eq!(page.status, 200, "{}", page.body);
            let messages: Vec<protocol::frames::Message> =
                serde_json::from_value(page.json()["messages"].clone()).expect("messages");
            if messages.is_empty() {
                return out;
            }
            out.extend(messages);
        }
    }
}

fn parse(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        bytes: body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        data = &data[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}
