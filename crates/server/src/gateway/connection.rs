//! One WebSocket connection: `hello`, then one loop over a closed set of inputs.
//!
//! ```text
//! select (biased) {
//!   shutdown            → finish writes in flight, close 1012
//!   hub says lagging    → close 4409 (the device resumes from its cursors)
//!   a write finished    → ack / error frame, in the order the device sent them
//!   frame from device   → validate, submit to storage (not awaited: pipelined), …
//!   hub notice          → forward, or mark the conversation for catch-up
//!   heartbeat tick      → ping, or close 4408 when the device went silent
//!   token expiry        → close 4401
//!   catch-up pending    → send one page from storage
//! }
//! ```
//!
//! **Invariant:** for each conversation, `pushed` is the highest `seq` such that every message up
//! to it has been written to this socket, and messages are written in `seq` order. A notice that
//! does not continue `pushed` exactly is never forwarded: the gap is filled from storage instead.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::{FuturesOrdered, SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use protocol::frames::{
    self, ClientFrame, ConversationState, ErrorFrame, MessageKind, PresenceStatus, ServerFrame,
};
use protocol::limits::{BAD_FRAMES_BURST_MAX, FRAME_BYTES_MAX, HELLO_TIMEOUT_MS, PAGE_LIMIT_MAX};
use protocol::{close, decode_client_frame, ErrorCode, Role, PROTOCOL_VERSION};

use super::limiter::Bucket;
use crate::error::store_error_frame;
use crate::hub::{HubEvent, Registration};
use crate::store::{AppendRequest, Appended, ReceiptOutcome, ReceiptRequest, StoreError};
use crate::{now_ms, now_s, AppState};

type Sink = SplitSink<WebSocket, WsMessage>;
type Stream = SplitStream<WebSocket>;

/// A storage write submitted for this connection, resolving in submission order.
type InFlight = Pin<Box<dyn Future<Output = Finished> + Send>>;

enum Finished {
    Send {
        started: Instant,
        result: Result<Appended, StoreError>,
        reference: String,
        conversation: String,
        id: String,
    },
    /// A send refused before storing (rate limit), answered in its turn.
    Refused {
        conversation: String,
        id: String,
        frame: ErrorFrame,
    },
    Receipt {
        result: Result<ReceiptOutcome, StoreError>,
        reference: Option<String>,
        /// The conversation, for a receipt that others of it may have been coalesced behind.
        coalesced: Option<String>,
    },
}

/// Cumulative receipts of one conversation that arrived while an earlier one of it was being
/// stored: only their maximum is stored next. A device sends one per message it stores, so under
/// load this turns many writes (and as many pushed `receipt` frames) into one per commit.
#[derive(Default)]
struct Coalesced {
    delivered: Option<u64>,
    read: Option<u64>,
    /// Whether any receipt is waiting.
    waiting: bool,
}

/// Why the connection ends: the close code, reason, and the metric label.
struct Ending {
    code: u16,
    reason: &'static str,
    label: &'static str,
}

impl Ending {
    const fn new(code: u16, reason: &'static str, label: &'static str) -> Self {
        Ending {
            code,
            reason,
            label,
        }
    }
}

/// Per-conversation state of this connection.
struct Subscription {
    role: Role,
    /// Every message up to this `seq` has been written to the socket.
    pushed: u64,
    /// Queued for catch-up from storage.
    catching_up: bool,
    /// Last typing signal forwarded, to throttle.
    typing: Option<(Instant, bool)>,
}

/// What a device of `role` gets instead of `message` as stored, if anything: clients get a
/// `skip` for a private note, and a transfer's entry without the operators' note.
fn for_device(role: Role, message: &crate::store::StoredMessage) -> Option<ServerFrame> {
    if role == Role::Operator {
        return None;
    }
    match message.kind {
        MessageKind::Note => Some(ServerFrame::Skip(frames::Skip {
            conversation: message.conversation.clone(),
            seq: message.seq,
        })),
        MessageKind::System => {
            crate::store::workflow::for_clients(message).map(ServerFrame::Message)
        }
        MessageKind::Text => None,
    }
}

/// Runs a connection to its end.
pub async fn run(socket: WebSocket, app: Arc<AppState>) {
    let (mut sink, mut stream) = socket.split();
    app.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
    let ending = match handshake(&mut sink, &mut stream, &app).await {
        Ok(mut connection) => {
            app.metrics.connects.fetch_add(1, Ordering::Relaxed);
            let ending = connection.run(&mut sink, &mut stream).await;
            tracing::debug!(user = %connection.user_id, reason = ending.label, "connection closed");
            if connection.role == Role::Operator {
                app.presence.disconnected(&connection.user_id);
            }
            ending
        }
        Err(ending) => ending,
    };
    app.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
    app.metrics.disconnect(ending.label);
    if ending.code != 0 {
        let frame = CloseFrame {
            code: ending.code,
            reason: ending.reason.into(),
        };
        let _ = sink.send(WsMessage::Close(Some(frame))).await;
    }
    let _ = sink.close().await;
}

async fn send_frame(sink: &mut Sink, frame: &ServerFrame) -> Result<(), Ending> {
    send_text(sink, frame.encode()).await
}

async fn send_text(sink: &mut Sink, text: String) -> Result<(), Ending> {
    sink.send(WsMessage::Text(text.into()))
        .await
        .map_err(|_| Ending::new(0, "", "io_error"))
}

fn error(code: ErrorCode, message: impl Into<String>, reference: Option<String>) -> ServerFrame {
    ServerFrame::Error(ErrorFrame::new(code, message, reference))
}

/// Waits for `hello`, authenticates, registers with the hub and sends `welcome`.
async fn handshake(
    sink: &mut Sink,
    stream: &mut Stream,
    app: &Arc<AppState>,
) -> Result<Connection, Ending> {
    let protocol_error = Ending::new(close::PROTOCOL_ERROR, "hello expected", "protocol_error");
    let deadline = tokio::time::sleep(Duration::from_millis(HELLO_TIMEOUT_MS));
    let text = tokio::select! {
        // Slow, not wrong (a phone on a bad network): the device may try again.
        _ = deadline => return Err(Ending::new(close::HEARTBEAT_TIMEOUT, "no hello in time", "hello_timeout")),
        _ = app.shutdown.cancelled() => return Err(Ending::new(close::SERVICE_RESTART, "server restarting", "shutdown")),
        next = stream.next() => match next {
            Some(Ok(WsMessage::Text(text))) => text,
            Some(Ok(WsMessage::Close(_))) | None | Some(Err(_)) => return Err(Ending::new(0, "", "client_closed")),
            Some(Ok(_)) => {
                send_frame(sink, &error(ErrorCode::HelloRequired, "the first frame must be a text `hello` frame", None)).await?;
                return Err(protocol_error);
            }
        },
    };
    let hello = match decode_client_frame(&text) {
        Ok(ClientFrame::Hello(hello)) => hello,
        Ok(_) => {
            send_frame(
                sink,
                &error(
                    ErrorCode::HelloRequired,
                    "the first frame must be `hello`",
                    None,
                ),
            )
            .await?;
            return Err(protocol_error);
        }
        Err(err) => {
            send_frame(sink, &err.to_frame()).await?;
            return Err(protocol_error);
        }
    };
    if hello.v != PROTOCOL_VERSION {
        let message = format!(
            "this server speaks protocol version {PROTOCOL_VERSION}, not {}",
            hello.v
        );
        send_frame(sink, &error(ErrorCode::VersionUnsupported, message, None)).await?;
        return Err(Ending::new(
            close::PROTOCOL_ERROR,
            "version unsupported",
            "protocol_error",
        ));
    }
    let claims = match app.auth.verify(&hello.token, now_s()) {
        Ok(claims) => claims,
        Err(code) => {
            send_frame(sink, &error(code, code.title(), None)).await?;
            return Err(Ending::new(
                close::UNAUTHORIZED,
                code.as_str(),
                "unauthorized",
            ));
        }
    };
    let config = &app.config;
    let registration = match app.hub.register(
        &claims.sub,
        config.connection_queue_frames,
        config.connections_per_user_max,
    ) {
        Ok(registration) => registration,
        Err(_) => {
            let message = format!(
                "at most {} connections per user",
                config.connections_per_user_max
            );
            send_frame(sink, &error(ErrorCode::TooManyConnections, message, None)).await?;
            return Err(Ending::new(
                close::POLICY_VIOLATION,
                "too many connections",
                "too_many_connections",
            ));
        }
    };
    // Subscribe before reading state, so whatever commits later is in the state read or arrives
    // as a notice (or both: `pushed` skips duplicates, receipts are cumulative). The device's
    // cursors name its conversations; any others are subscribed after a first read, and then
    // the state is read once more.
    let known: Vec<&str> = hello
        .cursors
        .iter()
        .map(|c| c.conversation.as_str())
        .filter(|id| protocol::ids::check_conversation_id(id).is_ok())
        .take(protocol::limits::PARTICIPANTS_MAX * 1000)
        .collect();
    for id in &known {
        registration.subscribe(id);
    }
    let read_states = || app.store.conversation_states_of(claims.sub.clone());
    let mut states = read_states().await;
    if let Ok(first) = &states {
        let late: Vec<&str> = first
            .iter()
            .map(|s| s.id.as_str())
            .filter(|id| !known.contains(id))
            .collect();
        if !late.is_empty() {
            for id in &late {
                registration.subscribe(id);
            }
            states = read_states().await;
        }
    }
    let states = match states {
        Ok(states) => states,
        Err(err) => {
            send_frame(sink, &ServerFrame::Error(store_error_frame(&err, None))).await?;
            return Err(Ending::new(
                close::SERVICE_RESTART,
                "storage unavailable",
                "storage_unavailable",
            ));
        }
    };
    for id in known
        .iter()
        .filter(|id| !states.iter().any(|s| s.id == **id))
    {
        registration.unsubscribe(id); // not a participant (any more): no notices
    }
    let now = Instant::now();
    let exp_in = Duration::from_secs(claims.exp.saturating_sub(now_s()));
    let mut connection = Connection {
        app: app.clone(),
        user_id: claims.sub.clone(),
        role: claims.role,
        registration,
        conversations: HashMap::new(),
        catch_up: VecDeque::new(),
        in_flight: FuturesOrdered::new(),
        predecessor: HashMap::new(),
        blocked: HashMap::new(),
        receipts: HashMap::new(),
        sends: Bucket::new(
            config.sends_burst_max,
            config.sends_per_second_max as f64,
            now,
        ),
        bad_frames: Bucket::new(BAD_FRAMES_BURST_MAX, 1.0, now),
        last_heard: now,
        token_expires: tokio::time::Instant::now() + exp_in,
    };
    let welcome = ServerFrame::Welcome(frames::Welcome {
        v: PROTOCOL_VERSION,
        user_id: claims.sub.clone(),
        role: claims.role,
        connection_id: format!("c{}", connection.registration.subscriber().id()),
        heartbeat_ms: config.heartbeat_interval_ms,
        timeout_ms: config.heartbeat_interval_ms + config.heartbeat_grace_ms,
        conversations: states.clone(),
    });
    send_frame(sink, &welcome).await?;
    let cursors: HashMap<&str, &frames::Cursor> = hello
        .cursors
        .iter()
        .map(|c| (c.conversation.as_str(), c))
        .collect();
    for state in &states {
        let cursor = cursors.get(state.id.as_str());
        let valid = cursor
            .is_none_or(|c| c.seq <= state.last_seq && c.epoch.is_none_or(|e| e == state.epoch));
        if !valid {
            send_frame(
                sink,
                &ServerFrame::Resync(frames::Resync {
                    conversation: state.id.clone(),
                    epoch: state.epoch,
                    last_seq: state.last_seq,
                }),
            )
            .await?;
        }
        let pushed = if valid {
            cursor.map_or(0, |c| c.seq)
        } else {
            0
        };
        connection.subscribe(state, pushed);
    }
    if claims.role == Role::Operator {
        app.presence
            .connected(&claims.sub, states.iter().map(|s| s.id.clone()));
    }
    // Who of the operators is there, per conversation (changes follow as `presence` frames).
    for state in &states {
        for p in state
            .participants
            .iter()
            .filter(|p| p.role == Role::Operator && p.user_id != claims.sub)
        {
            let status = app.presence.status(&p.user_id);
            if status != PresenceStatus::Offline {
                let presence = frames::Presence {
                    conversation: state.id.clone(),
                    user_id: p.user_id.clone(),
                    status,
                };
                send_frame(sink, &ServerFrame::Presence(presence)).await?;
            }
        }
    }
    Ok(connection)
}

struct Connection {
    app: Arc<AppState>,
    user_id: String,
    /// The user's role, from the token.
    role: Role,
    registration: Registration,
    conversations: HashMap<String, Subscription>,
    catch_up: VecDeque<String>,
    in_flight: FuturesOrdered<InFlight>,
    /// Per conversation, the last message this connection took for sending whose storing is not
    /// confirmed: the FIFO guard of the next append (see `AppendRequest::after`).
    predecessor: HashMap<String, String>,
    /// Per conversation, the first message of this connection that was refused or failed
    /// transiently and is not stored yet: any other send there is refused `out_of_order` until
    /// it is resent and stored (or refused for good).
    blocked: HashMap<String, String>,
    /// Per conversation with a receipt (without `ref`) being stored: the ones that came since.
    receipts: HashMap<String, Coalesced>,
    sends: Bucket,
    bad_frames: Bucket,
    last_heard: Instant,
    token_expires: tokio::time::Instant,
}

impl Connection {
    fn subscribe(&mut self, state: &ConversationState, pushed: u64) {
        let role = state
            .participants
            .iter()
            .find(|p| p.user_id == self.user_id)
            .map_or(Role::Client, |p| p.role);
        self.registration.subscribe(&state.id);
        self.conversations.insert(
            state.id.clone(),
            Subscription {
                role,
                pushed,
                catching_up: true,
                typing: None,
            },
        );
        // Every conversation is caught up once at start, even at its end: that sends `synced`.
        self.catch_up.push_back(state.id.clone());
    }

    async fn run(&mut self, sink: &mut Sink, stream: &mut Stream) -> Ending {
        match self.serve(sink, stream).await {
            Ok(ending) | Err(ending) => ending,
        }
    }

    async fn serve(&mut self, sink: &mut Sink, stream: &mut Stream) -> Result<Ending, Ending> {
        let config = self.app.config.clone();
        let interval = Duration::from_millis(config.heartbeat_interval_ms);
        let timeout = interval + Duration::from_millis(config.heartbeat_grace_ms);
        let mut heartbeat =
            tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let subscriber = self.registration.subscriber().clone();
        let shutdown = self.app.shutdown.clone();
        loop {
            let can_read = self.in_flight.len() < config.connection_inflight_max;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    while let Some(finished) = self.in_flight.next().await {
                        self.finished(sink, finished).await?;
                    }
                    return Ok(Ending::new(close::SERVICE_RESTART, "server restarting", "shutdown"));
                }
                _ = subscriber.lagged() => {
                    return Ok(Ending::new(close::TOO_SLOW, "too slow: resume from your cursors", "too_slow"));
                }
                Some(finished) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.finished(sink, finished).await?;
                }
                next = stream.next(), if can_read => {
                    self.last_heard = Instant::now();
                    match next {
                        Some(Ok(WsMessage::Text(text))) => {
                            if let Some(ending) = self.frame(sink, text.as_str()).await? {
                                return Ok(ending);
                            }
                        }
                        Some(Ok(WsMessage::Binary(_))) => {
                            let frame = error(ErrorCode::MalformedFrame, "binary frames are not supported; send JSON text", None);
                            if let Some(ending) = self.reject(sink, frame).await? {
                                return Ok(ending);
                            }
                        }
                        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => {}
                        Some(Ok(WsMessage::Close(_))) | None => return Ok(Ending::new(0, "", "client_closed")),
                        Some(Err(err)) => {
                            let too_big = err.to_string().to_ascii_lowercase().contains("too long")
                                || err.to_string().to_ascii_lowercase().contains("size");
                            return Ok(if too_big {
                                Ending::new(close::MESSAGE_TOO_BIG, "message too big", "too_big")
                            } else {
                                Ending::new(0, "", "io_error")
                            });
                        }
                    }
                }
                Some(event) = self.registration.events.recv() => {
                    self.notice(sink, event).await?;
                }
                _ = heartbeat.tick() => {
                    send_frame(sink, &ServerFrame::Ping(frames::ServerPing { ts: now_ms() })).await?;
                }
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(self.last_heard + timeout)) => {
                    return Ok(Ending::new(close::HEARTBEAT_TIMEOUT, "heartbeat timeout", "heartbeat_timeout"));
                }
                _ = tokio::time::sleep_until(self.token_expires) => {
                    send_frame(sink, &error(ErrorCode::TokenExpired, "the token expired; reconnect with a fresh one", None)).await?;
                    return Ok(Ending::new(close::UNAUTHORIZED, "token_expired", "token_expired"));
                }
                _ = std::future::ready(()), if !self.catch_up.is_empty() => {
                    self.catch_up_one_page(sink).await?;
                }
            }
        }
    }

    /// Answers a device's fault; after too many in a burst, ends the connection.
    async fn reject(
        &mut self,
        sink: &mut Sink,
        frame: ServerFrame,
    ) -> Result<Option<Ending>, Ending> {
        send_frame(sink, &frame).await?;
        if self.bad_frames.take(Instant::now()).is_err() {
            return Ok(Some(Ending::new(
                close::POLICY_VIOLATION,
                "too many bad frames",
                "policy_violation",
            )));
        }
        Ok(None)
    }

    async fn frame(&mut self, sink: &mut Sink, text: &str) -> Result<Option<Ending>, Ending> {
        if text.len() > FRAME_BYTES_MAX {
            let message = format!(
                "frame of {} bytes is over the limit of {FRAME_BYTES_MAX}",
                text.len()
            );
            return self
                .reject(sink, error(ErrorCode::FrameTooLarge, message, None))
                .await;
        }
        let frame = match decode_client_frame(text) {
            Ok(frame) => frame,
            Err(err) => return self.reject(sink, err.to_frame()).await,
        };
        match frame {
            ClientFrame::Send(send) => self.send(sink, send).await,
            ClientFrame::Receipt(receipt) => self.receipt(sink, receipt).await,
            ClientFrame::Typing(typing) => {
                self.typing(typing);
                Ok(None)
            }
            ClientFrame::Ping(ping) => {
                send_frame(sink, &ServerFrame::Pong(ping)).await?;
                Ok(None)
            }
            ClientFrame::Pong(_) => Ok(None),
            ClientFrame::Presence(update) => {
                if self.role != Role::Operator || update.status == PresenceStatus::Offline {
                    let message = "only operators set their presence, to `available` or `away`";
                    return self
                        .reject(sink, error(ErrorCode::Forbidden, message, None))
                        .await;
                }
                self.app.presence.switch(&self.user_id, update.status);
                Ok(None)
            }
            ClientFrame::Hello(_) => {
                self.reject(
                    sink,
                    error(
                        ErrorCode::HelloRequired,
                        "`hello` was already sent on this connection",
                        None,
                    ),
                )
                .await
            }
        }
    }

    async fn send(
        &mut self,
        sink: &mut Sink,
        send: frames::Send,
    ) -> Result<Option<Ending>, Ending> {
        let reference = Some(send.id.clone());
        let id = match crate::validate::message(
            &self.app.config,
            &send.id,
            &send.conversation,
            &send.body,
        ) {
            Ok(id) => id,
            Err((code, message)) => {
                return self.reject(sink, error(code, message, reference)).await
            }
        };
        // From here on, answers name the message by its canonical id, as acks do.
        let reference = Some(id.clone());
        // FIFO per sender (see `blocked` and `predecessor`): nothing overtakes a message of this
        // connection that was refused or failed and has not been stored since.
        if let Some(first) = self.blocked.get(&send.conversation) {
            if *first != id {
                let message =
                    format!("message {first} of this conversation was not stored; resend it first");
                self.app.metrics.ack(ErrorCode::OutOfOrder.as_str());
                // Not a bad frame: a device pipelining many sends gets one of these for each send
                // behind a failed one, legitimately.
                send_frame(sink, &error(ErrorCode::OutOfOrder, message, reference)).await?;
                return Ok(None);
            }
        }
        let after = if self.blocked.contains_key(&send.conversation) {
            None // the blocked message itself: everything before it was answered
        } else {
            self.predecessor
                .get(&send.conversation)
                .filter(|p| **p != id)
                .cloned()
        };
        self.predecessor
            .insert(send.conversation.clone(), id.clone());
        if let Err(wait) = self.sends.take(Instant::now()) {
            let mut frame = ErrorFrame::new(
                ErrorCode::RateLimited,
                "too many sends; retry later",
                reference,
            );
            frame.retry_after_ms = Some(wait.as_millis() as u64 + 1);
            self.app.metrics.ack(ErrorCode::RateLimited.as_str());
            // Answered in order with the sends before it, so that it becomes the blocker only
            // after their outcomes (one of them may fail and must stay the first to resend).
            let conversation = send.conversation;
            self.in_flight
                .push_back(Box::pin(std::future::ready(Finished::Refused {
                    conversation,
                    id,
                    frame,
                })));
            return Ok(None);
        }
        let started = Instant::now();
        let conversation = send.conversation;
        let pending = self.app.store.append(AppendRequest {
            conversation: conversation.clone(),
            id: id.clone(),
            sender: self.user_id.clone(),
            body: send.body,
            ts: now_ms(),
            after,
            kind: send.kind,
        });
        let reference = id.clone();
        self.in_flight.push_back(Box::pin(async move {
            Finished::Send {
                started,
                result: pending.await,
                reference,
                conversation,
                id,
            }
        }));
        Ok(None)
    }

    async fn receipt(
        &mut self,
        sink: &mut Sink,
        receipt: frames::ReceiptUpdate,
    ) -> Result<Option<Ending>, Ending> {
        if !self.conversations.contains_key(&receipt.conversation) {
            return self
                .reject(
                    sink,
                    error(
                        ErrorCode::NotFound,
                        "no such conversation",
                        receipt.reference,
                    ),
                )
                .await;
        }
        // A receipt with a `ref` is answered on its own; others are cumulative and may merge.
        if receipt.reference.is_none() {
            if let Some(waiting) = self.receipts.get_mut(&receipt.conversation) {
                waiting.delivered = waiting.delivered.max(receipt.delivered);
                waiting.read = waiting.read.max(receipt.read);
                waiting.waiting = true;
                return Ok(None);
            }
            self.receipts
                .insert(receipt.conversation.clone(), Coalesced::default());
        }
        self.submit_receipt(receipt);
        Ok(None)
    }

    fn submit_receipt(&mut self, receipt: frames::ReceiptUpdate) {
        let coalesced = receipt
            .reference
            .is_none()
            .then(|| receipt.conversation.clone());
        let pending = self.app.store.record_receipt(ReceiptRequest {
            conversation: receipt.conversation,
            user_id: self.user_id.clone(),
            delivered: receipt.delivered,
            read: receipt.read,
        });
        let reference = receipt.reference;
        self.in_flight.push_back(Box::pin(async move {
            Finished::Receipt {
                result: pending.await,
                reference,
                coalesced,
            }
        }));
    }

    /// A coalescing receipt of `conversation` was stored: submits what merged behind it.
    fn receipt_stored(&mut self, conversation: &str) {
        match self.receipts.get_mut(conversation) {
            Some(waiting) if waiting.waiting => {
                let next = std::mem::take(waiting);
                self.submit_receipt(frames::ReceiptUpdate {
                    reference: None,
                    conversation: conversation.to_owned(),
                    delivered: next.delivered,
                    read: next.read,
                });
            }
            _ => {
                self.receipts.remove(conversation);
            }
        }
    }

    fn typing(&mut self, typing: frames::TypingUpdate) {
        let Some(subscription) = self.conversations.get_mut(&typing.conversation) else {
            return;
        };
        let now = Instant::now();
        // Throttle: forward a change at once, a repeat of the same state at most once a second.
        let forward = match subscription.typing {
            Some((at, active)) => {
                active != typing.active || now.duration_since(at) >= Duration::from_secs(1)
            }
            None => true,
        };
        if forward {
            subscription.typing = Some((now, typing.active));
            self.app.hub.typing(
                &typing.conversation,
                &self.user_id,
                subscription.role,
                typing.active,
            );
        }
    }

    async fn finished(&mut self, sink: &mut Sink, finished: Finished) -> Result<(), Ending> {
        if let Finished::Receipt {
            coalesced: Some(conversation),
            ..
        } = &finished
        {
            self.receipt_stored(conversation);
        }
        if let Finished::Send {
            conversation, id, ..
        } = &finished
        {
            // Answered: no longer the in-flight guard of later sends.
            if self.predecessor.get(conversation) == Some(id) {
                self.predecessor.remove(conversation);
            }
        }
        if let Finished::Send {
            conversation,
            id,
            result,
            ..
        } = &finished
        {
            let first_failure = self.blocked.get(conversation) == Some(id);
            match result {
                Err(err) if !err.code().is_permanent() => {
                    self.blocked
                        .entry(conversation.clone())
                        .or_insert_with(|| id.clone());
                }
                // Stored, or refused for good (it will not come back): later ones may go.
                _ if first_failure => {
                    self.blocked.remove(conversation);
                }
                _ => {}
            }
        }
        if let Finished::Refused {
            conversation,
            id,
            frame,
        } = finished
        {
            if self.predecessor.get(&conversation) == Some(&id) {
                self.predecessor.remove(&conversation);
            }
            self.blocked.entry(conversation).or_insert(id);
            return send_frame(sink, &ServerFrame::Error(frame)).await;
        }
        let metrics = &self.app.metrics;
        match finished {
            Finished::Refused { .. } => unreachable!("answered above"),
            Finished::Send {
                started,
                result: Ok(appended),
                ..
            } => {
                metrics.send_to_ack(started.elapsed());
                if appended.created {
                    metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
                    metrics.ack("stored");
                } else {
                    metrics.ack("duplicate");
                }
                let message = &appended.message;
                let ack = ServerFrame::Ack(frames::Ack {
                    id: message.id.clone(),
                    conversation: message.conversation.clone(),
                    seq: message.seq,
                    ts: message.ts,
                });
                send_frame(sink, &ack).await
            }
            Finished::Send {
                result: Err(err),
                reference,
                ..
            } => {
                metrics.ack(err.code().as_str());
                send_frame(
                    sink,
                    &ServerFrame::Error(store_error_frame(&err, Some(reference))),
                )
                .await
            }
            Finished::Receipt {
                result: Ok(outcome),
                ..
            } => {
                if outcome.changed {
                    metrics.receipts.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }
            Finished::Receipt {
                result: Err(err),
                reference,
                ..
            } => {
                send_frame(
                    sink,
                    &ServerFrame::Error(store_error_frame(&err, reference)),
                )
                .await
            }
        }
    }

    async fn notice(&mut self, sink: &mut Sink, event: HubEvent) -> Result<(), Ending> {
        match event {
            HubEvent::Message { message, frame } => {
                let Some(subscription) = self.conversations.get_mut(&message.conversation) else {
                    return Ok(());
                };
                if message.seq == subscription.pushed + 1 {
                    subscription.pushed = message.seq;
                    match for_device(subscription.role, &message) {
                        None => send_text(sink, frame.to_string()).await?,
                        Some(instead) => send_frame(sink, &instead).await?,
                    }
                } else if message.seq > subscription.pushed + 1 && !subscription.catching_up {
                    subscription.catching_up = true;
                    self.catch_up.push_back(message.conversation.clone());
                }
                Ok(())
            }
            HubEvent::Frame {
                conversation,
                frame,
            } => {
                // Only for conversations this connection has (a subscription may be on its way out).
                if !self.conversations.contains_key(&*conversation) {
                    return Ok(());
                }
                send_text(sink, frame.to_string()).await
            }
            HubEvent::Wake { conversation, seq } => {
                if let Some(subscription) = self.conversations.get_mut(&*conversation) {
                    if seq > subscription.pushed && !subscription.catching_up {
                        subscription.catching_up = true;
                        self.catch_up.push_back(conversation.to_string());
                    }
                }
                Ok(())
            }
            HubEvent::Refresh => self.refresh(sink).await,
            HubEvent::Joined(conversation) => {
                if self.conversations.contains_key(&conversation) {
                    return Ok(());
                }
                let view = match self.app.store.conversation(conversation).await {
                    Ok(Some(view)) => view,
                    Ok(None) => return Ok(()),
                    Err(err) => return Err(self.storage_failed(sink, err).await),
                };
                if !view.participants.iter().any(|p| p.user_id == self.user_id) {
                    return Ok(());
                }
                let state = crate::store::state_of(&view);
                send_frame(
                    sink,
                    &ServerFrame::Joined(frames::Joined {
                        conversation: state.clone(),
                    }),
                )
                .await?;
                self.subscribe(&state, 0);
                Ok(())
            }
            HubEvent::Left(conversation) => self.leave(sink, conversation).await,
        }
    }

    async fn leave(&mut self, sink: &mut Sink, conversation: String) -> Result<(), Ending> {
        if self.conversations.remove(&conversation).is_some() {
            self.registration.unsubscribe(&conversation);
            self.catch_up.retain(|c| *c != conversation);
            send_frame(sink, &ServerFrame::Left(frames::Left { conversation })).await?;
        }
        Ok(())
    }

    /// Rereads every conversation of the user after notices may have been lost: sends the
    /// participants' cursors, catches up what is behind, and joins or leaves what changed.
    async fn refresh(&mut self, sink: &mut Sink) -> Result<(), Ending> {
        let states = match self
            .app
            .store
            .conversation_states_of(self.user_id.clone())
            .await
        {
            Ok(states) => states,
            Err(err) => return Err(self.storage_failed(sink, err).await),
        };
        let gone: Vec<String> = self
            .conversations
            .keys()
            .filter(|id| !states.iter().any(|s| &s.id == *id))
            .cloned()
            .collect();
        for conversation in gone {
            self.leave(sink, conversation).await?;
        }
        for state in states {
            let Some(subscription) = self.conversations.get_mut(&state.id) else {
                send_frame(
                    sink,
                    &ServerFrame::Joined(frames::Joined {
                        conversation: state.clone(),
                    }),
                )
                .await?;
                self.subscribe(&state, 0);
                continue;
            };
            if state.last_seq > subscription.pushed && !subscription.catching_up {
                subscription.catching_up = true;
                self.catch_up.push_back(state.id.clone());
            }
            for p in &state.participants {
                let receipt = frames::Receipt {
                    conversation: state.id.clone(),
                    user_id: p.user_id.clone(),
                    role: p.role,
                    delivered: p.delivered,
                    read: p.read,
                };
                send_frame(sink, &ServerFrame::Receipt(receipt)).await?;
            }
        }
        Ok(())
    }

    /// Sends the next page of one conversation from storage.
    async fn catch_up_one_page(&mut self, sink: &mut Sink) -> Result<(), Ending> {
        let Some(conversation) = self.catch_up.pop_front() else {
            return Ok(());
        };
        let Some(pushed) = self.conversations.get(&conversation).map(|s| s.pushed) else {
            return Ok(());
        };
        let page = match self
            .app
            .store
            .messages_since(conversation.clone(), pushed, PAGE_LIMIT_MAX)
            .await
        {
            Ok(page) => page,
            Err(err) => return Err(self.storage_failed(sink, err).await),
        };
        let full = page.len() == PAGE_LIMIT_MAX as usize;
        let mut sent = 0;
        for message in page {
            let Some(subscription) = self.conversations.get_mut(&conversation) else {
                return Ok(());
            };
            if message.seq != subscription.pushed + 1 {
                continue; // already forwarded live while this page was read
            }
            subscription.pushed = message.seq;
            let role = self
                .conversations
                .get(&conversation)
                .map_or(Role::Client, |s| s.role);
            let frame = for_device(role, &message).unwrap_or(ServerFrame::Message(message));
            send_frame(sink, &frame).await?;
            sent += 1;
        }
        self.app
            .metrics
            .resume_backlog
            .fetch_add(sent, Ordering::Relaxed);
        let Some(subscription) = self.conversations.get_mut(&conversation) else {
            return Ok(());
        };
        if full {
            self.catch_up.push_back(conversation);
        } else {
            subscription.catching_up = false;
            let seq = subscription.pushed;
            send_frame(
                sink,
                &ServerFrame::Synced(frames::Synced { conversation, seq }),
            )
            .await?;
        }
        Ok(())
    }

    async fn storage_failed(&mut self, sink: &mut Sink, err: StoreError) -> Ending {
        let _ = send_frame(sink, &ServerFrame::Error(store_error_frame(&err, None))).await;
        Ending::new(
            close::SERVICE_RESTART,
            "storage unavailable",
            "storage_unavailable",
        )
    }
}
