//! What storage keeps for reaching people who are not connected (see [`crate::reach`]): push
//! subscriptions, the email addresses of clients, what each person was last told of each
//! conversation (the *marks*), the durable outbox of pushes and emails, and the single-use links
//! in emails.
//!
//! Nothing here is on the path of a message: the reach loop reads the facts of people with
//! something unread ([`ReachStore::reach_facts`]), decides in pure code, and records each
//! decision with its deliveries in one transaction ([`ReachStore::reach_enqueue`]), so a restart
//! between a message and its email sends the email once.

use protocol::Role;
use serde::{Deserialize, Serialize};

use super::Pending;

/// Most push subscriptions kept per user; registering one more drops the oldest.
pub const SUBSCRIPTIONS_PER_USER_MAX: u32 = 20;
/// Unread messages a fact row carries (the oldest ones): what an email can quote.
pub const UNREAD_MESSAGES_MAX: u32 = 10;

/// How a person is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Web Push to each of the person's push subscriptions.
    Push,
    /// One email to the client's address.
    Email,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Push => "push",
            Channel::Email => "email",
        }
    }

    /// The channel of a stored name.
    pub fn parse(text: &str) -> Option<Channel> {
        match text {
            "push" => Some(Channel::Push),
            "email" => Some(Channel::Email),
            _ => None,
        }
    }
}

/// A browser's push subscription, registered by one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    /// Stable id: derived from the endpoint, so registering again finds the same row.
    pub id: String,
    /// Whose it is.
    pub user_id: String,
    /// The push service's URL for this browser.
    pub endpoint: String,
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's authentication secret, base64url.
    pub auth: String,
    /// When it was registered, in milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A text message the person has not read, from someone else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadMessage {
    /// Its `seq`.
    pub seq: u64,
    /// Who wrote it.
    pub sender_id: String,
    /// In which role.
    pub sender_role: Role,
    /// The text.
    pub body: String,
    /// When it was stored, in milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// What the reach loop needs to know of one participant with something unread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReachFacts {
    /// The conversation.
    pub conversation_id: String,
    /// The participant.
    pub user_id: String,
    /// Their role in it.
    pub role: Role,
    /// Their read cursor.
    pub read_seq: u64,
    /// How many push subscriptions they have.
    pub subscriptions: u32,
    /// Their email address, if they have one and have not unsubscribed.
    pub email: Option<String>,
    /// The last `seq` a push told them of (0: none).
    pub pushed_up_to: u64,
    /// The last `seq` an email told them of (0: none).
    pub emailed_up_to: u64,
    /// When the last email about this conversation was decided (0: never).
    pub emailed_at: u64,
    /// Unread text messages from others, oldest first, at most [`UNREAD_MESSAGES_MAX`].
    pub unread: Vec<UnreadMessage>,
    /// The newest unread `seq` from others (beyond those in `unread` too).
    pub last_unread_seq: u64,
    /// How many messages from others are unread.
    pub unread_count: u64,
}

/// A link in an email: opens the conversation once, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailLink {
    /// Random id; the link's token is this id and a signature over it.
    pub id: String,
    /// The conversation it opens.
    pub conversation_id: String,
    /// The client it signs in.
    pub user_id: String,
    /// When it stops working, in milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// What redeeming a link found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemed {
    /// The link was valid and is now used.
    Opened(EmailLink),
    /// The link was used before.
    Used,
    /// The link is past its lifetime.
    Expired,
    /// No such link.
    Unknown,
}

/// A decision to tell a person of a conversation: the mark to move and the deliveries that carry
/// it, stored together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Push or email.
    pub channel: Channel,
    /// The conversation.
    pub conversation_id: String,
    /// The person.
    pub user_id: String,
    /// The oldest unread `seq` it tells of: reading it makes the deliveries moot.
    pub first_seq: u64,
    /// The newest `seq` it tells of: the mark moves here. Stored only if the mark is below.
    pub up_to_seq: u64,
    /// One delivery per target (a subscription id, or an email address) with its payload.
    pub deliveries: Vec<(String, String)>,
    /// After this the deliveries are given up, in milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// The link the email carries, stored with it.
    pub link: Option<EmailLink>,
}

/// One delivery of the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Outbox id, ascending in creation order.
    pub id: u64,
    /// Push or email.
    pub channel: Channel,
    /// The conversation.
    pub conversation_id: String,
    /// The person.
    pub user_id: String,
    /// See [`Notice::first_seq`].
    pub first_seq: u64,
    /// See [`Notice::up_to_seq`].
    pub up_to_seq: u64,
    /// A subscription id, or an email address.
    pub target: String,
    /// What to send (JSON).
    pub payload: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this, in milliseconds since the Unix epoch.
    pub next_at: u64,
    /// See [`Notice::expires_at`].
    pub expires_at: u64,
}

/// Where a delivery ends, or when it is tried next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Accepted by the push service or the SMTP server.
    Sent,
    /// Not needed any more (read meanwhile, or the person is connected again).
    Cancelled,
    /// Given up: a permanent refusal, or its time ran out.
    Failed(String),
    /// The push service says the subscription is gone: the delivery ends and the subscription
    /// is removed.
    Gone,
    /// Try again at this time; the error is kept.
    Retry {
        /// Not before, in milliseconds since the Unix epoch.
        at: u64,
        /// Why the attempt failed.
        error: String,
    },
}

/// Storage for reaching people: see the module's documentation.
pub trait ReachStore: Send + Sync {
    /// Registers a subscription (or renews the one with the same endpoint, which moves to this
    /// user); keeps at most [`SUBSCRIPTIONS_PER_USER_MAX`] per user. Answers the stored row and
    /// whether it is new.
    fn put_push_subscription(
        &self,
        subscription: PushSubscription,
    ) -> Pending<(PushSubscription, bool)>;

    /// The subscriptions of a user, oldest first.
    fn push_subscriptions(&self, user_id: String) -> Pending<Vec<PushSubscription>>;

    /// Removes a subscription (of this user, if given); whether one was removed.
    fn delete_push_subscription(&self, user_id: Option<String>, id: String) -> Pending<bool>;

    /// Sets a user's email address. The same address again keeps an unsubscription; a new one
    /// starts subscribed.
    fn put_contact(&self, user_id: String, email: String) -> Pending<()>;

    /// No more emails to this user; whether they had an address.
    fn unsubscribe(&self, user_id: String, now: u64) -> Pending<bool>;

    /// Participants who can be reached (a push subscription, or a client's email address) and
    /// have unread messages from others.
    fn reach_facts(&self) -> Pending<Vec<ReachFacts>>;

    /// Stores each notice whose mark is below its `up_to_seq`, with its deliveries and link, in
    /// one transaction; answers how many were stored.
    fn reach_enqueue(&self, notices: Vec<Notice>, now: u64) -> Pending<u32>;

    /// Pending deliveries due at `now`, oldest first.
    fn reach_due(&self, now: u64, limit: u32) -> Pending<Vec<Delivery>>;

    /// Records the outcome of an attempt.
    fn reach_settle(&self, delivery: Delivery, settled: Settled, now: u64) -> Pending<()>;

    /// Uses a link once: marks it used if it is valid.
    fn redeem_link(&self, id: String, now: u64) -> Pending<Redeemed>;
}
