//! Tests of the session on virtual time, against a small model of the server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use protocol::frames::{self, ClientFrame, MessageKind, ServerFrame};
use protocol::{close, ErrorCode, Role};

use super::*;

/// A model of the server: one conversation, ana (client) and olga (operator), in memory.
#[derive(Default)]
struct Model {
    messages: Vec<frames::Message>,
    receipts: BTreeMap<String, (u64, u64)>,
}

const EPOCH: u64 = 42;

impl Model {
    fn welcome(&self, user: &str) -> ServerFrame {
        let participants = [("ana", Role::Client), ("olga", Role::Operator)]
            .iter()
            .map(|(u, r)| {
                let (d, rd) = self.receipts.get(*u).copied().unwrap_or((0, 0));
                frames::ParticipantState {
                    user_id: (*u).into(),
                    role: *r,
                    delivered: d,
                    read: rd,
                }
            })
            .collect();
        ServerFrame::Welcome(frames::Welcome {
            v: 1,
            user_id: user.into(),
            role: if user == "ana" {
                Role::Client
            } else {
                Role::Operator
            },
            connection_id: "c1".into(),
            heartbeat_ms: 25_000,
            timeout_ms: 35_000,
            conversations: vec![frames::ConversationState {
                id: "b1".into(),
                epoch: EPOCH,
                last_seq: self.messages.len() as u64,
                participants,
                status: Default::default(),
                assignee: None,
                metadata: None,
                closed: false,
            }],
        })
    }

    /// Appends a message from `sender` (idempotent by id) and returns it.
    fn append(&mut self, id: &str, sender: &str, body: &str) -> frames::Message {
        if let Some(m) = self.messages.iter().find(|m| m.id == id) {
            return m.clone();
        }
        let message = frames::Message {
            conversation: "b1".into(),
            id: id.into(),
            seq: self.messages.len() as u64 + 1,
            sender: sender.into(),
            role: if sender == "ana" {
                Role::Client
            } else {
                Role::Operator
            },
            body: body.into(),
            ts: 1,
            kind: Default::default(),
            data: None,
            attachments: Vec::new(),
        };
        self.messages.push(message.clone());
        message
    }

    /// Answers the device's frames like the server: welcome + backlog + synced after hello,
    /// ack + echo after send.
    fn answer(&mut self, user: &str, frame: ClientFrame) -> Vec<ServerFrame> {
        match frame {
            ClientFrame::Hello(hello) => {
                let cursor = hello
                    .cursors
                    .iter()
                    .find(|c| c.conversation == "b1")
                    .map_or(0, |c| c.seq);
                let mut out = vec![self.welcome(user)];
                out.extend(
                    self.messages
                        .iter()
                        .skip(cursor as usize)
                        .cloned()
                        .map(ServerFrame::Message),
                );
                out.push(ServerFrame::Synced(frames::Synced {
                    conversation: "b1".into(),
                    seq: self.messages.len() as u64,
                }));
                out
            }
            ClientFrame::Send(send) => {
                let m = self.append(&send.id, user, &send.body);
                vec![
                    ServerFrame::Ack(frames::Ack {
                        id: m.id.clone(),
                        conversation: m.conversation.clone(),
                        seq: m.seq,
                        ts: m.ts,
                    }),
                    ServerFrame::Message(m),
                ]
            }
            ClientFrame::Receipt(r) => {
                let entry = self.receipts.entry(user.into()).or_default();
                entry.0 = entry
                    .0
                    .max(r.delivered.unwrap_or(0))
                    .max(r.read.unwrap_or(0));
                entry.1 = entry.1.max(r.read.unwrap_or(0));
                vec![]
            }
            _ => vec![],
        }
    }
}

/// A session wired to the model through a pretend transport.
struct Rig {
    session: Session,
    user: &'static str,
    open: Option<u64>,
    events: Vec<Event>,
    sent: Vec<ClientFrame>,
}

impl Rig {
    fn new(user: &'static str, config: Config) -> Self {
        Rig {
            session: Session::new(config, "token"),
            user,
            open: None,
            events: Vec::new(),
            sent: Vec::new(),
        }
    }

    /// Drains the session's outputs; the transport opens at once when `reachable`, and frames
    /// reach the model (whose answers come straight back) while it is open.
    fn pump(&mut self, now: Instant, model: &mut Model, reachable: bool) {
        loop {
            let mut progressed = false;
            while let Some(action) = self.session.poll_action() {
                progressed = true;
                match action {
                    Action::Connect { attempt } => {
                        if reachable {
                            self.open = Some(attempt);
                            self.session.handle_open(now, attempt);
                        } else {
                            self.session.handle_close(now, attempt, None);
                        }
                    }
                    Action::Disconnect => self.open = None,
                    // These tests send no files (see `attachments`).
                    Action::Upload(_) | Action::CancelUpload { .. } => {
                        unreachable!("no files here")
                    }
                }
            }
            while let Some(event) = self.session.poll_event() {
                progressed = true;
                self.events.push(event);
            }
            while let Some(frame) = self.session.poll_transmit() {
                progressed = true;
                self.sent.push(frame.clone());
                if self.open.is_some() && reachable {
                    for answer in model.answer(self.user, frame) {
                        self.session.handle_frame(now, answer);
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn statuses(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ConnectionStatus(s) => Some(s.name()),
                _ => None,
            })
            .collect()
    }
}

/// A session connected (hello answered by the model) at `t0`.
fn connected(t0: Instant) -> (Session, Model) {
    let mut session = Session::new(Config::default(), "t");
    let mut model = Model::default();
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!("a connect")
    };
    session.handle_open(t0, attempt);
    let hello = session.poll_transmit().expect("hello");
    for frame in model.answer("ana", hello) {
        session.handle_frame(t0, frame);
    }
    (session, model)
}

#[test]
fn backoff_is_full_jitter_growing_to_a_cap() {
    let config = Config::default();
    assert_eq!(
        config.backoff(0, 0.999_999),
        Duration::from_millis(249),
        "the first retry is fast"
    );
    assert_eq!(config.backoff(1, 0.5), Duration::from_millis(500));
    assert_eq!(config.backoff(3, 0.999_999), Duration::from_millis(3_999));
    assert_eq!(
        config.backoff(10, 0.999_999),
        Duration::from_millis(29_999),
        "capped"
    );
    assert_eq!(
        config.backoff(u32::MAX, 0.999_999),
        Duration::from_millis(29_999),
        "no overflow"
    );
    assert_eq!(
        config.backoff(7, 0.0),
        Duration::ZERO,
        "full jitter reaches zero"
    );
    // The session's own schedule stays inside the windows, and the jitter really varies.
    let mut session = Session::new(
        Config {
            seed: 7,
            ..Config::default()
        },
        "t",
    );
    let t0 = Instant::now();
    let mut now = t0;
    session.connect(now);
    let mut delays = Vec::new();
    for attempt in 0..12u32 {
        let Some(Action::Connect { attempt: id }) = session.poll_action() else {
            panic!("expected a connect")
        };
        session.handle_close(now, id, None);
        let ConnectionStatus::Reconnecting { next_attempt_at } = session.status() else {
            panic!("{:?}", session.status())
        };
        let delay = next_attempt_at - now;
        let window = if attempt == 0 {
            250
        } else {
            (1_000u64 << (attempt - 1)).min(30_000)
        };
        assert!(
            delay < Duration::from_millis(window),
            "attempt {attempt}: {delay:?} ≥ {window} ms"
        );
        delays.push(delay);
        assert_eq!(session.poll_timeout(), Some(next_attempt_at));
        now = next_attempt_at;
        session.handle_timeout(now);
    }
    delays.sort();
    delays.dedup();
    assert!(delays.len() > 8, "jitter varies: {delays:?}");
}

#[test]
fn a_week_offline_then_resume_from_the_cursor() {
    let mut model = Model::default();
    let mut ana = Rig::new("ana", Config::default());
    let t0 = Instant::now();
    ana.session.connect(t0);
    ana.pump(t0, &mut model, true);
    assert_eq!(ana.session.status(), ConnectionStatus::Connected);
    for i in 0..3 {
        let m = model.append(&format!("o{i}"), "olga", "hi");
        ana.session.handle_frame(t0, ServerFrame::Message(m));
    }
    ana.pump(t0, &mut model, true);
    assert_eq!(ana.session.cursor("b1"), 3);

    // The network goes away for a week; the user keeps typing.
    ana.session.handle_network(t0, false);
    ana.pump(t0, &mut model, false);
    assert_eq!(ana.session.status(), ConnectionStatus::Offline);
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            ana.session
                .send(t0, format!("a{i}"), "b1", &format!("offline {i}"), None),
        );
    }
    ana.pump(t0, &mut model, false);
    for i in 3..400 {
        model.append(&format!("o{i}"), "olga", "while you were away");
    }
    let week_later = t0 + Duration::from_secs(7 * 24 * 3600);
    assert_eq!(
        ana.session.poll_timeout(),
        None,
        "offline: nothing to wake up for"
    );
    ana.session.handle_timeout(week_later);
    assert_eq!(ana.session.pending_count(), 5);

    // Back online: reconnect at once, resume from cursor 3, send the outbox in order.
    ana.session.handle_network(week_later, true);
    let sent_before = ana.sent.len();
    ana.pump(week_later, &mut model, true);
    assert_eq!(ana.session.status(), ConnectionStatus::Connected);
    let ClientFrame::Hello(hello) = &ana.sent[sent_before] else {
        panic!("hello first")
    };
    assert_eq!(
        (hello.cursors[0].seq, hello.cursors[0].epoch),
        (3, Some(EPOCH))
    );
    assert_eq!(ana.session.cursor("b1"), 405);
    assert_eq!(ana.session.pending_count(), 0);
    let mine: Vec<String> = model
        .messages
        .iter()
        .filter(|m| m.sender == "ana")
        .map(|m| m.id.clone())
        .collect();
    assert_eq!(mine, ids, "the outbox went out once, in order");
    let held = ana.session.messages("b1");
    assert_eq!(
        held.iter().map(|m| m.seq.unwrap()).collect::<Vec<_>>(),
        (1..=405).collect::<Vec<_>>()
    );
    assert_eq!(
        ana.statuses(),
        vec![
            "connecting",
            "connected",
            "offline",
            "connecting",
            "connected"
        ]
    );
}

#[test]
fn heartbeat_timeout_detects_a_half_open_connection() {
    let mut model = Model::default();
    let mut ana = Rig::new("ana", Config::default());
    let t0 = Instant::now();
    ana.session.connect(t0);
    ana.pump(t0, &mut model, true);
    assert_eq!(ana.session.status(), ConnectionStatus::Connected);
    // Silence: the server's pings no longer arrive, but nothing says the connection closed.
    let deadline = ana.session.poll_timeout().expect("a heartbeat deadline");
    assert_eq!(
        deadline,
        t0 + Duration::from_millis(35_000),
        "from welcome's timeout_ms"
    );
    ana.session
        .handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(ana.session.status(), ConnectionStatus::Connected);
    ana.session.handle_timeout(deadline);
    assert_eq!(ana.session.poll_action(), Some(Action::Disconnect));
    assert!(matches!(
        ana.session.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
    // Any frame pushes the deadline out.
    let next = ana.session.poll_timeout().unwrap();
    ana.session.handle_timeout(next);
    ana.pump(next, &mut model, true);
    assert_eq!(ana.session.status(), ConnectionStatus::Connected);
    let later = next + Duration::from_secs(30);
    ana.session
        .handle_frame(later, ServerFrame::Ping(frames::ServerPing { ts: 0 }));
    assert_eq!(
        ana.session.poll_timeout(),
        Some(later + Duration::from_millis(35_000))
    );
    assert_eq!(
        ana.session.poll_transmit(),
        Some(ClientFrame::Pong(frames::Pong {}))
    );
}

#[test]
fn statuses_only_move_forward() {
    let mut model = Model::default();
    let mut ana = Rig::new("ana", Config::default());
    let t0 = Instant::now();
    ana.session.connect(t0);
    ana.pump(t0, &mut model, true);
    let id = ana.session.send(t0, "m1".into(), "b1", "hello", None);
    ana.pump(t0, &mut model, true);
    assert_eq!(
        ana.session.delivery_status(&id),
        Some(DeliveryStatus::Sent { seq: 1 })
    );
    // A read receipt arrives before the delivered one; then a stale delivered one.
    for (delivered, read) in [(1, 1), (1, 0), (0, 0)] {
        ana.session.handle_frame(
            t0,
            ServerFrame::Receipt(frames::Receipt {
                conversation: "b1".into(),
                user_id: "olga".into(),
                role: Role::Operator,
                delivered,
                read,
            }),
        );
    }
    // A duplicate ack after all that.
    ana.session.handle_frame(
        t0,
        ServerFrame::Ack(frames::Ack {
            id: id.clone(),
            conversation: "b1".into(),
            seq: 1,
            ts: 1,
        }),
    );
    ana.pump(t0, &mut model, true);
    let seen: Vec<u8> = ana
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DeliveryStatus { id: i, status, .. } if *i == id => Some(status.rank()),
            _ => None,
        })
        .collect();
    assert_eq!(
        seen,
        vec![0, 1, 2, 3],
        "sending, sent, delivered, read — once each, in order"
    );
    assert_eq!(ana.session.delivery_status(&id), Some(DeliveryStatus::Read));
}

#[test]
fn permanent_refusal_fails_one_message_without_holding_up_others() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    let big = session.send(t0, "big".into(), "b1", "xxxx", None);
    let small = session.send(t0, "small".into(), "b1", "hi", None);
    let frames: Vec<ClientFrame> = std::iter::from_fn(|| session.poll_transmit()).collect();
    assert_eq!(
        frames
            .iter()
            .filter(|f| matches!(f, ClientFrame::Send(_)))
            .count(),
        2,
        "pipelined"
    );
    let mut error =
        frames::ErrorFrame::new(ErrorCode::MessageTooLarge, "too large", Some(big.clone()));
    error.permanent = true;
    session.handle_frame(t0, ServerFrame::Error(error));
    // The server's FIFO guard refuses the next one (transient); it is resent, alone.
    let mut refused = frames::ErrorFrame::new(ErrorCode::OutOfOrder, "resend", Some(small.clone()));
    refused.permanent = false;
    session.handle_frame(t0, ServerFrame::Error(refused));
    assert!(
        matches!(session.delivery_status(&big), Some(DeliveryStatus::Failed { ref code, .. }) if code == "message_too_large")
    );
    assert_eq!(
        session.delivery_status(&small),
        Some(DeliveryStatus::Sending)
    );
    let at = t0;
    let resent: Vec<ClientFrame> = std::iter::from_fn(|| session.poll_transmit()).collect();
    assert!(matches!(&resent[..], [ClientFrame::Send(s)] if s.id == small));
    session.handle_frame(
        at,
        ServerFrame::Ack(frames::Ack {
            id: small.clone(),
            conversation: "b1".into(),
            seq: 1,
            ts: 1,
        }),
    );
    assert_eq!(session.pending_count(), 1);
    assert_eq!(session.failed_count(), 1);
    // Refused for good: not waiting, and not worth a retry button.
    assert_eq!(session.waiting_count(), 0);
    assert!(!session.delivery_status(&big).unwrap().retryable());
    // Manual retry: same id, back to sending.
    assert_eq!(session.retry_failed(at), 1);
    let retried: Vec<ClientFrame> = std::iter::from_fn(|| session.poll_transmit()).collect();
    assert!(matches!(&retried[..], [ClientFrame::Send(s)] if s.id == big));
}

#[test]
fn a_refused_message_is_resent_before_the_ones_behind_it() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    for i in 0..3 {
        session.send(t0, format!("m{i}"), "b1", "x", None);
    }
    while session.poll_transmit().is_some() {}
    let mut limited =
        frames::ErrorFrame::new(ErrorCode::RateLimited, "slow down", Some("m0".into()));
    limited.retry_after_ms = Some(200);
    session.handle_frame(t0, ServerFrame::Error(limited));
    // m1 and m2 are still in flight: nothing is resent until their answers are in.
    session.handle_timeout(t0 + Duration::from_millis(300));
    assert!(session.poll_transmit().is_none());
    for id in ["m1", "m2"] {
        session.handle_frame(
            t0,
            ServerFrame::Error(frames::ErrorFrame::new(
                ErrorCode::OutOfOrder,
                "x",
                Some(id.into()),
            )),
        );
    }
    assert!(
        session.poll_transmit().is_none(),
        "m0 waits its retry_after"
    );
    session.handle_timeout(t0 + Duration::from_millis(200));
    let ids: Vec<String> = std::iter::from_fn(|| session.poll_transmit())
        .filter_map(|f| {
            if let ClientFrame::Send(s) = f {
                Some(s.id)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(ids, vec!["m0", "m1", "m2"]);
}

#[test]
fn deadline_fails_a_message_that_could_not_be_sent() {
    let t0 = Instant::now();
    let mut session = Session::new(Config::default(), "t");
    session.connect(t0);
    session.handle_network(t0, false);
    let id = session.send(
        t0,
        "m".into(),
        "b1",
        "x",
        Some(t0 + Duration::from_secs(60)),
    );
    assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    session.handle_timeout(t0 + Duration::from_secs(60));
    assert!(
        matches!(session.delivery_status(&id), Some(DeliveryStatus::Failed { ref code, .. }) if code == "deadline_exceeded")
    );
    // The server never refused it: a retry can succeed.
    assert!(session.delivery_status(&id).unwrap().retryable());
    assert_eq!(session.waiting_count(), 0);
}

#[test]
fn close_codes_decide_whether_to_reconnect() {
    let t0 = Instant::now();
    let mut session = Session::new(Config::default(), "t");
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!()
    };
    session.handle_open(t0, attempt);
    assert!(matches!(session.poll_transmit(), Some(ClientFrame::Hello(h)) if h.token == "t"));
    // The token said in that hello is refused: retrying with it cannot succeed, so the session
    // waits for a new one, whatever time passes and whatever the network does.
    session.handle_close(t0, attempt, Some(close::UNAUTHORIZED));
    let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
    assert!(events.contains(&Event::TokenExpired));
    assert_eq!(session.status(), ConnectionStatus::Expired);
    assert_eq!(session.poll_timeout(), None);
    session.handle_network(t0, false);
    session.handle_network(t0, true);
    session.handle_timeout(t0 + Duration::from_secs(3600));
    assert_eq!(session.poll_action(), None);
    assert_eq!(session.status(), ConnectionStatus::Expired);
    session.set_token(t0, "fresh");
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!("a fresh token reconnects at once")
    };
    session.handle_open(t0, attempt);
    assert!(matches!(session.poll_transmit(), Some(ClientFrame::Hello(h)) if h.token == "fresh"));
    // Refreshed ahead of expiry: the server's 4401 for the old token is only a reconnect.
    session.set_token(t0, "fresher");
    session.handle_close(t0, attempt, Some(close::UNAUTHORIZED));
    assert!(!std::iter::from_fn(|| session.poll_event()).any(|e| e == Event::TokenExpired));
    assert!(matches!(
        session.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
    session.handle_timeout(session.poll_timeout().expect("a reconnect is planned"));
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!("the reconnect")
    };
    session.handle_open(t0, attempt);
    assert!(matches!(session.poll_transmit(), Some(ClientFrame::Hello(h)) if h.token == "fresher"));
    session.handle_close(t0, attempt, Some(close::PROTOCOL_ERROR));
    assert_eq!(session.status(), ConnectionStatus::Disconnected);
    assert_eq!(session.poll_timeout(), None);
    // A stale attempt's close is ignored.
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!()
    };
    session.handle_close(t0, attempt - 1, None);
    assert_eq!(session.status(), ConnectionStatus::Connecting);
}

#[test]
fn restart_from_snapshot_resends_and_never_shows_twice() {
    let mut model = Model::default();
    let t0 = Instant::now();
    model.append("o1", "olga", "welcome");
    let snapshot = Snapshot {
        user_id: Some("ana".into()),
        outbox: vec![
            PendingMessage {
                id: "a1".into(),
                conversation: "b1".into(),
                body: "one".into(),
                failed: None,
                files: Vec::new(),
            },
            PendingMessage {
                id: "a2".into(),
                conversation: "b1".into(),
                body: "two".into(),
                failed: None,
                files: Vec::new(),
            },
        ],
        conversations: vec![StoredConversation {
            id: "b1".into(),
            epoch: Some(EPOCH),
            cursor: 1,
            messages: vec![ChatMessage {
                conversation: "b1".into(),
                id: "o1".into(),
                seq: Some(1),
                sender: "olga".into(),
                role: Role::Operator,
                body: "welcome".into(),
                ts: Some(1),
                status: None,
                attachments: Vec::new(),
            }],
        }],
    };
    // a1 was stored before the crash, but its ack never arrived.
    model.append("a1", "ana", "one");
    let mut ana = Rig {
        session: Session::restore(Config::default(), "t", snapshot),
        user: "ana",
        open: None,
        events: vec![],
        sent: vec![],
    };
    assert_eq!(ana.session.pending_count(), 2);
    ana.session.connect(t0);
    ana.pump(t0, &mut model, true);
    assert_eq!(
        model
            .messages
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        vec!["o1", "a1", "a2"]
    );
    let shown = ana.session.messages("b1");
    assert_eq!(
        shown.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        vec!["o1", "a1", "a2"],
        "each once"
    );
    assert_eq!(ana.session.pending_count(), 0);
}

#[test]
fn a_void_copy_is_dropped_on_welcome_without_acknowledging_its_cursor() {
    let t0 = Instant::now();
    let snapshot = Snapshot {
        user_id: Some("ana".into()),
        outbox: vec![],
        conversations: vec![StoredConversation {
            id: "b1".into(),
            epoch: Some(EPOCH - 1),
            cursor: 10,
            messages: vec![],
        }],
    };
    let mut session = Session::restore(Config::default(), "t", snapshot);
    let mut model = Model::default();
    model.append("o1", "olga", "after the restore");
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!()
    };
    session.handle_open(t0, attempt);
    let _hello = session.poll_transmit();
    session.handle_frame(t0, model.welcome("ana"));
    let sent: Vec<ClientFrame> = std::iter::from_fn(|| session.poll_transmit()).collect();
    assert!(
        !sent
            .iter()
            .any(|f| matches!(f, ClientFrame::Receipt(r) if r.delivered.unwrap_or(0) > 1)),
        "no receipt for the void cursor: {sent:?}"
    );
    // The server's resync that follows does not reset twice.
    session.handle_frame(
        t0,
        ServerFrame::Resync(frames::Resync {
            conversation: "b1".into(),
            epoch: EPOCH,
            last_seq: 1,
        }),
    );
    let resyncs = std::iter::from_fn(|| session.poll_event())
        .filter(|e| matches!(e, Event::Resync { .. }))
        .count();
    assert_eq!(resyncs, 1);
    session.handle_frame(t0, ServerFrame::Message(model.messages[0].clone()));
    assert_eq!(session.cursor("b1"), 1);
}

#[test]
fn a_message_waiting_behind_a_refused_one_sets_no_past_timer() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    while session.poll_transmit().is_some() {}
    session.send(t0, "m0".into(), "b1", "x", None);
    session.send(t0, "m1".into(), "b1", "y", None);
    while session.poll_transmit().is_some() {}
    let mut limited =
        frames::ErrorFrame::new(ErrorCode::RateLimited, "slow down", Some("m0".into()));
    limited.retry_after_ms = Some(200);
    session.handle_frame(t0, ServerFrame::Error(limited));
    session.handle_frame(
        t0,
        ServerFrame::Error(frames::ErrorFrame::new(
            ErrorCode::OutOfOrder,
            "x",
            Some("m1".into()),
        )),
    );
    let wake = session.poll_timeout().expect("a timer for m0");
    assert!(
        wake >= t0 + Duration::from_millis(200),
        "no busy wake-up before m0 may go: {:?}",
        wake - t0
    );
}

#[test]
fn a_refused_message_that_expires_starts_a_fresh_connection() {
    let t0 = Instant::now();
    let (mut session, _model) = connected(t0);
    while session.poll_transmit().is_some() {}
    let id = session.send(
        t0,
        "m0".into(),
        "b1",
        "x",
        Some(t0 + Duration::from_secs(1)),
    );
    session.send(t0, "m1".into(), "b1", "y", None);
    while session.poll_transmit().is_some() {}
    let mut limited =
        frames::ErrorFrame::new(ErrorCode::RateLimited, "slow down", Some(id.clone()));
    limited.retry_after_ms = Some(10_000);
    session.handle_frame(t0, ServerFrame::Error(limited));
    session.handle_frame(
        t0,
        ServerFrame::Error(frames::ErrorFrame::new(
            ErrorCode::OutOfOrder,
            "x",
            Some("m1".into()),
        )),
    );
    while session.poll_action().is_some() {}
    // The server now holds m0 as the message to resend first; it expires instead.
    session.handle_timeout(t0 + Duration::from_secs(1));
    assert!(matches!(
        session.delivery_status(&id),
        Some(DeliveryStatus::Failed { .. })
    ));
    assert_eq!(
        session.poll_action(),
        Some(Action::Disconnect),
        "a fresh connection has no such block"
    );
    assert!(matches!(
        session.status(),
        ConnectionStatus::Reconnecting { .. }
    ));
}

#[test]
fn a_private_notes_ticks_follow_other_operators_never_the_client() {
    let t0 = Instant::now();
    let model = Model::default();
    let mut session = Session::new(Config::default(), "t");
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!("a connect")
    };
    session.handle_open(t0, attempt);
    session.handle_frame(t0, model.welcome("olga"));
    // Both written on another device of olga's (the console): a note, then a text.
    for (seq, kind) in [(1, MessageKind::Note), (2, MessageKind::Text)] {
        session.handle_frame(
            t0,
            ServerFrame::Message(frames::Message {
                conversation: "b1".into(),
                id: format!("m{seq}"),
                seq,
                sender: "olga".into(),
                role: Role::Operator,
                body: "…".into(),
                ts: 1,
                kind,
                data: None,
                attachments: Vec::new(),
            }),
        );
    }
    let receipt = |user: &str, role, at| {
        ServerFrame::Receipt(frames::Receipt {
            conversation: "b1".into(),
            user_id: user.into(),
            role,
            delivered: at,
            read: at,
        })
    };
    // The client's cursors pass the note (clients skip it): only the text moves.
    session.handle_frame(t0, receipt("ana", Role::Client, 2));
    assert_eq!(
        session.delivery_status("m1"),
        Some(DeliveryStatus::Sent { seq: 1 })
    );
    assert_eq!(session.delivery_status("m2"), Some(DeliveryStatus::Read));
    session.handle_frame(t0, receipt("omar", Role::Operator, 1));
    assert_eq!(session.delivery_status("m1"), Some(DeliveryStatus::Read));
}

#[test]
fn read_covers_only_what_the_reader_saw() {
    let t0 = Instant::now();
    let mut model = Model::default();
    for i in 1..=3 {
        model.append(&format!("o{i}"), "olga", "…");
    }
    let mut session = Session::new(Config::default(), "t");
    session.connect(t0);
    let Some(Action::Connect { attempt }) = session.poll_action() else {
        panic!("a connect")
    };
    session.handle_open(t0, attempt);
    let hello = session.poll_transmit().expect("hello");
    for frame in model.answer("ana", hello) {
        session.handle_frame(t0, frame);
    }
    let reads = |session: &mut Session| -> Vec<Option<u64>> {
        std::iter::from_fn(|| session.poll_transmit())
            .filter_map(|f| match f {
                ClientFrame::Receipt(r) => Some(r.read),
                _ => None,
            })
            .collect()
    };
    reads(&mut session);
    session.mark_read_up_to(t0, "b1", 2);
    assert_eq!(reads(&mut session), vec![Some(2)]);
    // Never back, never past what is held.
    session.mark_read_up_to(t0, "b1", 1);
    assert!(reads(&mut session).iter().all(|r| r.is_none()));
    session.mark_read_up_to(t0, "b1", 99);
    assert_eq!(reads(&mut session), vec![Some(3)]);
}

#[test]
fn receipts_report_others_messages_never_own_ones_alone() {
    let t0 = Instant::now();
    let (mut session, mut model) = connected(t0);
    let exchange = |session: &mut Session, model: &mut Model| -> Vec<frames::ReceiptUpdate> {
        let mut receipts = Vec::new();
        while let Some(frame) = session.poll_transmit() {
            if let ClientFrame::Receipt(r) = &frame {
                receipts.push(r.clone());
            }
            for answer in model.answer("ana", frame) {
                session.handle_frame(t0, answer);
            }
        }
        receipts
    };
    exchange(&mut session, &mut model);
    // Three of ana's own, acked and echoed: the cursor moves, nobody's status depends on it.
    for i in 1..=3 {
        session.send(t0, format!("a{i}"), "b1", "mine", None);
    }
    assert_eq!(exchange(&mut session, &mut model), vec![]);
    session.mark_read_up_to(t0, "b1", 3);
    assert_eq!(exchange(&mut session, &mut model), vec![]);
    // Olga answers: one receipt covers everything held, her message and ana's before it, and
    // the read ana asked for meanwhile goes with it.
    let answer = model.append("o1", "olga", "noted");
    session.handle_frame(t0, ServerFrame::Message(answer));
    let receipts = exchange(&mut session, &mut model);
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(
        (receipts[0].delivered, receipts[0].read),
        (Some(4), Some(3))
    );
    session.mark_read_up_to(t0, "b1", 4);
    let receipts = exchange(&mut session, &mut model);
    assert_eq!(receipts.len(), 1, "{receipts:?}");
    assert_eq!(receipts[0].read, Some(4));
}

mod attachments;
