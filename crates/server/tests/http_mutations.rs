//! The HTTP API against mutated requests, in process (the router itself, no sockets): every
//! route's JSON body and query string is mutated thousands of times (seeded, so a failure
//! reproduces) — values swapped for other types, huge and negative numbers, deep nesting, keys
//! dropped and added, bytes flipped and cut, query keys repeated and percent-encoded badly.
//! No request may panic or answer 5xx; every refusal is a problem document with a `code`; and
//! the messages stored before the run are still there, unchanged, after it.
//!
//! `SURECHAT_FUZZ_CASES=2000000 cargo test --release -p surechat-server --test http_mutations`
//! runs millions.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Backend, TestServer, ADMIN};
use protocol::Role;
use serde_json::{json, Value};
use tower::ServiceExt;

/// Requests per run (body and query mutations together), sized for debug builds.
const CASES: usize = 12_000;

/// xorshift64: the mutations' own stream, seeded below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Who calls: the admin key, an operator or a client token.
#[derive(Clone, Copy)]
enum Caller {
    Admin,
    Operator,
    Client,
}

/// A well-formed request of every route that reads a body or a query string.
fn seeds() -> Vec<(&'static str, &'static str, Caller, Option<Value>)> {
    use Caller::*;
    vec![
        (
            "POST",
            "/v1/tokens",
            Admin,
            Some(json!({"user_id": "ana", "role": "client", "ttl_s": 60, "scope": "all"})),
        ),
        (
            "POST",
            "/v1/conversations",
            Admin,
            Some(json!({"id": "c2", "participants": [{"user_id": "ana", "role": "client"}]})),
        ),
        (
            "PUT",
            "/v1/conversations/c3",
            Admin,
            Some(
                json!({"participants": [{"user_id": "ana", "role": "client"}],
                "metadata": {"room": 12, "dates": ["a", "b"]}, "closed": false}),
            ),
        ),
        (
            "POST",
            "/v1/conversations/b1/participants",
            Admin,
            Some(json!({"user_id": "zed", "role": "client"})),
        ),
        (
            "POST",
            "/v1/conversations/b1/messages",
            Client,
            Some(json!({"id": "5f0c1e2a-8b4d-4c6e-9a1b-2c3d4e5f6a7b", "body": "hello"})),
        ),
        (
            "POST",
            "/v1/conversations/b1/messages",
            Operator,
            Some(
                json!({"id": "6f0c1e2a-8b4d-4c6e-9a1b-2c3d4e5f6a7b", "body": "a note", "kind": "note"}),
            ),
        ),
        (
            "POST",
            "/v1/conversations/b1/receipts",
            Client,
            Some(json!({"delivered": 2, "read": 1})),
        ),
        (
            "POST",
            "/v1/conversations/b1/assign",
            Operator,
            Some(json!({"operator_id": "omar", "note": "over to you"})),
        ),
        (
            "POST",
            "/v1/conversations/b1/status",
            Operator,
            Some(json!({"status": "pending"})),
        ),
        (
            "PUT",
            "/v1/operators/otto",
            Admin,
            Some(
                json!({"name": "Otto", "avatar_url": "https://example.com/a.png", "active": true}),
            ),
        ),
        (
            "POST",
            "/v1/webhooks",
            Admin,
            Some(json!({"url": "https://example.com/hook", "secret": "0123456789abcdef0123"})),
        ),
        ("POST", "/v1/users/zed/revoke", Admin, Some(json!({}))),
        (
            "GET",
            "/v1/conversations/b1/messages?after=0&limit=50",
            Client,
            None,
        ),
        ("GET", "/v1/events?after=0&limit=20", Admin, None),
        ("GET", "/v1/inbox?view=mine", Operator, None),
        ("GET", "/v1/conversations?limit=10", Client, None),
        ("GET", "/v1/operators?active=true", Operator, None),
    ]
}

/// Replacement values of every JSON type, including the awkward ones.
fn odd_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(16) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(1e308),
        5 => json!(0.5),
        6 => json!(""),
        7 => json!("x".repeat(rng.below(3000))),
        8 => json!("\u{0}\u{202e}\u{1F600}</script>"),
        9 => json!(9_007_199_254_740_993u64),
        10 if depth < 40 => json!([odd_value(rng, depth + 1)]),
        11 if depth < 40 => json!({"k": odd_value(rng, depth + 1)}),
        12 => json!("../../etc/passwd"),
        13 => json!("operator"),
        14 => json!(i64::MIN),
        _ => json!("5f0c1e2a-8b4d-4c6e-9a1b-2c3d4e5f6a7b"),
    }
}

/// A structure-aware change to a JSON value: a field replaced, removed or added, or the
/// whole value swapped for another type.
fn mutate_value(rng: &mut Rng, value: &mut Value, depth: usize) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.below(5) != 0 => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys[rng.below(keys.len())].clone();
            match rng.below(4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("{key}_extra"), odd_value(rng, depth));
                }
                _ => mutate_value(rng, map.get_mut(&key).unwrap(), depth + 1),
            }
        }
        Value::Array(items) if !items.is_empty() && rng.below(4) != 0 => {
            let i = rng.below(items.len());
            match rng.below(3) {
                0 => {
                    let copy = items[i].clone();
                    for _ in 0..rng.below(64) {
                        items.push(copy.clone());
                    }
                }
                _ => mutate_value(rng, &mut items[i], depth + 1),
            }
        }
        _ => *value = odd_value(rng, depth),
    }
}

/// A byte-level change: flipped, cut, duplicated, or spliced with JSON punctuation.
fn mutate_bytes(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const PIECES: &[&[u8]] = &[
        b"{", b"}", b"[", b"\"", b":", b",", b"\\u0000", b"\xff", b"1e999",
    ];
    let at = rng.below(bytes.len() + 1);
    match rng.below(4) {
        0 if !bytes.is_empty() => {
            let i = at.min(bytes.len() - 1);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(at),
        2 => {
            let piece = PIECES[rng.below(PIECES.len())];
            bytes.splice(at..at, piece.iter().copied());
        }
        _ => {
            let end = (at + rng.below(16)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(at..at, copy);
        }
    }
}

/// A mutated query string: values replaced, keys repeated or unknown, bad percent-encoding.
fn mutate_query(rng: &mut Rng, query: &str) -> String {
    const VALUES: &[&str] = &[
        "",
        "-1",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
        "1e3",
        "0x10",
        "%00",
        "%ff%fe",
        "%",
        "%zz",
        "mine",
        "all",
        "unassigned",
        "%F0%9F%98%80",
        "true",
        "+1",
        "%201",
        "%2B%26%3D",
    ];
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    for _ in 0..1 + rng.below(3) {
        match rng.below(5) {
            0 if !pairs.is_empty() => {
                let i = rng.below(pairs.len());
                pairs[i].1 = VALUES[rng.below(VALUES.len())].to_owned();
            }
            1 if !pairs.is_empty() => {
                let i = rng.below(pairs.len());
                let repeated = (
                    pairs[i].0.clone(),
                    VALUES[rng.below(VALUES.len())].to_owned(),
                );
                pairs.push(repeated);
            }
            2 => pairs.push(("unknown".into(), VALUES[rng.below(VALUES.len())].into())),
            3 if !pairs.is_empty() => {
                pairs.remove(rng.below(pairs.len()));
            }
            _ => pairs.push((
                VALUES[rng.below(VALUES.len())].into(),
                VALUES[rng.below(VALUES.len())].into(),
            )),
        }
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[tokio::test]
async fn mutated_requests_are_refused_cleanly_and_change_nothing_accepted() {
    let server = TestServer::with_config(Backend::Memory, |c| {
        // Mutated sends must meet the validators, not the rate limit.
        c.sends_per_second_max = 1_000_000;
        c.sends_burst_max = 1_000_000;
    })
    .await;
    server.booking("b1").await;
    let client = server.token("ana", Role::Client);
    let operator = server.token("olga", Role::Operator);
    // Messages accepted before the run: they must come out of it unchanged.
    let mut ana = server.device("ana", Role::Client).await;
    for i in 0..3 {
        let id = ana.send_message("b1", &format!("kept {i}")).await;
        ana.ack(&id).await;
    }
    // The messages accepted before the run, as (id, seq, body).
    let kept = || async {
        let page = server
            .http
            .get(
                "/v1/conversations/b1/messages?after=0&limit=100",
                Some(&client),
            )
            .await
            .json();
        page["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["body"].as_str().is_some_and(|b| b.starts_with("kept ")))
            .map(|m| (m["id"].clone(), m["seq"].clone(), m["body"].clone()))
            .collect::<Vec<_>>()
    };
    let before = kept().await;
    assert_eq!(before.len(), 3);
    let app = server::app(server.state.clone());
    let seeds = seeds();
    let mut rng = Rng(0x005e_ed0f_4774_u64);
    let mut answered: std::collections::BTreeMap<u16, usize> = Default::default();
    for case in 0..testkit::fuzz_cases(CASES) {
        let (method, target, caller, body) = &seeds[case % seeds.len()];
        let token = match caller {
            Caller::Admin => ADMIN,
            Caller::Operator => &operator,
            Caller::Client => &client,
        };
        let (uri, bytes) = match body {
            Some(body) => {
                let bytes = if rng.below(3) == 0 {
                    let mut bytes = body.to_string().into_bytes();
                    for _ in 0..1 + rng.below(3) {
                        mutate_bytes(&mut rng, &mut bytes);
                    }
                    bytes
                } else {
                    let mut value = body.clone();
                    for _ in 0..1 + rng.below(3) {
                        mutate_value(&mut rng, &mut value, 0);
                    }
                    value.to_string().into_bytes()
                };
                (target.to_string(), bytes)
            }
            None => {
                let (path, query) = target.split_once('?').unwrap_or((target, ""));
                (
                    format!("{path}?{}", mutate_query(&mut rng, query)),
                    Vec::new(),
                )
            }
        };
        let request = Request::builder()
            .method(*method)
            .uri(&uri)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(bytes.clone()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = axum::body::to_bytes(response.into_body(), 1 << 24)
            .await
            .unwrap();
        let what = || {
            format!(
                "case {case}: {method} {uri} {} -> {status} {}",
                String::from_utf8_lossy(&bytes),
                String::from_utf8_lossy(&text)
            )
        };
        *answered.entry(status.as_u16()).or_default() += 1;
        assert!(!status.is_server_error(), "{}", what());
        if status.is_client_error() {
            assert_eq!(content_type, "application/problem+json", "{}", what());
            let problem: Value =
                serde_json::from_slice(&text).unwrap_or_else(|_| panic!("{}", what()));
            assert!(problem["code"].is_string(), "{}", what());
            assert_eq!(problem["status"], status.as_u16(), "{}", what());
        } else {
            assert!(status.is_success(), "{}", what());
        }
    }
    assert!(
        answered.keys().any(|s| *s < 300) && answered.get(&400).is_some_and(|n| *n > 100),
        "both accepted and refused requests: {answered:?}"
    );
    assert_eq!(kept().await, before, "what was accepted is unchanged");
    assert_eq!(
        server.http.get("/healthz", None).await.status,
        StatusCode::OK.as_u16()
    );
}
