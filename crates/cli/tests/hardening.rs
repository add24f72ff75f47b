//! What the server leaves lying around, as a process: security headers on every page under
//! `/web/`, a data directory only its owner can read, and logs without tokens or message bodies
//! even at `RUST_LOG=trace`.

use std::process::{Command, Stdio};

use protocol::frames::ServerFrame;
use serde_json::json;
use testkit::{Device, Http, Served};

const ADMIN: &str = "hardening-test-admin-key-0123";
const SECRET: &str = "hardening-test-jwt-secret-0123456789abcdef";

/// `surechat serve` on `data`, with stderr to `stderr` and `env` on top.
fn serve(data: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Served {
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stderr(stderr),
    )
}

/// A booking between ana and olga, and ana's token.
async fn booking(http: &Http, admin: &str) -> String {
    let body = json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    let created = http
        .json("PUT", "/v1/conversations/b1", Some(admin), &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    http.token(admin, "ana", protocol::Role::Client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let ancestors = "'self' https://booking.example";
    let served = serve(
        dir.path(),
        &[
            ("SURECHAT_ADMIN_KEY", ADMIN),
            ("SURECHAT_JWT_SECRET", SECRET),
            ("SURECHAT_WEB_FRAME_ANCESTORS", ancestors),
        ],
        Stdio::inherit(),
    );
    let http = Http::new(&served.base);
    for path in [
        "/web/",
        "/web/demo/client.html",
        "/web/demo/operator.html",
        "/web/console/",
        "/web/console/console.js",
        "/web/console/sign-in.html",
        "/web/demo/demo.css",
        "/web/client.js",
        "/web/no-such-file.html",
        "/web",
    ] {
        let response = http.get(path, None).await;
        let header = |name: &str| response.header(name).unwrap_or_default().to_owned();
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            &format!("frame-ancestors {ancestors}"),
        ] {
            assert!(
                csp.split(';').any(|d| d.trim() == directive),
                "{path}: `{directive}` missing from `{csp}`"
            );
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let permissions = header("permissions-policy");
        for feature in ["camera=()", "microphone=()", "geolocation=()"] {
            assert!(permissions.contains(feature), "{path}: {permissions}");
        }
    }
    // The API is not a page: its responses stay as they were.
    let health = http.get("/healthz", None).await;
    assert!(health.header("content-security-policy").is_none());

    // The pages hold no inline script or style, which the policy would block.
    for page in ["/web/demo/client.html", "/web/console/"] {
        let html = http.get(page, None).await.body;
        assert!(!html.contains("<style"), "{page} has an inline style");
        for tag in html.split("<script").skip(1) {
            let open = &tag[..tag.find('>').unwrap()];
            assert!(open.contains("src="), "{page} has an inline script");
        }
    }
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Secrets generated into the directory, not given.
    let served = serve(&data, &[], Stdio::inherit());
    let http = Http::new(&served.base);
    let admin = std::fs::read_to_string(data.join("admin-key")).unwrap();
    let token = booking(&http, admin.trim()).await;
    for i in 0..5 {
        let sent = http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&token),
                &json!({"id": testkit::uuid(), "body": format!("m{i}")}),
            )
            .await;
        assert_eq!(sent.status, 201);
    }
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    for file in [
        "surechat.db",
        "surechat.db-wal",
        "surechat.db-shm",
        "admin-key",
        "jwt-secret",
    ] {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    let names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &names {
        assert_eq!(mode(name) & 0o077, 0, "{name} is readable by others");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_bodies_never_reach_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let served = serve(
        &dir.path().join("data"),
        &[
            ("SURECHAT_ADMIN_KEY", ADMIN),
            ("SURECHAT_JWT_SECRET", SECRET),
            ("RUST_LOG", "trace"),
        ],
        Stdio::from(log),
    );
    let http = Http::new(&served.base);
    let token = booking(&http, ADMIN).await;
    let ws = served.base.replacen("http", "ws", 1) + "/v1/ws";
    let mut ana = Device::connect(&ws, &token, vec![]).await;
    let body = "recognisable-body-7f3a9c";
    let id = ana.send_message("b1", body).await;
    ana.ack(&id).await;
    let over_http = "recognisable-http-body-51d2e8";
    let sent = http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&token),
            &json!({"id": testkit::uuid(), "body": over_http}),
        )
        .await;
    assert_eq!(sent.status, 201);
    // The second message comes back to ana's device: it went through the gateway's write path.
    ana.wait_for("the message sent over HTTP", |frame| match frame {
        ServerFrame::Message(m) if m.body == over_http => Some(()),
        _ => None,
    })
    .await;
    drop(ana);
    drop(served);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    // The run did log beyond `info` (else the test would prove nothing)…
    assert!(
        logged.lines().any(|l| l.contains("DEBUG")),
        "no debug output:\n{logged}"
    );
    // …but no secret of a user, in full or in part.
    let signature = token.rsplit('.').next().unwrap();
    for secret in [token.as_str(), signature, body, over_http, ADMIN] {
        assert!(
            !logged.contains(secret),
            "`{secret}` is in the log:\n{logged}"
        );
    }
}

/// One HTTP/1.1 GET over a fresh socket, with `extra` header lines; the whole answer.
async fn raw_get(base: &str, path: &str, extra: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Connection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer
}

fn header<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    answer
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v)
}

/// Every answer has an `x-request-id` (the caller's when it is a plain short token), and the
/// JSON log lines of the request — and of a WebSocket connection, by its upgrade — carry it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_on_answers_and_in_log_lines() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let served = serve(
        &dir.path().join("data"),
        &[
            ("SURECHAT_ADMIN_KEY", ADMIN),
            ("SURECHAT_JWT_SECRET", SECRET),
            ("SURECHAT_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
        ],
        Stdio::from(log),
    );
    let answer = raw_get(&served.base, "/healthz", "X-Request-Id: lb-probe-1234\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(header(&answer, "x-request-id"), Some("lb-probe-1234"));
    // A missing or unfit id is replaced by a new one, on problem answers too.
    for extra in ["", "X-Request-Id: has space\r\n", "X-Request-Id: a=b\r\n"] {
        let answer = raw_get(&served.base, "/v1/nothing-here", extra).await;
        assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
        let id = header(&answer, "x-request-id").expect("an id");
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // A WebSocket connection's lines carry its upgrade's id.
    let token = booking(&Http::new(&served.base), ADMIN).await;
    let url = served.base.replacen("http", "ws", 1) + "/v1/ws";
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("x-request-id", "ws-probe-5678".parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(
        response.headers().get("x-request-id").unwrap(),
        "ws-probe-5678"
    );
    let hello = format!(r#"{{"type":"hello","v":1,"token":"{token}","cursors":[]}}"#);
    ws.send(tokio_tungstenite::tungstenite::Message::text(hello))
        .await
        .unwrap();
    use futures_util::StreamExt;
    let welcome = ws.next().await.unwrap().unwrap();
    assert!(welcome.to_text().unwrap().contains("\"welcome\""));
    ws.close(None).await.unwrap();
    // Read the rest until the server closes: the connection's last line is written by then.
    while let Some(Ok(_)) = ws.next().await {}
    drop(served);
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let with = |id: &str, message: &str| {
        lines.iter().any(|l| {
            l["fields"]["message"] == message && l.to_string().contains(&format!("\"{id}\""))
        })
    };
    assert!(with("lb-probe-1234", "answered"), "{logged}");
    assert!(with("ws-probe-5678", "connection closed"), "{logged}");
}
