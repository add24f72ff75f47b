//! Saved replies ("canned responses"): text operators insert into the composer by a shortcut.
//! Shared by every operator; a shortcut names one reply at most.

use serde::{Deserialize, Serialize};

use super::Pending;

/// A saved reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CannedReply {
    /// Server-generated (24 hex digits).
    pub id: String,
    /// What an operator types after `/` to insert it: 1 … 32 of `a-z`, `0-9`, `-`, `_`; unique.
    pub shortcut: String,
    /// A short name for pickers.
    pub title: String,
    /// The text inserted.
    pub body: String,
    /// The operator who created it.
    pub created_by: String,
    /// Created, ms since the Unix epoch.
    pub created_at: u64,
    /// Last changed, ms since the Unix epoch.
    pub updated_at: u64,
}

/// The outcome of saving a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// Stored; as stored now.
    Saved(CannedReply),
    /// Another reply has the shortcut; nothing changed.
    ShortcutTaken,
    /// No reply has this id (updates only); nothing changed.
    NotFound,
}

/// Storage of saved replies.
pub trait CannedStore: Send + Sync {
    /// Every saved reply, by shortcut.
    fn canned_replies(&self) -> Pending<Vec<CannedReply>>;

    /// Stores a new reply (its id is new).
    fn create_canned(&self, reply: CannedReply) -> Pending<Saved>;

    /// Changes the shortcut, title and body of the reply with `reply.id` and sets its
    /// `updated_at`; who created it and when stay. An unknown id is [`Saved::NotFound`] whatever
    /// the shortcut.
    fn update_canned(&self, reply: CannedReply) -> Pending<Saved>;

    /// Removes a reply; whether it existed.
    fn delete_canned(&self, id: String) -> Pending<bool>;
}
