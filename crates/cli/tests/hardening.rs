//! What the server leaves lying around, as a process: security headers on every page under
//! `/web/`, a data directory only its owner can read, and logs without tokens or message bodies
//! even at `RUST_LOG=trace`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use protocol::frames::ServerFrame;
use serde_json::json;
use testkit::{Device, Http};

const ADMIN: &str = "hardening-test-admin-key-0123";
const SECRET: &str = "hardening-test-jwt-secret-0123456789abcdef";

struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `surechat serve` on `data`, with stderr to `stderr` and `env` on top.
fn serve(data: &std::path::Path, env: &[(&str, &str)], stderr: Stdio) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("starting surechat serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("surechat prints its address").unwrap();
        if let Some(base) = line.strip_prefix("surechat listening on ") {
            break base.to_owned();
        }
    };
    Served { child, base }
}

/// A booking between ana and olga, and ana's token.
async fn booking(http: &Http, admin: &str) -> String {
    let body = json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    let created = http
        .json("PUT", "/v1/conversations/b1", Some(admin), &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    http.json(
        "POST",
        "/v1/tokens",
        Some(admin),
        &json!({"user_id": "ana", "role": "client"}),
    )
    .await
    .json()["token"]
        .as_str()
        .unwrap()
        .to_owned()
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
        "/web/demo/operator.js",
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
    for page in ["/web/demo/client.html", "/web/demo/operator.html"] {
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
