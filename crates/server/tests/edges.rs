//! The delivery contract at its edges, over real sockets: FIFO per sender when the rate limit
//! refuses part of a pipelined run, and a flood of bad frames answered in full before the close
//! that ends it (the close frame and the frames before it must arrive, not a reset).

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Backend, TestServer};
use futures_util::{SinkExt, StreamExt};
use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::limits::BAD_FRAMES_BURST_MAX;
use protocol::{close, ErrorCode, Role};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Opens a raw connection and reads up to `welcome`.
async fn hello(server: &TestServer, user: &str, role: Role) -> testkit::Ws {
    let mut ws = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: protocol::PROTOCOL_VERSION,
        token: server.token(user, role),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    ws.send(WsMessage::text(hello.encode())).await.unwrap();
    loop {
        let frame = next_frame(&mut ws).await.expect("welcome");
        if let ServerFrame::Welcome(_) = frame {
            return ws;
        }
    }
}

/// The next server frame, or `Err(close code)` when the connection closed.
async fn next_frame(ws: &mut testkit::Ws) -> Result<ServerFrame, Option<u16>> {
    loop {
        let next = tokio::time::timeout(testkit::WAIT, ws.next())
            .await
            .expect("a frame in time");
        match next {
            Some(Ok(WsMessage::Text(text))) => {
                return Ok(frames::decode_server_frame(text.as_str()).expect("a valid frame"))
            }
            Some(Ok(WsMessage::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

/// The outside client that found the bug, as `docs/protocol.md` §5 describes a device: it
/// pipelines its whole outbox; after a refusal it resends the refused message and everything
/// after it, in order, at once (after `retry_after_ms` for `rate_limited`).
async fn fifo_holds_when_the_rate_limit_refuses_part_of_a_run(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.sends_burst_max = 10;
        c.sends_per_second_max = 10;
    })
    .await;
    server.booking("b1").await;
    let mut ws = hello(&server, "ana", Role::Client).await;
    let ids: Vec<String> = (0..60).map(|_| testkit::uuid()).collect();
    let mut acked: Vec<Option<u64>> = vec![None; ids.len()];
    let mut next = 0;
    let mut not_before = Instant::now();
    let deadline = Instant::now() + testkit::WAIT;
    let mut refusals: HashMap<ErrorCode, usize> = HashMap::new();
    while acked.iter().any(Option::is_none) {
        assert!(Instant::now() < deadline, "no convergence: {acked:?}");
        if Instant::now() >= not_before {
            while next < ids.len() {
                let send = ClientFrame::Send(frames::Send {
                    id: ids[next].clone(),
                    conversation: "b1".into(),
                    body: format!("message {next}"),
                    kind: Default::default(),
                    attachments: Vec::new(),
                });
                ws.send(WsMessage::text(send.encode())).await.unwrap();
                next += 1;
            }
        }
        let wait = not_before
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1));
        let frame = if next < ids.len() {
            // Waiting out a rate limit: read what comes meanwhile.
            match tokio::time::timeout(wait, next_frame(&mut ws)).await {
                Ok(frame) => frame,
                Err(_) => continue,
            }
        } else {
            next_frame(&mut ws).await
        };
        let position = |id: &str| ids.iter().position(|i| i == id);
        match frame.expect("the connection stays open") {
            ServerFrame::Ack(ack) => {
                let i = position(&ack.id).expect("one of ours");
                assert!(acked[i].is_none_or(|seq| seq == ack.seq), "one id, one seq");
                acked[i] = Some(ack.seq);
            }
            ServerFrame::Error(error) => {
                let i = position(error.reference.as_deref().expect("names the send"))
                    .expect("one of ours");
                assert!(!error.code.is_permanent(), "{error:?}");
                *refusals.entry(error.code).or_default() += 1;
                next = next.min(i);
                if let Some(ms) = error.retry_after_ms {
                    not_before = not_before.max(Instant::now() + Duration::from_millis(ms));
                }
            }
            _ => {}
        }
    }
    assert!(
        refusals.get(&ErrorCode::RateLimited).copied().unwrap_or(0) > 0,
        "the rate limit refused part of the run: {refusals:?}"
    );
    let seqs: Vec<u64> = acked.iter().map(|a| a.unwrap()).collect();
    for (i, pair) in seqs.windows(2).enumerate() {
        assert!(
            pair[0] < pair[1],
            "outbox positions {i} and {} stored at seqs {} and {}",
            i + 1,
            pair[0],
            pair[1]
        );
    }
    let mut olga = server.device("olga", Role::Operator).await;
    let (messages, _) = olga.until_synced("b1").await;
    let stored: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        stored,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "each once, in order"
    );
}

/// A device that floods bad frames without reading gets an answer for each one in the allowance
/// and then the close 4429 itself — not a reset that would destroy both.
async fn a_bad_frame_flood_gets_every_answer_then_4429(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ws = hello(&server, "ana", Role::Client).await;
    for _ in 0..BAD_FRAMES_BURST_MAX * 4 {
        ws.send(WsMessage::text("{not json")).await.unwrap();
    }
    let mut errors = 0;
    let code = loop {
        match next_frame(&mut ws).await {
            Ok(ServerFrame::Error(error)) => {
                assert_eq!(error.code, ErrorCode::MalformedFrame);
                errors += 1;
            }
            Ok(_) => {}
            Err(code) => break code,
        }
    };
    assert_eq!(code, Some(close::POLICY_VIOLATION));
    assert!(
        errors > BAD_FRAMES_BURST_MAX,
        "every bad frame up to the one that closed is answered: {errors}"
    );
}

/// One send budget per user: WebSocket and HTTP sends draw on it together, and HTTP answers 429
/// with `Retry-After` and the problem's `code`.
async fn http_and_websocket_share_one_send_budget(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.sends_burst_max = 4;
        c.sends_per_second_max = 1;
    })
    .await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    for n in 0..3 {
        let id = ana.send_message("b1", &format!("ws {n}")).await;
        ana.ack(&id).await;
    }
    let token = server.token("ana", Role::Client);
    let send = |body: &'static str| {
        let (http, token) = (server.http.clone(), token.clone());
        async move {
            http.json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&token),
                &serde_json::json!({"id": testkit::uuid(), "body": body}),
            )
            .await
        }
    };
    assert_eq!(send("the fourth").await.status, 201);
    let refused = send("the fifth").await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.json()["code"], "rate_limited");
    assert!(refused.json()["retry_after_ms"].as_u64().unwrap() > 0);
    let retry_after: u64 = refused
        .headers
        .iter()
        .find(|(name, _)| name == "retry-after")
        .map(|(_, value)| value.parse().unwrap())
        .expect("a Retry-After header");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // And the WebSocket finds the budget spent by HTTP.
    let id = ana.send_message("b1", "over the budget").await;
    assert_eq!(ana.error_for(Some(&id)).await.code, ErrorCode::RateLimited);
}

/// Someone who is not a participant learns nothing from a message id: reusing one answers like a
/// missing conversation, not `id_conflict`.
async fn a_foreign_message_id_answers_not_found(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let id = ana.send_message("b1", "mine").await;
    ana.ack(&id).await;
    let mallory = server.token("mallory", Role::Client);
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&mallory),
            &serde_json::json!({"id": id, "body": "a guess"}),
        )
        .await;
    assert_eq!(response.status, 404, "{}", response.body);
    assert_eq!(response.json()["code"], "not_found");
}

/// A validly signed token with `exp` = 2^64 − 1 works, and its connection ends cleanly: no
/// overflow, and the open-connections gauge goes back to where it was.
async fn a_far_future_expiry_neither_panics_nor_leaks(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let claims = server::auth::Claims {
        sub: "ana".into(),
        role: Role::Client,
        exp: u64::MAX,
        iat: 0,
        nbf: None,
        scope: None,
    };
    let token = server::auth::mint_token(common::SECRET.as_bytes(), &claims);
    let mut ana = testkit::Device::connect(&server.ws, &token, vec![]).await;
    let id = ana.send_message("b1", "forever").await;
    ana.ack(&id).await;
    drop(ana);
    let deadline = Instant::now() + testkit::WAIT;
    loop {
        let metrics = server.http.get("/metrics", None).await.body;
        if metrics.contains("surechat_connections_open 0") {
            break;
        }
        assert!(Instant::now() < deadline, "the gauge stays up: {metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Slow-loris with no credentials: hundreds of sockets from one address that never finish their
/// headers. Those over the per-address cap are closed at once, the others by the header timeout,
/// and `/healthz` from another address answers within a second throughout.
async fn slow_loris_neither_stalls_the_server_nor_holds_its_sockets(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::with_config(backend, |c| {
        c.http_header_read_timeout_ms = 500;
        c.connections_per_address_max = 50;
    })
    .await;
    let address: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let mut slow = Vec::new();
    for _ in 0..300 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(address).await.unwrap();
        // A request line and one header, then nothing: the headers never end.
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await;
        slow.push(stream);
    }
    let started = Instant::now();
    let health = tokio::time::timeout(Duration::from_secs(1), server.http.get("/healthz", None))
        .await
        .expect("/healthz answers within a second");
    assert_eq!(health.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    // Every slow socket is closed by the server: at once over the cap, else at the timeout.
    for (i, mut stream) in slow.into_iter().enumerate() {
        let mut buf = [0u8; 256];
        let read = tokio::time::timeout(testkit::WAIT, stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("slow socket {i} is still open"));
        match read {
            // A 408 before closing is fine too; then the end of the stream.
            Ok(n) if n > 0 => {
                tokio::time::timeout(testkit::WAIT, stream.read_to_end(&mut Vec::new()))
                    .await
                    .unwrap_or_else(|_| panic!("slow socket {i} is still open"))
                    .ok();
            }
            Ok(_) | Err(_) => {}
        }
    }
}

/// Revocation: every token of the user issued until now is refused (HTTP and `hello`), the
/// user's live connections close with 4401, a token minted afterwards works, others are untouched.
async fn revoking_a_users_tokens_closes_their_connections(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let old = server.token("ana", Role::Client);
    let mut ana = testkit::Device::connect(&server.ws, &old, vec![]).await;
    let mut olga = server.device("olga", Role::Operator).await;
    let revoked = server
        .http
        .json(
            "POST",
            "/v1/users/ana/revoke",
            Some(common::ADMIN),
            &serde_json::json!({}),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let error = ana.error_for(None).await;
    assert_eq!(error.code, ErrorCode::TokenInvalid);
    assert_eq!(ana.closed().await.map(|c| c.0), Some(close::UNAUTHORIZED));
    let refused = server.http.get("/v1/conversations", Some(&old)).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["code"], "token_invalid");
    // And at `hello`: the error, then 4401.
    let mut again = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: protocol::PROTOCOL_VERSION,
        token: old.clone(),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    again.send(WsMessage::text(hello.encode())).await.unwrap();
    match next_frame(&mut again).await {
        Ok(ServerFrame::Error(error)) => assert_eq!(error.code, ErrorCode::TokenInvalid),
        other => panic!("expected token_invalid, got {other:?}"),
    }
    assert_eq!(
        next_frame(&mut again).await.err(),
        Some(Some(close::UNAUTHORIZED))
    );
    let minted = server
        .http
        .json(
            "POST",
            "/v1/tokens",
            Some(common::ADMIN),
            &serde_json::json!({"user_id": "ana", "role": "client"}),
        )
        .await;
    let fresh = minted.json()["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server
            .http
            .get("/v1/conversations", Some(&fresh))
            .await
            .status,
        200
    );
    let mut ana = testkit::Device::connect(&server.ws, &fresh, vec![]).await;
    let id = ana.send_message("b1", "back").await;
    ana.ack(&id).await;
    // Olga was never affected.
    let id = olga.send_message("b1", "still here").await;
    olga.ack(&id).await;
}

backend_tests!(
    revoking_a_users_tokens_closes_their_connections,
    slow_loris_neither_stalls_the_server_nor_holds_its_sockets,
    fifo_holds_when_the_rate_limit_refuses_part_of_a_run,
    a_bad_frame_flood_gets_every_answer_then_4429,
    http_and_websocket_share_one_send_budget,
    a_foreign_message_id_answers_not_found,
    a_far_future_expiry_neither_panics_nor_leaks,
);
