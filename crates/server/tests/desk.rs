//! The operators' desk over HTTP, on every backend: searching messages (`GET /v1/search`) and
//! saved replies (`/v1/canned`).

mod common;

use common::{Backend, TestServer};
use protocol::Role;
use serde_json::{json, Value};

async fn send(server: &TestServer, token: &str, conversation: &str, body: Value) {
    let sent = server
        .http
        .json(
            "POST",
            &format!("/v1/conversations/{conversation}/messages"),
            Some(token),
            &body,
        )
        .await;
    assert_eq!(sent.status, 201, "{}", sent.body);
}

/// Operators find messages and notes of their own conversations (every one with scope `all`),
/// with a plain-text snippet and the matches' offsets; clients may not search.
async fn search_sees_what_the_operator_may_read(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    server.booking("b1").await;
    server
        .conversation("b2", &[("ben", Role::Client), ("omar", Role::Operator)])
        .await;
    let ana = server.token("ana", Role::Client);
    let olga = server.token("olga", Role::Operator);
    let omar = server.token("omar", Role::Operator);
    send(
        &server,
        &ana,
        "b1",
        json!({"id": testkit::uuid(), "body": "Is <b>parking</b> free?"}),
    )
    .await;
    send(
        &server,
        &olga,
        "b1",
        json!({"id": testkit::uuid(), "body": "Parking: ask at the desk", "kind": "note"}),
    )
    .await;
    let ids = |response: &testkit::HttpResponse| -> Vec<(String, String)> {
        response.json()["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["conversation_id"].as_str().unwrap().into(),
                    r["kind"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let found = http.get("/v1/search?q=PARK", Some(&olga)).await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(
        ids(&found),
        [
            ("b1".to_string(), "note".to_string()),
            ("b1".into(), "text".into())
        ],
        "newest first, the private note included"
    );
    let text = &found.json()["results"][1];
    assert_eq!(
        text["snippet"], "Is <b>parking</b> free?",
        "plain text, as written"
    );
    assert_eq!(text["highlights"], json!([{"start": 6, "end": 13}]));
    assert_eq!(text["sender"], "ana");
    assert_eq!(text["seq"], 1);
    // omar takes no part in b1: nothing, even naming it.
    assert_eq!(
        ids(&http.get("/v1/search?q=parking", Some(&omar)).await),
        []
    );
    assert_eq!(
        ids(&http
            .get("/v1/search?q=parking&conversation=b1", Some(&omar))
            .await),
        []
    );
    // Scope `all` reads every conversation.
    let boss =
        server
            .state
            .auth
            .mint_scoped("boss", Role::Operator, Some("all"), server::now_s(), 60);
    assert_eq!(
        ids(&http.get("/v1/search?q=parking&limit=1", Some(&boss)).await).len(),
        1
    );
    assert_eq!(
        ids(&http
            .get("/v1/search?q=parking&conversation=b2", Some(&boss))
            .await),
        []
    );
    // Clients may not search.
    let refused = http.get("/v1/search?q=parking", Some(&ana)).await;
    assert_eq!(
        (refused.status, refused.json()["code"].as_str()),
        (403, Some("forbidden"))
    );
    // Query syntax is only text; bad parameters are typed.
    for q in ["%22", "AND%20(", "*", "%27"] {
        let answered = http.get(&format!("/v1/search?q={q}"), Some(&olga)).await;
        assert_eq!(answered.status, 200, "{q}: {}", answered.body);
    }
    for (query, code) in [
        ("", "bad_request"),
        ("q=", "bad_request"),
        ("q=%0C%20", "bad_request"),
        ("q=park&limit=0", "invalid_cursor"),
        ("q=park&limit=101", "invalid_cursor"),
        ("q=park&conversation=a%20b", "invalid_conversation_id"),
    ] {
        let refused = http.get(&format!("/v1/search?{query}"), Some(&olga)).await;
        assert_eq!(
            (refused.status, refused.json()["code"].as_str()),
            (400, Some(code)),
            "{query}"
        );
    }
    let long = "a".repeat(201);
    assert_eq!(
        http.get(&format!("/v1/search?q={long}"), Some(&olga))
            .await
            .status,
        400
    );
}

/// Operators share saved replies: created with a server id, listed by shortcut, changed,
/// removed, each change in the audit log; a taken shortcut is `shortcut_taken`; clients may not.
async fn saved_replies_are_shared_by_operators(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    let olga = server.token("olga", Role::Operator);
    let omar = server.token("omar", Role::Operator);
    let ana = server.token("ana", Role::Client);
    let wifi = json!({"shortcut": "wifi", "title": "Wi-Fi", "body": "Network: Casa, password on the fridge."});
    let created = http.json("POST", "/v1/canned", Some(&olga), &wifi).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let created = created.json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(
        id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(
        (&created["created_by"], &created["body"]),
        (&json!("olga"), &wifi["body"])
    );
    let again = http.json("POST", "/v1/canned", Some(&omar), &wifi).await;
    assert_eq!(
        (again.status, again.json()["code"].as_str()),
        (409, Some("shortcut_taken"))
    );
    let parking = json!({"shortcut": "parking", "title": "Parking", "body": "Code 4411"});
    assert_eq!(
        http.json("POST", "/v1/canned", Some(&omar), &parking)
            .await
            .status,
        201
    );
    let list = http.get("/v1/canned", Some(&omar)).await;
    assert_eq!(list.status, 200);
    let shortcuts: Vec<Value> = list.json()["replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["shortcut"].clone())
        .collect();
    assert_eq!(shortcuts, [json!("parking"), json!("wifi")]);
    // Changed by another operator; the creator stays.
    let changed = http
        .json(
            "PUT",
            &format!("/v1/canned/{id}"),
            Some(&omar),
            &json!({"shortcut": "wifi-2", "title": "Wi-Fi", "body": "New password"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        (&changed.json()["shortcut"], &changed.json()["created_by"]),
        (&json!("wifi-2"), &json!("olga"))
    );
    let taken = http
        .json("PUT", &format!("/v1/canned/{id}"), Some(&omar), &parking)
        .await;
    assert_eq!(
        (taken.status, taken.json()["code"].as_str()),
        (409, Some("shortcut_taken"))
    );
    let unknown = http
        .json(
            "PUT",
            "/v1/canned/0123456789abcdef01234567",
            Some(&omar),
            &parking,
        )
        .await;
    assert_eq!(
        (unknown.status, unknown.json()["code"].as_str()),
        (404, Some("not_found"))
    );
    // Bad input is typed, and clients may not touch saved replies.
    for bad in [
        json!({"shortcut": "Wifi", "title": "t", "body": "b"}),
        json!({"shortcut": "", "title": "t", "body": "b"}),
        json!({"shortcut": "a".repeat(33), "title": "t", "body": "b"}),
        json!({"shortcut": "ok", "title": " ", "body": "b"}),
        json!({"shortcut": "ok", "title": "t", "body": "x".repeat(4097)}),
        json!({"shortcut": "ok", "title": "t"}),
    ] {
        let refused = http.json("POST", "/v1/canned", Some(&olga), &bad).await;
        assert_eq!(
            (refused.status, refused.json()["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}"
        );
    }
    assert_eq!(
        http.raw("DELETE", "/v1/canned/not-an-id", Some(&olga), None)
            .await
            .status,
        400
    );
    for (method, path) in [
        ("GET", "/v1/canned".to_string()),
        ("DELETE", format!("/v1/canned/{id}")),
    ] {
        let refused = http.raw(method, &path, Some(&ana), None).await;
        assert_eq!(
            (refused.status, refused.json()["code"].as_str()),
            (403, Some("forbidden")),
            "{method}"
        );
    }
    let refused = http
        .json(
            "POST",
            "/v1/canned",
            Some(&ana),
            &json!({"shortcut": "x", "title": "t", "body": "b"}),
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        http.raw("DELETE", &format!("/v1/canned/{id}"), Some(&olga), None)
            .await
            .status,
        204
    );
    assert_eq!(
        http.raw("DELETE", &format!("/v1/canned/{id}"), Some(&olga), None)
            .await
            .status,
        404
    );
    let actions: Vec<String> = server
        .state
        .store
        .audit_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.target.as_deref() == Some(id.as_str()))
        .map(|e| format!("{} {}", e.actor, e.action))
        .collect();
    assert_eq!(
        actions,
        [
            "olga canned_created",
            "omar canned_updated",
            "olga canned_deleted"
        ]
    );
}

backend_tests!(
    search_sees_what_the_operator_may_read,
    saved_replies_are_shared_by_operators,
);
