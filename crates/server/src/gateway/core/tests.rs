//! Scenario tests of the connection core on simulated time: no socket, no store, no clock.

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::frames::decode_server_frame;
use protocol::frames::{ConversationState, MessageKind, ParticipantState, ServerFrame};
use protocol::{close, ErrorCode, Role};

use super::*;
use crate::hub::HubEvent;
use crate::store::{Appended, StoredMessage};

const CONVERSATION: &str = "booking-1";

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

struct Harness {
    core: Core,
    now: Instant,
    /// Frames written, decoded.
    frames: Vec<ServerFrame>,
    appends: Vec<(u64, AppendRequest)>,
    reads: Vec<Read>,
    closed: Option<Ending>,
}

impl Harness {
    fn config() -> Config {
        Config {
            sends_burst_max: 3,
            sends_per_second_max: 1,
            ..Config::default()
        }
    }

    /// A connection past `welcome`, in one conversation with `last_seq` messages, caught up.
    fn connected(last_seq: u64) -> Self {
        let now = Instant::now();
        let mut h = Harness {
            core: Core::new(Arc::new(Self::config()), budget(&Self::config()), now),
            now,
            frames: Vec::new(),
            appends: Vec::new(),
            reads: Vec::new(),
            closed: None,
        };
        h.core.handle_text(
            now,
            r#"{"type":"hello","v":1,"token":"t","cursors":[{"conversation":"booking-1","seq":0}]}"#,
        );
        let outputs = h.drain();
        assert!(matches!(outputs[0], Output::Authenticate { .. }));
        let state = ConversationState {
            id: CONVERSATION.into(),
            epoch: 7,
            last_seq,
            participants: vec![ParticipantState {
                user_id: "ana".into(),
                role: Role::Client,
                delivered: 0,
                read: 0,
            }],
            status: Default::default(),
            assignee: None,
            metadata: None,
            closed: false,
        };
        h.core.handle_welcome(
            now,
            Authenticated {
                claims: crate::auth::Claims {
                    sub: "ana".into(),
                    role: Role::Client,
                    exp: u64::MAX,
                    iat: 0,
                    nbf: None,
                    scope: None,
                },
                token_expires: now + Duration::from_secs(3600),
                connection_id: 1,
                states: Ok(vec![state]),
                presence: vec![],
            },
        );
        h.drain();
        h.answer_page((1..=last_seq).map(message).collect());
        assert!(matches!(h.frames.last(), Some(ServerFrame::Synced(_))));
        h.written_all();
        h.frames.clear();
        h
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut outputs = Vec::new();
        while let Some(output) = self.core.poll_output() {
            match &output {
                Output::Send(text) => self
                    .frames
                    .push(decode_server_frame(text.as_str()).expect("valid frame")),
                Output::Append { ticket, request } => self.appends.push((*ticket, request.clone())),
                Output::Read(read) => self.reads.push(read.clone()),
                Output::Close(ending) => {
                    assert!(self.closed.is_none(), "closed twice");
                    self.closed = Some(*ending);
                }
                _ => {}
            }
            outputs.push(output);
        }
        outputs
    }

    fn text(&mut self, text: &str) {
        self.core.handle_text(self.now, text);
        self.drain();
    }

    fn send(&mut self, n: u32) {
        self.text(&format!(
            r#"{{"type":"send","id":"{}","conversation":"{CONVERSATION}","body":"m{n}"}}"#,
            id(n)
        ));
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.core.handle_timeout(self.now);
        self.drain();
    }

    fn written_all(&mut self) {
        let queued = self.core.queued_bytes();
        self.core.handle_written(self.now, queued);
        self.drain();
    }

    fn answer_page(&mut self, messages: Vec<StoredMessage>) {
        let Some(Read::Page { conversation, .. }) = self.reads.pop() else {
            panic!("no page read asked for");
        };
        self.core.handle_page(&conversation, Ok(messages));
        self.drain();
    }

    /// Answers the oldest unanswered append: stored at `seq`, or failed with `err`.
    fn answer(&mut self, result: Result<u64, StoreError>) -> AppendRequest {
        let (ticket, request) = self.appends.remove(0);
        let outcome = result.map(|seq| Appended {
            message: Arc::new(StoredMessage {
                seq,
                ..message_with(&request.id, seq)
            }),
            created: true,
        });
        self.core
            .handle_stored(self.now, ticket, StoreOutcome::Appended(outcome));
        self.drain();
        request
    }

    /// Codes of the error frames and ids of the acks, in order, since the last call.
    fn answers(&mut self) -> Vec<String> {
        let answers = self
            .frames
            .iter()
            .filter_map(|f| match f {
                ServerFrame::Ack(ack) => Some(format!("ack {}", ack.id)),
                ServerFrame::Error(e) => Some(format!(
                    "{} {}",
                    e.code.as_str(),
                    e.reference.clone().unwrap_or_default()
                )),
                _ => None,
            })
            .collect();
        self.frames.clear();
        answers
    }
}

fn budget(config: &Config) -> Arc<SendBudget> {
    Arc::new(SendBudget::new(
        config.sends_burst_max,
        config.sends_per_second_max,
    ))
}

fn message_with(id: &str, seq: u64) -> StoredMessage {
    StoredMessage {
        conversation: CONVERSATION.into(),
        id: id.into(),
        seq,
        sender: "ana".into(),
        role: Role::Client,
        body: format!("m{seq}"),
        ts: 0,
        kind: MessageKind::Text,
        data: None,
        attachments: Vec::new(),
    }
}

fn message(seq: u64) -> StoredMessage {
    message_with(&id(1000 + seq as u32), seq)
}

#[test]
fn pipelined_sends_chain_on_each_other_and_are_acked_in_order() {
    let mut h = Harness::connected(0);
    h.send(1);
    h.send(2);
    assert_eq!(h.appends[0].1.after, None);
    assert_eq!(h.appends[1].1.after, Some(id(1)));
    // The store answers the second first: the acks still go out in order.
    let (second_ticket, _) = h.appends.remove(1);
    h.core.handle_stored(
        h.now,
        second_ticket,
        StoreOutcome::Appended(Ok(Appended {
            message: Arc::new(message_with(&id(2), 2)),
            created: true,
        })),
    );
    h.drain();
    assert!(h.answers().is_empty());
    h.answer(Ok(1));
    assert_eq!(
        h.answers(),
        [format!("ack {}", id(1)), format!("ack {}", id(2))]
    );
}

/// The edge an outside client found: a run resent after a refusal must not let a later message
/// overtake an earlier one. Every send of the resent run is taken, chained behind the one before.
#[test]
fn a_run_resent_after_a_rate_limit_is_stored_in_order() {
    let mut h = Harness::connected(0);
    for n in 1..=5 {
        h.send(n); // burst 3: 4 and 5 are rate limited
    }
    assert_eq!(h.appends.len(), 3);
    assert_eq!(
        h.answers(),
        Vec::<String>::new(),
        "answers wait for the stored ones"
    );
    h.answer(Ok(1));
    h.answer(Ok(2));
    h.answer(Ok(3));
    let answers = h.answers();
    assert_eq!(answers[3], format!("rate_limited {}", id(4)));
    // Taken behind 4, and refused by the rate limit too (the guard comes first, the bucket next).
    assert_eq!(answers[4], format!("rate_limited {}", id(5)));
    // Before the wait is over, everything but 4 is refused without a trace.
    h.send(5);
    assert_eq!(h.answers(), [format!("out_of_order {}", id(5))]);
    // After it: 4 and 5 resent back to back, pipelined; 5 arrives while 4 is being stored.
    h.advance(2_000);
    h.send(4);
    h.send(5);
    assert_eq!(h.appends.len(), 2);
    assert_eq!(h.appends[0].1.after, None);
    assert_eq!(h.appends[1].1.after, Some(id(4)), "5 is chained behind 4");
    h.answer(Ok(4));
    h.answer(Ok(5));
    assert_eq!(
        h.answers(),
        [format!("ack {}", id(4)), format!("ack {}", id(5))]
    );
}

#[test]
fn a_failed_store_blocks_until_the_failed_message_is_taken_again() {
    let mut h = Harness::connected(0);
    h.send(1);
    h.send(2);
    h.answer(Err(StoreError::Unavailable("disk".into())));
    h.answer(Err(StoreError::OutOfOrder));
    h.send(3);
    assert_eq!(
        h.answers(),
        [
            format!("unavailable {}", id(1)),
            format!("out_of_order {}", id(2)),
            format!("out_of_order {}", id(3)),
        ]
    );
    h.advance(5_000); // the rate limit's burst refilled
    h.send(1);
    h.send(2);
    h.send(3);
    let afters: Vec<_> = h.appends.iter().map(|(_, r)| r.after.clone()).collect();
    assert_eq!(afters, [None, Some(id(1)), Some(id(2))]);
}

#[test]
fn a_permanent_refusal_holds_up_nothing() {
    let mut h = Harness::connected(0);
    h.text(&format!(
        r#"{{"type":"send","id":"{}","conversation":"{CONVERSATION}","body":""}}"#,
        id(1)
    ));
    h.send(2);
    assert_eq!(h.answers(), [format!("empty_message {}", id(1))]);
    assert_eq!(h.appends[0].1.after, None);
}

#[test]
fn a_device_that_stops_reading_is_closed_after_the_stall_bound() {
    let mut h = Harness::connected(0);
    h.text(r#"{"type":"ping"}"#); // a pong is queued, never written
    assert!(h.core.queued_bytes() > 0);
    h.advance(protocol::limits::WRITE_STALL_MS - 1);
    assert_eq!(h.closed, None);
    h.advance(1);
    assert_eq!(h.closed.map(|e| e.code), Some(close::TOO_SLOW));
}

#[test]
fn written_bytes_keep_a_slow_device_open() {
    let mut h = Harness::connected(0);
    for _ in 0..5 {
        h.text(r#"{"type":"ping"}"#);
        h.advance(protocol::limits::WRITE_STALL_MS - 1);
        h.written_all();
    }
    assert_eq!(h.closed, None);
}

#[test]
fn live_messages_wait_in_storage_while_the_device_is_behind() {
    let mut h = Harness::connected(0);
    let big = "x".repeat(WRITE_QUEUE_HIGH_BYTES);
    let notice = |seq: u64, body: &str| {
        let message = Arc::new(StoredMessage {
            body: body.into(),
            ..message(seq)
        });
        let frame: Arc<str> = ServerFrame::Message((*message).clone()).encode().into();
        HubEvent::Message { message, frame }
    };
    h.core.handle_notice(notice(1, &big));
    h.core.handle_notice(notice(2, "small"));
    h.drain();
    let pushed: Vec<u64> = h
        .frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message(m) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert_eq!(pushed, [1], "2 is not queued behind a full queue");
    assert!(h.reads.is_empty(), "nor read before the device catches up");
    h.written_all();
    assert!(
        matches!(h.reads.last(), Some(Read::Page { after: 1, .. })),
        "read from storage once the device has read: {:?}",
        h.reads
    );
    h.answer_page(vec![message(2)]);
    assert!(matches!(h.frames.last(), Some(ServerFrame::Synced(s)) if s.seq == 2));
}

#[test]
fn the_queue_bound_closes_a_device_that_does_not_read() {
    let mut h = Harness::connected(0);
    let ping = r#"{"type":"ping"}"#;
    let pong_bytes = ServerFrame::Pong(protocol::frames::Ping { reference: None })
        .encode()
        .len();
    for _ in 0..(WRITE_QUEUE_BYTES_MAX / pong_bytes) {
        h.text(ping);
    }
    assert_eq!(h.closed, None);
    h.text(ping);
    assert_eq!(h.closed.map(|e| e.code), Some(close::TOO_SLOW));
    assert!(h.core.queued_bytes() <= WRITE_QUEUE_BYTES_MAX + pong_bytes);
}

#[test]
fn heartbeat_timeout_fires_even_with_writes_pending() {
    let mut h = Harness::connected(0);
    let timeout = Harness::config().heartbeat_interval_ms + Harness::config().heartbeat_grace_ms;
    for _ in 0..(timeout / 1000) {
        h.advance(1000);
        h.written_all();
    }
    assert_eq!(h.closed.map(|e| e.code), Some(close::HEARTBEAT_TIMEOUT));
}

#[test]
fn shutdown_answers_every_send_in_flight_then_closes_1012() {
    let mut h = Harness::connected(0);
    h.send(1);
    h.send(2);
    h.core.handle_shutdown();
    h.drain();
    assert!(!h.core.wants_frames(), "nothing new is read while draining");
    assert_eq!(h.closed, None);
    h.answer(Ok(1));
    assert_eq!(h.closed, None);
    h.answer(Ok(2));
    assert_eq!(
        h.answers(),
        [format!("ack {}", id(1)), format!("ack {}", id(2))]
    );
    assert_eq!(h.closed.map(|e| e.code), Some(close::SERVICE_RESTART));
}

#[test]
fn a_burst_of_bad_frames_closes_4429_after_the_allowance() {
    let mut h = Harness::connected(0);
    for _ in 0..protocol::limits::BAD_FRAMES_BURST_MAX {
        h.text("not json");
    }
    assert_eq!(h.closed, None);
    h.text("not json");
    assert_eq!(h.closed.map(|e| e.code), Some(close::POLICY_VIOLATION));
    let errors = h.answers().len() as u32;
    assert_eq!(
        errors,
        protocol::limits::BAD_FRAMES_BURST_MAX + 1,
        "each bad frame is answered"
    );
}

#[test]
fn a_first_frame_other_than_hello_closes_4400() {
    let now = Instant::now();
    let mut core = Core::new(Arc::new(Config::default()), budget(&Config::default()), now);
    core.handle_text(now, r#"{"type":"ping"}"#);
    let outputs: Vec<Output> = std::iter::from_fn(|| core.poll_output()).collect();
    assert!(matches!(outputs.last(), Some(Output::Close(e)) if e.code == close::PROTOCOL_ERROR));
    assert_eq!(
        outputs[0],
        Output::Metric(Metric::Refused(ErrorCode::HelloRequired))
    );
    let Output::Send(text) = &outputs[1] else {
        panic!("an error frame first")
    };
    let ServerFrame::Error(error) = decode_server_frame(text.as_str()).unwrap() else {
        panic!("an error frame first")
    };
    assert_eq!(error.code, ErrorCode::HelloRequired);
}

#[test]
fn no_hello_in_time_closes_4408() {
    let now = Instant::now();
    let mut core = Core::new(Arc::new(Config::default()), budget(&Config::default()), now);
    core.handle_timeout(now + Duration::from_millis(protocol::limits::HELLO_TIMEOUT_MS));
    assert!(
        matches!(core.poll_output(), Some(Output::Close(e)) if e.code == close::HEARTBEAT_TIMEOUT)
    );
}

#[test]
fn a_client_token_sees_notes_as_skips_whatever_its_participant_row_says() {
    assert_eq!(lesser(Role::Client, Role::Operator), Role::Client);
    assert_eq!(lesser(Role::Operator, Role::Client), Role::Client);
    assert_eq!(lesser(Role::Operator, Role::Operator), Role::Operator);
}

/// Found by `surechat chaos --refusals`: a message refused here but stored through an earlier
/// connection (whose ack was lost) comes back to the device in a catch-up, and the device drops
/// it from its outbox instead of resending it. Its refusal must not block the messages after it.
#[test]
fn a_refused_message_that_comes_back_stored_blocks_nothing() {
    let mut h = Harness::connected(0);
    for n in 1..=4 {
        h.send(n); // burst 3: 4 is rate limited
    }
    h.answer(Ok(1));
    h.answer(Ok(2));
    h.answer(Ok(3));
    assert_eq!(h.answers()[3], format!("rate_limited {}", id(4)));
    // 4 was stored at seq 4 through the device's earlier connection: the hub wakes this one,
    // which catches the device up, 4 included.
    h.core.handle_notice(HubEvent::Wake {
        conversation: CONVERSATION.into(),
        seq: 4,
    });
    h.drain();
    h.answer_page((1..=4).map(|n| message_with(&id(n), n as u64)).collect());
    h.frames.clear();
    h.advance(2_000);
    h.send(5);
    assert_eq!(
        h.appends.len(),
        1,
        "5 is taken, not refused behind 4: {:?}",
        h.answers()
    );
    assert_eq!(h.appends[0].1.after, None);
    h.answer(Ok(5));
    assert_eq!(h.answers(), [format!("ack {}", id(5))]);
}
