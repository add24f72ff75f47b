//! The sans-IO session: everything a device must get right, with no sockets, no clock and no
//! global randomness inside. Time comes in as `now`, randomness as the configured seed.
//!
//! # Methods, by kind
//! - **Commands** (the app): [`Session::connect`], [`Session::disconnect`], [`Session::send`],
//!   [`Session::send_with_files`], [`Session::retry_failed`], [`Session::mark_read`],
//!   [`Session::set_typing`], [`Session::set_token`].
//! - **Inputs** (the driver): [`Session::handle_open`], [`Session::handle_frame`],
//!   [`Session::handle_close`], [`Session::handle_timeout`], [`Session::handle_network`], and
//!   for uploads [`Session::handle_upload_progress`], [`Session::handle_upload_done`],
//!   [`Session::handle_upload_failed`].
//! - **Outputs** (the driver polls): [`Session::poll_action`], [`Session::poll_event`],
//!   [`Session::poll_transmit`], [`Session::poll_timeout`].
//! - **Getters**: [`Session::status`], [`Session::pending_count`], [`Session::messages`], …
//!
//! # Polling order
//! After every command or input, a driver drains, in this order: `poll_action` (open or close
//! the transport), `poll_event` (persist messages, cursors and outbox changes, tell the app),
//! `poll_transmit` (write frames), then arms a timer for `poll_timeout`. Events before transmits
//! is what makes a `delivered` receipt mean "stored on this device".
//!
//! # When storing fails
//! If persisting the events just polled fails, the driver keeps them, calls
//! [`Session::handle_store_failure`] before polling transmits, and keeps the connection. The
//! session then acknowledges nothing beyond what is stored: it takes back the receipts not yet
//! written and sends none past the stored cursor. The driver stores the kept events again in
//! front of the next ones, at the latest when `poll_timeout` (with backoff) wakes it; once a
//! drain stores them (it polls transmits with no failure), receipts move on.
//!
//! **Invariant:** a conversation's `cursor` is the highest `seq` up to which every message is
//! held; messages are handed to the app in `seq` order, each id once.
//! **Invariant:** within a conversation, an outbox message is never sent while an earlier one
//! of the same conversation waits to be resent (go-back-N), so FIFO per sender holds.
//! **Invariant:** a delivery status only moves forward, except `failed` → `sending` on a
//! manual retry.
//!
//! # Attachments
//! A message with files ([`Session::send_with_files`]) stays in the outbox, unsent, until every
//! file is uploaded; the messages after it in its conversation wait behind it. The session
//! orders each upload ([`Action::Upload`], at most `Config::uploads_max` at once) and the driver
//! reports how it went; transient failures are tried again with the same backoff as
//! reconnects, a refusal fails the message. See [`files`].

mod conversation;
pub mod files;
mod outbox;
pub mod types;
mod uploads;

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use protocol::frames::{self, ClientFrame, ServerFrame};
use protocol::{close, ErrorCode, Role, PROTOCOL_VERSION};

use conversation::Conversation;
pub use files::{OutboxFile, UploadFailure, UploadOrder, UploadProgress};
use outbox::{EntryState, Outbox};
use types::Jitter;
pub use types::{Action, ChatMessage, Config, ConnectionStatus, DeliveryStatus, Event};

/// Where the transport is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    /// No connection.
    Idle,
    /// `Connect` asked for; waiting for `handle_open`.
    Opening,
    /// Open; `hello` sent; waiting for `welcome`.
    Greeting,
    /// `welcome` received.
    Ready,
}

/// A message kept in the outbox across restarts (see [`Snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingMessage {
    /// Message id.
    pub id: String,
    /// Conversation id.
    pub conversation: String,
    /// Text.
    pub body: String,
    /// `Some((code, message))` if it failed for good.
    pub failed: Option<(String, String)>,
    /// Its files (their bytes are the driver's to keep), in the order they are shown.
    pub files: Vec<OutboxFile>,
}

/// A conversation kept across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConversation {
    /// Conversation id.
    pub id: String,
    /// Epoch of the cursor.
    pub epoch: Option<u64>,
    /// Contiguous cursor.
    pub cursor: u64,
    /// The messages held, ascending by `seq`, `1..=cursor`.
    pub messages: Vec<ChatMessage>,
}

/// What a driver persisted, to start a session where the last one stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The user this device belongs to, if known.
    pub user_id: Option<String>,
    /// Outbox, in creation order.
    pub outbox: Vec<PendingMessage>,
    /// Conversations with their cursors and messages.
    pub conversations: Vec<StoredConversation>,
}

/// A device's session.
pub struct Session {
    config: Config,
    token: String,
    jitter: Jitter,
    status: ConnectionStatus,
    transport: Transport,
    /// The app wants to be connected (between `connect` and `disconnect`).
    wanted: bool,
    network_up: bool,
    /// Reconnect attempts since the last `welcome`.
    attempt: u32,
    /// Identifies the current transport attempt.
    attempt_id: u64,
    next_attempt_at: Option<Instant>,
    connect_deadline: Option<Instant>,
    heartbeat_deadline: Option<Instant>,
    /// When the last welcomed connection was lost (reported in the next `hello`).
    lost_at: Option<Instant>,
    /// The token said in the last `hello`.
    hello_token: Option<String>,
    /// The server refused the token: nothing is tried until `set_token`.
    expired: bool,
    heartbeat_timeout: Duration,
    user_id: Option<String>,
    conversations: BTreeMap<String, Conversation>,
    outbox: Outbox,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
    transmits: VecDeque<ClientFrame>,
    /// Conversations whose cursor moved since the driver last stored (it polls transmits only
    /// after storing): the cursor before, to fall back to if storing fails.
    unconfirmed: BTreeMap<String, u64>,
    /// Conversations whose messages beyond this cursor are held but not stored on the device:
    /// no receipt goes past it until they are.
    unstored: BTreeMap<String, u64>,
    /// When to hand the unstored messages to the driver again.
    store_retry_at: Option<Instant>,
    /// Failed attempts to store, for the retry backoff.
    store_attempts: u32,
    /// Identifies the last upload ordered.
    upload_attempt: u64,
}

impl Session {
    /// A session with an empty outbox and no history.
    pub fn new(config: Config, token: impl Into<String>) -> Self {
        Self::restore(config, token, Snapshot::default())
    }

    /// A session that continues from a snapshot: pending messages are resent in order on the
    /// next connection, cursors resume where they were.
    pub fn restore(config: Config, token: impl Into<String>, snapshot: Snapshot) -> Self {
        let heartbeat_timeout = Duration::from_millis(config.heartbeat_timeout_ms);
        let mut session = Session {
            jitter: Jitter::new(config.seed),
            config,
            token: token.into(),
            status: ConnectionStatus::Disconnected,
            transport: Transport::Idle,
            wanted: false,
            network_up: true,
            attempt: 0,
            attempt_id: 0,
            next_attempt_at: None,
            connect_deadline: None,
            heartbeat_deadline: None,
            lost_at: None,
            hello_token: None,
            expired: false,
            heartbeat_timeout,
            user_id: snapshot.user_id.clone(),
            conversations: BTreeMap::new(),
            outbox: Outbox::default(),
            actions: VecDeque::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            unconfirmed: BTreeMap::new(),
            unstored: BTreeMap::new(),
            store_retry_at: None,
            store_attempts: 0,
            upload_attempt: 0,
        };
        for stored in snapshot.conversations {
            let conversation = Conversation::restore(stored, session.user_id.as_deref());
            session
                .conversations
                .insert(conversation.id.clone(), conversation);
        }
        for pending in snapshot.outbox {
            session.outbox.restore(pending);
        }
        session
    }

    // ---- getters -------------------------------------------------------------------------

    /// The connection status.
    pub fn status(&self) -> ConnectionStatus {
        self.status
    }

    /// Messages in the outbox that are not yet durable on the server (failed ones included).
    pub fn pending_count(&self) -> usize {
        self.outbox.len()
    }

    /// Messages in the outbox still on their way: not durable yet and not failed. What a
    /// "waiting to be sent" line counts (a failed message waits for the user, not the network).
    pub fn waiting_count(&self) -> usize {
        self.outbox.len() - self.outbox.failed_count()
    }

    /// Messages in the outbox that failed for good.
    pub fn failed_count(&self) -> usize {
        self.outbox.failed_count()
    }

    /// A one-screen account of the session's state — connection, timers and each outbox entry —
    /// for diagnosing a device that does not make progress. Not a stable format.
    pub fn describe(&self, now: Instant) -> String {
        use std::fmt::Write;
        let at = |t: Option<Instant>| match t {
            Some(t) if t >= now => format!("in {} ms", (t - now).as_millis()),
            Some(t) => format!("{} ms ago", (now - t).as_millis()),
            None => "-".into(),
        };
        let mut out = format!(
            "status {:?}, transport {:?}, wanted {}, network {}, attempt {} (id {}), next attempt {}, \
             connect deadline {}, heartbeat deadline {}, outbox {}\n",
            self.status,
            self.transport,
            self.wanted,
            self.network_up,
            self.attempt,
            self.attempt_id,
            at(self.next_attempt_at),
            at(self.connect_deadline),
            at(self.heartbeat_deadline),
            self.outbox.len(),
        );
        for entry in self.outbox.entries() {
            let _ = writeln!(
                out,
                "  {} {} {:?} attempts {} not before {}",
                entry.conversation,
                entry.id,
                entry.state,
                entry.attempts,
                at(entry.not_before)
            );
            for slot in &entry.files {
                let _ = writeln!(
                    out,
                    "    file {} {:?} offset {}/{} attempts {} not before {}",
                    slot.file.upload_id,
                    slot.state,
                    slot.offset,
                    slot.file.length,
                    slot.attempts,
                    at(slot.not_before)
                );
            }
        }
        out
    }

    /// Whether attempt `attempt` is the one the session is waiting to open (a driver drops a
    /// socket that opens for an attempt the session has given up on).
    pub fn is_opening(&self, attempt: u64) -> bool {
        attempt == self.attempt_id && self.transport == Transport::Opening
    }

    /// The token the session uses now (for the driver's HTTP requests).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The user, once known from `welcome` (or the snapshot).
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// Conversation ids known to the device.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.conversations.keys().cloned().collect()
    }

    /// A conversation's contiguous cursor.
    pub fn cursor(&self, conversation: &str) -> u64 {
        self.conversations.get(conversation).map_or(0, |c| c.cursor)
    }

    /// A conversation's messages: those held, by `seq`, then the outbox's, in creation order.
    pub fn messages(&self, conversation: &str) -> Vec<ChatMessage> {
        let mut out: Vec<ChatMessage> = self
            .conversations
            .get(conversation)
            .map(|c| c.messages().cloned().collect())
            .unwrap_or_default();
        let me = self.user_id.clone().unwrap_or_default();
        let role = self
            .conversations
            .get(conversation)
            .and_then(|c| c.role)
            .unwrap_or(Role::Client);
        out.extend(
            self.outbox
                .entries()
                .filter(|e| e.conversation == conversation)
                .map(|e| ChatMessage {
                    conversation: e.conversation.clone(),
                    id: e.id.clone(),
                    seq: None,
                    sender: me.clone(),
                    role,
                    body: e.body.clone(),
                    ts: None,
                    status: Some(e.status()),
                    attachments: e
                        .files
                        .iter()
                        .map(|slot| uploads::pending_attachment(&slot.file))
                        .collect(),
                }),
        );
        out
    }

    /// The status of one of the user's messages.
    pub fn delivery_status(&self, id: &str) -> Option<DeliveryStatus> {
        if let Some(entry) = self.outbox.get(id) {
            return Some(entry.status());
        }
        self.conversations.values().find_map(|c| c.own_status(id))
    }

    // ---- commands ------------------------------------------------------------------------

    /// Starts connecting (and keeps reconnecting until [`Session::disconnect`]).
    pub fn connect(&mut self, now: Instant) {
        self.wanted = true;
        if self.transport == Transport::Idle {
            self.attempt = 0;
            if self.network_up {
                self.open(now);
            } else {
                self.set_status(ConnectionStatus::Offline);
            }
        }
        self.start_uploads(now);
    }

    /// Closes the connection and stops reconnecting. The outbox is kept.
    pub fn disconnect(&mut self, now: Instant) {
        self.wanted = false;
        self.drop_transport(now, true);
        self.pause_uploads();
        self.next_attempt_at = None;
        self.set_status(ConnectionStatus::Disconnected);
    }

    /// Queues a message (the driver has already persisted it under `id`). Returns the id.
    pub fn send(
        &mut self,
        now: Instant,
        id: String,
        conversation: &str,
        body: &str,
        deadline: Option<Instant>,
    ) -> String {
        self.send_with_files(now, id, conversation, body, Vec::new(), deadline)
    }

    /// Queues every failed message again, with its id. Returns how many.
    pub fn retry_failed(&mut self, now: Instant) -> usize {
        let retried = self.outbox.retry_failed();
        for (conversation, id) in &retried {
            self.events.push_back(Event::DeliveryStatus {
                conversation: conversation.clone(),
                id: id.clone(),
                status: DeliveryStatus::Sending,
            });
        }
        self.flush(now);
        retried.len()
    }

    /// Marks everything held in `conversation` as read.
    pub fn mark_read(&mut self, now: Instant, conversation: &str) {
        self.mark_read_up_to(now, conversation, u64::MAX);
    }

    /// Marks what is held in `conversation` as read up to `seq` (the last message the reader
    /// saw: a read receipt covers only what was on screen). Never moves back.
    pub fn mark_read_up_to(&mut self, now: Instant, conversation: &str, seq: u64) {
        if let Some(c) = self.conversations.get_mut(conversation) {
            c.read_wanted = c.read_wanted.max(seq.min(c.cursor));
        }
        self.flush(now);
    }

    /// Sends a typing signal if connected (ephemeral: never queued).
    pub fn set_typing(&mut self, _now: Instant, conversation: &str, active: bool) {
        if self.transport == Transport::Ready {
            self.transmits
                .push_back(ClientFrame::Typing(frames::TypingUpdate {
                    conversation: conversation.to_owned(),
                    active,
                }));
        }
    }

    /// Replaces the token; if the session was waiting for one, reconnects at once.
    pub fn set_token(&mut self, now: Instant, token: impl Into<String>) {
        self.token = token.into();
        self.expired = false;
        if self.wanted && self.transport == Transport::Idle && self.network_up {
            self.attempt = 0;
            self.open(now);
        }
        self.start_uploads(now);
    }

    // ---- inputs --------------------------------------------------------------------------

    /// The transport of attempt `attempt` is open: say hello with the cursors.
    pub fn handle_open(&mut self, now: Instant, attempt: u64) {
        if attempt != self.attempt_id || self.transport != Transport::Opening {
            return;
        }
        self.transport = Transport::Greeting;
        self.heartbeat_deadline = Some(now + self.heartbeat_timeout);
        let cursors = self
            .conversations
            .values()
            .map(|c| frames::Cursor {
                conversation: c.id.clone(),
                seq: c.cursor,
                epoch: c.epoch,
            })
            .collect();
        self.hello_token = Some(self.token.clone());
        self.transmits.push_back(ClientFrame::Hello(frames::Hello {
            v: PROTOCOL_VERSION,
            token: self.token.clone(),
            cursors,
            offline_ms: self
                .lost_at
                .map(|at| now.saturating_duration_since(at).as_millis() as u64),
            pending: Some(self.outbox.len() as u64),
        }));
    }

    /// The transport of attempt `attempt` closed (or failed to open), with the close code if
    /// one was received.
    pub fn handle_close(&mut self, now: Instant, attempt: u64, code: Option<u16>) {
        if attempt != self.attempt_id || self.transport == Transport::Idle {
            return;
        }
        self.drop_transport(now, false);
        match code {
            Some(code) if !close::should_reconnect(code) => {
                self.wanted = false;
                self.pause_uploads();
                self.next_attempt_at = None;
                self.set_status(ConnectionStatus::Disconnected);
            }
            Some(close::UNAUTHORIZED) if self.hello_token.as_ref() == Some(&self.token) => {
                // Trying again with a refused token cannot succeed: wait for a new one
                // (`set_token`), keeping the outbox. A token refreshed since that hello is
                // tried at the next attempt instead.
                self.expired = true;
                self.pause_uploads();
                self.next_attempt_at = None;
                self.events.push_back(Event::TokenExpired);
                self.set_status(ConnectionStatus::Expired);
            }
            _ => self.schedule_reconnect(now),
        }
    }

    /// A frame from the server.
    pub fn handle_frame(&mut self, now: Instant, frame: ServerFrame) {
        if matches!(self.transport, Transport::Idle | Transport::Opening) {
            return;
        }
        self.heartbeat_deadline = Some(now + self.heartbeat_timeout);
        match frame {
            ServerFrame::Welcome(welcome) => self.welcome(now, welcome),
            ServerFrame::Message(message) => {
                let me = self.user_id.clone();
                let conversation = self
                    .conversations
                    .entry(message.conversation.clone())
                    .or_insert_with(|| Conversation::new(message.conversation.clone()));
                self.unconfirmed
                    .entry(conversation.id.clone())
                    .or_insert(conversation.cursor);
                let own = me.as_deref() == Some(message.sender.as_str());
                if own {
                    if let Some(entry) = self.outbox.take(&message.id) {
                        // Our own message came back before (or instead of) its ack.
                        conversation.own_sent(&entry.id, message.seq, &mut self.events);
                    }
                }
                conversation.receive(message.seq, Some(message), me.as_deref(), &mut self.events);
            }
            ServerFrame::Ack(ack) => {
                if self.outbox.take(&ack.id).is_some() {
                    let me = self.user_id.clone();
                    let conversation = self
                        .conversations
                        .entry(ack.conversation.clone())
                        .or_insert_with(|| Conversation::new(ack.conversation.clone()));
                    conversation.own_sent(&ack.id, ack.seq, &mut self.events);
                    conversation.recompute(me.as_deref(), &mut self.events);
                }
            }
            ServerFrame::Error(error) => self.error(now, error),
            ServerFrame::Receipt(receipt) => {
                let me = self.user_id.clone();
                if let Some(conversation) = self.conversations.get_mut(&receipt.conversation) {
                    conversation.participant(
                        &receipt.user_id,
                        receipt.role,
                        receipt.delivered,
                        receipt.read,
                    );
                    if me.as_deref() == Some(receipt.user_id.as_str()) {
                        // Another device of ours moved our cursors.
                        conversation.delivered_sent =
                            conversation.delivered_sent.max(receipt.delivered);
                        conversation.read_sent = conversation.read_sent.max(receipt.read);
                    }
                    conversation.recompute(me.as_deref(), &mut self.events);
                }
                self.events.push_back(Event::Receipt {
                    conversation: receipt.conversation,
                    user_id: receipt.user_id,
                    role: receipt.role,
                    delivered: receipt.delivered,
                    read: receipt.read,
                });
            }
            ServerFrame::Synced(synced) => {
                self.events.push_back(Event::Synced {
                    conversation: synced.conversation,
                    seq: synced.seq,
                });
            }
            ServerFrame::Typing(typing) => {
                self.events.push_back(Event::Typing {
                    conversation: typing.conversation,
                    user_id: typing.user_id,
                    active: typing.active,
                });
            }
            ServerFrame::Joined(joined) => {
                let me = self.user_id.clone();
                self.adopt(joined.conversation, me.as_deref());
            }
            ServerFrame::Left(_) => {}
            ServerFrame::Resync(resync) => {
                let conversation = self
                    .conversations
                    .entry(resync.conversation.clone())
                    .or_insert_with(|| Conversation::new(resync.conversation.clone()));
                // Already reset on `welcome` when the copy was seen to be void.
                let already = conversation.epoch == Some(resync.epoch) && conversation.cursor == 0;
                if !already {
                    conversation.reset(resync.epoch);
                    self.events.push_back(Event::Resync {
                        conversation: resync.conversation,
                        epoch: resync.epoch,
                    });
                }
            }
            ServerFrame::Skip(skip) => {
                let me = self.user_id.clone();
                let conversation = self
                    .conversations
                    .entry(skip.conversation.clone())
                    .or_insert_with(|| Conversation::new(skip.conversation.clone()));
                self.unconfirmed
                    .entry(conversation.id.clone())
                    .or_insert(conversation.cursor);
                conversation.receive(skip.seq, None, me.as_deref(), &mut self.events);
            }
            ServerFrame::Presence(presence) => {
                self.events.push_back(Event::Presence {
                    conversation: presence.conversation,
                    user_id: presence.user_id,
                    status: presence.status,
                });
            }
            ServerFrame::Ping(_) => self.transmits.push_back(ClientFrame::Pong(frames::Pong {})),
            ServerFrame::Pong(_) => {}
        }
        self.flush(now);
    }

    /// The driver could not store the events it polled since it last polled transmits (call it
    /// before polling transmits, and keep them to store again). The connection stays; nothing
    /// held beyond what is stored is acknowledged until a drain stores them.
    pub fn handle_store_failure(&mut self, now: Instant) {
        for (conversation, before) in std::mem::take(&mut self.unconfirmed) {
            let stored = self.unstored.entry(conversation.clone()).or_insert(before);
            *stored = (*stored).min(before);
            if let Some(c) = self.conversations.get_mut(&conversation) {
                c.delivered_sent = c.delivered_sent.min(*stored);
                c.read_sent = c.read_sent.min(*stored);
            }
        }
        let unstored = &self.unstored;
        self.transmits.retain(|frame| match frame {
            ClientFrame::Receipt(r) => !unstored.contains_key(&r.conversation),
            _ => true,
        });
        let delay = self.config.backoff(self.store_attempts, self.jitter.unit());
        self.store_attempts = self.store_attempts.saturating_add(1);
        self.store_retry_at = Some(now + delay);
    }

    /// Time passed: reconnect attempts, dead connections, deadlines and resend delays.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.store_retry_at.is_some_and(|at| at <= now) {
            self.store_retry_at = None;
            // The driver stores the events it kept in this drain; receipts follow if it can.
            let unstored = std::mem::take(&mut self.unstored);
            self.unconfirmed.extend(unstored);
        }
        if self.next_attempt_at.is_some_and(|at| at <= now) {
            self.next_attempt_at = None;
            if self.wanted && self.network_up && self.transport == Transport::Idle {
                self.open(now);
            }
        }
        let expired = |deadline: Option<Instant>| deadline.is_some_and(|at| at <= now);
        if (self.transport != Transport::Ready && expired(self.connect_deadline))
            || (self.transport != Transport::Idle && expired(self.heartbeat_deadline))
        {
            // Half-open or stuck: give up on this connection and try again.
            self.drop_transport(now, true);
            self.schedule_reconnect(now);
        }
        let mut refused_then_expired = false;
        for (conversation, id, status, attempted) in self.outbox.expire(now) {
            refused_then_expired |= attempted;
            self.cancel_uploads(&id);
            self.events.push_back(Event::DeliveryStatus {
                conversation,
                id,
                status,
            });
        }
        // The server may hold a message it refused as the one to resend first (FIFO per
        // sender); one that expired will not be resent, so start a fresh connection without it.
        if refused_then_expired && self.transport != Transport::Idle {
            self.drop_transport(now, true);
            self.schedule_reconnect(now);
        }
        self.flush(now);
    }

    /// The device's network went down or came back.
    pub fn handle_network(&mut self, now: Instant, up: bool) {
        if up == self.network_up {
            return;
        }
        self.network_up = up;
        if up {
            if self.wanted && self.transport == Transport::Idle && !self.expired {
                // The network is back: try now, not at the end of a long backoff.
                self.attempt = 0;
                self.next_attempt_at = None;
                self.open(now);
            }
            // Uploads that waited for the network go now too.
            for entry in self.outbox.entries_mut() {
                for slot in entry.files.iter_mut() {
                    slot.not_before = None;
                    slot.attempts = 0;
                }
            }
            self.start_uploads(now);
        } else {
            self.drop_transport(now, true);
            self.pause_uploads();
            self.next_attempt_at = None;
            if self.wanted && !self.expired {
                self.set_status(ConnectionStatus::Offline);
            }
        }
    }

    // ---- outputs -------------------------------------------------------------------------

    /// The next thing to do with the transport.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next event for the app (and for persistence).
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next frame to write. The driver polls transmits after storing the events: what they
    /// said is stored now (unless it reported [`Session::handle_store_failure`]).
    pub fn poll_transmit(&mut self) -> Option<ClientFrame> {
        if !self.unconfirmed.is_empty() {
            self.unconfirmed.clear();
            if self.unstored.is_empty() {
                self.store_attempts = 0;
            }
        }
        self.transmits.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut deadlines = vec![
            self.next_attempt_at,
            self.outbox.next_deadline(),
            self.store_retry_at,
            self.next_upload_at(),
        ];
        if self.transport != Transport::Idle {
            deadlines.push(self.heartbeat_deadline);
        }
        if self.transport != Transport::Ready {
            deadlines.push(self.connect_deadline);
        }
        if self.transport == Transport::Ready {
            deadlines.push(self.outbox.next_resend());
        }
        deadlines.into_iter().flatten().min()
    }

    // ---- internals -----------------------------------------------------------------------

    fn set_status(&mut self, status: ConnectionStatus) {
        if self.status != status {
            self.status = status;
            self.events.push_back(Event::ConnectionStatus(status));
        }
    }

    fn open(&mut self, now: Instant) {
        self.attempt_id += 1;
        self.next_attempt_at = None;
        self.transport = Transport::Opening;
        self.connect_deadline = Some(now + Duration::from_millis(self.config.connect_timeout_ms));
        self.actions.push_back(Action::Connect {
            attempt: self.attempt_id,
        });
        self.set_status(ConnectionStatus::Connecting);
    }

    /// Forgets the transport: frames not yet written are dropped, messages in flight go back to
    /// the queue (they are resent with the same ids). `tell_driver` asks the driver to close it.
    fn drop_transport(&mut self, now: Instant, tell_driver: bool) {
        if self.transport == Transport::Idle {
            return;
        }
        if self.transport == Transport::Ready {
            self.lost_at = Some(now);
        }
        if tell_driver {
            self.actions.push_back(Action::Disconnect);
        }
        self.transport = Transport::Idle;
        self.transmits.clear();
        self.heartbeat_deadline = None;
        self.connect_deadline = None;
        self.outbox.requeue_in_flight();
    }

    fn schedule_reconnect(&mut self, now: Instant) {
        if !self.wanted {
            self.set_status(ConnectionStatus::Disconnected);
            return;
        }
        if !self.network_up {
            self.set_status(ConnectionStatus::Offline);
            return;
        }
        let delay = self.config.backoff(self.attempt, self.jitter.unit());
        self.attempt = self.attempt.saturating_add(1);
        let at = now + delay;
        self.next_attempt_at = Some(at);
        self.set_status(ConnectionStatus::Reconnecting {
            next_attempt_at: at,
        });
    }

    fn adopt(&mut self, state: frames::ConversationState, me: Option<&str>) {
        let conversation = self
            .conversations
            .entry(state.id.clone())
            .or_insert_with(|| Conversation::new(state.id.clone()));
        // A copy of another epoch, or beyond the server's end, is void: drop it now rather than
        // acknowledge cursors the server cannot know (its `resync` follows and finds it reset).
        let void = conversation.epoch.is_some_and(|e| e != state.epoch)
            || conversation.cursor > state.last_seq;
        if void {
            conversation.reset(state.epoch);
            self.events.push_back(Event::Resync {
                conversation: state.id.clone(),
                epoch: state.epoch,
            });
        }
        if conversation.epoch.is_none() {
            conversation.epoch = Some(state.epoch);
        }
        for p in &state.participants {
            conversation.participant(&p.user_id, p.role, p.delivered, p.read);
            if me == Some(p.user_id.as_str()) {
                conversation.role = Some(p.role);
                conversation.delivered_sent = p.delivered;
                conversation.read_sent = p.read;
            }
        }
        conversation.recompute(me, &mut self.events);
    }

    fn welcome(&mut self, now: Instant, welcome: frames::Welcome) {
        self.transport = Transport::Ready;
        self.lost_at = None;
        self.connect_deadline = None;
        self.attempt = 0;
        self.heartbeat_timeout = Duration::from_millis(welcome.timeout_ms.max(1));
        self.heartbeat_deadline = Some(now + self.heartbeat_timeout);
        self.user_id = Some(welcome.user_id.clone());
        for state in welcome.conversations {
            self.adopt(state, Some(&welcome.user_id));
        }
        self.set_status(ConnectionStatus::Connected);
    }

    fn error(&mut self, now: Instant, error: frames::ErrorFrame) {
        let reference = error.reference.clone().unwrap_or_default();
        if self.outbox.get(&reference).is_none() {
            // A refused token is followed by close 4401, which decides what happens next.
            if !matches!(
                error.code,
                ErrorCode::TokenExpired | ErrorCode::TokenInvalid
            ) {
                self.events.push_back(Event::Error {
                    code: error.code,
                    message: error.message,
                });
            }
            return;
        }
        if error.permanent {
            self.fail_with_files(&reference, error.code, &error.message);
        } else {
            if error.code == ErrorCode::AttachmentPending {
                // Not a failure of the message: its files go up again, then it does.
                self.reupload(&reference);
            }
            let unit = self.jitter.unit();
            let attempts = self.outbox.get(&reference).map_or(0, |e| e.attempts);
            let delay = match (error.code, error.retry_after_ms) {
                // A consequence of an earlier message's refusal, not a failure of its own: it
                // goes again right behind that one (which sets the pace). Only when no earlier
                // message of this device is pending does a repeat back off: the earlier message
                // the server waits for may not be coming.
                (ErrorCode::OutOfOrder, _)
                    if attempts == 0 || self.outbox.behind_another(&reference) =>
                {
                    Duration::ZERO
                }
                // Its uploads set the pace: it goes again as soon as they are complete.
                (ErrorCode::AttachmentPending, _) => Duration::ZERO,
                (_, Some(ms)) => Duration::from_millis(ms),
                (_, None) => self.config.backoff(attempts, unit),
            };
            self.outbox.retry_later(&reference, now + delay);
        }
    }

    /// Orders the uploads that may start, then writes what can be written now: the outbox
    /// (window, go-back-N per conversation, messages waiting for their files hold up those
    /// behind them) and receipts.
    fn flush(&mut self, now: Instant) {
        self.start_uploads(now);
        if self.transport != Transport::Ready {
            return;
        }
        for message in self.outbox.sendable(now, self.config.send_window) {
            self.transmits.push_back(ClientFrame::Send(frames::Send {
                id: message.id,
                conversation: message.conversation,
                body: message.body,
                kind: Default::default(),
                attachments: message.attachments,
            }));
        }
        for conversation in self.conversations.values_mut() {
            // Only what is stored on the device is acknowledged.
            let held = self
                .unstored
                .get(&conversation.id)
                .map_or(conversation.cursor, |s| conversation.cursor.min(*s));
            // Progress over the user's own messages alone is not reported: no status follows
            // from it, and each would cost the server a write (one per message sent).
            let news = |sent: u64| conversation.from_others > sent;
            let delivered = (held > conversation.delivered_sent
                && news(conversation.delivered_sent))
            .then_some(held);
            let read_to = conversation.read_wanted.min(held);
            let read = (read_to > conversation.read_sent && news(conversation.read_sent))
                .then_some(read_to);
            if delivered.is_some() || read.is_some() {
                conversation.delivered_sent = conversation
                    .delivered_sent
                    .max(delivered.unwrap_or(0))
                    .max(read.unwrap_or(0));
                conversation.read_sent = conversation.read_sent.max(read.unwrap_or(0));
                self.transmits
                    .push_back(ClientFrame::Receipt(frames::ReceiptUpdate {
                        reference: None,
                        conversation: conversation.id.clone(),
                        delivered,
                        read,
                    }));
            }
        }
    }
}

impl EntryState {
    fn is_in_flight(&self) -> bool {
        matches!(self, EntryState::InFlight)
    }
}

#[cfg(test)]
mod tests;
