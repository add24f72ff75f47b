//! The vocabulary of the session: statuses, events, actions, messages and configuration. Names
//! follow the original integration (`connection_status`, `delivery_status`).

use std::time::{Duration, Instant};

use protocol::frames::Attachment;
use protocol::{ErrorCode, Role};

use super::files::UploadOrder;

/// The connection as a user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionStatus {
    /// Opening a connection, or waiting for `welcome`.
    Connecting,
    /// `welcome` received: sends and receives flow.
    Connected,
    /// The connection was lost; the next attempt is scheduled.
    Reconnecting {
        /// When the next attempt starts.
        next_attempt_at: Instant,
    },
    /// The device knows it has no network; it connects as soon as it has.
    Offline,
    /// Not connected and not trying: never connected, signed out, or refused for good.
    Disconnected,
    /// The server refused the token: waiting for a new one (`set_token`), the outbox kept.
    Expired,
}

impl ConnectionStatus {
    /// The wire-style name: `connecting`, `connected`, `reconnecting`, `offline`, `disconnected`,
    /// `expired`.
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionStatus::Connecting => "connecting",
            ConnectionStatus::Connected => "connected",
            ConnectionStatus::Reconnecting { .. } => "reconnecting",
            ConnectionStatus::Offline => "offline",
            ConnectionStatus::Disconnected => "disconnected",
            ConnectionStatus::Expired => "expired",
        }
    }
}

/// Where one of the user's messages is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// In the outbox, not yet durable on the server.
    Sending,
    /// Durable on the server with this `seq`.
    Sent {
        /// The message's position in the conversation.
        seq: u64,
    },
    /// Stored on a device of the other side.
    Delivered,
    /// Seen by the other side.
    Read,
    /// Refused for good (or past its deadline); can be retried by hand with the same id.
    Failed {
        /// The server's code, or `deadline_exceeded`.
        code: String,
        /// Human-readable reason.
        message: String,
    },
}

impl DeliveryStatus {
    /// Whether a retry can succeed: only a message that failed because its deadline passed (the
    /// server never refused it). A permanent refusal (too large, forbidden, conversation closed,
    /// invalid) never can, so a UI offers "Edit" and "Delete" for it, never "Retry". The browser
    /// SDK's `retryable` says the same.
    pub fn retryable(&self) -> bool {
        matches!(self, DeliveryStatus::Failed { code, .. } if code == "deadline_exceeded")
    }

    /// The wire-style name: `sending`, `sent`, `delivered`, `read`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            DeliveryStatus::Sending => "sending",
            DeliveryStatus::Sent { .. } => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed { .. } => "failed",
        }
    }

    /// Progress rank: statuses only ever move to a higher rank (except a manual retry of a
    /// failed message, which starts over at `sending`).
    pub fn rank(&self) -> u8 {
        match self {
            DeliveryStatus::Sending => 0,
            DeliveryStatus::Sent { .. } => 1,
            DeliveryStatus::Delivered => 2,
            DeliveryStatus::Read => 3,
            DeliveryStatus::Failed { .. } => 4,
        }
    }
}

/// A message as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Conversation id.
    pub conversation: String,
    /// The id chosen by the sending device.
    pub id: String,
    /// Position in the conversation; `None` while only in the outbox.
    pub seq: Option<u64>,
    /// Sender's user id.
    pub sender: String,
    /// Sender's role.
    pub role: Role,
    /// Text.
    pub body: String,
    /// Server time of storing, ms since the Unix epoch; `None` while only in the outbox.
    pub ts: Option<u64>,
    /// For the user's own messages, where they are; `None` for others' messages.
    pub status: Option<DeliveryStatus>,
    /// The files it carries, in the order the sender gave them. For a message still in the
    /// outbox: its files as the device knows them (declared type, length, no `sha256` yet).
    pub attachments: Vec<Attachment>,
}

/// What the session tells the app (and the driver, which persists some of it).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `connection_status` changed.
    ConnectionStatus(ConnectionStatus),
    /// `delivery_status` of one of the user's messages changed.
    DeliveryStatus {
        /// Conversation id.
        conversation: String,
        /// Message id.
        id: String,
        /// New status.
        status: DeliveryStatus,
    },
    /// A message was received and stored in order (others' messages, and the user's own from
    /// any device). Persist it before the next transmit: that is what `delivered` promises.
    Message(ChatMessage),
    /// The contiguous cursor of a conversation moved; persist it.
    Cursor {
        /// Conversation id.
        conversation: String,
        /// Epoch the cursor belongs to.
        epoch: u64,
        /// Every message up to this `seq` is held.
        seq: u64,
    },
    /// Everything up to `seq` has been received after a (re)connect.
    Synced {
        /// Conversation id.
        conversation: String,
        /// The cursor.
        seq: u64,
    },
    /// The local copy of a conversation is void (storage reset on the server): drop it.
    Resync {
        /// Conversation id.
        conversation: String,
        /// The new epoch.
        epoch: u64,
    },
    /// A participant's cumulative receipts changed.
    Receipt {
        /// Conversation id.
        conversation: String,
        /// Whose.
        user_id: String,
        /// Their role.
        role: Role,
        /// Delivered up to.
        delivered: u64,
        /// Read up to.
        read: u64,
    },
    /// Someone started or stopped typing.
    Typing {
        /// Conversation id.
        conversation: String,
        /// Who.
        user_id: String,
        /// Whether they type.
        active: bool,
    },
    /// An operator's availability changed.
    Presence {
        /// Conversation id.
        conversation: String,
        /// The operator.
        user_id: String,
        /// Their availability.
        status: protocol::frames::PresenceStatus,
    },
    /// The server refused the token: the session waits (`Expired`) for `set_token` with a fresh
    /// one. A `Client` with a token provider asks it by itself.
    TokenExpired,
    /// No fresh token could be had (no provider, or it failed): the user must sign in again;
    /// the outbox is kept and sent after `set_token`. Sent by the driver, never by the session.
    AuthExpired,
    /// An upload of a file of one of the user's outbox messages moved on: the server holds
    /// `offset` of its `length` bytes (`offset == length`: complete).
    UploadProgress {
        /// Conversation id.
        conversation: String,
        /// The message the file belongs to.
        id: String,
        /// The file's upload id.
        upload_id: String,
        /// Bytes the server holds.
        offset: u64,
        /// Bytes in the file.
        length: u64,
    },
    /// An error not tied to a message.
    Error {
        /// Code.
        code: ErrorCode,
        /// Detail.
        message: String,
    },
}

/// What the driver must do with the transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open a connection; report it with `handle_open(now, attempt)` or
    /// `handle_close(now, attempt, None)`.
    Connect {
        /// Identifies this attempt in `handle_open` / `handle_close`.
        attempt: u64,
    },
    /// Close the current connection; the session has already accounted for it (do not report
    /// its close).
    Disconnect,
    /// Upload a file over HTTP (create or ask its offset, then send chunks from the server's
    /// offset); report with `handle_upload_progress` / `handle_upload_done` /
    /// `handle_upload_failed` and the order's `attempt`.
    Upload(UploadOrder),
    /// Stop the upload of this attempt, if it still runs (the session no longer waits for its
    /// report).
    CancelUpload {
        /// The attempt of the [`Action::Upload`].
        attempt: u64,
    },
}

/// Tunables of the session. Every duration in milliseconds.
#[derive(Debug, Clone)]
pub struct Config {
    /// Upper bound of the first retry's delay (full jitter over 0..this). Small: most outages
    /// are a blip.
    pub backoff_first_ms: u64,
    /// Base of the exponential backoff from the second retry on: attempt n waits uniformly in
    /// 0..min(cap, base · 2^(n-1)).
    pub backoff_base_ms: u64,
    /// Cap of the backoff.
    pub backoff_cap_ms: u64,
    /// How long opening a connection and getting `welcome` may take.
    pub connect_timeout_ms: u64,
    /// Silence after which the connection is dead, until `welcome` says otherwise.
    pub heartbeat_timeout_ms: u64,
    /// Most messages in flight (sent, not yet answered) at once.
    pub send_window: usize,
    /// Most file uploads at once (the earliest messages' files first).
    pub uploads_max: usize,
    /// Seed of the session's jitter generator (the driver passes OS randomness).
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backoff_first_ms: 250,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 30_000,
            connect_timeout_ms: 10_000,
            heartbeat_timeout_ms: protocol::limits::HEARTBEAT_INTERVAL_MS
                + protocol::limits::HEARTBEAT_GRACE_MS,
            send_window: 256,
            uploads_max: 2,
            seed: 0x5eed,
        }
    }
}

impl Config {
    /// The delay before reconnect attempt `attempt` (0 = first retry), given a uniform sample
    /// `unit` in [0, 1): full jitter over an exponentially growing, capped window.
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let window_ms = if attempt == 0 {
            self.backoff_first_ms
        } else {
            let growth = 1u64
                .checked_shl(attempt.saturating_sub(1).min(32))
                .unwrap_or(u64::MAX);
            self.backoff_base_ms
                .saturating_mul(growth)
                .min(self.backoff_cap_ms)
        };
        Duration::from_millis((window_ms as f64 * unit.clamp(0.0, 1.0)) as u64)
    }
}

/// A deterministic generator for jitter (xorshift64*): seeded, never global.
#[derive(Debug, Clone)]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) fn new(seed: u64) -> Self {
        Jitter(seed.max(1))
    }

    /// A sample in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}
