//! Webhooks against a real local HTTP receiver: signatures verify, a receiver that fails at first
//! still gets every event in order, a server SIGKILLed with deliveries pending delivers them after
//! its restart, and duplicates are only redeliveries with the same id.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use testkit::Http;

const ADMIN: &str = "webhook-test-admin-key-0123";
const SECRET: &str = "webhook-test-jwt-secret-0123456789abcdef";
const SIGNING: &str = "receiver-signing-secret-0123";

/// What the receiver saw.
#[derive(Default)]
struct Receiver {
    /// Requests to refuse with 500 before answering 200.
    refuse: AtomicUsize,
    /// Delivery ids answered 200, in arrival order.
    accepted: Mutex<Vec<u64>>,
    /// Every attempt: (delivery id, signature valid).
    attempts: Mutex<Vec<(u64, bool)>>,
    changed: tokio::sync::Notify,
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let id: u64 = header("x-surechat-delivery").parse().unwrap_or(0);
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING.as_bytes()).unwrap();
    mac.update(format!("{}.", header("x-surechat-timestamp")).as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let valid = header("x-surechat-signature") == format!("v1={expected}");
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let valid = valid && event["id"].as_u64() == Some(id);
    receiver.attempts.lock().unwrap().push((id, valid));
    let refuse = receiver
        .refuse
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = if refuse {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    if !refuse {
        receiver.accepted.lock().unwrap().push(id);
    }
    receiver.changed.notify_waiters();
    status
}

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

fn serve(data: &std::path::Path, listen: &str) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_surechat"))
        .args(["serve", "--listen", listen, "--data"])
        .arg(data)
        .env("SURECHAT_ADMIN_KEY", ADMIN)
        .env("SURECHAT_JWT_SECRET", SECRET)
        .env("SURECHAT_WEBHOOK_BACKOFF_FIRST_MS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server prints its address")
            .unwrap();
        if let Some(base) = line.strip_prefix("surechat listening on ") {
            break base.to_owned();
        }
    };
    Served { child, base }
}

/// Waits until the receiver accepted every id in `ids` (bounded).
async fn accepted_all(receiver: &Receiver, ids: &[u64]) {
    let wait = async {
        loop {
            let changed = receiver.changed.notified();
            if ids
                .iter()
                .all(|id| receiver.accepted.lock().unwrap().contains(id))
            {
                return;
            }
            changed.await;
        }
    };
    tokio::time::timeout(testkit::WAIT, wait)
        .await
        .expect("every event delivered in time");
}

async fn event_ids(http: &Http, after: u64) -> Vec<u64> {
    let events = http
        .get(&format!("/v1/events?after={after}&limit=1000"), Some(ADMIN))
        .await
        .json();
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_failures_and_a_crash() {
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut served = serve(dir.path(), &listen);
    let http = Http::new(&served.base);
    let created = http
        .json(
            "POST",
            "/v1/webhooks",
            Some(ADMIN),
            &json!({"url": hook_url, "secret": SIGNING}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        created.json()["secret"],
        SIGNING,
        "the secret is shown once, at creation"
    );

    // The receiver fails the first 5 attempts; events keep coming meanwhile.
    receiver.refuse.store(5, Ordering::SeqCst);
    let body = json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    assert_eq!(
        http.json("PUT", "/v1/conversations/b1", Some(ADMIN), &body)
            .await
            .status,
        201
    );
    let token = http
        .json(
            "POST",
            "/v1/tokens",
            Some(ADMIN),
            &json!({"user_id": "ana", "role": "client"}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_owned();
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
    let first = event_ids(&http, 0).await;
    assert_eq!(
        first.len(),
        6,
        "conversation.created and five message.created"
    );
    accepted_all(&receiver, &first).await;
    let listed = http.get("/v1/webhooks", Some(ADMIN)).await.json();
    assert!(
        listed.to_string().find(SIGNING).is_none(),
        "the secret is never listed"
    );
    assert_eq!(listed["webhooks"][0]["state"], "active");

    // Now refuse everything, make more events, and kill the server while they are pending.
    receiver.refuse.store(usize::MAX, Ordering::SeqCst);
    for i in 5..10 {
        http.json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&token),
            &json!({"id": testkit::uuid(), "body": format!("m{i}")}),
        )
        .await;
    }
    let pending: Vec<u64> = event_ids(&http, *first.last().unwrap()).await;
    assert_eq!(pending.len(), 5);
    let wait_attempt = async {
        loop {
            let changed = receiver.changed.notified();
            if receiver
                .attempts
                .lock()
                .unwrap()
                .iter()
                .any(|(id, _)| *id == pending[0])
            {
                return;
            }
            changed.await;
        }
    };
    tokio::time::timeout(testkit::WAIT, wait_attempt)
        .await
        .expect("a delivery was attempted");
    served.child.kill().unwrap(); // SIGKILL with deliveries pending
    served.child.wait().unwrap();
    receiver.refuse.store(0, Ordering::SeqCst);
    let served = serve(dir.path(), &listen);
    let http = Http::new(&served.base);
    accepted_all(&receiver, &pending).await;

    // Every delivery id was accepted, in order; a repeat can only be the same id again.
    let mut accepted = receiver.accepted.lock().unwrap().clone();
    accepted.dedup();
    let expected: Vec<u64> = first.iter().chain(&pending).copied().collect();
    assert_eq!(accepted, expected);
    assert!(
        receiver
            .attempts
            .lock()
            .unwrap()
            .iter()
            .all(|(_, valid)| *valid),
        "every signature verifies"
    );
    // A backend that missed deliveries catches up from the events API.
    assert_eq!(event_ids(&http, first[2]).await, expected[3..].to_vec());
    drop(served);
}
