//! The Rust session replays the shared scenario files (`crates/protocol/tests/scenarios/`), the
//! same ones the browser SDK's session replays (`tests/browser/unit/scenarios.test.mjs`):
//! commands, server frames, time, network and storage failures in, frames and statuses out.
//! The steps are described in that directory's README.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use client::{Action, Config, Session};
use protocol::frames::decode_server_frame;
use serde_json::Value;

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/tests/scenarios")
}

#[test]
fn every_scenario_replays() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios_dir())
        .expect("the scenarios directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("json"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "scenarios missing: {files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let scenario: Value = serde_json::from_str(&text).unwrap();
        Replay::new().run(&scenario);
    }
}

/// A session on virtual time whose transport opens at once and whose store fails on demand.
struct Replay {
    session: Session,
    now: Instant,
    attempt: u64,
    store_fails: bool,
    sent: Vec<Value>,
}

impl Replay {
    fn new() -> Self {
        let config = Config {
            seed: 1,
            ..Config::default()
        };
        Replay {
            session: Session::new(config, "t"),
            now: Instant::now(),
            attempt: 0,
            store_fails: false,
            sent: Vec::new(),
        }
    }

    /// Drains the session like a driver: actions, events (stored, or the store fails),
    /// transmits.
    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                if let Action::Connect { attempt } = action {
                    self.attempt = attempt;
                    self.session.handle_open(self.now, attempt);
                }
            }
            let mut events = 0;
            while self.session.poll_event().is_some() {
                events += 1;
            }
            if events > 0 && self.store_fails {
                self.store_fails = false;
                self.session.handle_store_failure(self.now);
            }
            while let Some(frame) = self.session.poll_transmit() {
                progressed = true;
                self.sent
                    .push(serde_json::from_str(&frame.encode()).unwrap());
            }
            if !progressed && events == 0 {
                return;
            }
        }
    }

    /// Moves time to `until`, firing every timeout on the way.
    fn fire(&mut self, until: Instant) {
        while let Some(at) = self.session.poll_timeout().filter(|at| *at <= until) {
            self.now = self.now.max(at);
            self.session.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn run(&mut self, scenario: &Value) {
        let name = scenario["name"].as_str().expect("a name");
        let steps = scenario["steps"].as_array().expect("steps");
        for (index, step) in steps.iter().enumerate() {
            let mut shown = step.to_string();
            shown.truncate(120);
            let at = format!("{name}, step {index}: {shown}");
            let str_of = |key: &str| step[key].as_str().unwrap_or_else(|| panic!("{at}: {key}"));
            if let Some(command) = step["do"].as_str() {
                match command {
                    "connect" => self.session.connect(self.now),
                    "send" => {
                        self.session.send(
                            self.now,
                            str_of("id").to_owned(),
                            str_of("conversation"),
                            str_of("body"),
                            None,
                        );
                    }
                    "close" => self.session.handle_close(
                        self.now,
                        self.attempt,
                        step["code"].as_u64().map(|c| c as u16),
                    ),
                    "set_token" => self.session.set_token(self.now, str_of("token")),
                    "network" => self
                        .session
                        .handle_network(self.now, step["up"].as_bool().expect("up")),
                    other => panic!("{at}: unknown command {other}"),
                }
            } else if let Some(frame) = step.get("frame") {
                let frame =
                    decode_server_frame(&frame.to_string()).unwrap_or_else(|e| panic!("{at}: {e}"));
                self.session.handle_frame(self.now, frame);
            } else if step.get("store").and_then(Value::as_str) == Some("fail") {
                self.store_fails = true;
            } else if let Some(ms) = step["advance_ms"].as_u64() {
                self.fire(self.now + Duration::from_millis(ms));
            } else if step.get("advance_to_next_timeout").is_some() {
                let next = self
                    .session
                    .poll_timeout()
                    .expect("a timeout to advance to");
                self.fire(next);
            } else if let Some(expected) = step.get("expect_transmit") {
                let sent = Value::Array(std::mem::take(&mut self.sent));
                assert_eq!(sent, within_ranges(expected, &sent), "{at}");
            } else if let Some(range) = step.get("expect_next_timeout_ms") {
                let next = self.session.poll_timeout().expect("a timeout");
                let wait = next.duration_since(self.now).as_millis() as u64;
                let (min, max) = (
                    range["min"].as_u64().unwrap(),
                    range["max"].as_u64().unwrap(),
                );
                assert!((min..=max).contains(&wait), "{at}: {wait} ms");
            } else if let Some(status) = step["expect_connection"].as_str() {
                assert_eq!(self.session.status().name(), status, "{at}");
            } else if let Some(expected) = step.get("expect_status") {
                let id = expected["id"].as_str().unwrap();
                let status = self.session.delivery_status(id).map(|s| s.name());
                assert_eq!(status, expected["status"].as_str(), "{at}");
            } else if let Some(pending) = step["expect_pending"].as_u64() {
                assert_eq!(self.session.pending_count() as u64, pending, "{at}");
            } else {
                panic!("{at}: unknown step");
            }
            self.drain();
        }
    }
}

/// `expected` with each `{"min", "max"}` field replaced by the number `sent` has there, when that
/// number is in the range (inclusive); otherwise left as is, so the comparison fails.
fn within_ranges(expected: &Value, sent: &Value) -> Value {
    let mut expected = expected.clone();
    let (Some(frames), Some(sent)) = (expected.as_array_mut(), sent.as_array()) else {
        return expected;
    };
    for (frame, actual) in frames.iter_mut().zip(sent) {
        let Some(fields) = frame.as_object_mut() else {
            continue;
        };
        for (name, value) in fields.iter_mut() {
            let (Some(min), Some(max)) = (value["min"].as_u64(), value["max"].as_u64()) else {
                continue;
            };
            if let Some(n) = actual[name.as_str()]
                .as_u64()
                .filter(|n| (min..=max).contains(n))
            {
                *value = Value::from(n);
            }
        }
    }
    expected
}
