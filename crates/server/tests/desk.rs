//! The operators' desk over HTTP, on every backend: searching messages (`GET /v1/search`).

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

backend_tests!(search_sees_what_the_operator_may_read);
