//! Roles that cannot be confused, on every backend: only active operators of the directory are
//! operators (tokens, assignment, transfer), and a client token acts as a client everywhere,
//! whatever participant rows say.

mod common;

use common::{Backend, TestServer, ADMIN};
use futures_util::SinkExt;
use protocol::frames::{self, ClientFrame, Cursor, MessageKind, ServerFrame};
use protocol::{ErrorCode, Role};
use serde_json::{json, Value};
use testkit::Device;

async fn assign(server: &TestServer, token: &str, to: Value, note: Value) -> (u16, Value) {
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/assign",
            Some(token),
            &json!({"operator_id": to, "note": note}),
        )
        .await;
    (response.status, response.json())
}

async fn put_operator(server: &TestServer, id: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .json("PUT", &format!("/v1/operators/{id}"), Some(ADMIN), &body)
        .await;
    (response.status, response.json())
}

/// A client's id, or a typo, is never assigned nor transferred to.
async fn clients_and_strangers_are_never_assigned(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let olga = server.token("olga", Role::Operator);
    for token in [olga.as_str(), ADMIN] {
        for to in ["ana", "bbo"] {
            let (status, problem) = assign(&server, token, json!(to), Value::Null).await;
            assert_eq!(
                (status, problem["code"].as_str()),
                (422, Some("unknown_operator")),
                "assigning {to}"
            );
        }
    }
    let (status, _) = assign(&server, &olga, json!("olga"), Value::Null).await;
    assert_eq!(status, 200);
    let (status, problem) = assign(&server, &olga, json!("ana"), json!("over to you")).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("unknown_operator")),
        "transferring to a client"
    );
    // A disabled operator is not assigned either.
    put_operator(&server, "omar", json!({"name": "Omar", "active": false})).await;
    let (status, problem) = assign(&server, &olga, json!("omar"), Value::Null).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (422, Some("unknown_operator"))
    );
    let view = server
        .http
        .get("/v1/conversations/b1", Some(ADMIN))
        .await
        .json();
    assert_eq!(view["assignee"], "olga");
    let ana = view["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user_id"] == "ana")
        .unwrap();
    assert_eq!(ana["role"], "client", "the client stays a client");
    assert_eq!(
        view["last_seq"], 1,
        "only the one assignment is in the timeline"
    );
}

/// A client's id with an operator participant row (planted through the admin API) still reads
/// and writes as a client with a client token: no note, no transfer note, over HTTP and
/// WebSocket.
async fn a_client_token_never_reads_or_writes_notes(backend: Backend) {
    let server = TestServer::start(backend).await;
    server
        .conversation("b1", &[("ana", Role::Operator), ("olga", Role::Operator)])
        .await;
    let mut olga = server.device("olga", Role::Operator).await;
    let note = testkit::uuid();
    olga.send(&ClientFrame::Send(frames::Send {
        id: note.clone(),
        conversation: "b1".into(),
        body: "SECRET note".into(),
        kind: MessageKind::Note,
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(olga.ack(&note).await.seq, 1);
    let olga_token = server.token("olga", Role::Operator);
    let (status, _) = assign(
        &server,
        &olga_token,
        json!("omar"),
        json!("SECRET transfer"),
    )
    .await;
    assert_eq!(status, 200);
    let ana = server.token("ana", Role::Client);
    // HTTP history: no note, the transfer entry without its note.
    let page = server
        .http
        .get("/v1/conversations/b1/messages", Some(&ana))
        .await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("SECRET"), "{}", page.body);
    assert_eq!(page.json()["messages"].as_array().unwrap().len(), 1);
    // HTTP list: the last message is not the note.
    let list = server.http.get("/v1/conversations", Some(&ana)).await;
    assert!(!list.body.contains("SECRET"), "{}", list.body);
    assert_eq!(list.json()["conversations"][0]["role"], "client");
    // HTTP send: a note is refused, a text is a client's.
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&ana),
            &json!({"id": testkit::uuid(), "body": "mine", "kind": "note"}),
        )
        .await;
    assert_eq!(
        (response.status, response.json()["code"].as_str()),
        (403, Some("forbidden"))
    );
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&ana),
            &json!({"id": testkit::uuid(), "body": "hello"}),
        )
        .await;
    assert_eq!(
        (response.status, response.json()["role"].as_str()),
        (201, Some("client"))
    );
    // WebSocket: a skip for the note, the transfer entry without its note, a note refused.
    let mut device = Device::connect(
        &server.ws,
        &ana,
        vec![Cursor {
            conversation: "b1".into(),
            seq: 0,
            epoch: None,
        }],
    )
    .await;
    let mut seen = Vec::new();
    loop {
        match device.next().await {
            ServerFrame::Synced(_) => break,
            other => seen.push(other.encode()),
        }
    }
    assert!(!seen.iter().any(|f| f.contains("SECRET")), "{seen:?}");
    assert!(seen.iter().any(|f| f.contains("\"skip\"")), "{seen:?}");
    let id = testkit::uuid();
    device
        .send(&ClientFrame::Send(frames::Send {
            id: id.clone(),
            conversation: "b1".into(),
            body: "x".into(),
            kind: MessageKind::Note,
            attachments: Vec::new(),
        }))
        .await;
    assert_eq!(device.error_for(Some(&id)).await.code, ErrorCode::Forbidden);
    // Live: a new note reaches the client token as a skip only.
    let later = testkit::uuid();
    olga.send(&ClientFrame::Send(frames::Send {
        id: later.clone(),
        conversation: "b1".into(),
        body: "SECRET again".into(),
        kind: MessageKind::Note,
        attachments: Vec::new(),
    }))
    .await;
    let seq = olga.ack(&later).await.seq;
    let frame = device
        .wait_for("the note's seq", |f| match f {
            ServerFrame::Skip(s) if s.seq == seq => Some(f.encode()),
            ServerFrame::Message(m) if m.seq == seq => Some(f.encode()),
            _ => None,
        })
        .await;
    assert!(!frame.contains("SECRET"), "{frame}");
}

/// Operator tokens work only for active operators of the directory, at `hello` and over HTTP,
/// unless `operators_auto_register` adds unknown ones on first use.
async fn operator_tokens_need_the_directory(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let zed = server.token("zed", Role::Operator);
    let response = server.http.get("/v1/conversations", Some(&zed)).await;
    assert_eq!(
        (response.status, response.json()["code"].as_str()),
        (422, Some("unknown_operator"))
    );
    let mut ws = testkit::connect_raw(&server.ws).await;
    let hello = ClientFrame::Hello(frames::Hello {
        v: protocol::PROTOCOL_VERSION,
        token: zed.clone(),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    });
    ws.send(tokio_tungstenite::tungstenite::Message::text(
        hello.encode(),
    ))
    .await
    .unwrap();
    let mut device = Device {
        ws,
        welcome: frames::Welcome {
            v: 0,
            user_id: String::new(),
            role: Role::Client,
            connection_id: String::new(),
            heartbeat_ms: 0,
            timeout_ms: 0,
            conversations: vec![],
        },
    };
    match device.next_or_close().await {
        Ok(ServerFrame::Error(e)) => assert_eq!(e.code, ErrorCode::UnknownOperator),
        other => panic!("expected an error frame, got {other:?}"),
    }
    let closed = device.closed().await;
    assert_eq!(
        closed.map(|(code, _)| code),
        Some(protocol::close::UNAUTHORIZED)
    );
    // Disabled: signed out at once (live connections close with 4401, earlier tokens are
    // revoked), and refused from then on.
    let mut connected = server.device("olga", Role::Operator).await;
    let earlier = server.token("olga", Role::Operator);
    put_operator(&server, "olga", json!({"name": "Olga", "active": false})).await;
    assert_eq!(
        connected.closed().await.map(|(code, _)| code),
        Some(protocol::close::UNAUTHORIZED)
    );
    let response = server.http.get("/v1/conversations", Some(&earlier)).await;
    assert_eq!(
        (response.status, response.json()["code"].as_str()),
        (401, Some("token_invalid"))
    );
    let later = later_token(&server, "olga");
    let response = server.http.get("/v1/conversations", Some(&later)).await;
    assert_eq!(
        (response.status, response.json()["code"].as_str()),
        (422, Some("unknown_operator"))
    );
    // Clients need no directory.
    let ana = server.token("ana", Role::Client);
    assert_eq!(
        server
            .http
            .get("/v1/conversations", Some(&ana))
            .await
            .status,
        200
    );
    server.shutdown().await;

    let server = TestServer::with_config(backend, |c| c.operators_auto_register = true).await;
    let zed = server.token("zed", Role::Operator);
    assert_eq!(
        server
            .http
            .get("/v1/conversations", Some(&zed))
            .await
            .status,
        200
    );
    let entry = server
        .http
        .get("/v1/operators/zed", Some(ADMIN))
        .await
        .json();
    assert_eq!(
        entry,
        json!({"id": "zed", "name": "zed", "avatar_url": null, "active": true})
    );
    // A disabled operator stays refused even then.
    put_operator(&server, "zed", json!({"name": "Zed", "active": false})).await;
    for (token, status) in [(zed, 401), (later_token(&server, "zed"), 422)] {
        assert_eq!(
            server
                .http
                .get("/v1/conversations", Some(&token))
                .await
                .status,
            status
        );
    }
}

/// An operator token issued after this second: not covered by a revocation made now (which
/// covers tokens issued up to the current second).
fn later_token(server: &TestServer, user: &str) -> String {
    let iat = server::now_s() + 1;
    server.state.auth.mint(user, Role::Operator, iat, 3600)
}

/// The admin API of the directory, and the names a conversation's participants read.
async fn the_directory_over_http(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (status, created) = put_operator(
        &server,
        "bob",
        json!({"name": "Bob Stone", "avatar_url": "https://example.com/bob.png"}),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(created["active"], true);
    let (status, _) = put_operator(&server, "bob", json!({"name": "Bob S."})).await;
    assert_eq!(status, 200);
    for bad in [
        json!({"name": ""}),
        json!({"name": "B", "avatar_url": "javascript:x"}),
    ] {
        let (status, problem) = put_operator(&server, "bob", bad).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("bad_request"))
        );
    }
    let (status, problem) = put_operator(&server, "not%20ok", json!({"name": "x"})).await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_user_id"))
    );
    let olga = server.token("olga", Role::Operator);
    let list = server.http.get("/v1/operators", Some(&olga)).await;
    assert_eq!(
        list.status, 200,
        "operators read the directory (the transfer picker)"
    );
    let bob = list.json()["operators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["id"] == "bob")
        .cloned();
    assert_eq!(
        bob,
        Some(json!({"id": "bob", "name": "Bob S.", "avatar_url": null, "active": true})),
        "replaced whole"
    );
    let ana = server.token("ana", Role::Client);
    assert_eq!(
        server.http.get("/v1/operators", Some(&ana)).await.status,
        403
    );
    assert_eq!(
        server
            .http
            .json(
                "PUT",
                "/v1/operators/bob",
                Some(&olga),
                &json!({"name": "x"})
            )
            .await
            .status,
        403,
        "only the admin key writes"
    );
    // A participant reads the names of the conversation's operators.
    server.booking("b1").await;
    put_operator(&server, "olga", json!({"name": "Olga"})).await;
    let names = server
        .http
        .get("/v1/conversations/b1/operators", Some(&ana))
        .await
        .json();
    assert_eq!(
        names["operators"],
        json!([{"id": "olga", "name": "Olga", "avatar_url": null, "active": true}])
    );
    assert_eq!(
        server
            .http
            .get("/v1/conversations/b2/operators", Some(&ana))
            .await
            .status,
        404
    );
    let response = server
        .http
        .raw("DELETE", "/v1/operators/bob", Some(ADMIN), None)
        .await;
    assert_eq!(response.status, 204);
    let response = server
        .http
        .raw("DELETE", "/v1/operators/bob", Some(ADMIN), None)
        .await;
    assert_eq!(response.status, 404);
    assert_eq!(
        server
            .http
            .get("/v1/operators/bob", Some(ADMIN))
            .await
            .status,
        404
    );
}

/// Round-robin picks only active operators of the directory: one disabled while connected is
/// passed over (its connection closes, and the directory is checked too, since presence on
/// other nodes may lag), and a conversation is never refused for it.
async fn round_robin_picks_only_directory_operators(backend: Backend) {
    let server = TestServer::with_config(backend, |c| c.round_robin = true).await;
    let _olga = server.device("olga", Role::Operator).await;
    let _omar = server.device("omar", Role::Operator).await;
    put_operator(&server, "olga", json!({"name": "Olga", "active": false})).await;
    for id in ["b2", "b3", "b4"] {
        let response = server
            .http
            .json(
                "PUT",
                &format!("/v1/conversations/{id}"),
                Some(ADMIN),
                &json!({"participants": [{"user_id": "ana", "role": "client"}]}),
            )
            .await;
        assert_eq!(
            (response.status, response.json()["assignee"].as_str()),
            (201, Some("omar")),
            "{}",
            response.body
        );
    }
}

backend_tests!(
    round_robin_picks_only_directory_operators,
    clients_and_strangers_are_never_assigned,
    a_client_token_never_reads_or_writes_notes,
    operator_tokens_need_the_directory,
    the_directory_over_http,
);
