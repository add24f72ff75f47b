//! A device that knows only protocol version 1, as frozen in
//! `crates/protocol/tests/frozen/v1/`: it writes frames copied from those vectors, reads every
//! server frame as plain JSON, keeps only the frame types version 1 had — ignoring any newer
//! type and any field it does not know — and expects each kept frame to carry every field
//! version 1 always sent. The server of today must serve it fully: welcome, ack, live messages,
//! receipts, pong.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Backend, TestServer};
use futures_util::{SinkExt, StreamExt};
use protocol::Role;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn frozen(file: &str) -> Vec<Value> {
    let path = format!(
        "{}/../protocol/tests/frozen/v1/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let value: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    value["vectors"].as_array().unwrap().clone()
}

/// A version-1 device frame, from the frozen vector `name`, with `changes` applied.
fn v1_frame(name: &str, changes: &[(&str, Value)]) -> String {
    let mut frame = frozen("client_frames.json")
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no version-1 vector {name}"))["frame"]
        .clone();
    for (key, value) in changes {
        frame[*key] = value.clone();
    }
    frame.to_string()
}

/// Per server frame type of version 1, the fields every vector of that type has.
fn v1_server_fields() -> BTreeMap<String, BTreeSet<String>> {
    let mut fields: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in frozen("server_frames.json") {
        let frame = v["frame"].as_object().unwrap();
        let keys: BTreeSet<String> = frame.keys().cloned().collect();
        let kind = frame["type"].as_str().unwrap().to_owned();
        fields
            .entry(kind)
            .and_modify(|k| *k = k.intersection(&keys).cloned().collect())
            .or_insert(keys);
    }
    fields
}

struct OldDevice {
    ws: testkit::Ws,
    v1: BTreeMap<String, BTreeSet<String>>,
    ignored: usize,
}

impl OldDevice {
    async fn connect(server: &TestServer, token: &str) -> OldDevice {
        let mut device = OldDevice {
            ws: testkit::connect_raw(&server.ws).await,
            v1: v1_server_fields(),
            ignored: 0,
        };
        device
            .write(&v1_frame("hello_first_connect", &[("token", token.into())]))
            .await;
        device.until("welcome", |_| true).await;
        device
    }

    async fn write(&mut self, text: &str) {
        self.ws.send(WsMessage::text(text)).await.unwrap();
    }

    /// Reads until a version-1 frame of `kind` that `wanted` accepts; checks every version-1
    /// frame on the way and skips anything newer.
    async fn until(&mut self, kind: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let next = tokio::time::timeout(testkit::WAIT, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` in time"));
            let Some(Ok(WsMessage::Text(text))) = next else {
                match next {
                    Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                    other => panic!("the connection ended waiting for `{kind}`: {other:?}"),
                }
            };
            let frame: Value = serde_json::from_str(text.as_str()).unwrap();
            let Some(needs) = frame["type"].as_str().and_then(|t| self.v1.get(t)) else {
                self.ignored += 1; // a frame type version 1 did not have
                continue;
            };
            for field in needs {
                assert!(
                    frame.get(field).is_some(),
                    "a version-1 `{}` always had `{field}`: {frame}",
                    frame["type"]
                );
            }
            if frame["type"] == kind && wanted(&frame) {
                return frame;
            }
        }
    }
}

async fn a_version_1_device_is_served_fully(backend: Backend) {
    let server = TestServer::start(backend).await;
    server.booking("b1").await;
    let mut ana = OldDevice::connect(&server, &server.token("ana", Role::Client)).await;
    let mut olga = OldDevice::connect(&server, &server.token("olga", Role::Operator)).await;

    let id = testkit::uuid();
    let send = v1_frame(
        "send",
        &[
            ("id", id.clone().into()),
            ("conversation", "b1".into()),
            ("body", "sent by a version-1 device".into()),
        ],
    );
    ana.write(&send).await;
    let ack = ana.until("ack", |f| f["id"] == id.as_str()).await;
    let seq = ack["seq"].as_u64().expect("a seq");
    let message = olga.until("message", |f| f["id"] == id.as_str()).await;
    assert_eq!(message["seq"], seq);
    assert_eq!(message["body"], "sent by a version-1 device");

    // A repeat is acked again, same seq: idempotency as version 1 promised it.
    ana.write(&send).await;
    let again = ana.until("ack", |f| f["id"] == id.as_str()).await;
    assert_eq!(again["seq"], seq);

    olga.write(&v1_frame(
        "receipt_read",
        &[("conversation", "b1".into()), ("read", seq.into())],
    ))
    .await;
    let receipt = ana
        .until("receipt", |f| {
            f["user_id"] == "olga" && f["read"].as_u64().is_some_and(|r| r >= seq)
        })
        .await;
    assert_eq!(receipt["conversation"], "b1");

    ana.write(&v1_frame("ping_with_ref", &[])).await;
    ana.until("pong", |f| f.get("ref").is_some()).await;
}

backend_tests!(a_version_1_device_is_served_fully);
