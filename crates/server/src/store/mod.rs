//! Storage: where the delivery guarantees live. The [`Store`] trait speaks the domain — append a
//! message, record a receipt, read messages since a cursor — so the gateway and the hub never see
//! SQL, and a second backend (PostgreSQL) is a second implementation of the same trait. Its parts:
//! [`MessageStore`] (the delivery contract), [`WorkflowStore`] (membership, the operators'
//! workflow, events and webhooks), [`reach::ReachStore`] (pushes and emails to people who are not
//! connected) and [`accounts::AccountStore`] (operators' accounts, sessions and the audit log).
//!
//! Implementations: [`memory::MemoryStore`] (the fast reference, no durability),
//! [`sqlite::SqliteStore`] (the default: WAL, fsync on commit, group commit on one writer thread)
//! and [`postgres::PgStore`] (several nodes sharing one database). One conformance suite
//! (`tests/store_conformance.rs`) runs against every implementation.
//!
//! The rules live once, as pure plans: [`ledger`] for appends, receipts and membership,
//! [`workflow`] for workflow changes. A store reads the facts a plan needs, asks for the plan and
//! applies it; [`decode`] turns stored text back into values, refusing what it cannot interpret.
//!
//! **Invariant:** a write's future resolves only after the write is durable (committed).
//! **Invariant:** writes are ordered at call time: two `append`s called one after the other from one
//! task are stored in that order, even when neither future has been polled yet. This is what lets a
//! connection pipeline sends and keep FIFO per sender.
//! **Invariant:** committed changes are reported to the [`CommitListener`] once each, after commit,
//! and in commit order (so `seq`s of one conversation arrive ascending).

pub mod accounts;
pub mod canned;
pub mod decode;
pub(crate) mod ledger;
pub mod memory;
pub mod migrate;
pub mod postgres;
pub mod reach;
pub mod search;
pub mod sqlite;
pub mod uploads;
pub mod workflow;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use protocol::api::{ConversationSummary, ConversationView, Operator, ParticipantSpec};
use protocol::frames::{
    ConversationState, ConversationStatus, Message, MessageKind, ParticipantState,
};
use protocol::{ErrorCode, Role};

/// A stored message; the same shape as the `message` frame.
pub type StoredMessage = Message;

/// The future every store operation returns.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The conversation does not exist, or the user is not a participant.
    #[error("no such conversation")]
    NotFound,
    /// The message id is used by another message (other conversation, sender or body).
    #[error("message id already used by another message")]
    IdConflict,
    /// The conversation would exceed its participant limit.
    #[error("too many participants")]
    TooManyParticipants,
    /// The user is already a participant with another role.
    #[error("user is already a participant with role {0}")]
    ParticipantConflict(Role),
    /// The conversation is closed to new messages.
    #[error("the conversation is closed to new messages")]
    Closed,
    /// The participant may not do this (a client writing a private note).
    #[error("only operators may do this")]
    Forbidden,
    /// The user is not an active operator of the directory (assignment, transfer).
    #[error("not an active operator")]
    UnknownOperator,
    /// The append's FIFO guard (`after`) names a message that is not stored.
    #[error(
        "an earlier message from this device in this conversation was not stored; resend it first"
    )]
    OutOfOrder,
    /// A receipt cursor is beyond the conversation's last `seq`.
    #[error("cursor {cursor} is beyond the last seq {last_seq}")]
    CursorOutOfRange {
        /// The cursor asked for.
        cursor: u64,
        /// The conversation's last seq.
        last_seq: u64,
    },
    /// Storage could not be reached or failed; nothing of this operation was committed.
    ///
    /// Also a row that storage cannot interpret (an unknown role, kind or status, bad JSON: see
    /// [`decode::Corrupt`], whose text the message carries). That is never read as a default,
    /// which would change what was stored. It is not a variant of its own on purpose: on the
    /// wire it must look like any storage failure (`unavailable`, "retry later", the detail
    /// logged once), and a device's message is still its own to retry, not a permanent failure.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A named upload is still receiving its bytes (transient: finish it, send again).
    #[error("an attachment's upload is not complete yet; finish it, then send again")]
    AttachmentPending,
    /// A named upload is not a complete upload of the sender in the conversation.
    #[error("no complete upload of this sender in this conversation has this id")]
    AttachmentNotFound,
    /// A chunk does not start at the upload's stored offset (given).
    #[error("the upload's stored offset is {0}")]
    OffsetMismatch(u64),
    /// A chunk would go past the upload's declared length.
    #[error("more bytes than the upload's length ({length})")]
    UploadOverrun {
        /// The declared length.
        length: u64,
    },
}

impl StoreError {
    /// The wire error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::NotFound => ErrorCode::NotFound,
            StoreError::IdConflict => ErrorCode::IdConflict,
            StoreError::OutOfOrder => ErrorCode::OutOfOrder,
            StoreError::Closed => ErrorCode::ConversationClosed,
            StoreError::Forbidden => ErrorCode::Forbidden,
            StoreError::UnknownOperator => ErrorCode::UnknownOperator,
            StoreError::TooManyParticipants => ErrorCode::TooManyParticipants,
            StoreError::ParticipantConflict(_) => ErrorCode::ParticipantConflict,
            StoreError::CursorOutOfRange { .. } => ErrorCode::CursorOutOfRange,
            StoreError::Unavailable(_) => ErrorCode::Unavailable,
            StoreError::AttachmentPending => ErrorCode::AttachmentPending,
            StoreError::AttachmentNotFound => ErrorCode::AttachmentNotFound,
            StoreError::OffsetMismatch(_) => ErrorCode::OffsetMismatch,
            StoreError::UploadOverrun { .. } => ErrorCode::BadRequest,
        }
    }
}

/// A message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendRequest {
    /// Conversation id.
    pub conversation: String,
    /// Message id, canonical lowercase hyphenated UUID.
    pub id: String,
    /// Sender's user id; must be a participant.
    pub sender: String,
    /// The role of the sender's token. The message is written with the lesser of it and the
    /// sender's participant role, so a client token never writes as an operator (a note, say),
    /// whatever its participant row says.
    pub role: Role,
    /// Body, already checked against the size limit.
    pub body: String,
    /// Server time, in milliseconds since the Unix epoch.
    pub ts: u64,
    /// `Text`, or `Note` for a private note between operators (only operators may write one).
    pub kind: MessageKind,
    /// FIFO guard: the id of the message the same connection submitted just before in this
    /// conversation, while its outcome is unknown. Unless that message is stored, the append is
    /// refused with [`StoreError::OutOfOrder`], so a later message can never be stored ahead of
    /// an earlier one that failed. Checked after idempotency: a repeat is always answered.
    pub after: Option<String>,
    /// Ids of the uploads the message carries, in order (checked by the ledger).
    pub attachments: Vec<String>,
}

/// The outcome of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stored message: the new one, or the one stored earlier under the same id.
    pub message: Arc<StoredMessage>,
    /// `false` when the id was already stored (an idempotent repeat).
    pub created: bool,
}

/// A receipt to record: cursors of one participant, each only moving forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRequest {
    /// Conversation id.
    pub conversation: String,
    /// The participant.
    pub user_id: String,
    /// The role of the participant's token. Events name the lesser of it and the participant's
    /// role, as messages do.
    pub role: Role,
    /// New delivered cursor, if any.
    pub delivered: Option<u64>,
    /// New read cursor, if any (implies delivered up to it).
    pub read: Option<u64>,
}

/// The participant's cursors after a receipt, and whether they moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptOutcome {
    /// Cursors now.
    pub state: ParticipantState,
    /// Whether anything moved (only then is it reported to the listener).
    pub changed: bool,
}

/// A committed change, reported to the [`CommitListener`] after commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// A new message (never an idempotent repeat).
    Message(Arc<StoredMessage>),
    /// A participant's cursors moved.
    Receipt {
        /// Conversation id.
        conversation: String,
        /// The participant and their new cursors.
        state: ParticipantState,
    },
    /// A user became a participant.
    Joined {
        /// Conversation id.
        conversation: String,
        /// The user.
        user_id: String,
    },
    /// A user stopped being a participant.
    Left {
        /// Conversation id.
        conversation: String,
        /// The user.
        user_id: String,
    },
    /// Another node stored messages up to `seq` (a notice, without the messages: connections
    /// behind it read them from storage).
    Notice {
        /// Conversation id.
        conversation: String,
        /// The newest `seq` known.
        seq: u64,
    },
    /// Notices from other nodes may have been lost: every connection rereads its state.
    Missed,
    /// A user's tokens were revoked: their connections close.
    Revoked {
        /// The user.
        user_id: String,
    },
}

/// Receives committed changes (the fan-out hub).
pub trait CommitListener: Send + Sync + 'static {
    /// Called once per committed change, in commit order. Must not block.
    fn committed(&self, change: Committed);
}

/// The listener slot every store embeds.
#[derive(Default)]
pub struct Listener(OnceLock<Arc<dyn CommitListener>>);

impl Listener {
    /// Reports a change, if a listener is attached.
    pub fn notify(&self, change: Committed) {
        if let Some(listener) = self.0.get() {
            listener.committed(change);
        }
    }

    /// Attaches the listener; a store has at most one.
    pub fn attach(&self, listener: Arc<dyn CommitListener>) {
        if self.0.set(listener).is_err() {
            tracing::warn!("a commit listener was already attached; keeping the first");
        }
    }
}

/// Everything storage does: the delivery contract ([`MessageStore`]), the conversations'
/// management around it ([`WorkflowStore`]), reaching people who are not connected
/// ([`reach::ReachStore`]), operators signing in ([`accounts::AccountStore`]), searching
/// messages ([`search::SearchStore`]) and saved replies ([`canned::CannedStore`]). Callers hold
/// an `Arc<dyn Store>`; an implementation implements the six parts and gets this one for free.
pub trait Store:
    MessageStore
    + WorkflowStore
    + reach::ReachStore
    + accounts::AccountStore
    + search::SearchStore
    + canned::CannedStore
    + uploads::UploadStore
{
}

impl<
        T: MessageStore
            + WorkflowStore
            + reach::ReachStore
            + accounts::AccountStore
            + search::SearchStore
            + canned::CannedStore
            + uploads::UploadStore,
    > Store for T
{
}

/// The delivery contract: messages, receipts and the state devices resume from. Every rule of
/// `append` and `record_receipt` is decided by the [`ledger`]; implementations read facts and
/// apply plans.
pub trait MessageStore: Send + Sync + 'static {
    /// Attaches the listener told about every committed change.
    fn attach(&self, listener: Arc<dyn CommitListener>);

    /// The writer's queue, batch and commit counters, for stores with a writer.
    fn writer_stats(&self) -> Option<&crate::metrics::WriterStats> {
        None
    }

    /// Stores a message with the next `seq` of its conversation, or returns the message already
    /// stored under the same id. Ordered at call time (see the module's invariants).
    fn append(&self, request: AppendRequest) -> Pending<Appended>;

    /// Moves a participant's cursors forward. Ordered at call time.
    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome>;

    /// Reads one participant's cursors, `None` if the user is not a participant (or the
    /// conversation does not exist).
    fn participant(
        &self,
        conversation: String,
        user_id: String,
    ) -> Pending<Option<ParticipantState>>;

    /// Every conversation of a user with all participants' cursors (for `welcome`).
    fn conversation_states_of(&self, user_id: String) -> Pending<Vec<ConversationState>>;

    /// The state (epoch, last seq, participants' cursors) of each listed conversation that
    /// exists. Used by nodes sharing storage to notice what other nodes committed.
    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>>;

    /// Messages with `seq > after`, ascending, at most `limit`.
    fn messages_since(
        &self,
        conversation: String,
        after: u64,
        limit: u32,
    ) -> Pending<Vec<StoredMessage>>;

    /// Checks that storage answers (for `/readyz`).
    fn health(&self) -> Pending<()>;
}

/// Conversations as the integrator and the operators manage them: membership, the inbox, the
/// workflow (status, assignee, closing), business events and the webhooks that deliver them.
pub trait WorkflowStore: Send + Sync + 'static {
    /// Creates a conversation, or adds the missing participants to an existing one. Returns the
    /// conversation and whether it was created.
    fn create_conversation(
        &self,
        id: String,
        participants: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)>;

    /// Adds a participant. Returns whether they were added (`false`: already there).
    fn add_participant(
        &self,
        conversation: String,
        participant: ParticipantSpec,
        participants_max: usize,
        now: u64,
    ) -> Pending<bool>;

    /// Removes a participant. Returns whether they were there.
    fn remove_participant(&self, conversation: String, user_id: String) -> Pending<bool>;

    /// Erases a conversation and everything of it: messages (and their search entries),
    /// participants (each reported as [`Committed::Left`]), events, pending notifications, and
    /// uploads with their bytes. Returns whether it existed. The one exception to "messages are
    /// never deleted": the business's request to forget a booking's conversation.
    fn erase_conversation(&self, id: String) -> Pending<bool>;

    /// Reads a conversation with its participants.
    fn conversation(&self, id: String) -> Pending<Option<ConversationView>>;

    /// Every conversation of a user, with unread counts, most recently active first.
    fn conversations_of(&self, user_id: String) -> Pending<Vec<ConversationSummary>>;

    /// Changes a conversation's workflow (metadata, closed, status, assignee), recording status
    /// and assignment changes in its timeline as system messages and as business events, in one
    /// transaction. An assignee who is not a participant becomes one (as operator).
    fn change_conversation(
        &self,
        id: String,
        change: ConversationChange,
        now: u64,
    ) -> Pending<ConversationView>;

    /// Business events with `id > after`, ascending, at most `limit` (for `GET /v1/events` and
    /// webhooks). Events are written in the transaction of the change that caused them.
    fn events_since(&self, after: u64, limit: u32) -> Pending<Vec<EventRecord>>;

    /// Records `message.unread_timeout` for text messages created after `after` and at or before
    /// `older_than` (ms since the epoch) that no recipient has read, once per message, at most
    /// [`UNREAD_FLAG_MAX`] (the oldest first). Returns how many were recorded.
    fn flag_unread(&self, after: u64, older_than: u64, now: u64) -> Pending<u64>;

    /// Ids of every conversation (at most `limit`), for operators who see all of them.
    fn conversation_ids(&self, limit: u32) -> Pending<Vec<String>>;

    /// Webhook endpoints.
    fn webhooks(&self) -> Pending<Vec<Webhook>>;

    /// Adds a webhook endpoint; it receives events after the newest one existing now.
    fn create_webhook(&self, url: String, secret: String, now: u64) -> Pending<Webhook>;

    /// Updates an endpoint's delivery state.
    fn update_webhook(&self, webhook: Webhook) -> Pending<()>;

    /// Removes an endpoint. Returns whether it existed.
    fn delete_webhook(&self, id: u64) -> Pending<bool>;

    /// The operator directory, by id.
    fn operators(&self) -> Pending<Vec<Operator>>;

    /// One operator of the directory, active or not.
    fn operator(&self, id: String) -> Pending<Option<Operator>>;

    /// Creates or replaces a directory entry. Returns whether it was created.
    fn put_operator(&self, operator: Operator) -> Pending<bool>;

    /// Removes a directory entry. Returns whether it existed. Conversations keep the participant
    /// rows of a removed operator, who can no longer connect or be assigned.
    fn delete_operator(&self, id: String) -> Pending<bool>;

    /// Takes or renews the lease `name` for `holder` until `now + ttl_ms`, unless another holder
    /// has it. Nodes use it so that one of them delivers webhooks.
    fn lease(&self, name: String, holder: String, ttl_ms: u64, now: u64) -> Pending<bool>;

    /// Replaces what `node` reports of the operators connected to it: each `(user, available)`
    /// holds until `expires_at` (ms since the epoch); an empty list withdraws them all.
    fn put_presence(
        &self,
        node: String,
        operators: Vec<(String, bool)>,
        expires_at: u64,
    ) -> Pending<()>;

    /// Every operator some live node reports (rows not expired at `now`), with whether any node
    /// has them available (otherwise they are connected but away).
    fn presence(&self, now: u64) -> Pending<Vec<(String, bool)>>;

    /// The next value of the shared counter `name`: 1, 2, 3, … across every node, each value
    /// handed out once.
    fn next_turn(&self, name: String) -> Pending<u64>;

    /// Revokes every token of `user_id` issued at or before `at` (seconds since the epoch);
    /// reported as [`Committed::Revoked`] so that live connections close. Never moves back.
    fn revoke_tokens(&self, user_id: String, at: u64) -> Pending<()>;

    /// Until when `user_id`'s tokens are revoked (tokens issued at or before it are refused).
    fn tokens_revoked_at(&self, user_id: String) -> Pending<Option<u64>>;
}

/// A change of a conversation's workflow; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConversationChange {
    /// New booking metadata.
    pub metadata: Option<serde_json::Value>,
    /// Close or reopen to new messages.
    pub closed: Option<bool>,
    /// New status.
    pub status: Option<ConversationStatus>,
    /// New assignee (`Some(None)` unassigns).
    pub assignee: Option<Option<String>>,
    /// A note for the assignment (transfer reason).
    pub note: Option<String>,
    /// Who made the change (a user id, or `admin`).
    pub by: String,
    /// The participant limit a new assignee joining as a participant must fit in
    /// ([`StoreError::TooManyParticipants`]); `None` leaves it unchecked (seeding tools).
    pub participants_max: Option<usize>,
}

/// The most `message.unread_timeout` events one [`WorkflowStore::flag_unread`] records.
pub const UNREAD_FLAG_MAX: u64 = 1000;

/// A business event, as `GET /v1/events` and webhooks deliver it.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct EventRecord {
    /// Increasing id; also the stable delivery id of webhooks.
    pub id: u64,
    /// `conversation.created`, `message.created`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// Conversation id.
    pub conversation: String,
    /// Event data.
    pub data: serde_json::Value,
    /// When it happened, ms since the Unix epoch.
    pub created_at: u64,
}

/// A webhook endpoint and its delivery state.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Webhook {
    /// Id.
    pub id: u64,
    /// Where events are POSTed.
    pub url: String,
    /// HMAC-SHA256 key of the signatures (shown once, when the endpoint is created).
    #[serde(skip_serializing)]
    #[schemars(skip)]
    pub secret: String,
    /// `active` or `disabled` (after sustained failure, until re-enabled).
    pub state: String,
    /// The last event id delivered (2xx received).
    pub delivered_up_to: u64,
    /// Since when deliveries fail, ms since the epoch (0 when they do not).
    pub failing_since: u64,
    /// Failed attempts in a row.
    pub failures: u64,
    /// The last failure's reason.
    pub last_error: Option<String>,
    /// When it was created.
    pub created_at: u64,
}

/// A fresh conversation epoch: random, below 2^53 so JavaScript numbers hold it exactly.
pub fn new_epoch() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    (u64::from_le_bytes(bytes) & ((1 << 53) - 1)).max(1)
}

/// The lesser of two roles: a client token never acts as an operator, whatever a participant
/// row says, and a client participant never acts as an operator, whatever the token says.
pub fn lesser(a: Role, b: Role) -> Role {
    if a == Role::Client || b == Role::Client {
        Role::Client
    } else {
        Role::Operator
    }
}

/// The `ConversationState` of a view.
pub fn state_of(view: &ConversationView) -> ConversationState {
    ConversationState {
        id: view.id.clone(),
        epoch: view.epoch,
        last_seq: view.last_seq,
        participants: view.participants.clone(),
        status: view.status,
        assignee: view.assignee.clone(),
        metadata: view.metadata.clone(),
        closed: view.closed,
    }
}
