//! `/v1/openapi.json` against what the server really answers: every documented operation is
//! called, and each answer's status must be documented for it and its body must match the
//! documented schema.

mod common;

use std::collections::BTreeSet;

use common::{Backend, TestServer, ADMIN};
use protocol::Role;
use serde_json::{json, Value};
use testkit::HttpResponse;

/// A validator for the JSON Schema subset the document uses.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap();
        return validate(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        for s in all {
            validate(doc, s, value, at)?;
        }
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            if !options.iter().any(|s| validate(doc, s, value, at).is_ok()) {
                return Err(format!("{at}: {value} matches none of {key}"));
            }
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{at}: {value} is not {constant}"));
        }
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = kinds.iter().any(|k| match *k {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_u64() || value.is_i64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {kinds:?}"));
        }
    }
    if let (Some(object), Some(properties)) = (
        value.as_object(),
        schema.get("properties").and_then(Value::as_object),
    ) {
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: missing required `{name}`"));
            }
        }
        for (name, v) in object {
            match properties.get(name) {
                Some(s) => validate(doc, s, v, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: unexpected `{name}`"))
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(doc, schema, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String)>,
}

impl Checker {
    /// Checks an answer of `method path` (the documented template) against the document.
    fn check(&mut self, method: &str, path: &str, response: &HttpResponse) {
        let operation = &self.doc["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let documented = &operation["responses"][response.status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {path} answered {} which is not documented: {}",
            response.status,
            response.body
        );
        if let Some(content) = documented["content"].as_object() {
            let (media, spec) = content.iter().next().unwrap();
            let actual = response.header("content-type").unwrap_or("");
            assert!(
                media == "*/*" || actual.starts_with(media.as_str()),
                "{method} {path}: content type {actual}, documented {media}"
            );
            if media.contains("json") {
                let body: Value = serde_json::from_str(&response.body).unwrap();
                if let Err(why) = validate(&self.doc, &spec["schema"], &body, "$") {
                    panic!(
                        "{method} {path} ({}): {why}\n{}",
                        response.status, response.body
                    );
                }
            }
        }
        self.seen.insert((method.to_owned(), path.to_owned()));
    }
}

async fn the_document_matches_the_answers(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    let raw = http.get("/v1/openapi.json", None).await;
    let doc = raw.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut c = Checker {
        doc,
        seen: BTreeSet::new(),
    };
    c.check("get", "/v1/openapi.json", &raw);
    c.check("get", "/healthz", &http.get("/healthz", None).await);
    c.check("get", "/readyz", &http.get("/readyz", None).await);
    c.check("get", "/metrics", &http.get("/metrics", None).await);
    let token = http
        .json(
            "POST",
            "/v1/tokens",
            Some(ADMIN),
            &json!({"user_id": "ana", "role": "client", "ttl_s": 600}),
        )
        .await;
    c.check("post", "/v1/tokens", &token);
    let ana = token.json()["token"].as_str().unwrap().to_owned();
    c.check(
        "post",
        "/v1/tokens",
        &http
            .json(
                "POST",
                "/v1/tokens",
                Some(ADMIN),
                &json!({"user_id": "ana", "role": "client", "ttl_s": 0}),
            )
            .await,
    );
    c.check(
        "post",
        "/v1/tokens",
        &http
            .json(
                "POST",
                "/v1/tokens",
                Some(&ana),
                &json!({"user_id": "x", "role": "client"}),
            )
            .await,
    );
    let olga = server.token("olga", Role::Operator);
    let body = json!({"id": "b1", "participants": [{"user_id": "ana", "role": "client"}, {"user_id": "olga", "role": "operator"}]});
    c.check(
        "post",
        "/v1/conversations",
        &http
            .json("POST", "/v1/conversations", Some(ADMIN), &body)
            .await,
    );
    c.check(
        "post",
        "/v1/conversations",
        &http
            .json("POST", "/v1/conversations", Some(ADMIN), &body)
            .await,
    );
    c.check(
        "post",
        "/v1/conversations",
        &http
            .json(
                "POST",
                "/v1/conversations",
                Some(ADMIN),
                &json!({"id": "bad id"}),
            )
            .await,
    );
    c.check(
        "put",
        "/v1/conversations/{id}",
        &http
            .json(
                "PUT",
                "/v1/conversations/b2",
                Some(ADMIN),
                &json!({"metadata": {"guest": "Ana"}}),
            )
            .await,
    );
    c.check(
        "put",
        "/v1/conversations/{id}",
        &http
            .json(
                "PUT",
                "/v1/conversations/b2",
                Some(ADMIN),
                &json!({"closed": false}),
            )
            .await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}",
        &http.get("/v1/conversations/b1", Some(ADMIN)).await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}",
        &http.get("/v1/conversations/nope", Some(&ana)).await,
    );
    let add = json!({"user_id": "omar", "role": "operator"});
    c.check(
        "post",
        "/v1/conversations/{id}/participants",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/participants",
                Some(ADMIN),
                &add,
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/participants",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/participants",
                Some(ADMIN),
                &add,
            )
            .await,
    );
    c.check(
        "delete",
        "/v1/conversations/{id}/participants/{user_id}",
        &http
            .raw(
                "DELETE",
                "/v1/conversations/b1/participants/omar",
                Some(ADMIN),
                None,
            )
            .await,
    );
    c.check(
        "delete",
        "/v1/conversations/{id}/participants/{user_id}",
        &http
            .raw(
                "DELETE",
                "/v1/conversations/b1/participants/omar",
                Some(ADMIN),
                None,
            )
            .await,
    );
    let message = json!({"id": testkit::uuid(), "body": "hello"});
    c.check(
        "post",
        "/v1/conversations/{id}/messages",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&ana),
                &message,
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/messages",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&ana),
                &message,
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/messages",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&ana),
                &json!({"id": "x", "body": "y"}),
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/messages",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/messages",
                Some(&ana),
                &json!({"id": testkit::uuid(), "body": "z".repeat(20_000)}),
            )
            .await,
    );
    let note = json!({"id": testkit::uuid(), "body": "note", "kind": "note"});
    c.check(
        "post",
        "/v1/conversations/{id}/messages",
        &http
            .json("POST", "/v1/conversations/b1/messages", Some(&olga), &note)
            .await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}/messages",
        &http
            .get(
                "/v1/conversations/b1/messages?after=0&limit=10",
                Some(&olga),
            )
            .await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}/messages",
        &http
            .get("/v1/conversations/b1/messages?after=99", Some(&ana))
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/receipts",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/receipts",
                Some(&olga),
                &json!({"delivered": 1, "read": 1}),
            )
            .await,
    );
    c.check(
        "get",
        "/v1/conversations",
        &http.get("/v1/conversations", Some(&olga)).await,
    );
    c.check(
        "get",
        "/v1/conversations",
        &http.get("/v1/conversations", None).await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/assign",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/assign",
                Some(&olga),
                &json!({"operator_id": "olga", "note": "mine"}),
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/assign",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/assign",
                Some(&ana),
                &json!({"operator_id": null}),
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/status",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/status",
                Some(&olga),
                &json!({"status": "pending"}),
            )
            .await,
    );
    c.check(
        "get",
        "/v1/inbox",
        &http.get("/v1/inbox?view=mine", Some(&olga)).await,
    );
    c.check(
        "get",
        "/v1/inbox",
        &http.get("/v1/inbox?view=all", Some(&olga)).await,
    );
    for query in [
        "q=hello",
        "q=%22",
        "q=hello&limit=0",
        "q=hello&conversation=b1",
    ] {
        c.check(
            "get",
            "/v1/search",
            &http.get(&format!("/v1/search?{query}"), Some(&olga)).await,
        );
    }
    c.check(
        "get",
        "/v1/search",
        &http.get("/v1/search?q=hello", Some(&ana)).await,
    );
    // Uploads and attachments.
    let upload = testkit::uuid();
    let upload_path = format!("/v1/uploads/{upload}");
    let file = b"%PDF-1.4 a file".to_vec();
    let create = json!({"conversation": "b1", "length": file.len(), "name": "a.pdf"});
    for expected in [201, 200] {
        let answer = http.json("PUT", &upload_path, Some(&ana), &create).await;
        assert_eq!(answer.status, expected, "{}", answer.body);
        c.check("put", "/v1/uploads/{id}", &answer);
    }
    let too_large = json!({"conversation": "b1", "length": 1u64 << 40, "name": "a.pdf"});
    c.check(
        "put",
        "/v1/uploads/{id}",
        &http
            .json(
                "PUT",
                &format!("/v1/uploads/{}", testkit::uuid()),
                Some(&ana),
                &too_large,
            )
            .await,
    );
    let bearer = format!("Bearer {ana}");
    let chunk = |offset: &'static str| {
        [
            ("Authorization", bearer.clone()),
            ("Upload-Offset", offset.to_owned()),
            ("Content-Type", "application/offset+octet-stream".to_owned()),
        ]
    };
    let headers = chunk("3");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let mismatch = http.send("PATCH", &upload_path, &headers, &file).await;
    assert_eq!(mismatch.status, 409);
    c.check("patch", "/v1/uploads/{id}", &mismatch);
    let head = http
        .send(
            "HEAD",
            &upload_path,
            &[("Authorization", bearer.as_str())],
            &[],
        )
        .await;
    assert_eq!(head.header("upload-offset"), Some("0"));
    c.check("head", "/v1/uploads/{id}", &head);
    let headers = chunk("0");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let done = http.send("PATCH", &upload_path, &headers, &file).await;
    assert_eq!(done.status, 200, "{}", done.body);
    c.check("patch", "/v1/uploads/{id}", &done);
    c.check(
        "get",
        "/v1/uploads/{id}",
        &http.get(&upload_path, Some(&ana)).await,
    );
    c.check(
        "get",
        "/v1/uploads/{id}",
        &http.get(&upload_path, Some(&olga)).await,
    );
    let sent = http
        .json(
            "POST",
            "/v1/conversations/b1/messages",
            Some(&ana),
            &json!({"id": testkit::uuid(), "body": "", "attachments": [upload]}),
        )
        .await;
    c.check("post", "/v1/conversations/{id}/messages", &sent);
    let attachment = format!("/v1/attachments/{upload}");
    c.check(
        "get",
        "/v1/attachments/{id}",
        &http.get(&attachment, Some(&olga)).await,
    );
    c.check(
        "get",
        "/v1/attachments/{id}",
        &http
            .send(
                "GET",
                &attachment,
                &[("Authorization", bearer.as_str()), ("Range", "bytes=0-3")],
                &[],
            )
            .await,
    );
    c.check(
        "get",
        "/v1/attachments/{id}",
        &http.get(&attachment, None).await,
    );
    let link = http.get(&format!("{attachment}/link"), Some(&olga)).await;
    c.check("get", "/v1/attachments/{id}/link", &link);
    c.check(
        "get",
        "/v1/attachments/{id}",
        &http.get(link.json()["url"].as_str().unwrap(), None).await,
    );
    c.check(
        "get",
        "/v1/attachments/{id}/thumb",
        &http.get(&format!("{attachment}/thumb"), Some(&olga)).await,
    );
    c.check(
        "delete",
        "/v1/uploads/{id}",
        &http.raw("DELETE", &upload_path, Some(&ana), None).await,
    );
    let unnamed = testkit::uuid();
    let unnamed_path = format!("/v1/uploads/{unnamed}");
    http.json("PUT", &unnamed_path, Some(&ana), &create).await;
    c.check(
        "delete",
        "/v1/uploads/{id}",
        &http.raw("DELETE", &unnamed_path, Some(&ana), None).await,
    );
    c.check(
        "get",
        "/v1/widget",
        &http.get("/v1/widget", Some(&ana)).await,
    );
    c.check("get", "/v1/widget", &http.get("/v1/widget", None).await);
    let canned = json!({"shortcut": "hello", "title": "Hello", "body": "Hello! How can I help?"});
    let saved = http.json("POST", "/v1/canned", Some(&olga), &canned).await;
    c.check("post", "/v1/canned", &saved);
    c.check(
        "post",
        "/v1/canned",
        &http.json("POST", "/v1/canned", Some(&olga), &canned).await,
    );
    c.check(
        "get",
        "/v1/canned",
        &http.get("/v1/canned", Some(&olga)).await,
    );
    c.check(
        "get",
        "/v1/canned",
        &http.get("/v1/canned", Some(&ana)).await,
    );
    let canned_path = format!("/v1/canned/{}", saved.json()["id"].as_str().unwrap());
    c.check(
        "put",
        "/v1/canned/{id}",
        &http.json("PUT", &canned_path, Some(&olga), &canned).await,
    );
    c.check(
        "put",
        "/v1/canned/{id}",
        &http.json("PUT", "/v1/canned/x", Some(&olga), &canned).await,
    );
    for _ in 0..2 {
        c.check(
            "delete",
            "/v1/canned/{id}",
            &http.raw("DELETE", &canned_path, Some(&olga), None).await,
        );
    }
    c.check(
        "get",
        "/v1/inbox",
        &http
            .get("/v1/inbox?status=open&assignee=none", Some(&olga))
            .await,
    );
    c.check(
        "get",
        "/v1/inbox",
        &http.get("/v1/inbox?status=closed", Some(&olga)).await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/close",
        &http
            .raw("POST", "/v1/conversations/b2/close", Some(ADMIN), None)
            .await,
    );
    c.check(
        "get",
        "/v1/events",
        &http.get("/v1/events?after=0", Some(ADMIN)).await,
    );
    c.check(
        "get",
        "/v1/events",
        &http.get("/v1/events?after=x", Some(ADMIN)).await,
    );
    let bob = http
        .json(
            "PUT",
            "/v1/operators/bob",
            Some(ADMIN),
            &json!({"name": "Bob Stone"}),
        )
        .await;
    c.check("put", "/v1/operators/{id}", &bob);
    c.check(
        "put",
        "/v1/operators/{id}",
        &http
            .json(
                "PUT",
                "/v1/operators/bob",
                Some(ADMIN),
                &json!({"name": "Bob", "avatar_url": "https://example.com/b.png", "active": false}),
            )
            .await,
    );
    c.check(
        "put",
        "/v1/operators/{id}",
        &http
            .json(
                "PUT",
                "/v1/operators/bob",
                Some(ADMIN),
                &json!({"name": ""}),
            )
            .await,
    );
    c.check(
        "get",
        "/v1/operators",
        &http.get("/v1/operators", Some(&olga)).await,
    );
    c.check(
        "get",
        "/v1/operators",
        &http.get("/v1/operators", Some(&ana)).await,
    );
    c.check(
        "get",
        "/v1/operators/{id}",
        &http.get("/v1/operators/bob", Some(ADMIN)).await,
    );
    c.check(
        "get",
        "/v1/operators/{id}",
        &http.get("/v1/operators/nobody", Some(ADMIN)).await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}/operators",
        &http.get("/v1/conversations/b1/operators", Some(&ana)).await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}/operators",
        &http
            .get("/v1/conversations/nope/operators", Some(&ana))
            .await,
    );
    c.check(
        "delete",
        "/v1/operators/{id}",
        &http
            .raw("DELETE", "/v1/operators/bob", Some(ADMIN), None)
            .await,
    );
    c.check(
        "delete",
        "/v1/operators/{id}",
        &http
            .raw("DELETE", "/v1/operators/bob", Some(ADMIN), None)
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/assign",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/assign",
                Some(&olga),
                &json!({"operator_id": "ana"}),
            )
            .await,
    );
    let created = http
        .json(
            "POST",
            "/v1/webhooks",
            Some(ADMIN),
            &json!({"url": "http://127.0.0.1:9/hooks"}),
        )
        .await;
    c.check("post", "/v1/webhooks", &created);
    c.check(
        "post",
        "/v1/webhooks",
        &http
            .json(
                "POST",
                "/v1/webhooks",
                Some(ADMIN),
                &json!({"url": "ftp://x"}),
            )
            .await,
    );
    let id = created.json()["id"].as_u64().unwrap();
    c.check(
        "get",
        "/v1/webhooks",
        &http.get("/v1/webhooks", Some(ADMIN)).await,
    );
    c.check(
        "post",
        "/v1/webhooks/{id}/enable",
        &http
            .raw(
                "POST",
                &format!("/v1/webhooks/{id}/enable"),
                Some(ADMIN),
                None,
            )
            .await,
    );
    c.check(
        "delete",
        "/v1/webhooks/{id}",
        &http
            .raw("DELETE", &format!("/v1/webhooks/{id}"), Some(ADMIN), None)
            .await,
    );
    c.check(
        "delete",
        "/v1/webhooks/{id}",
        &http
            .raw("DELETE", &format!("/v1/webhooks/{id}"), Some(ADMIN), None)
            .await,
    );
    // Parameters outside their documented domain are problems, never storage errors.
    let huge = u64::MAX;
    c.check(
        "get",
        "/v1/events",
        &http
            .get(&format!("/v1/events?after={huge}"), Some(ADMIN))
            .await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}/messages",
        &http
            .get("/v1/conversations/b1/messages?limit=0", Some(&ana))
            .await,
    );
    c.check(
        "delete",
        "/v1/webhooks/{id}",
        &http
            .raw("DELETE", &format!("/v1/webhooks/{huge}"), Some(ADMIN), None)
            .await,
    );
    c.check(
        "post",
        "/v1/webhooks/{id}/enable",
        &http
            .raw("POST", "/v1/webhooks/x/enable", Some(ADMIN), None)
            .await,
    );
    c.check(
        "delete",
        "/v1/conversations/{id}/participants/{user_id}",
        &http
            .raw(
                "DELETE",
                "/v1/conversations/b1/participants/a%20b",
                Some(ADMIN),
                None,
            )
            .await,
    );
    // Erasing: a conversation made for it, then it again (gone), then a bad id.
    let scratch = json!({"id": "scratch", "participants": [{"user_id": "ana", "role": "client"}]});
    http.json("POST", "/v1/conversations", Some(ADMIN), &scratch)
        .await;
    for expected in [204, 404] {
        let erased = http
            .raw("DELETE", "/v1/conversations/scratch", Some(ADMIN), None)
            .await;
        assert_eq!(erased.status, expected, "{}", erased.body);
        c.check("delete", "/v1/conversations/{id}", &erased);
    }
    c.check(
        "delete",
        "/v1/conversations/{id}",
        &http
            .raw("DELETE", "/v1/conversations/%FF", Some(ADMIN), None)
            .await,
    );
    c.check(
        "get",
        "/v1/conversations/{id}",
        &http.get("/v1/conversations/%FF", Some(ADMIN)).await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/receipts",
        &http
            .raw(
                "POST",
                "/v1/conversations/b1/receipts",
                Some(&olga),
                Some("[1, 1]"),
            )
            .await,
    );
    c.check(
        "post",
        "/v1/conversations/{id}/receipts",
        &http
            .json(
                "POST",
                "/v1/conversations/b1/receipts",
                Some(&olga),
                &json!({"read": huge}),
            )
            .await,
    );
    let oversized = format!("{{\"id\": \"{}\"}}", "x".repeat(500_000));
    c.check(
        "post",
        "/v1/conversations",
        &http
            .raw("POST", "/v1/conversations", Some(ADMIN), Some(&oversized))
            .await,
    );
    // Revoking a user no later call uses, then as a user (401).
    for token in [ADMIN, ana.as_str()] {
        c.check(
            "post",
            "/v1/users/{id}/revoke",
            &http
                .json("POST", "/v1/users/mallory/revoke", Some(token), &json!({}))
                .await,
        );
    }
    // Push subscriptions (the RFC 8291 example's browser keys) and email links.
    c.check("get", "/v1/push/key", &http.get("/v1/push/key", None).await);
    let subscription = json!({"endpoint": "https://push.example.net/send/abc", "expirationTime": null,
        "keys": {"p256dh": "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4",
                 "auth": "BTBZMqHH6r4Tts7J_aSIgg"}});
    let mut subscription_id = String::new();
    for _ in 0..2 {
        let answer = http
            .json("POST", "/v1/push/subscriptions", Some(&ana), &subscription)
            .await;
        c.check("post", "/v1/push/subscriptions", &answer);
        subscription_id = answer.json()["id"].as_str().unwrap().to_owned();
    }
    let mut bad = subscription.clone();
    bad["keys"]["auth"] = json!("c2hvcnQ");
    c.check(
        "post",
        "/v1/push/subscriptions",
        &http
            .json("POST", "/v1/push/subscriptions", Some(&ana), &bad)
            .await,
    );
    c.check(
        "get",
        "/v1/push/subscriptions",
        &http.get("/v1/push/subscriptions", Some(&ana)).await,
    );
    for _ in 0..2 {
        c.check(
            "delete",
            "/v1/push/subscriptions/{id}",
            &http
                .raw(
                    "DELETE",
                    &format!("/v1/push/subscriptions/{subscription_id}"),
                    Some(&ana),
                    None,
                )
                .await,
        );
    }
    c.check(
        "post",
        "/v1/links/redeem",
        &http
            .json(
                "POST",
                "/v1/links/redeem",
                None,
                &json!({"token": "made.up"}),
            )
            .await,
    );
    // Every documented operation was called.
    let documented: BTreeSet<(String, String)> = c.doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    let missing: Vec<_> = documented.difference(&c.seen).collect();
    assert!(missing.is_empty(), "operations never called: {missing:?}");
}

/// What the document promises of itself: every parameter and operation described with its real
/// constraints and every status it can answer.
#[test]
fn the_document_describes_constraints_and_statuses() {
    let doc = server::openapi::document(&server::Config::default());
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let at = format!("{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            let mut needs: Vec<&str> = Vec::new();
            for parameter in op["parameters"].as_array().into_iter().flatten() {
                let schema = &parameter["schema"];
                let constrained = schema.get("pattern").is_some()
                    || schema.get("enum").is_some()
                    || (schema["type"] == "integer" && schema.get("maximum").is_some());
                assert!(constrained, "{at}: parameter {parameter} is unconstrained");
                needs.push("400");
            }
            if op.get("requestBody").is_some() {
                needs.extend(["400", "413"]);
            }
            if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
                needs.extend(["401", "403"]);
            }
            for status in needs {
                assert!(
                    responses.contains_key(status),
                    "{at}: {status} undocumented"
                );
            }
            for (status, response) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/problem+json"]["schema"], problem,
                        "{at}: {status} is not a problem document"
                    );
                }
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    let send = &schemas["SendMessage"]["properties"];
    assert_eq!(send["id"]["pattern"], protocol::ids::MESSAGE_ID_PATTERN);
    // Empty only with attachments: the server answers `empty_message` for an empty body alone.
    assert_eq!(send["body"]["minLength"], Value::Null);
    assert_eq!(
        send["attachments"]["maxItems"],
        protocol::limits::ATTACHMENTS_MAX
    );
    assert_eq!(
        send["body"]["maxLength"],
        protocol::limits::MESSAGE_CHARS_DEFAULT
    );
    assert_eq!(
        schemas["CreateConversation"]["properties"]["id"]["pattern"],
        protocol::ids::CONVERSATION_ID_PATTERN
    );
    assert_eq!(
        schemas["MintToken"]["properties"]["ttl_s"]["maximum"],
        protocol::limits::TOKEN_TTL_S_MAX
    );
}

/// Requests the router itself refuses are problem documents too: 405 with `Allow` for a method a
/// path does not answer, 404 for an unknown path.
async fn the_router_answers_problems(backend: Backend) {
    let server = TestServer::start(backend).await;
    let http = &server.http;
    for (method, path, allow) in [
        ("PATCH", "/v1/conversations/b1", "DELETE,GET,PUT"),
        ("TRACE", "/v1/webhooks/1", "DELETE"),
        ("GET", "/v1/tokens", "POST"),
        ("DELETE", "/v1/conversations", "GET,POST"),
        ("POST", "/v1/ws", "GET"),
        ("PUT", "/web/session.js", "GET"),
    ] {
        let answer = http.raw(method, path, Some(ADMIN), None).await;
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.body);
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(answer.json()["code"], "method_not_allowed");
        let mut listed: Vec<String> = answer
            .header("allow")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        listed.sort();
        assert_eq!(listed.join(","), allow, "{method} {path}");
    }
    for (path, status, code) in [
        ("/v1/nothing/here", 404, "not_found"),
        // Not a WebSocket handshake.
        ("/v1/ws", 400, "bad_request"),
        // Not UTF-8 once decoded.
        ("/web/%FF", 400, "bad_request"),
    ] {
        let answer = http.get(path, Some(ADMIN)).await;
        assert_eq!(answer.status, status, "{path}: {}", answer.body);
        assert_eq!(
            answer.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(answer.json()["code"], code, "{path}");
    }
}

backend_tests!(
    the_document_matches_the_answers,
    the_router_answers_problems
);
