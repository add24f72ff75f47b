//! `/metrics` answers the on-call questions: traffic with refusals, closes, receipts and a failing
//! then healthy webhook moves each series as it should. Over SQLite, whose writer reports its
//! batches.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Backend, TestServer, ADMIN};
use futures_util::SinkExt;
use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::Role;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The longest a series may take to reflect what was done.
const SETTLE: Duration = Duration::from_secs(15);

/// A sample's value: `key` is the series name with its labels exactly as rendered.
fn sample(text: &str, key: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.parse().ok())
}

fn value(text: &str, key: &str) -> f64 {
    sample(text, key).unwrap_or(0.0)
}

/// Scrapes until `done` holds of the text, within [`SETTLE`].
async fn scrape_until(server: &TestServer, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        let text = server.http.get("/metrics", None).await.body;
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not seen within {SETTLE:?}; last scrape:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook receiver answering 503 until `accept` is set, then 204.
async fn receiver(accept: Arc<AtomicBool>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let accept = accept.clone();
            tokio::spawn(async move {
                // Read the head and the body it announces, then answer and close.
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let status = if accept.load(Ordering::SeqCst) {
                    "204 No Content"
                } else {
                    "503 Service Unavailable"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_moves_every_series() {
    let server = TestServer::with_config(Backend::Sqlite, |c| {
        c.webhook_allow_private = true;
        c.webhook_backoff_first_ms = 50;
    })
    .await;
    let accept = Arc::new(AtomicBool::new(false));
    let url = receiver(accept.clone()).await;
    let created = server
        .http
        .json(
            "POST",
            "/v1/webhooks",
            Some(ADMIN),
            &json!({"url": url, "secret": "metrics-test-signing-secret"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    server.booking("b1").await;

    let mut olga = server.device("olga", Role::Operator).await;
    // A device back after 1.5 s offline with three messages in its outbox.
    let mut ana = testkit::Device::greet(
        &server.ws,
        frames::Hello {
            v: protocol::PROTOCOL_VERSION,
            token: server.token("ana", Role::Client),
            cursors: Vec::new(),
            offline_ms: Some(1_500),
            pending: Some(3),
        },
    )
    .await;

    // A message, delivered and read by the other side.
    let id = ana.send_message("b1", "is the flat free on Friday?").await;
    let seq = ana.ack(&id).await.seq;
    olga.messages("b1", 1).await;
    for (delivered, read) in [(Some(seq), None), (None, Some(seq))] {
        olga.send(&ClientFrame::Receipt(frames::ReceiptUpdate {
            reference: None,
            conversation: "b1".into(),
            delivered,
            read,
        }))
        .await;
        ana.wait_for("olga's receipt", |f| match f {
            ServerFrame::Receipt(r) if r.user_id == "olga" && (read.is_none() || r.read == seq) => {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    // Refusals, one per way in.
    ana.send_text("{").await;
    assert_eq!(
        ana.error_for(None).await.code,
        protocol::ErrorCode::MalformedFrame
    );
    let unauthorized = server.http.get("/v1/conversations", None).await;
    assert_eq!(unauthorized.status, 401);

    // Closes from both sides: the device says goodbye; a bad token is shown out with 4401.
    ana.ws
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    let mut intruder = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: protocol::PROTOCOL_VERSION,
        token: "not-a-token".into(),
        cursors: Vec::new(),
        offline_ms: None,
        pending: None,
    });
    intruder
        .send(WsMessage::text(hello.encode()))
        .await
        .unwrap();

    let text = scrape_until(
        &server,
        "closes, delivery times and a failing webhook",
        |t| {
            value(
                t,
                "surechat_connection_closes_total{side=\"client\",code=\"1000\"}",
            ) >= 1.0
                && value(
                    t,
                    "surechat_connection_closes_total{side=\"server\",code=\"4401\"}",
                ) >= 1.0
                && value(
                    t,
                    "surechat_outbox_failures_total{outbox=\"webhook\",reason=\"http_5xx\"}",
                ) >= 1.0
                && value(t, "surechat_outbox_lag_seconds{outbox=\"webhook\"}") > 0.0
        },
    )
    .await;
    let expect = |key: &str, wanted: f64| {
        assert_eq!(sample(&text, key), Some(wanted), "{key} in:\n{text}");
    };
    expect("surechat_ready", 1.0);
    expect("surechat_build_info{version=\"0.1.0\",protocol=\"1\"}", 1.0);
    expect("surechat_reconnect_gap_seconds_count", 1.0);
    expect("surechat_reconnect_gap_seconds_sum", 1.5);
    expect("surechat_reconnect_gap_seconds_bucket{le=\"1\"}", 0.0);
    expect("surechat_reconnect_gap_seconds_bucket{le=\"2.5\"}", 1.0);
    // olga's device said no more than a plain hello: only ana's report counts.
    expect("surechat_resume_outbox_pending_count", 1.0);
    expect("surechat_resume_outbox_pending_sum", 3.0);
    expect("surechat_delivery_seconds_count{stage=\"delivered\"}", 1.0);
    expect("surechat_delivery_seconds_count{stage=\"read\"}", 1.0);
    expect(
        "surechat_refusals_total{code=\"malformed_frame\",via=\"ws\"}",
        1.0,
    );
    expect(
        "surechat_refusals_total{code=\"unauthorized\",via=\"http\"}",
        1.0,
    );
    expect(
        "surechat_refusals_total{code=\"token_invalid\",via=\"ws\"}",
        1.0,
    );
    expect("surechat_operators_available", 1.0);
    expect("surechat_writer_queue_depth", 0.0);
    expect("surechat_writer_failures_total", 0.0);
    expect("surechat_hub_queue_drops_total", 0.0);
    expect(
        "surechat_outbox_endpoints_disabled{outbox=\"webhook\"}",
        0.0,
    );
    // Booking, message and two receipts are at least three commits.
    assert!(
        value(&text, "surechat_writer_batch_size_count") >= 3.0,
        "{text}"
    );
    assert!(
        value(&text, "surechat_writer_commit_seconds_count") >= 3.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "surechat_writer_batch_size_count"),
        value(&text, "surechat_writer_commit_seconds_count")
    );

    // The receiver recovers: the backlog drains and the lag falls back to 0.
    accept.store(true, Ordering::SeqCst);
    let text = scrape_until(&server, "the webhook catching up", |t| {
        value(t, "surechat_outbox_deliveries_total{outbox=\"webhook\"}") >= 2.0
            && sample(t, "surechat_outbox_lag_seconds{outbox=\"webhook\"}") == Some(0.0)
    })
    .await;
    assert!(
        value(
            &text,
            "surechat_outbox_failures_total{outbox=\"webhook\",reason=\"http_5xx\"}"
        ) >= 1.0
    );
    drop(olga);
    server.shutdown().await;
}

/// `surechat_database_bytes` counts what stored messages take, on both stores with files (the
/// bench divides its growth by the messages a run stored).
async fn database_bytes_grow_with_the_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let bytes = |text: &str| {
        sample(text, "surechat_database_bytes")
            .unwrap_or_else(|| panic!("surechat_database_bytes missing: {text}"))
    };
    let before = bytes(&server.http.get("/metrics", None).await.body);
    let token = server.token("ana", Role::Client);
    // 200 bodies of 1,000 bytes: at least 200 kB, whatever the pages hold besides.
    let body = "x".repeat(1_000);
    for _ in 0..200 {
        let response = server
            .http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&token),
                &json!({"id": testkit::uuid(), "body": body}),
            )
            .await;
        assert_eq!(response.status, 201, "{}", response.body);
    }
    let after = bytes(&server.http.get("/metrics", None).await.body);
    assert!(
        after - before >= 200_000.0,
        "{before} bytes before, {after} after 200 kB of messages"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_bytes_grow_with_the_messages_sqlite() {
    database_bytes_grow_with_the_messages(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_bytes_grow_with_the_messages_postgres() {
    database_bytes_grow_with_the_messages(Backend::Postgres).await;
}
