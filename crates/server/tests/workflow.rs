//! The operators' workflow and the business backend's view, on every backend: booking upserts,
//! closing, assignment and transfer, status, private notes, presence, the inbox across a
//! reconnect, and the events API.

mod common;

use common::{Backend, TestServer, ADMIN};
use protocol::frames::{
    self, ClientFrame, ConversationStatus, Cursor, MessageKind, PresenceStatus, ServerFrame,
};
use protocol::{ErrorCode, Role};
use serde_json::{json, Value};
use testkit::Device;

async fn upsert(server: &TestServer, id: &str, body: Value) -> (u16, Value) {
    let response = server
        .http
        .json(
            "PUT",
            &format!("/v1/conversations/{id}"),
            Some(ADMIN),
            &body,
        )
        .await;
    (response.status, response.json())
}

fn participants() -> Value {
    json!([{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}])
}

/// PUT is an idempotent upsert carrying booking metadata; closing refuses new messages for good.
async fn booking_upsert_and_close(backend: Backend) {
    let server = TestServer::start(backend).await;
    let metadata =
        json!({"check_in": "2026-12-01", "guest": "Ana Silva", "booking_status": "confirmed"});
    let (status, first) = upsert(
        &server,
        "b1",
        json!({"participants": participants(), "metadata": metadata}),
    )
    .await;
    assert_eq!((status, &first["metadata"]), (201, &metadata));
    let (status, again) = upsert(
        &server,
        "b1",
        json!({"participants": participants(), "metadata": metadata}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["epoch"], first["epoch"], "the same conversation");
    let changed = json!({"guest": "Ana Silva", "booking_status": "cancelled"});
    let (_, updated) = upsert(&server, "b1", json!({"metadata": changed})).await;
    assert_eq!(updated["metadata"], changed);
    let mut ana = server.device("ana", Role::Client).await;
    assert_eq!(
        ana.welcome.conversations[0].metadata.as_ref(),
        Some(&changed)
    );
    let closed = server
        .http
        .raw("POST", "/v1/conversations/b1/close", Some(ADMIN), None)
        .await;
    assert_eq!(
        (closed.status, closed.json()["closed"].as_bool()),
        (200, Some(true))
    );
    let id = ana.send_message("b1", "anyone?").await;
    let err = ana.error_for(Some(&id)).await;
    assert_eq!(
        (err.code, err.permanent),
        (ErrorCode::ConversationClosed, true)
    );
    let token = server.token("ana", Role::Client);
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&token),
            &json!({"id": testkit::uuid(), "body": "hello"}),
        )
        .await;
    assert_eq!(
        (response.status, response.problem_code().as_str()),
        (409, "conversation_closed")
    );
    let (_, reopened) = upsert(&server, "b1", json!({"closed": false})).await;
    assert_eq!(reopened["closed"], false);
    let id = ana.send_message("b1", "now?").await;
    assert_eq!(ana.ack(&id).await.seq, 1);
}

/// Assignment, transfer (with a note) and status are timeline entries both operators see; a
/// client message reopens a resolved conversation.
async fn assignment_transfer_and_status_are_in_the_timeline(backend: Backend) {
    let server = TestServer::start(backend).await;
    upsert(&server, "b1", json!({"participants": participants()})).await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut omar = server.device("omar", Role::Operator).await;
    let olga = server.token("olga", Role::Operator);
    let assign = |to: Value, note: Value| {
        let (http, olga) = (server.http.clone(), olga.clone());
        async move {
            http.json(
                "POST",
                "/v1/conversations/b1/assign",
                Some(&olga),
                &json!({"operator_id": to, "note": note}),
            )
            .await
        }
    };
    let response = assign(json!("olga"), Value::Null).await;
    assert_eq!(
        (response.status, response.json()["assignee"].as_str()),
        (200, Some("olga"))
    );
    // Transfer to omar, who is not a participant yet: he joins, and sees the entry.
    let response = assign(json!("omar"), json!("shift change")).await;
    assert_eq!(response.json()["assignee"], "omar");
    omar.wait_for("joined", |f| {
        matches!(f, ServerFrame::Joined(_)).then_some(())
    })
    .await;
    let (entries, _) = omar.until_synced("b1").await;
    let kinds: Vec<(MessageKind, Option<String>)> = entries
        .iter()
        .map(|m| {
            (
                m.kind,
                m.data
                    .as_ref()
                    .and_then(|d| d["to"].as_str().map(str::to_owned)),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            (MessageKind::System, Some("olga".into())),
            (MessageKind::System, Some("omar".into()))
        ]
    );
    assert!(
        entries[1].body.contains("transferred"),
        "{}",
        entries[1].body
    );
    assert_eq!(
        entries[1].data.as_ref().unwrap()["note"],
        "shift change",
        "operators see the note"
    );
    // The client sees the same entries (they are not private).
    let seen = ana.messages("b1", 2).await;
    assert_eq!(seen[1].data.as_ref().unwrap()["from"], "olga");
    assert_eq!(
        seen[1].data.as_ref().unwrap()["note"],
        Value::Null,
        "the operators' note is not for the client"
    );
    assert!(!seen[1].body.contains("shift change"));
    let history = server
        .http
        .get(
            "/v1/conversations/b1/messages",
            Some(&server.token("ana", Role::Client)),
        )
        .await;
    assert!(!history.body.contains("shift change"), "{}", history.body);
    // Resolve, then a client message reopens it.
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/status",
            Some(&olga),
            &json!({"status": "resolved"}),
        )
        .await;
    assert_eq!(response.json()["status"], "resolved");
    let id = ana.send_message("b1", "one more question").await;
    ana.ack(&id).await;
    let reopened = omar
        .wait_for("the reopening entry", |f| match f {
            ServerFrame::Message(m)
                if m.kind == MessageKind::System
                    && m.data.as_ref().is_some_and(|d| d["to"] == "open") =>
            {
                Some(m.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(
        (reopened.sender.as_str(), reopened.role),
        ("ana", Role::Client)
    );
    let view = server
        .http
        .get("/v1/conversations/b1", Some(ADMIN))
        .await
        .json();
    assert_eq!(view["status"], "open");
    // Clients may not assign; outsiders get 404.
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/assign",
            Some(&server.token("ana", Role::Client)),
            &json!({"operator_id": null}),
        )
        .await;
    assert_eq!(response.status, 403);
    let response = server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/status",
            Some(&server.token("oscar", Role::Operator)),
            &json!({"status": "pending"}),
        )
        .await;
    assert_eq!(response.status, 404);
}

/// A private note never reaches a client: not live, not in history, not via resume, not as
/// unread, not as `message.created`.
async fn private_notes_never_reach_clients(backend: Backend) {
    let server = TestServer::start(backend).await;
    upsert(&server, "b1", json!({"participants": participants()})).await;
    let mut ana = server.device("ana", Role::Client).await;
    let mut olga = server.device("olga", Role::Operator).await;
    let before = olga.send_message("b1", "hello ana").await;
    olga.ack(&before).await;
    let note = testkit::uuid();
    olga.send(&ClientFrame::Send(frames::Send {
        id: note.clone(),
        conversation: "b1".into(),
        body: "SECRET: VIP guest".into(),
        kind: MessageKind::Note,
        attachments: Vec::new(),
    }))
    .await;
    assert_eq!(olga.ack(&note).await.seq, 2);
    let after = olga.send_message("b1", "how can I help?").await;
    olga.ack(&after).await;
    // Live: the client gets message 1, a skip for 2, message 3.
    let mut live = Vec::new();
    while live.len() < 3 {
        match ana.next().await {
            ServerFrame::Message(m) => live.push(format!("message {} {}", m.seq, m.body)),
            ServerFrame::Skip(s) => live.push(format!("skip {}", s.seq)),
            _ => {}
        }
    }
    assert_eq!(
        live,
        vec!["message 1 hello ana", "skip 2", "message 3 how can I help?"]
    );
    // A client may not write one.
    ana.send(&ClientFrame::Send(frames::Send {
        id: testkit::uuid(),
        conversation: "b1".into(),
        body: "x".into(),
        kind: MessageKind::Note,
        attachments: Vec::new(),
    }))
    .await;
    ana.wait_for("the refusal of a client's note", |f| match f {
        ServerFrame::Error(e) if e.code == ErrorCode::Forbidden => Some(()),
        _ => None,
    })
    .await;
    // History over HTTP and resume from the start: no note.
    let token = server.token("ana", Role::Client);
    let page = server
        .http
        .get("/v1/conversations/b1/messages", Some(&token))
        .await;
    assert!(!page.body.contains("SECRET"), "{}", page.body);
    let mut again = Device::connect(
        &server.ws,
        &token,
        vec![Cursor {
            conversation: "b1".into(),
            seq: 0,
            epoch: None,
        }],
    )
    .await;
    let mut frames_seen = Vec::new();
    loop {
        match again.next().await {
            ServerFrame::Synced(s) => {
                assert_eq!(s.seq, 3, "the cursor moves past the note");
                break;
            }
            other => frames_seen.push(other.encode()),
        }
    }
    assert!(
        !frames_seen.iter().any(|f| f.contains("SECRET")),
        "{frames_seen:?}"
    );
    let list = server
        .http
        .get("/v1/conversations", Some(&token))
        .await
        .json();
    assert_eq!(
        list["conversations"][0]["unread"], 2,
        "the note is not unread for the client"
    );
    assert_eq!(
        list["conversations"][0]["last_message"]["body"],
        "how can I help?"
    );
    // Operators see it everywhere.
    let olga_page = server
        .http
        .get(
            "/v1/conversations/b1/messages",
            Some(&server.token("olga", Role::Operator)),
        )
        .await;
    assert!(olga_page.body.contains("SECRET"));
    // Not a client-facing event.
    let events = server
        .http
        .get("/v1/events?after=0", Some(ADMIN))
        .await
        .json();
    assert!(!events.to_string().contains("SECRET"), "{events}");
}

/// Operators' presence reaches clients; round-robin picks only available operators.
async fn presence_and_round_robin(backend: Backend) {
    let server = TestServer::with_config(backend, |c| {
        c.round_robin = true;
        c.presence_leave_delay_ms = 200;
    })
    .await;
    upsert(&server, "b1", json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}, {"user_id": "omar", "role": "operator"}]})).await;
    let mut ana = server.device("ana", Role::Client).await;
    let olga = server.device("olga", Role::Operator).await;
    let presence = ana
        .wait_for("olga online", |f| match f {
            ServerFrame::Presence(p) if p.user_id == "olga" => Some(p.status),
            _ => None,
        })
        .await;
    assert_eq!(presence, PresenceStatus::Available);
    let mut omar = server.device("omar", Role::Operator).await;
    omar.send(&ClientFrame::Presence(frames::PresenceUpdate {
        status: PresenceStatus::Away,
    }))
    .await;
    ana.wait_for("omar away", |f| match f {
        ServerFrame::Presence(p) if p.user_id == "omar" && p.status == PresenceStatus::Away => {
            Some(())
        }
        _ => None,
    })
    .await;
    omar.barrier().await;
    // New conversations go to available operators only (olga), in turn.
    for id in ["b2", "b3", "b4"] {
        let (status, view) = upsert(
            &server,
            id,
            json!({"participants": [{"user_id": "ana", "role": "client"}]}),
        )
        .await;
        assert_eq!(
            (status, view["assignee"].as_str()),
            (201, Some("olga")),
            "{view}"
        );
    }
    drop(olga);
    ana.wait_for("olga offline after the leave delay", |f| match f {
        ServerFrame::Presence(p) if p.user_id == "olga" && p.status == PresenceStatus::Offline => {
            Some(())
        }
        _ => None,
    })
    .await;
    let (_, view) = upsert(
        &server,
        "b5",
        json!({"participants": [{"user_id": "ana", "role": "client"}]}),
    )
    .await;
    assert_eq!(
        view["assignee"],
        Value::Null,
        "nobody available: left unassigned"
    );
    // A client may not set presence.
    ana.send(&ClientFrame::Presence(frames::PresenceUpdate {
        status: PresenceStatus::Away,
    }))
    .await;
    assert_eq!(ana.error_for(None).await.code, ErrorCode::Forbidden);
    drop(omar);
}

/// After a reconnect, what the operator's device learnt from the resumed stream matches a fresh
/// load of the inbox: last message, assignee, status, unread.
async fn inbox_is_right_after_a_reconnect(backend: Backend) {
    let server = TestServer::start(backend).await;
    upsert(&server, "b1", json!({"participants": [{"user_id": "ana", "role": "client"}, {"user_id": "omar", "role": "operator"}, {"user_id": "olga", "role": "operator"}]})).await;
    let omar_token = server.token("omar", Role::Operator);
    let mut omar = Device::connect(&server.ws, &omar_token, vec![]).await;
    let (_, cursor) = omar.until_synced("b1").await;
    drop(omar); // the console's connection is cut
    let mut ana = server.device("ana", Role::Client).await;
    for text in ["my room is cold", "hello?"] {
        let id = ana.send_message("b1", text).await;
        ana.ack(&id).await;
    }
    let olga = server.token("olga", Role::Operator);
    let http = &server.http;
    http.json(
        "POST",
        "/v1/conversations/b1/assign",
        Some(&olga),
        &json!({"operator_id": "omar"}),
    )
    .await;
    let reply = http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&olga),
            &json!({"id": testkit::uuid(), "body": "sending someone up"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    http.json(
        "POST",
        "/v1/conversations/b1/status",
        Some(&olga),
        &json!({"status": "resolved"}),
    )
    .await;
    // Reconnect from the cursor and rebuild the row from the stream alone.
    let state = Device::connect(
        &server.ws,
        &omar_token,
        vec![Cursor {
            conversation: "b1".into(),
            seq: cursor,
            epoch: None,
        }],
    )
    .await;
    let mut omar = state;
    let welcome_state = omar.welcome.conversations[0].clone();
    let (missed, _) = omar.until_synced("b1").await;
    let mut status = ConversationStatus::Open;
    let mut assignee = None;
    let mut last_text = None;
    for m in &missed {
        match (m.kind, m.data.as_ref()) {
            (MessageKind::System, Some(d)) if d["event"] == "assigned" => {
                assignee = d["to"].as_str().map(str::to_owned)
            }
            (MessageKind::System, Some(d)) if d["event"] == "status" => {
                status = serde_json::from_value(d["to"].clone()).unwrap()
            }
            (MessageKind::Text, _) => last_text = Some(m.body.clone()),
            _ => {}
        }
    }
    let unread = missed
        .iter()
        .filter(|m| m.kind == MessageKind::Text && m.sender != "omar")
        .count() as u64;
    let inbox = http
        .get("/v1/inbox?view=mine", Some(&omar_token))
        .await
        .json();
    let row = &inbox["conversations"][0];
    assert_eq!(row["id"], "b1");
    assert_eq!(row["assignee"].as_str(), assignee.as_deref());
    assert_eq!(row["status"], json!(status));
    assert_eq!(row["last_message"]["body"].as_str(), last_text.as_deref());
    assert_eq!(row["unread"].as_u64(), Some(unread));
    assert_eq!(
        row["waiting_since"],
        Value::Null,
        "olga answered the client"
    );
    // The welcome of the new connection agrees too.
    assert_eq!(
        (welcome_state.status, welcome_state.assignee.as_deref()),
        (ConversationStatus::Resolved, Some("omar"))
    );
    // Views: unassigned needs no scope; all needs scope `all`.
    assert_eq!(
        http.get("/v1/inbox?view=unassigned", Some(&omar_token))
            .await
            .json()["conversations"],
        json!([])
    );
    assert_eq!(
        http.get("/v1/inbox?view=all", Some(&omar_token))
            .await
            .status,
        403
    );
    let all =
        server
            .state
            .auth
            .mint_scoped("boss", Role::Operator, Some("all"), server::now_s(), 60);
    assert_eq!(
        http.get("/v1/inbox?view=all", Some(&all)).await.json()["conversations"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        http.get("/v1/inbox", Some(&server.token("ana", Role::Client)))
            .await
            .status,
        403
    );
}

/// Every change is an event, in order; `GET /v1/events?after=` returns exactly what followed.
async fn events_api_returns_what_was_missed(backend: Backend) {
    let server = TestServer::start(backend).await;
    upsert(&server, "b1", json!({"participants": participants()})).await;
    let mut ana = server.device("ana", Role::Client).await;
    let id = ana.send_message("b1", "hi").await;
    ana.ack(&id).await;
    let all = server
        .http
        .get("/v1/events?after=0", Some(ADMIN))
        .await
        .json()["events"]
        .clone();
    let kinds: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["conversation.created", "message.created"]);
    let seen = all[1]["id"].as_u64().unwrap();
    let olga = server.token("olga", Role::Operator);
    server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/receipts",
            Some(&olga),
            &json!({"delivered": 1, "read": 1}),
        )
        .await;
    server
        .http
        .json(
            "POST",
            "/v1/conversations/b1/status",
            Some(&olga),
            &json!({"status": "pending"}),
        )
        .await;
    let missed = server
        .http
        .get(&format!("/v1/events?after={seen}"), Some(ADMIN))
        .await
        .json()["events"]
        .clone();
    let kinds: Vec<&str> = missed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "message.delivered",
            "message.read",
            "conversation.status_changed"
        ]
    );
    assert_eq!(missed[0]["data"]["up_to"], 1);
    let ids: Vec<u64> = missed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]) && ids[0] > seen);
    assert_eq!(
        server.http.get("/v1/events", Some(&olga)).await.status,
        403,
        "a user token is not the admin key"
    );
}

/// The inbox filters by status and assignee (`none`: unassigned) and refuses values it does not
/// know; a row waits only while a client message is unanswered and the conversation unresolved.
async fn inbox_filters_and_waiting(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    let boss =
        server
            .state
            .auth
            .mint_scoped("boss", Role::Operator, Some("all"), server::now_s(), 60);
    let olga = server.token("olga", Role::Operator);
    for id in ["b1", "b2", "b3", "b4"] {
        upsert(&server, id, json!({"participants": participants()})).await;
    }
    let mut ana = server.device("ana", Role::Client).await;
    for id in ["b1", "b2", "b3"] {
        let sent = ana.send_message(id, "hello?").await;
        ana.ack(&sent).await;
    }
    // b2: olga answered. b3: resolved with the question open. b4: no messages at all.
    let reply = http
        .json(
            "POST",
            "/v1/conversations/b2/messages",
            Some(&olga),
            &json!({"id": testkit::uuid(), "body": "here"}),
        )
        .await;
    assert_eq!(reply.status, 201);
    for (id, status) in [("b3", "resolved"), ("b4", "pending")] {
        let changed = http
            .json(
                "POST",
                &format!("/v1/conversations/{id}/status"),
                Some(&olga),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(changed.status, 200);
    }
    let assigned = http
        .json(
            "POST",
            "/v1/conversations/b1/assign",
            Some(&olga),
            &json!({"operator_id": "olga"}),
        )
        .await;
    assert_eq!(assigned.status, 200);
    let rows = |query: &'static str| {
        let token = boss.clone();
        async move {
            let inbox = http
                .get(&format!("/v1/inbox?view=all{query}"), Some(&token))
                .await;
            assert_eq!(inbox.status, 200, "{query}: {}", inbox.body);
            let mut rows: Vec<(String, Value)> = inbox.json()["conversations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["id"].as_str().unwrap().to_owned(),
                        r["waiting_since"].clone(),
                    )
                })
                .collect();
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            rows
        }
    };
    let all = rows("").await;
    let ids: Vec<&str> = all.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        ids,
        ["b1", "b2", "b3", "b4"],
        "resolved rows are listed by default"
    );
    let waiting: Vec<bool> = all.iter().map(|r| r.1.is_u64()).collect();
    assert_eq!(waiting, [true, false, false, false]);
    let ids = |rows: Vec<(String, Value)>| rows.into_iter().map(|r| r.0).collect::<Vec<_>>();
    assert_eq!(ids(rows("&status=open").await), ["b1", "b2"]);
    assert_eq!(ids(rows("&status=pending").await), ["b4"]);
    assert_eq!(ids(rows("&status=resolved").await), ["b3"]);
    assert_eq!(ids(rows("&assignee=olga").await), ["b1"]);
    assert_eq!(ids(rows("&assignee=none").await), ["b2", "b3", "b4"]);
    assert_eq!(ids(rows("&assignee=none&status=open").await), ["b2"]);
    assert_eq!(
        ids(rows("&assignee=nobody-here").await),
        Vec::<String>::new()
    );
    for bad in ["status=closed", "status=", "assignee=", "assignee=a%20b"] {
        let refused = http.get(&format!("/v1/inbox?{bad}"), Some(&olga)).await;
        assert_eq!(refused.status, 400, "{bad}");
        let code = refused.json()["code"].as_str().unwrap().to_owned();
        assert!(
            code == "bad_request" || code == "invalid_user_id",
            "{bad}: {code}"
        );
    }
}

backend_tests!(
    booking_upsert_and_close,
    assignment_transfer_and_status_are_in_the_timeline,
    private_notes_never_reach_clients,
    presence_and_round_robin,
    inbox_is_right_after_a_reconnect,
    events_api_returns_what_was_missed,
    inbox_filters_and_waiting,
);
