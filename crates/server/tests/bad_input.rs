//! Bad input gets its documented code, the connection stays up, and nothing already accepted
//! changes.

mod common;

use common::{Backend, TestServer, ADMIN};
use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::{close, ErrorCode, Role};
use serde_json::{json, Value};

/// Stores two messages and returns the conversation's messages as JSON, to compare later.
async fn seed(server: &TestServer) -> serde_json::Value {
    server.booking("b1").await;
    let token = server.token("ana", Role::Client);
    for body in ["first", "second"] {
        let response = server
            .http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&token),
                &json!({"id": testkit::uuid(), "body": body}),
            )
            .await;
        assert_eq!(response.status, 201);
    }
    stored(server).await
}

async fn stored(server: &TestServer) -> serde_json::Value {
    let token = server.token("ana", Role::Client);
    server
        .http
        .get("/v1/conversations/b1/messages", Some(&token))
        .await
        .json()["messages"]
        .clone()
}

/// Every bad frame gets an `error` naming the request; the connection stays usable.
async fn bad_frames_get_errors_and_the_connection_stays(backend: Backend) {
    let server = TestServer::start(backend).await;
    let before = seed(&server).await;
    let mut ana = server.device("ana", Role::Client).await;
    let big = "x".repeat(16 * 1024 + 1);
    let id = testkit::uuid();
    ana.send(&ClientFrame::Send(frames::Send {
        id: id.clone(),
        conversation: "b1".into(),
        body: big,
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    let err = ana.error_for(Some(&id)).await;
    assert_eq!(
        (err.code, err.permanent),
        (ErrorCode::MessageTooLarge, true)
    );

    ana.send_text("{\"type\":\"send\",\"id\":\"r1\",").await;
    let err = ana.error_for(None).await;
    assert_eq!(err.code, ErrorCode::MalformedFrame);

    ana.send_text(r#"{"type":"dance","ref":"r2"}"#).await;
    let err = ana.error_for(Some("r2")).await;
    assert_eq!(
        (err.code, err.frame.as_deref()),
        (ErrorCode::UnknownFrame, Some("dance"))
    );

    ana.send_text(r#"{"type":"send","id":"r3","conversation":"b1"}"#)
        .await;
    let err = ana.error_for(Some("r3")).await;
    assert_eq!(err.code, ErrorCode::MalformedFrame, "missing body");

    ana.send(&ClientFrame::Send(frames::Send {
        id: "not-a-uuid".into(),
        conversation: "b1".into(),
        body: "hi".into(),
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(
        ana.error_for(Some("not-a-uuid")).await.code,
        ErrorCode::InvalidId
    );

    let id = testkit::uuid();
    ana.send(&ClientFrame::Send(frames::Send {
        id: id.clone(),
        conversation: "b1".into(),
        body: String::new(),
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(ana.error_for(Some(&id)).await.code, ErrorCode::EmptyMessage);

    let id = testkit::uuid();
    ana.send(&ClientFrame::Send(frames::Send {
        id: id.clone(),
        conversation: "no/slashes".into(),
        body: "x".into(),
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(
        ana.error_for(Some(&id)).await.code,
        ErrorCode::InvalidConversationId
    );

    ana.send(&ClientFrame::Receipt(frames::ReceiptUpdate {
        reference: Some("r4".into()),
        conversation: "b1".into(),
        delivered: Some(50),
        read: None,
    }))
    .await;
    assert_eq!(
        ana.error_for(Some("r4")).await.code,
        ErrorCode::CursorOutOfRange
    );

    ana.send_text(r#"{"type":"receipt","ref":"r5","conversation":"b1","delivered":-1}"#)
        .await;
    assert_eq!(
        ana.error_for(Some("r5")).await.code,
        ErrorCode::MalformedFrame
    );

    ana.send(&ClientFrame::Hello(frames::Hello {
        v: 1,
        token: "t".into(),
        cursors: vec![],
        offline_ms: None,
        pending: None,
    }))
    .await;
    assert_eq!(ana.error_for(None).await.code, ErrorCode::HelloRequired);

    let huge = format!(
        r#"{{"type":"ping","ref":"{}"}}"#,
        "y".repeat(protocol::limits::FRAME_BYTES_MAX)
    );
    ana.send_text(&huge).await;
    assert_eq!(ana.error_for(None).await.code, ErrorCode::FrameTooLarge);

    // Still connected and working; nothing stored was touched.
    let id = ana.send_message("b1", "still here").await;
    assert_eq!(ana.ack(&id).await.seq, 3);
    let after = stored(&server).await;
    assert_eq!(
        after.as_array().unwrap()[..2],
        before.as_array().unwrap()[..]
    );
}

/// Bad HTTP input gets problem documents with the documented codes.
async fn bad_http_input_gets_problem_documents(backend: Backend) {
    let server = TestServer::start(backend).await;
    let before = seed(&server).await;
    let token = server.token("ana", Role::Client);
    let post = |body: serde_json::Value| {
        let (http, token) = (server.http.clone(), token.clone());
        async move {
            http.json("POST", "/v1/conversations/b1/messages", Some(&token), &body)
                .await
        }
    };
    let cases = [
        (
            post(json!({"id": testkit::uuid(), "body": "x".repeat(16 * 1024 + 1)})).await,
            413,
            "message_too_large",
        ),
        (
            post(json!({"id": "1234", "body": "hi"})).await,
            400,
            "invalid_id",
        ),
        (
            post(json!({"id": testkit::uuid(), "body": ""})).await,
            400,
            "empty_message",
        ),
        (post(json!({"body": "no id"})).await, 400, "bad_request"),
        (
            server
                .http
                .raw(
                    "POST",
                    "/v1/conversations/b1/messages",
                    Some(&token),
                    Some("{oops"),
                )
                .await,
            400,
            "bad_request",
        ),
        (
            server
                .http
                .get("/v1/conversations/b1/messages?after=3", Some(&token))
                .await,
            400,
            "cursor_out_of_range",
        ),
        (
            server
                .http
                .get("/v1/conversations/b1/messages?after=-1", Some(&token))
                .await,
            400,
            "invalid_cursor",
        ),
        (
            server
                .http
                .get("/v1/conversations/b1/messages?limit=0", Some(&token))
                .await,
            400,
            "invalid_cursor",
        ),
        (
            server
                .http
                .get("/v1/conversations/b1/messages?limit=1001", Some(&token))
                .await,
            400,
            "invalid_cursor",
        ),
        (
            server
                .http
                .json(
                    "POST",
                    "/v1/conversations",
                    Some(ADMIN),
                    &json!({"id": "bad id"}),
                )
                .await,
            400,
            "invalid_conversation_id",
        ),
        (
            server
                .http
                .json(
                    "POST",
                    "/v1/conversations",
                    Some(ADMIN),
                    &json!({"id": "b2", "participants": [{"user_id": "x", "role": "boss"}]}),
                )
                .await,
            400,
            "bad_request",
        ),
        (
            server
                .http
                .json(
                    "POST",
                    "/v1/conversations",
                    Some(ADMIN),
                    &json!({"id": "b1", "participants": [{"user_id": "ana", "role": "operator"}]}),
                )
                .await,
            409,
            "participant_conflict",
        ),
        (
            server
                .http
                .json(
                    "POST",
                    "/v1/tokens",
                    Some(ADMIN),
                    &json!({"user_id": "ana", "role": "client", "ttl_s": 0}),
                )
                .await,
            400,
            "invalid_ttl",
        ),
        (
            server
                .http
                .json(
                    "POST",
                    "/v1/tokens",
                    Some("wrong-admin-key"),
                    &json!({"user_id": "ana", "role": "client"}),
                )
                .await,
            401,
            "unauthorized",
        ),
        (
            server
                .http
                .raw(
                    "POST",
                    "/v1/conversations/b1/messages",
                    Some(&token),
                    Some(&"x".repeat(protocol::limits::FRAME_BYTES_MAX + 1)),
                )
                .await,
            413,
            "frame_too_large",
        ),
        (
            server.http.get("/v1/nothing-here", None).await,
            404,
            "not_found",
        ),
    ];
    for (i, (response, status, code)) in cases.into_iter().enumerate() {
        assert_eq!(
            (response.status, response.problem_code().as_str()),
            (status, code),
            "case {i}: {}",
            response.body
        );
        assert!(response.json()["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    // An id reused for a different message is refused; the original stands.
    let original = before[0].clone();
    let response = post(json!({"id": original["id"], "body": "rewritten"})).await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (409, "id_conflict")
    );
    assert_eq!(stored(&server).await, before);
}

/// Too many participants is refused with its code.
async fn participant_limit(backend: Backend) {
    let server = TestServer::with_config(backend, |c| c.participants_max = 3).await;
    let participants: Vec<_> = (0..4)
        .map(|i| json!({"user_id": format!("u{i}"), "role": "operator"}))
        .collect();
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "big", "participants": participants}),
        )
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (409, "too_many_participants")
    );
    let response = server.http.get("/v1/conversations/big", Some(ADMIN)).await;
    assert_eq!(response.status, 404, "nothing was created");

    // Assigning adds the assignee as a participant: the limit holds there too.
    let full: Vec<_> = (0..3)
        .map(|i| json!({"user_id": format!("u{i}"), "role": "client"}))
        .collect();
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations",
            Some(ADMIN),
            &json!({"id": "full", "participants": full}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.body);
    let response = server
        .http
        .json(
            "PUT",
            "/v1/operators/omar",
            Some(ADMIN),
            &json!({"name": "Omar"}),
        )
        .await;
    assert!(response.status < 300, "{}", response.body);
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/full/assign",
            Some(ADMIN),
            &json!({"operator_id": "omar"}),
        )
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (409, "too_many_participants"),
        "{}",
        response.body
    );
    let view = server
        .http
        .get("/v1/conversations/full", Some(ADMIN))
        .await
        .json();
    assert_eq!(view["assignee"], Value::Null, "{view}");
    assert_eq!(view["participants"].as_array().unwrap().len(), 3);
    assert_eq!(view["last_seq"], 0, "nothing in the timeline");
}

/// Sends over the rate are refused as transient with a retry time; the rest go through.
async fn sends_over_the_rate_are_refused(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.sends_per_second_max = 1;
        c.sends_burst_max = 3;
    })
    .await;
    server.booking("b1").await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(ana.send_message("b1", &format!("m{i}")).await);
    }
    // Answers may come in any order between refusals (immediate) and acks (after commit).
    let mut answers = std::collections::HashMap::new();
    while answers.len() < ids.len() {
        let frame = ana.next().await;
        match frame {
            ServerFrame::Ack(ack) => answers.insert(ack.id.clone(), Ok(ack.seq)),
            ServerFrame::Error(err) => answers.insert(err.reference.clone().unwrap(), Err(err)),
            _ => None,
        };
    }
    for id in &ids[..3] {
        assert!(answers[id].is_ok(), "{:?}", answers[id]);
    }
    let refused = answers[&ids[3]].clone().unwrap_err();
    assert_eq!(
        (refused.code, refused.permanent),
        (ErrorCode::RateLimited, false)
    );
    assert!(
        refused
            .retry_after_ms
            .is_some_and(|ms| ms > 0 && ms <= 1001),
        "{refused:?}"
    );
    // The fifth must not overtake the refused fourth, whatever the rate allows by then.
    let later = answers[&ids[4]].clone().unwrap_err();
    assert!(
        matches!(later.code, ErrorCode::RateLimited | ErrorCode::OutOfOrder),
        "{later:?}"
    );
    assert!(!later.permanent);
    // Once the rate allows again, a new message still cannot go first; the refused one can.
    let wait = tokio::time::Duration::from_millis(refused.retry_after_ms.unwrap());
    tokio::time::sleep(wait).await; // the server's own retry-after, not synchronisation
    let newer = ana.send_message("b1", "newer").await;
    assert_eq!(
        ana.error_for(Some(&newer)).await.code,
        ErrorCode::OutOfOrder
    );
    ana.send(&ClientFrame::Send(frames::Send {
        id: ids[3].clone(),
        conversation: "b1".into(),
        body: "m3".into(),
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(ana.ack(&ids[3]).await.seq, 4);
    tokio::time::sleep(tokio::time::Duration::from_millis(1_000)).await; // refill one token
    ana.send(&ClientFrame::Send(frames::Send {
        id: ids[4].clone(),
        conversation: "b1".into(),
        body: "m4".into(),
        kind: Default::default(),
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(ana.ack(&ids[4]).await.seq, 5);
}

/// A device that keeps sending garbage is closed with 4429.
async fn sustained_abuse_closes_the_connection(backend: Backend) {
    let server = TestServer::start(backend).await;
    let mut ana = server.device("ana", Role::Client).await;
    for _ in 0..(protocol::limits::BAD_FRAMES_BURST_MAX + 5) {
        ana.send_text("garbage").await;
    }
    assert_eq!(
        ana.closed().await.map(|c| c.0),
        Some(close::POLICY_VIOLATION)
    );
}

/// `hello` must come first and name a supported version.
async fn hello_is_checked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let token = server.token("ana", Role::Client);
    for (first, code) in [
        (
            ClientFrame::Ping(frames::Ping::default()).encode(),
            ErrorCode::HelloRequired,
        ),
        (
            ClientFrame::Hello(frames::Hello {
                v: 99,
                token: token.clone(),
                cursors: vec![],
                offline_ms: None,
                pending: None,
            })
            .encode(),
            ErrorCode::VersionUnsupported,
        ),
    ] {
        let ws = testkit::connect_raw(&server.ws).await;
        let mut device = testkit::Device {
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
        device.send_text(&first).await;
        match device.next().await {
            ServerFrame::Error(err) => assert_eq!(err.code, code),
            other => panic!("expected an error, got {other:?}"),
        }
        assert_eq!(
            device.closed().await.map(|c| c.0),
            Some(close::PROTOCOL_ERROR)
        );
    }
}

backend_tests!(
    bad_frames_get_errors_and_the_connection_stays,
    bad_http_input_gets_problem_documents,
    participant_limit,
    sends_over_the_rate_are_refused,
    sustained_abuse_closes_the_connection,
    hello_is_checked,
);
