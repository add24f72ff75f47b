//! Webhooks against real local receivers: signatures verify, a receiver that fails at first
//! still gets every event in order, a server SIGKILLed with deliveries pending delivers them after
//! its restart, and duplicates are only redeliveries with the same id; HTTPS receivers with a
//! CA of their own; the destination policy refuses loopback unless allowed; and a receiver that
//! hangs does not delay another.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use testkit::{Http, Served};

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

/// `surechat serve` with local receivers allowed (they are all on 127.0.0.1 here).
fn serve(data: &std::path::Path, listen: &str) -> Served {
    serve_with(data, listen, &[("SURECHAT_WEBHOOK_ALLOW_PRIVATE", "true")])
}

fn serve_with(data: &std::path::Path, listen: &str, env: &[(&str, &str)]) -> Served {
    Served::spawn(
        Command::new(env!("CARGO_BIN_EXE_surechat"))
            .args(["serve", "--listen", listen, "--data"])
            .arg(data)
            .envs(env.iter().copied())
            .env("SURECHAT_ADMIN_KEY", ADMIN)
            .env("SURECHAT_JWT_SECRET", SECRET)
            .env("SURECHAT_WEBHOOK_BACKOFF_FIRST_MS", "50")
            .env("RUST_LOG", "warn"),
    )
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
    let token = http.token(ADMIN, "ana", protocol::Role::Client).await;
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

/// A server on a fresh data directory with a webhook per URL, and a conversation created (so
/// one event, `conversation.created`, is pending for every endpoint).
async fn server_with_hooks(
    dir: &std::path::Path,
    env: &[(&str, &str)],
    urls: &[String],
) -> (Served, Http) {
    let served = serve_with(dir, "127.0.0.1:0", env);
    let http = Http::new(&served.base);
    for url in urls {
        let created = http
            .json(
                "POST",
                "/v1/webhooks",
                Some(ADMIN),
                &json!({"url": url, "secret": SIGNING}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let body = json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    let created = http
        .json("PUT", "/v1/conversations/b1", Some(ADMIN), &body)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    (served, http)
}

/// One request as a minimal HTTP/1.1 server reads it: (head, body).
async fn read_request(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
) -> std::io::Result<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((head, buf[head_end..head_end + length].to_vec()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_receivers_are_verified_with_the_configured_ca() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use tokio::io::AsyncWriteExt;
    use tokio_rustls::rustls;

    // A CA of the test's own, and a certificate for `localhost` signed by it.
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "surechat test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();

    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (requests, mut received) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, requests) = (acceptor.clone(), requests.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                while let Ok(request) = read_request(&mut tls).await {
                    let _ = requests.send(request);
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if tls.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let data = dir.path().join("data");
    let ca_path = ca_file.to_str().unwrap();
    let (_served, _http) = server_with_hooks(
        &data,
        &[
            ("SURECHAT_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("SURECHAT_WEBHOOK_CA_FILE", ca_path),
        ],
        &[format!("https://localhost:{port}/hooks")],
    )
    .await;
    let (head, body) = tokio::time::timeout(testkit::WAIT, received.recv())
        .await
        .expect("delivered over HTTPS in time")
        .unwrap();
    assert!(head.starts_with("POST /hooks HTTP/1.1"), "{head}");
    let event: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(event["type"], "conversation.created", "{event}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(SIGNING.as_bytes()).unwrap();
    mac.update(format!("{}.", header("x-surechat-timestamp")).as_bytes());
    mac.update(&body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(header("x-surechat-signature"), format!("v1={expected}"));
}

/// The state of the first webhook once its `last_error` is set (bounded wait).
async fn first_error(http: &Http, index: usize) -> Value {
    let wait = async {
        loop {
            let listed = http.get("/v1/webhooks", Some(ADMIN)).await.json();
            let webhook = listed["webhooks"][index].clone();
            if !webhook["last_error"].is_null() {
                return webhook;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(testkit::WAIT, wait)
        .await
        .expect("a delivery failed in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_receivers_are_refused_unless_allowed() {
    // A receiver that would answer 200 to anything: the policy, not the receiver, must refuse.
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    // By default: refused, both as an IP literal and as a name resolving to loopback.
    let dir = tempfile::tempdir().unwrap();
    let (served, http) = server_with_hooks(
        dir.path(),
        &[],
        &[
            format!("http://127.0.0.1:{port}/hooks"),
            format!("http://localhost:{port}/hooks"),
        ],
    )
    .await;
    for index in [0, 1] {
        let webhook = first_error(&http, index).await;
        let error = webhook["last_error"].as_str().unwrap();
        assert!(
            error.contains("destination refused")
                && error.contains("loopback")
                && error.contains("webhook_allow_private"),
            "{webhook}"
        );
        assert_eq!(webhook["delivered_up_to"], 0, "{webhook}");
    }
    assert!(
        receiver.attempts.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    drop(served);

    // With `webhook_allow_private`, the same endpoints are delivered to.
    let dir = tempfile::tempdir().unwrap();
    let (_served, http) = server_with_hooks(
        dir.path(),
        &[("SURECHAT_WEBHOOK_ALLOW_PRIVATE", "true")],
        &[
            format!("http://127.0.0.1:{port}/hooks"),
            format!("http://localhost:{port}/hooks"),
        ],
    )
    .await;
    let ids = event_ids(&http, 0).await;
    accepted_all(&receiver, &ids).await;
    let wait_both = async {
        loop {
            let changed = receiver.changed.notified();
            if receiver.accepted.lock().unwrap().len() >= 2 {
                return;
            }
            changed.await;
        }
    };
    tokio::time::timeout(testkit::WAIT, wait_both)
        .await
        .expect("both endpoints delivered to");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    // Accepts connections and never answers: each delivery to it waits for the full timeout.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hanging_url = format!("http://{}/hooks", hanging.local_addr().unwrap());
    let (connected, mut hung) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (tcp, _) = hanging.accept().await.unwrap();
            held.push(tcp);
            let _ = connected.send(());
        }
    });
    let receiver = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hooks", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let healthy_url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    // The hanging endpoint is registered first, so a one-after-another loop would serve it first.
    const TIMEOUT_MS: u64 = 60_000;
    let timeout = TIMEOUT_MS.to_string();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (_served, http) = server_with_hooks(
        dir.path(),
        &[
            ("SURECHAT_WEBHOOK_ALLOW_PRIVATE", "true"),
            ("SURECHAT_WEBHOOK_TIMEOUT_MS", &timeout),
        ],
        &[hanging_url, healthy_url],
    )
    .await;
    let ids = event_ids(&http, 0).await;
    tokio::time::timeout(testkit::WAIT, hung.recv())
        .await
        .expect("the hanging receiver was tried");
    accepted_all(&receiver, &ids).await;
    let took = started.elapsed();
    assert!(
        took.as_millis() < u128::from(TIMEOUT_MS) / 3,
        "the healthy receiver waited {took:?}"
    );
    let listed = http.get("/v1/webhooks", Some(ADMIN)).await.json();
    assert_eq!(
        listed["webhooks"][0]["delivered_up_to"], 0,
        "the hanging receiver is still waiting: {listed}"
    );
}
