//! The widget's settings as a process serves them: `widget_*` and `message_chars_max` from the
//! environment reach `GET /v1/widget` (any user token, not the admin key or nothing), a body of
//! more characters than `message_chars_max` is refused like one of too many bytes, and a bad
//! setting stops the server at start, naming its key.

use std::process::Command;

use serde_json::json;
use testkit::{Http, Served};

const ADMIN: &str = "widget-test-admin-key-0123456789";
const SECRET: &str = "widget-test-jwt-secret-0123456789abcdef01234";

fn serve(data: &std::path::Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_surechat"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .envs(env.iter().copied())
        .env("SURECHAT_ADMIN_KEY", ADMIN)
        .env("SURECHAT_JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn");
    command
}

/// A token of `user`; an operator is put in the directory first (operators' tokens need it).
async fn token(http: &Http, user: &str, role: &str) -> String {
    if role == "operator" {
        let path = format!("/v1/operators/{user}-op");
        let put = http
            .json("PUT", &path, Some(ADMIN), &json!({"name": user}))
            .await;
        assert!(matches!(put.status, 200 | 201), "{}", put.body);
        let minted = http
            .json(
                "POST",
                "/v1/tokens",
                Some(ADMIN),
                &json!({"user_id": format!("{user}-op"), "role": role}),
            )
            .await;
        assert_eq!(minted.status, 200, "{}", minted.body);
        return minted.json()["token"].as_str().unwrap().to_owned();
    }
    let minted = http
        .json(
            "POST",
            "/v1/tokens",
            Some(ADMIN),
            &json!({"user_id": user, "role": role}),
        )
        .await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    minted.json()["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_reach_the_widget_and_limit_messages() {
    let data = tempfile::tempdir().unwrap();
    let served = Served::spawn(&mut serve(
        data.path(),
        &[
            (
                "SURECHAT_WIDGET_WELCOME",
                "¡Hola! We answer in Spanish and English.",
            ),
            (
                "SURECHAT_WIDGET_HOURS",
                "mon-fri 09:00-18:00, sat 10:00-14:00",
            ),
            ("SURECHAT_WIDGET_TIMEZONE", "Europe/Madrid"),
            ("SURECHAT_WIDGET_REPLY_MINUTES", "15"),
            ("SURECHAT_MESSAGE_CHARS_MAX", "10"),
            ("SURECHAT_MESSAGE_BYTES_MAX", "30"),
            ("SURECHAT_ATTACHMENT_BYTES_MAX", "1000"),
            ("SURECHAT_ATTACHMENT_TYPES", "image/png, application/pdf"),
        ],
    ));
    let http = served.http();
    let expected = json!({
        "welcome": "¡Hola! We answer in Spanish and English.",
        "hours": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "open": "09:00", "close": "18:00"},
            {"days": ["sat"], "open": "10:00", "close": "14:00"}
        ],
        "timezone": "Europe/Madrid",
        "reply_minutes": 15,
        "message_chars_max": 10,
        "message_bytes_max": 30,
        "attachment_bytes_max": 1000,
        "attachment_types": ["image/png", "application/pdf"]
    });
    for role in ["client", "operator"] {
        let token = token(&http, "ana", role).await;
        let settings = http.get("/v1/widget", Some(&token)).await;
        assert_eq!(settings.status, 200, "{}", settings.body);
        assert_eq!(settings.json(), expected);
    }
    assert_eq!(http.get("/v1/widget", None).await.status, 401);
    let created = http
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}]}),
        )
        .await;
    assert_eq!(created.status, 201);
    let ana = token(&http, "ana", "client").await;
    // Ten characters of three bytes each fit; eleven do not, though they are under 30 bytes…
    for (body, status) in [
        ("é".repeat(10), 201),
        ("é".repeat(11), 413),
        ("x".repeat(31), 413),
    ] {
        let sent = http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&ana),
                &json!({"id": testkit::uuid(), "body": body}),
            )
            .await;
        assert_eq!(
            sent.status,
            status,
            "{} chars: {}",
            body.chars().count(),
            sent.body
        );
        if status == 413 {
            assert_eq!(sent.json()["code"], "message_too_large");
        }
    }
}

/// Defaults: nothing to show, always open, UTC, 4096 characters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_show_nothing_and_are_always_open() {
    let data = tempfile::tempdir().unwrap();
    let served = Served::spawn(&mut serve(data.path(), &[]));
    let http = served.http();
    let token = token(&http, "olga", "operator").await;
    assert_eq!(
        http.get("/v1/widget", Some(&token)).await.json(),
        json!({"welcome": "", "hours": [], "timezone": "UTC", "reply_minutes": 0,
               "message_chars_max": 4096, "message_bytes_max": 16384,
               "attachment_bytes_max": 26214400,
               "attachment_types": ["image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"]})
    );
}

#[test]
fn bad_widget_settings_name_the_key() {
    let data = tempfile::tempdir().unwrap();
    let long = "x".repeat(501);
    for (key, value) in [
        ("widget_hours", "mon-fri 9-18"),
        ("widget_hours", "mon 18:00-09:00"),
        ("widget_timezone", "Madrid time"),
        ("widget_welcome", long.as_str()),
        ("widget_reply_minutes", "-1"),
        ("message_chars_max", "0"),
        ("message_chars_max", "20000"),
        ("attachment_types", "image/png, image/svg+xml"),
        ("attachment_bytes_max", "0"),
        ("upload_ttl_s", "0"),
        ("attachment_link_ttl_s", "0"),
        ("attachment_strip_metadata", "maybe"),
    ] {
        let output = serve(
            data.path(),
            &[(&format!("SURECHAT_{}", key.to_uppercase()), value)],
        )
        .output()
        .unwrap();
        assert!(!output.status.success(), "{key}={value}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(key), "{key}={value}: {stderr}");
    }
}
