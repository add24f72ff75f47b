//! The connection core: every decision of one WebSocket connection, with no socket, no clock and
//! no store inside — the server's twin of the client's `Session`. Time comes in as `now`; store
//! outcomes, hub notices and bytes written come in as inputs; frames, store requests, hub calls
//! and the close come out as [`Output`]s.
//!
//! # Methods, by kind
//! - **Inputs** (the driver): [`Core::handle_text`], [`Core::handle_binary`],
//!   [`Core::handle_heard`], [`Core::handle_authenticated`], [`Core::handle_auth_refused`],
//!   [`Core::handle_welcome`], [`Core::handle_stored`], [`Core::handle_page`],
//!   [`Core::handle_conversation`], [`Core::handle_states`], [`Core::handle_notice`],
//!   [`Core::handle_written`], [`Core::handle_timeout`], [`Core::handle_shutdown`],
//!   [`Core::handle_lagged`], [`Core::handle_peer_closed`].
//! - **Outputs** (the driver polls): [`Core::poll_output`], [`Core::poll_timeout`].
//! - **Getters**: [`Core::wants_frames`], [`Core::queued_bytes`], [`Core::is_closed`].
//!
//! # Polling order
//! After every input the driver drains `poll_output` and carries each output out in order
//! (store requests are submitted in that order: stores order writes at call time, which the FIFO
//! guard relies on), then sleeps until `poll_timeout`. Frames go to a writer that never blocks
//! the core; it reports what it wrote with `handle_written`.
//!
//! **Invariant:** answers to `send` and `receipt` frames (acks and errors) go out in the order the
//! frames came, whatever order the store answers in.
//! **Invariant:** for each conversation, `pushed` is the highest `seq` such that every message up
//! to it has been queued for the socket, in `seq` order; a notice that does not continue `pushed`
//! exactly is never forwarded: the gap is filled from storage instead.
//! **Invariant:** the bytes queued for the socket stay below [`WRITE_QUEUE_BYTES_MAX`] plus one
//! frame: past it, or with no write progress for `connection_write_stall_ms`, the connection
//! closes 4409.

mod delivery;
pub mod fifo;
mod sends;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::frames::{
    self, ClientFrame, ConversationState, ErrorFrame, PresenceStatus, ServerFrame,
};
use protocol::limits::{BAD_FRAMES_BURST_MAX, FRAME_BYTES_MAX, HELLO_TIMEOUT_MS};
use protocol::{close, decode_client_frame, ErrorCode, Role, PROTOCOL_VERSION, PROTOCOL_VERSIONS};

use super::limiter::{Bucket, SendBudget};
use crate::auth::Claims;
use crate::config::Config;
use crate::store::{AppendRequest, ReceiptRequest, StoreError};

pub use delivery::Read;
pub use sends::StoreOutcome;

pub use protocol::limits::{WRITE_QUEUE_BYTES_MAX, WRITE_QUEUE_HIGH_BYTES};

/// A frame for the socket, already encoded (hub frames are encoded once for every subscriber).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Text {
    /// Encoded for this connection.
    Owned(String),
    /// Shared with other connections.
    Shared(Arc<str>),
}

impl Text {
    /// The encoded frame.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Owned(text) => text,
            Text::Shared(text) => text,
        }
    }
}

/// Why a connection ends: the close code (0: none, the peer or the transport ended it), its
/// reason, and the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ending {
    /// Close code, or 0 when no close frame is sent.
    pub code: u16,
    /// Close reason.
    pub reason: &'static str,
    /// Metric label (`disconnects` by reason).
    pub label: &'static str,
}

impl Ending {
    /// An ending.
    pub const fn new(code: u16, reason: &'static str, label: &'static str) -> Self {
        Ending {
            code,
            reason,
            label,
        }
    }
}

/// A counter or timing for the metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metric {
    /// The connection was authenticated; what the device reported of its time offline and of its
    /// outbox.
    Connected {
        /// Time without a connection before this one.
        offline: Option<Duration>,
        /// Messages in its outbox.
        pending: Option<u64>,
    },
    /// An error frame was sent.
    Refused(ErrorCode),
    /// A send was answered with this outcome (`stored`, `duplicate` or an error code).
    Ack(&'static str),
    /// A message was newly stored; time from its frame to its ack.
    Stored(Duration),
    /// A repeat was acked; time from its frame to its ack.
    Repeated(Duration),
    /// A receipt moved a cursor.
    Receipt,
    /// Messages sent from storage to catch up.
    Backlog(u64),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Queue a frame for the socket.
    Send(Text),
    /// `hello` is well-formed: verify its token, register with the hub, subscribe to the
    /// cursors' conversations, read the user's conversations, then call `handle_welcome`.
    Authenticate {
        /// The token.
        token: String,
    },
    /// Submit an append; answer with `handle_stored(ticket, ..)`.
    Append {
        /// The request's ticket.
        ticket: u64,
        /// The request.
        request: AppendRequest,
    },
    /// Submit a receipt; answer with `handle_stored(ticket, ..)`.
    Receipt {
        /// The request's ticket.
        ticket: u64,
        /// The request.
        request: ReceiptRequest,
    },
    /// Perform a read; answer with the matching `handle_*`.
    Read(Read),
    /// Start notices for a conversation (the hub subscription; idempotent).
    Subscribe(String),
    /// Stop notices for a conversation.
    Unsubscribe(String),
    /// Tell the other devices of a conversation about typing.
    Typing {
        /// Conversation id.
        conversation: String,
        /// The role the others see.
        role: Role,
        /// Typing or stopped.
        active: bool,
    },
    /// Set this operator's presence.
    Presence(PresenceStatus),
    /// Count something.
    Metric(Metric),
    /// Close with this ending: send the close frame after every queued frame, then finish the
    /// closing handshake. Nothing follows it.
    Close(Ending),
}

/// Per-conversation state of this connection.
#[derive(Debug)]
struct Subscription {
    /// The lesser of the token's role and the participant's role.
    role: Role,
    /// Every message up to this `seq` has been queued for the socket.
    pushed: u64,
    /// The highest `seq` known to be stored (from the state read and notices).
    latest: u64,
    /// Queued for catch-up from storage.
    catching_up: bool,
    /// Last typing signal forwarded, to throttle.
    typing: Option<(Instant, bool)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `hello` until the deadline.
    Hello { deadline: Instant },
    /// The driver checks the token and reads the state.
    Authenticating,
    /// Serving.
    Open,
    /// Shutting down: answering what is in flight, reading nothing new, then 1012.
    Draining,
    /// `Close` was output; nothing more happens.
    Closed,
}

/// What the driver learned while authenticating, for `handle_welcome`.
#[derive(Debug)]
pub struct Authenticated {
    /// The token's claims.
    pub claims: Claims,
    /// When the token expires, on the core's clock.
    pub token_expires: Instant,
    /// The hub's id of this connection.
    pub connection_id: u64,
    /// The user's conversations with their participants' cursors, or why they could not be read.
    pub states: Result<Vec<ConversationState>, StoreError>,
    /// Operators present in those conversations (other than the user).
    pub presence: Vec<frames::Presence>,
}

/// One connection's decisions.
pub struct Core {
    config: Arc<Config>,
    phase: Phase,
    cursors: Vec<frames::Cursor>,
    /// What `hello` reported for the metrics: time offline, outbox size.
    reported: (Option<Duration>, Option<u64>),
    user_id: String,
    /// The user's role, from the token.
    role: Role,
    conversations: HashMap<String, Subscription>,
    sends: sends::Sends,
    delivery: delivery::Delivery,
    /// The user's send budget, shared with the user's other connections and HTTP sends.
    send_budget: Arc<SendBudget>,
    bad_frames: Bucket,
    last_heard: Instant,
    next_ping: Instant,
    token_expires: Instant,
    /// Bytes output as frames and not yet reported written.
    queued_bytes: usize,
    /// When the writer last made progress (or the queue was last empty).
    last_progress: Instant,
    outputs: VecDeque<Output>,
}

impl Core {
    /// A connection that just opened at `now`; it waits for `hello`. Its sends take from
    /// `send_budget` (the server's, shared by all connections and HTTP).
    pub fn new(config: Arc<Config>, send_budget: Arc<SendBudget>, now: Instant) -> Self {
        Core {
            phase: Phase::Hello {
                deadline: now + Duration::from_millis(HELLO_TIMEOUT_MS),
            },
            cursors: Vec::new(),
            reported: (None, None),
            user_id: String::new(),
            role: Role::Client,
            conversations: HashMap::new(),
            sends: sends::Sends::default(),
            delivery: delivery::Delivery::default(),
            send_budget,
            bad_frames: Bucket::new(BAD_FRAMES_BURST_MAX, 1.0, now),
            last_heard: now,
            next_ping: now,
            token_expires: now,
            queued_bytes: 0,
            last_progress: now,
            outputs: VecDeque::new(),
            config,
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let stall = (self.queued_bytes > 0).then(|| self.last_progress + self.write_stall());
        let phase = match self.phase {
            Phase::Hello { deadline } => Some(deadline),
            Phase::Authenticating | Phase::Closed => None,
            Phase::Open | Phase::Draining => Some(
                self.next_ping
                    .min(self.last_heard + self.heartbeat_timeout())
                    .min(self.token_expires),
            ),
        };
        match (phase, stall) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the driver should read the device's next frame: not before the token is checked,
    /// not while shutting down, and not while too many of its requests are in flight (the device
    /// waits in its socket: backpressure instead of buffering).
    pub fn wants_frames(&self) -> bool {
        match self.phase {
            Phase::Hello { .. } => true,
            Phase::Open => self.sends.in_flight() < self.config.connection_inflight_max,
            Phase::Authenticating | Phase::Draining | Phase::Closed => false,
        }
    }

    /// Bytes output as frames and not yet reported written.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// Whether `Close` was output.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The user, once authenticated.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The token's role, once authenticated.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The cursors `hello` carried (the driver subscribes to their conversations first).
    pub fn hello_cursors(&self) -> &[frames::Cursor] {
        &self.cursors
    }

    fn write_stall(&self) -> Duration {
        Duration::from_millis(self.config.connection_write_stall_ms)
    }

    fn heartbeat_timeout(&self) -> Duration {
        Duration::from_millis(self.config.heartbeat_interval_ms + self.config.heartbeat_grace_ms)
    }

    // ---- outputs ----

    fn send_frame(&mut self, frame: &ServerFrame) {
        if let (ServerFrame::Error(error), false) = (frame, self.phase == Phase::Closed) {
            self.outputs
                .push_back(Output::Metric(Metric::Refused(error.code)));
        }
        self.send_text(Text::Owned(frame.encode()));
    }

    fn send_text(&mut self, text: Text) {
        if self.phase == Phase::Closed {
            return;
        }
        self.queued_bytes += text.as_str().len();
        self.outputs.push_back(Output::Send(text));
        if self.queued_bytes > WRITE_QUEUE_BYTES_MAX {
            self.close(Ending::new(
                close::TOO_SLOW,
                "too slow: resume from your cursors",
                "too_slow",
            ));
        }
    }

    fn error(&mut self, code: ErrorCode, message: impl Into<String>, reference: Option<String>) {
        self.send_frame(&ServerFrame::Error(ErrorFrame::new(
            code, message, reference,
        )));
    }

    fn close(&mut self, ending: Ending) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.outputs.push_back(Output::Close(ending));
        }
    }

    fn storage_failed(&mut self, err: &StoreError) {
        self.send_frame(&ServerFrame::Error(crate::error::store_error_frame(
            err, None,
        )));
        self.close(Ending::new(
            close::SERVICE_RESTART,
            "storage unavailable",
            "storage_unavailable",
        ));
    }

    /// Answers a device's fault; after too many in a burst, closes 4429.
    fn reject(&mut self, now: Instant, frame: ErrorFrame) {
        self.send_frame(&ServerFrame::Error(frame));
        if self.bad_frames.take(now).is_err() {
            self.close(Ending::new(
                close::POLICY_VIOLATION,
                "too many bad frames",
                "policy_violation",
            ));
        }
    }

    // ---- inputs ----

    /// The device sent something (any frame, or a WebSocket ping/pong): it is alive.
    pub fn handle_heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// A text frame from the device.
    pub fn handle_text(&mut self, now: Instant, text: &str) {
        self.last_heard = now;
        match self.phase {
            Phase::Hello { .. } => self.hello(text),
            Phase::Open => self.frame(now, text),
            // Read after the close decision (the closing handshake discards them).
            Phase::Authenticating | Phase::Draining | Phase::Closed => {}
        }
    }

    /// A binary frame from the device.
    pub fn handle_binary(&mut self, now: Instant) {
        self.last_heard = now;
        match self.phase {
            Phase::Hello { .. } => {
                self.error(
                    ErrorCode::HelloRequired,
                    "the first frame must be a text `hello` frame",
                    None,
                );
                self.close(Ending::new(
                    close::PROTOCOL_ERROR,
                    "hello expected",
                    "protocol_error",
                ));
            }
            Phase::Open => self.reject(
                now,
                ErrorFrame::new(
                    ErrorCode::MalformedFrame,
                    "binary frames are not supported; send JSON text",
                    None,
                ),
            ),
            Phase::Authenticating | Phase::Draining | Phase::Closed => {}
        }
    }

    /// The device closed, or the transport failed (`too_big`: a frame over the transport limit).
    pub fn handle_peer_closed(&mut self, too_big: bool) {
        self.close(if too_big {
            Ending::new(close::MESSAGE_TOO_BIG, "message too big", "too_big")
        } else {
            Ending::new(0, "", "client_closed")
        });
    }

    fn hello(&mut self, text: &str) {
        let protocol_error = Ending::new(close::PROTOCOL_ERROR, "hello expected", "protocol_error");
        let hello = match decode_client_frame(text) {
            Ok(ClientFrame::Hello(hello)) => hello,
            Ok(_) => {
                self.error(
                    ErrorCode::HelloRequired,
                    "the first frame must be `hello`",
                    None,
                );
                return self.close(protocol_error);
            }
            Err(err) => {
                self.send_frame(&err.to_frame());
                return self.close(protocol_error);
            }
        };
        if !PROTOCOL_VERSIONS.contains(&hello.v) {
            let spoken: Vec<String> = PROTOCOL_VERSIONS.iter().map(u32::to_string).collect();
            let message = format!(
                "this server speaks protocol version {}, not {}",
                spoken.join(" and "),
                hello.v
            );
            self.error(ErrorCode::VersionUnsupported, message, None);
            return self.close(Ending::new(
                close::PROTOCOL_ERROR,
                "version unsupported",
                "protocol_error",
            ));
        }
        self.phase = Phase::Authenticating;
        self.cursors = hello.cursors;
        self.reported = (hello.offline_ms.map(Duration::from_millis), hello.pending);
        self.outputs
            .push_back(Output::Authenticate { token: hello.token });
    }

    /// The token was refused with `code` (4401), or the user has too many connections
    /// (`TooManyConnections`: 4429).
    pub fn handle_auth_refused(&mut self, code: ErrorCode, message: String) {
        self.error(code, message, None);
        self.close(match code {
            ErrorCode::TooManyConnections => Ending::new(
                close::POLICY_VIOLATION,
                "too many connections",
                "too_many_connections",
            ),
            ErrorCode::Unavailable => Ending::new(
                close::SERVICE_RESTART,
                "storage unavailable",
                "storage_unavailable",
            ),
            _ => Ending::new(close::UNAUTHORIZED, code.as_str(), "unauthorized"),
        });
    }

    /// The token is valid and the state was read: welcome the device and start serving.
    pub fn handle_welcome(&mut self, now: Instant, authenticated: Authenticated) {
        let Authenticated {
            claims,
            token_expires,
            connection_id,
            states,
            presence,
        } = authenticated;
        let states = match states {
            Ok(states) => states,
            Err(err) => return self.storage_failed(&err),
        };
        self.user_id = claims.sub.clone();
        self.role = claims.role;
        self.token_expires = token_expires;
        self.last_heard = now;
        self.next_ping = now + Duration::from_millis(self.config.heartbeat_interval_ms);
        self.phase = Phase::Open;
        let (offline, pending) = self.reported;
        self.outputs
            .push_back(Output::Metric(Metric::Connected { offline, pending }));
        let cursors = std::mem::take(&mut self.cursors);
        for cursor in &cursors {
            if !states.iter().any(|s| s.id == cursor.conversation) {
                // Not a participant (any more): no notices.
                self.outputs
                    .push_back(Output::Unsubscribe(cursor.conversation.clone()));
            }
        }
        self.send_frame(&ServerFrame::Welcome(frames::Welcome {
            v: PROTOCOL_VERSION,
            user_id: claims.sub,
            role: claims.role,
            connection_id: format!("c{connection_id}"),
            heartbeat_ms: self.config.heartbeat_interval_ms,
            timeout_ms: self.config.heartbeat_interval_ms + self.config.heartbeat_grace_ms,
            conversations: states.clone(),
        }));
        for state in &states {
            let cursor = cursors.iter().find(|c| c.conversation == state.id);
            let valid = cursor.is_none_or(|c| {
                c.seq <= state.last_seq && c.epoch.is_none_or(|e| e == state.epoch)
            });
            if !valid {
                self.send_frame(&ServerFrame::Resync(frames::Resync {
                    conversation: state.id.clone(),
                    epoch: state.epoch,
                    last_seq: state.last_seq,
                }));
            }
            let pushed = if valid {
                cursor.map_or(0, |c| c.seq)
            } else {
                0
            };
            self.subscribe(state, pushed);
        }
        for presence in presence {
            self.send_frame(&ServerFrame::Presence(presence));
        }
        self.delivery_next();
    }

    /// Timers: hello deadline, heartbeat ping and timeout, token expiry, write stall.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.queued_bytes > 0 && now >= self.last_progress + self.write_stall() {
            return self.close(Ending::new(
                close::TOO_SLOW,
                "too slow: resume from your cursors",
                "too_slow",
            ));
        }
        match self.phase {
            Phase::Hello { deadline } if now >= deadline => {
                // Slow, not wrong (a phone on a bad network): the device may try again.
                self.close(Ending::new(
                    close::HEARTBEAT_TIMEOUT,
                    "no hello in time",
                    "hello_timeout",
                ));
            }
            Phase::Open | Phase::Draining => {
                if now >= self.last_heard + self.heartbeat_timeout() {
                    return self.close(Ending::new(
                        close::HEARTBEAT_TIMEOUT,
                        "heartbeat timeout",
                        "heartbeat_timeout",
                    ));
                }
                if now >= self.token_expires {
                    self.error(
                        ErrorCode::TokenExpired,
                        "the token expired; reconnect with a fresh one",
                        None,
                    );
                    return self.close(Ending::new(
                        close::UNAUTHORIZED,
                        "token_expired",
                        "token_expired",
                    ));
                }
                if now >= self.next_ping {
                    let interval = Duration::from_millis(self.config.heartbeat_interval_ms);
                    self.next_ping = now + interval;
                    self.send_frame(&ServerFrame::Ping(frames::ServerPing {
                        ts: crate::now_ms(),
                    }));
                }
            }
            _ => {}
        }
    }

    /// The writer handed `bytes` of queued frames to the kernel.
    pub fn handle_written(&mut self, now: Instant, bytes: usize) {
        debug_assert!(bytes <= self.queued_bytes, "more written than queued");
        self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
        self.last_progress = now;
        if self.phase == Phase::Open {
            self.delivery_next();
        }
    }

    /// The server is shutting down: answer what is in flight, then close 1012.
    pub fn handle_shutdown(&mut self) {
        match self.phase {
            Phase::Open => {
                self.phase = Phase::Draining;
                self.drained();
            }
            Phase::Closed | Phase::Draining => {}
            Phase::Hello { .. } | Phase::Authenticating => self.close(Ending::new(
                close::SERVICE_RESTART,
                "server restarting",
                "shutdown",
            )),
        }
    }

    /// Closes 1012 once every send taken is answered, while draining.
    fn drained(&mut self) {
        if self.phase == Phase::Draining && self.sends.in_flight() == 0 {
            self.close(Ending::new(
                close::SERVICE_RESTART,
                "server restarting",
                "shutdown",
            ));
        }
    }

    /// The hub could not queue a notice for this connection: it missed something. Close 4409;
    /// the device resumes from its cursors.
    pub fn handle_lagged(&mut self) {
        self.close(Ending::new(
            close::TOO_SLOW,
            "too slow: resume from your cursors",
            "too_slow",
        ));
    }

    fn frame(&mut self, now: Instant, text: &str) {
        if text.len() > FRAME_BYTES_MAX {
            let message = format!(
                "frame of {} bytes is over the limit of {FRAME_BYTES_MAX}",
                text.len()
            );
            return self.reject(
                now,
                ErrorFrame::new(ErrorCode::FrameTooLarge, message, None),
            );
        }
        let frame = match decode_client_frame(text) {
            Ok(frame) => frame,
            Err(err) => {
                let ServerFrame::Error(frame) = err.to_frame() else {
                    unreachable!("a decode error is an error frame")
                };
                return self.reject(now, frame);
            }
        };
        match frame {
            ClientFrame::Send(send) => self.send(now, send),
            ClientFrame::Receipt(receipt) => self.receipt(now, receipt),
            ClientFrame::Typing(typing) => self.typing(now, typing),
            ClientFrame::Ping(ping) => self.send_frame(&ServerFrame::Pong(ping)),
            ClientFrame::Pong(_) => {}
            ClientFrame::Presence(update) => {
                if self.role != Role::Operator || update.status == PresenceStatus::Offline {
                    let message = "only operators set their presence, to `available` or `away`";
                    return self.reject(now, ErrorFrame::new(ErrorCode::Forbidden, message, None));
                }
                self.outputs.push_back(Output::Presence(update.status));
            }
            ClientFrame::Hello(_) => self.reject(
                now,
                ErrorFrame::new(
                    ErrorCode::HelloRequired,
                    "`hello` was already sent on this connection",
                    None,
                ),
            ),
        }
    }

    fn typing(&mut self, now: Instant, typing: frames::TypingUpdate) {
        let Some(subscription) = self.conversations.get_mut(&typing.conversation) else {
            return;
        };
        // Throttle: forward a change at once, a repeat of the same state at most once a second.
        let forward = match subscription.typing {
            Some((at, active)) => {
                active != typing.active || now.duration_since(at) >= Duration::from_secs(1)
            }
            None => true,
        };
        if forward {
            subscription.typing = Some((now, typing.active));
            self.outputs.push_back(Output::Typing {
                conversation: typing.conversation,
                role: subscription.role,
                active: typing.active,
            });
        }
    }

    fn subscribe(&mut self, state: &ConversationState, pushed: u64) {
        let participant = state
            .participants
            .iter()
            .find(|p| p.user_id == self.user_id)
            .map_or(Role::Client, |p| p.role);
        self.outputs.push_back(Output::Subscribe(state.id.clone()));
        self.conversations.insert(
            state.id.clone(),
            Subscription {
                role: lesser(self.role, participant),
                pushed,
                latest: state.last_seq.max(pushed),
                catching_up: true,
                typing: None,
            },
        );
        // Every conversation is caught up once at start, even at its end: that sends `synced`.
        self.delivery.catch_up.push_back(state.id.clone());
    }
}

pub(crate) use crate::store::lesser;
