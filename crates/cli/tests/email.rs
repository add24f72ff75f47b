//! Emails to a guest who left, end to end: `surechat serve` as a process, a real SMTP server
//! (aiosmtpd, `testkit::smtp::Sink`) receiving them. An operator's answer the guest has not read
//! for `email_delay_ms` is emailed once (also across a server kill), never once read, retried
//! while SMTP is down; notes never appear; the link opens the conversation once; unsubscribing
//! stops the emails.
//!
//! Absence is shown without waiting for time to pass: each test ends with a second guest's
//! email (a later decision of the same loop), after which the first guest's count is final.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use testkit::smtp::{Received, Sink};
use testkit::{Http, Served};

const ADMIN: &str = "email-test-admin-key-0123456789";
const SECRET: &str = "email-test-jwt-secret-0123456789abcdef0123";
const DELAY_MS: u64 = 1_500;
const WAIT: Duration = Duration::from_secs(30);

/// `surechat serve` on `data`, emailing through `smtp_port`, with `env` on top.
fn serve(data: &Path, smtp_port: u16, env: &[(&str, &str)]) -> Served {
    let port = smtp_port.to_string();
    let delay = DELAY_MS.to_string();
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("SURECHAT_SMTP_HOST", "127.0.0.1")
            .env("SURECHAT_SMTP_PORT", &port)
            .env("SURECHAT_SMTP_SECURITY", "none")
            .env("SURECHAT_EMAIL_FROM", "Bookings <support@hotel.example>")
            .env("SURECHAT_EMAIL_DELAY_MS", &delay)
            .env("SURECHAT_REACH_INTERVAL_MS", "100")
            .env("SURECHAT_WEBHOOK_BACKOFF_FIRST_MS", "200")
            .env("SURECHAT_PUBLIC_URL", "https://chat.hotel.example")
            .envs(env.iter().copied())
            .stderr(Stdio::inherit()),
    )
}

/// A booking `id` between `guest` (with an address) and olga (of the operator directory).
async fn booking(http: &Http, id: &str, guest: &str) {
    let olga = http
        .json(
            "PUT",
            "/v1/operators/olga",
            Some(ADMIN),
            &json!({"name": "Olga"}),
        )
        .await;
    assert!(olga.status < 300, "{}", olga.body);
    let body = json!({"participants": [
        {"user_id": guest, "role": "client", "email": format!("{guest}@mail.example")},
        {"user_id": "olga", "role": "operator"}]});
    let created = http
        .json(
            "PUT",
            &format!("/v1/conversations/{id}"),
            Some(ADMIN),
            &body,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
}

/// Sends `body` as `token`'s message (`kind` "note" for a private note); answers its seq.
async fn say(http: &Http, token: &str, conversation: &str, body: &str, kind: Option<&str>) -> u64 {
    let mut message = json!({"id": uuid::Uuid::new_v4().to_string(), "body": body});
    if let Some(kind) = kind {
        message["kind"] = json!(kind);
    }
    let sent = http
        .json(
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(token),
            &message,
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
    sent.json()["seq"].as_u64().unwrap()
}

/// Blocks (off the runtime's threads) until the sink holds `count` emails.
async fn emails(sink: &Sink, count: usize) -> Vec<Received> {
    tokio::task::block_in_place(|| sink.wait_for(count, WAIT))
}

fn to(email: &Received) -> String {
    email.to.join(",")
}

/// The `surechat_link` token in an email's text.
fn link_token(email: &Received) -> String {
    let start = email.text.find("surechat_link=").expect("a link") + "surechat_link=".len();
    email.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_answer_is_emailed_once_across_a_kill_without_notes() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), sink.port(), &[]);
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    say(
        &http,
        &olga,
        "B-1",
        "Internal: guest is a VIP, upgrade quietly",
        Some("note"),
    )
    .await;
    say(
        &http,
        &olga,
        "B-1",
        "Your room is ready. Check-in from 3 pm.",
        None,
    )
    .await;
    // Killed well within the delay: the email is decided after the restart, from storage.
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    assert!(sink.messages().is_empty());
    let served = serve(dir.path(), sink.port(), &[]);
    let http = served.http();
    let got = emails(&sink, 1).await;
    let email = &got[0];
    assert_eq!(to(email), "ana@mail.example");
    assert_eq!(
        email.header("subject"),
        Some("New reply about your booking B-1")
    );
    assert!(
        email
            .text
            .contains("Olga wrote:\n> Your room is ready. Check-in from 3 pm."),
        "{}",
        email.text
    );
    assert!(
        !email.raw.contains("VIP") && !email.text.contains("VIP"),
        "a note leaked: {}",
        email.raw
    );
    let unsubscribe = email.header("list-unsubscribe").expect("List-Unsubscribe");
    assert!(
        unsubscribe.starts_with("<https://chat.hotel.example/unsubscribe?token="),
        "{unsubscribe}"
    );
    assert_eq!(
        email.header("list-unsubscribe-post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(email
        .text
        .contains("https://chat.hotel.example/web/demo/client.html?surechat_link="));

    // A second guest's email comes from a later round: ana's count is final at one.
    booking(&http, "B-2", "ben").await;
    say(&http, &olga, "B-2", "Breakfast is at 7.", None).await;
    let got = emails(&sink, 2).await;
    assert_eq!(
        got.iter().map(to).collect::<Vec<_>>(),
        ["ana@mail.example", "ben@mail.example"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_before_the_delay_means_no_email() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), sink.port(), &[]);
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    let ana = http.token(ADMIN, "ana", protocol::Role::Client).await;
    let seq = say(&http, &olga, "B-1", "Your room is ready.", None).await;
    let read = http
        .json(
            "POST",
            "/v1/conversations/B-1/receipts",
            Some(&ana),
            &json!({"read": seq}),
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    booking(&http, "B-2", "ben").await;
    say(&http, &olga, "B-2", "Breakfast is at 7.", None).await;
    let got = emails(&sink, 1).await;
    assert_eq!(got.iter().map(to).collect::<Vec<_>>(), ["ben@mail.example"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_down_then_up_delivers_once() {
    let mut sink = Sink::start();
    let port = sink.port();
    sink.stop();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), port, &[]);
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    say(&http, &olga, "B-1", "Your room is ready.", None).await;
    // Failing attempts are counted; SMTP comes back after at least two of them.
    let failures = || async {
        let metrics = http.get("/metrics", None).await.body;
        metrics
            .lines()
            .find(|l| l.starts_with("surechat_outbox_failures_total{outbox=\"email\""))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    while failures().await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed attempt was counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sink.restart();
    let got = emails(&sink, 1).await;
    assert_eq!(to(&got[0]), "ana@mail.example");
    booking(&http, "B-2", "ben").await;
    say(&http, &olga, "B-2", "Breakfast is at 7.", None).await;
    let got = emails(&sink, 2).await;
    assert_eq!(
        got.iter().map(to).collect::<Vec<_>>(),
        ["ana@mail.example", "ben@mail.example"]
    );
    // Each email once, with its own Message-ID.
    assert_ne!(got[0].header("message-id"), got[1].header("message-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_opens_the_conversation_once() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), sink.port(), &[]);
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    say(&http, &olga, "B-1", "Your room is ready.", None).await;
    let got = emails(&sink, 1).await;
    let token = link_token(&got[0]);
    let redeemed = http
        .json("POST", "/v1/links/redeem", None, &json!({"token": token}))
        .await;
    assert_eq!(redeemed.status, 200, "{}", redeemed.body);
    let session = redeemed.json();
    assert_eq!(session["user_id"], "ana");
    assert_eq!(session["conversation_id"], "B-1");
    // The fresh session is ana's: it reads the conversation.
    let history = http
        .history(session["token"].as_str().unwrap(), "B-1")
        .await;
    assert_eq!(history.last().unwrap().body, "Your room is ready.");
    let again = http
        .json("POST", "/v1/links/redeem", None, &json!({"token": token}))
        .await;
    assert_eq!(
        (again.status, again.problem_code().as_str()),
        (410, "link_used")
    );
    // An altered token is refused before storage is asked.
    let mut forged = token.clone();
    forged.replace_range(0..1, if forged.starts_with('A') { "B" } else { "A" });
    let refused = http
        .json("POST", "/v1/links/redeem", None, &json!({"token": forged}))
        .await;
    assert_eq!(
        (refused.status, refused.problem_code().as_str()),
        (401, "token_invalid")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_link_is_refused() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        sink.port(),
        &[("SURECHAT_EMAIL_LINK_TTL_MS", "1000")],
    );
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    say(&http, &olga, "B-1", "Your room is ready.", None).await;
    let got = emails(&sink, 1).await;
    // What is tested here is time itself: the link lives a second from when it was made.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let late = http
        .json(
            "POST",
            "/v1/links/redeem",
            None,
            &json!({"token": link_token(&got[0])}),
        )
        .await;
    assert_eq!(
        (late.status, late.problem_code().as_str()),
        (410, "link_expired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribing_stops_the_emails() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let served = serve(
        dir.path(),
        sink.port(),
        &[("SURECHAT_EMAIL_PERIOD_MS", "0")],
    );
    let http = served.http();
    booking(&http, "B-1", "ana").await;
    let olga = http.token(ADMIN, "olga", protocol::Role::Operator).await;
    say(&http, &olga, "B-1", "Your room is ready.", None).await;
    let got = emails(&sink, 1).await;
    let header = got[0].header("list-unsubscribe").unwrap();
    let url = header.trim_matches(['<', '>']);
    let path = url.trim_start_matches("https://chat.hotel.example");
    // The page asks first: opening it (as a mail scanner would) changes nothing.
    let page = http.get(path, None).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form method=\"post\""), "{}", page.body);
    say(&http, &olga, "B-1", "Parking is free.", None).await;
    let got = emails(&sink, 2).await;
    assert_eq!(to(&got[1]), "ana@mail.example");
    // RFC 8058 one-click, as a mail client sends it.
    let done = http
        .raw("POST", path, None, Some("List-Unsubscribe=One-Click"))
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    say(&http, &olga, "B-1", "See you tomorrow.", None).await;
    booking(&http, "B-2", "ben").await;
    say(&http, &olga, "B-2", "Breakfast is at 7.", None).await;
    let got = emails(&sink, 3).await;
    assert_eq!(
        got.iter().map(to).collect::<Vec<_>>(),
        ["ana@mail.example", "ana@mail.example", "ben@mail.example"]
    );
    // A made-up token gets a page saying so.
    let bad = http.get("/unsubscribe?token=bm9ib2R5.abc", None).await;
    assert_eq!(bad.status, 400);
}
