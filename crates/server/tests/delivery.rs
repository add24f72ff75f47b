//! The delivery contract, end to end against the real server (ephemeral port), on every backend.

mod common;

use std::collections::HashSet;

use common::{Backend, TestServer, ADMIN};
use protocol::frames::{self, ClientFrame, Cursor, ServerFrame};
use protocol::{close, Role};
use serde_json::json;
use testkit::Device;

fn fast_senders(config: &mut server::Config) {
    config.sends_per_second_max = 100_000;
    config.sends_burst_max = 100_000;
}

/// The same id sent 10 times concurrently over two connections and HTTP → one message, one seq.
async fn idempotent_resend(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut first = server.device("ana", Role::Client).await;
    let mut second = server.device("ana", Role::Client).await;
    let id = testkit::uuid();
    let send = ClientFrame::Send(frames::Send {
        id: id.clone(),
        conversation: "b1".into(),
        body: "only once".into(),
        kind: Default::default(),
        attachments: Vec::new(),
    });
    let token = server.token("ana", Role::Client);
    let mut http_sends = Vec::new();
    for _ in 0..3 {
        let http = server.http.clone();
        let token = token.clone();
        let body = json!({"id": id, "body": "only once"});
        http_sends.push(tokio::spawn(async move {
            http.json("POST", "/v1/conversations/b1/messages", Some(&token), &body)
                .await
        }));
    }
    for _ in 0..4 {
        first.send(&send).await;
    }
    for _ in 0..3 {
        second.send(&send).await;
    }
    let mut seqs = HashSet::new();
    let mut created = 0;
    for task in http_sends {
        let response = task.await.unwrap();
        assert!(matches!(response.status, 200 | 201), "{}", response.body);
        created += usize::from(response.status == 201);
        seqs.insert(response.json()["seq"].as_u64().unwrap());
    }
    for (device, count) in [(&mut first, 4), (&mut second, 3)] {
        for _ in 0..count {
            seqs.insert(device.ack(&id).await.seq);
        }
    }
    assert_eq!(
        seqs,
        HashSet::from([1]),
        "every answer carries the same seq"
    );
    assert!(created <= 1, "at most one HTTP answer is 201");
    // An hour later is the same as now: the id still answers the stored message.
    let later = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&token),
            &json!({"id": id, "body": "only once"}),
        )
        .await;
    assert_eq!((later.status, later.json()["seq"].as_u64()), (200, Some(1)));
    let page = server
        .http
        .get("/v1/conversations/b1/messages", Some(&token))
        .await
        .json();
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(page["last_seq"], 1);
}

/// 500 messages from both sides of one conversation, pipelined: both see seq 1..500, in order,
/// each once, and each sender's messages in the order it sent them.
async fn both_sides_see_the_same_gap_free_order(backend: Backend) {
    let server = TestServer::with_config(backend, fast_senders).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut olga = server.device("olga", Role::Operator).await;
    let mut ana_ids = Vec::new();
    let mut olga_ids = Vec::new();
    for i in 0..250 {
        ana_ids.push(ana.send_message("b1", &format!("ana {i}")).await);
        olga_ids.push(olga.send_message("b1", &format!("olga {i}")).await);
    }
    for device in [&mut ana, &mut olga] {
        let messages = device.messages("b1", 500).await;
        let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, (1..=500).collect::<Vec<_>>());
        let ids: HashSet<&str> = messages.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids.len(), 500, "no message twice");
        for (sender, sent) in [("ana", &ana_ids), ("olga", &olga_ids)] {
            let order: Vec<&String> = messages
                .iter()
                .filter(|m| m.sender == sender)
                .map(|m| &m.id)
                .collect();
            assert_eq!(order, sent.iter().collect::<Vec<_>>(), "FIFO for {sender}");
        }
    }
}

/// A device disconnects mid-stream; 200 more arrive; it reconnects with its cursor and gets exactly
/// the missing messages, then `synced`.
async fn resume_from_cursor_gets_exactly_the_missing(backend: Backend) {
    let server = TestServer::with_config(backend, fast_senders).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut olga = server.device("olga", Role::Operator).await;
    for i in 0..30 {
        olga.send_message("b1", &format!("before {i}")).await;
    }
    let seen = ana.messages("b1", 30).await;
    let cursor = seen.last().unwrap().seq;
    assert_eq!(cursor, 30);
    drop(ana);
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(olga.send_message("b1", &format!("while away {i}")).await);
    }
    for id in &ids {
        olga.ack(id).await;
    }
    let token = server.token("ana", Role::Client);
    let state_epoch = olga.welcome.conversations[0].epoch;
    let cursors = vec![Cursor {
        conversation: "b1".into(),
        seq: cursor,
        epoch: Some(state_epoch),
    }];
    let mut ana = Device::connect(&server.ws, &token, cursors).await;
    let (missed, synced) = ana.until_synced("b1").await;
    assert_eq!(synced, 230);
    assert_eq!(
        missed.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (31..=230).collect::<Vec<_>>()
    );
    assert_eq!(missed.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), ids);
    // Live messages continue after the resume.
    let id = olga.send_message("b1", "live").await;
    let live = ana.messages("b1", 1).await;
    assert_eq!((live[0].id.as_str(), live[0].seq), (id.as_str(), 231));
}

/// A cursor of another epoch, or beyond the end, gets `resync` and the conversation from 1.
async fn stale_cursor_gets_resync(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut olga = server.device("olga", Role::Operator).await;
    let id = olga.send_message("b1", "one").await;
    olga.ack(&id).await;
    let epoch = olga.welcome.conversations[0].epoch;
    let token = server.token("ana", Role::Client);
    for cursor in [
        Cursor {
            conversation: "b1".into(),
            seq: 1,
            epoch: Some(epoch + 1),
        },
        Cursor {
            conversation: "b1".into(),
            seq: 7,
            epoch: None,
        },
    ] {
        let mut ana = Device::connect(&server.ws, &token, vec![cursor]).await;
        let resync = ana
            .wait_for("resync", |f| match f {
                ServerFrame::Resync(r) => Some(r.clone()),
                _ => None,
            })
            .await;
        assert_eq!((resync.epoch, resync.last_seq), (epoch, 1));
        let (messages, synced) = ana.until_synced("b1").await;
        assert_eq!((messages.len(), synced), (1, 1));
    }
}

/// Receipts reach the sender and the summaries.
async fn receipts_reach_the_sender(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut olga = server.device("olga", Role::Operator).await;
    let id = ana.send_message("b1", "is anyone there?").await;
    let seq = ana.ack(&id).await.seq;
    let received = olga.messages("b1", 1).await;
    assert_eq!(received[0].id, id);
    let unread = server
        .http
        .get(
            "/v1/conversations",
            Some(&server.token("olga", Role::Operator)),
        )
        .await
        .json();
    assert_eq!(unread["conversations"][0]["unread"], 1);
    olga.send(&ClientFrame::Receipt(frames::ReceiptUpdate {
        reference: None,
        conversation: "b1".into(),
        delivered: Some(seq),
        read: None,
    }))
    .await;
    let delivered = ana
        .wait_for("olga's delivered receipt", |f| match f {
            ServerFrame::Receipt(r) if r.user_id == "olga" => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (delivered.delivered, delivered.read, delivered.role),
        (seq, 0, Role::Operator)
    );
    olga.send(&ClientFrame::Receipt(frames::ReceiptUpdate {
        reference: None,
        conversation: "b1".into(),
        delivered: None,
        read: Some(seq),
    }))
    .await;
    let read = ana
        .wait_for("olga's read receipt", |f| match f {
            ServerFrame::Receipt(r) if r.user_id == "olga" && r.read == seq => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(read.delivered, seq);
    let list = server
        .http
        .get(
            "/v1/conversations",
            Some(&server.token("olga", Role::Operator)),
        )
        .await
        .json();
    assert_eq!(
        (
            list["conversations"][0]["read"].as_u64(),
            list["conversations"][0]["unread"].as_u64()
        ),
        (Some(seq), Some(0))
    );
    // A device reconnecting later learns the receipts from `welcome`.
    let again = server.device("ana", Role::Client).await;
    let olga_state = again.welcome.conversations[0]
        .participants
        .iter()
        .find(|p| p.user_id == "olga")
        .unwrap()
        .clone();
    assert_eq!((olga_state.delivered, olga_state.read), (seq, seq));
    // Over HTTP too, and a cursor past the end is refused without changing anything.
    let token = server.token("ana", Role::Client);
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/receipts",
            Some(&token),
            &json!({"delivered": 99}),
        )
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (400, "cursor_out_of_range")
    );
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/receipts",
            Some(&token),
            &json!({"read": seq}),
        )
        .await;
    assert_eq!(
        (response.status, response.json()["read"].as_u64()),
        (200, Some(seq))
    );
}

/// A second device of the same user sees its own messages and receipts.
async fn second_device_sees_own_messages(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut phone = server.device("ana", Role::Client).await;
    let mut laptop = server.device("ana", Role::Client).await;
    let id = phone.send_message("b1", "from my phone").await;
    let got = laptop.messages("b1", 1).await;
    assert_eq!(
        (
            got[0].id.as_str(),
            got[0].sender.as_str(),
            got[0].body.as_str()
        ),
        (id.as_str(), "ana", "from my phone")
    );
    phone
        .send(&ClientFrame::Receipt(frames::ReceiptUpdate {
            reference: None,
            conversation: "b1".into(),
            delivered: Some(1),
            read: Some(1),
        }))
        .await;
    let receipt = laptop
        .wait_for("own receipt on the other device", |f| match f {
            ServerFrame::Receipt(r) if r.user_id == "ana" => Some(r.clone()),
            _ => None,
        })
        .await;
    assert_eq!(receipt.read, 1);
}

/// Someone who is not a participant gets 404 everywhere — the same answer as for a conversation
/// that does not exist — and nothing over WebSocket.
async fn outsiders_see_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mallory = server.token("mallory", Role::Client);
    let body = json!({"id": testkit::uuid(), "body": "let me in"});
    for conversation in ["b1", "does-not-exist"] {
        let answers = [
            server
                .http
                .get(&format!("/v1/conversations/{conversation}"), Some(&mallory))
                .await,
            server
                .http
                .get(
                    &format!("/v1/conversations/{conversation}/messages"),
                    Some(&mallory),
                )
                .await,
            server
                .http
                .json(
                    "POST",
                    &format!("/v1/conversations/{conversation}/messages"),
                    Some(&mallory),
                    &body,
                )
                .await,
            server
                .http
                .json(
                    "POST",
                    &format!("/v1/conversations/{conversation}/receipts"),
                    Some(&mallory),
                    &json!({"read": 0}),
                )
                .await,
        ];
        for answer in answers {
            assert_eq!(
                (answer.status, answer.problem_code().as_str()),
                (404, "not_found"),
                "{conversation}"
            );
            assert_eq!(
                answer.json()["detail"],
                "no such conversation",
                "hidden and missing read the same"
            );
        }
    }
    let list = server
        .http
        .get("/v1/conversations", Some(&mallory))
        .await
        .json();
    assert_eq!(list["conversations"], json!([]));
    let mut outsider = server.device("mallory", Role::Client).await;
    assert!(outsider.welcome.conversations.is_empty());
    let id = outsider.send_message("b1", "hello?").await;
    let err = outsider.error_for(Some(&id)).await;
    assert_eq!(
        (err.code, err.permanent),
        (protocol::ErrorCode::NotFound, true)
    );
    outsider
        .send(&ClientFrame::Typing(frames::TypingUpdate {
            conversation: "b1".into(),
            active: true,
        }))
        .await;
    let mut ana = server.device("ana", Role::Client).await;
    let id = ana.send_message("b1", "private").await;
    ana.ack(&id).await;
    let pushed = outsider.barrier().await;
    assert!(pushed.is_empty(), "the outsider was pushed {pushed:?}");
    let page = server
        .http
        .get(
            "/v1/conversations/b1/messages",
            Some(&server.token("ana", Role::Client)),
        )
        .await
        .json();
    assert_eq!(
        page["messages"].as_array().unwrap().len(),
        1,
        "the outsider's send stored nothing"
    );
}

/// Expired and bad tokens: 401 with a code over HTTP; `error` then close 4401 over WebSocket.
async fn expired_tokens_are_refused(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let expired = server
        .state
        .auth
        .mint("ana", Role::Client, server::now_s() - 7200, 60);
    let response = server.http.get("/v1/conversations", Some(&expired)).await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (401, "token_expired")
    );
    let response = server
        .http
        .get("/v1/conversations", Some("not.a.token"))
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (401, "token_invalid")
    );
    let response = server.http.get("/v1/conversations", None).await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (401, "unauthorized")
    );
    let response = server
        .http
        .json(
            "POST",
            "/v1/tokens",
            Some(&server.token("ana", Role::Client)),
            &json!({"user_id": "x", "role": "client"}),
        )
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (403, "forbidden")
    );
    let mut ws = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: 1,
        token: expired,
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::text(hello.encode()),
    )
    .await
    .unwrap();
    let mut device = Device {
        ws,
        welcome: placeholder(),
    };
    let err = device.next().await;
    assert!(
        matches!(err, ServerFrame::Error(ref e) if e.code == protocol::ErrorCode::TokenExpired),
        "{err:?}"
    );
    assert_eq!(
        device.closed().await.map(|c| c.0),
        Some(close::UNAUTHORIZED)
    );
}

fn placeholder() -> frames::Welcome {
    frames::Welcome {
        v: 0,
        user_id: String::new(),
        role: Role::Client,
        connection_id: String::new(),
        heartbeat_ms: 0,
        timeout_ms: 0,
        conversations: vec![],
    }
}

/// Typing is forwarded to the other side and never stored.
async fn typing_is_forwarded_not_stored(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut olga = server.device("olga", Role::Operator).await;
    olga.send(&ClientFrame::Typing(frames::TypingUpdate {
        conversation: "b1".into(),
        active: true,
    }))
    .await;
    let typing = ana
        .wait_for("typing", |f| match f {
            ServerFrame::Typing(t) => Some(t.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        (typing.user_id.as_str(), typing.role, typing.active),
        ("olga", Role::Operator, true)
    );
    let own = olga.barrier().await;
    assert!(
        !own.iter().any(|f| matches!(f, ServerFrame::Typing(_))),
        "no echo of one's own typing"
    );
    let page = server
        .http
        .get(
            "/v1/conversations/b1/messages",
            Some(&server.token("ana", Role::Client)),
        )
        .await
        .json();
    assert_eq!(page["last_seq"], 0);
}

/// Participants added or removed while connected get `joined` (then the messages) or `left`.
async fn membership_changes_reach_connected_devices(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let id = ana.send_message("b1", "hello team").await;
    ana.ack(&id).await;
    let mut omar = server.device("omar", Role::Operator).await;
    let added = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/participants",
            Some(ADMIN),
            &json!({"user_id": "omar", "role": "operator"}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.body);
    let joined = omar
        .wait_for("joined", |f| match f {
            ServerFrame::Joined(j) => Some(j.conversation.clone()),
            _ => None,
        })
        .await;
    assert_eq!((joined.id.as_str(), joined.last_seq), ("b1", 1));
    let (messages, _) = omar.until_synced("b1").await;
    assert_eq!(messages[0].id, id);
    let removed = server
        .http
        .raw(
            "DELETE",
            "/v1/conversations/b1/participants/omar",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    let left = omar
        .wait_for("left", |f| match f {
            ServerFrame::Left(l) => Some(l.conversation.clone()),
            _ => None,
        })
        .await;
    assert_eq!(left, "b1");
    let id = ana.send_message("b1", "after omar left").await;
    ana.ack(&id).await;
    assert!(omar
        .barrier()
        .await
        .iter()
        .all(|f| !matches!(f, ServerFrame::Message(_))));
    let again = server
        .http
        .raw(
            "DELETE",
            "/v1/conversations/b1/participants/omar",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

/// On graceful shutdown, devices are told to reconnect (1012) after their writes are acked.
async fn shutdown_closes_with_service_restart(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let id = ana.send_message("b1", "just before shutdown").await;
    ana.ack(&id).await;
    server.state.shutdown.cancel();
    assert_eq!(
        ana.closed().await.map(|c| c.0),
        Some(close::SERVICE_RESTART)
    );
    server.shutdown().await;
}

/// A device that stops answering is closed with 4408 after the heartbeat timeout.
async fn silent_device_is_closed_by_heartbeat(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.heartbeat_interval_ms = 150;
        c.heartbeat_grace_ms = 150;
    })
    .await;
    let mut ws = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: 1,
        token: server.token("ana", Role::Client),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::text(hello.encode()),
    )
    .await
    .unwrap();
    // Read without ever answering a ping.
    let code = loop {
        match tokio::time::timeout(testkit::WAIT, futures_util::StreamExt::next(&mut ws))
            .await
            .expect("closed in time")
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => {
                break frame.map(|f| u16::from(f.code))
            }
            Some(Ok(_)) => continue,
            _ => break None,
        }
    };
    assert_eq!(code, Some(close::HEARTBEAT_TIMEOUT));
    let metrics = server.http.get("/metrics", None).await.body;
    assert!(
        metrics.contains("surechat_disconnects_total{reason=\"heartbeat_timeout\"} 1"),
        "{metrics}"
    );
}

/// A device that stops reading is closed 4409 within `connection_write_stall_ms` once its socket
/// buffers are full, the bytes the server queues for it stay bounded, a device that reads is
/// unaffected, and after resuming from its cursor the stalled device has every message once.
async fn stalled_reader_is_closed_and_resumes(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        fast_senders(c);
        c.connection_write_stall_ms = 500;
        // 16 kB bodies: characters up to the byte limit.
        c.message_chars_max = Some(c.message_bytes_max);
    })
    .await;
    server.booking("b1").await;
    let mut sleeper = server.device("ana", Role::Client).await;
    let mut reader = server.device("ana", Role::Client).await;
    let reading = tokio::spawn(async move { reader.messages("b1", 1000).await.len() });
    // Sent over HTTP so that no sending device has to read its own echoes meanwhile.
    let token = server.token("olga", Role::Operator);
    let body = "x".repeat(16_000);
    let mut senders = Vec::new();
    // 1,000 × 16 kB: enough to fill loopback socket buffers (several MB) and the queue.
    for _ in 0..4 {
        let (http, token, body) = (server.http.clone(), token.clone(), body.clone());
        senders.push(tokio::spawn(async move {
            for _ in 0..250 {
                let response = http
                    .json(
                        "POST",
                        "/v1/conversations/b1/messages",
                        Some(&token),
                        &json!({"id": testkit::uuid(), "body": body}),
                    )
                    .await;
                assert_eq!(response.status, 201, "{}", response.body);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    assert_eq!(
        reading.await.unwrap(),
        1000,
        "the reading device got everything live"
    );
    let metric = |metrics: &str, name: &str| -> i64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = tokio::time::Instant::now() + testkit::WAIT;
    loop {
        let metrics = server.http.get("/metrics", None).await.body;
        let queued = metric(&metrics, "surechat_connection_write_queue_bytes ");
        // The stalled device's queue, plus at most the reader's high mark.
        let bound = protocol::limits::WRITE_QUEUE_BYTES_MAX + 2 * protocol::limits::FRAME_BYTES_MAX;
        assert!(queued <= bound as i64, "{queued} bytes queued");
        if metric(&metrics, "surechat_disconnects_total{reason=\"too_slow\"}") == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not closed: {metrics}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Reading again, the device finds the frames the kernel held, then the end (the close
    // frame, if the server could still write it).
    let closed = sleeper.closed().await;
    assert!(
        closed.is_none() || closed.as_ref().map(|c| c.0) == Some(close::TOO_SLOW),
        "{closed:?}"
    );
    let mut ana = server.device("ana", Role::Client).await;
    let (messages, synced) = ana.until_synced("b1").await;
    assert_eq!(synced, 1000);
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=1000).collect::<Vec<u64>>(),
        "every message once, in order"
    );
}

backend_tests!(
    idempotent_resend,
    both_sides_see_the_same_gap_free_order,
    resume_from_cursor_gets_exactly_the_missing,
    stale_cursor_gets_resync,
    receipts_reach_the_sender,
    second_device_sees_own_messages,
    outsiders_see_nothing,
    expired_tokens_are_refused,
    typing_is_forwarded_not_stored,
    membership_changes_reach_connected_devices,
    shutdown_closes_with_service_restart,
    silent_device_is_closed_by_heartbeat,
    stalled_reader_is_closed_and_resumes,
);
