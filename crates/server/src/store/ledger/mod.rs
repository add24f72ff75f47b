//! The ledger: the rules of appends, receipts and membership, written once for every store.
//!
//! Each store works in three steps, inside its own transaction (or under its lock):
//! 1. **read the facts** the rules need ([`AppendFacts`], [`ReceiptFacts`], the participants for
//!    [`plan_participants`]);
//! 2. **plan**: a pure function here decides — refuse with a [`StoreError`], answer a repeat, or
//!    say exactly what to write, `seq`s included;
//! 3. **apply** the plan: write what it says, nothing more.
//!
//! So the three stores cannot disagree on a rule: they only differ in how they read and write.
//! The order of the checks is part of the contract (see [`plan_append`]): a repeat is always
//! answered, whatever else has changed since it was stored.
//!
//! Nothing here touches storage, the clock or a random source: time comes in the requests, and
//! the id of a system entry comes from the caller's `new_id`.

#[cfg(test)]
mod tests;

use std::sync::Arc;

use protocol::api::ParticipantSpec;
use protocol::frames::{ConversationStatus, MessageKind, ParticipantState};
use protocol::Role;
use serde_json::Value;

use super::uploads;
use super::workflow::{self, SystemEntry};
use super::{AppendRequest, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage};

/// A business event to record: its type and data (the store adds the id and the time).
pub(crate) type Event = (&'static str, Value);

/// What a store reads before an append.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppendFacts {
    /// The message already stored under the request's id, in any conversation.
    pub existing: Option<Arc<StoredMessage>>,
    /// Whether the message the FIFO guard names (`request.after`) is stored. Only read when the
    /// guard is set.
    pub after_stored: bool,
    /// The sender in the conversation; `None` when the conversation does not exist or the sender
    /// is not one of its participants (the two are answered alike).
    pub sender: Option<SenderFacts>,
    /// The uploads the request names that exist (any uploader, conversation or state). Read
    /// with the sender, only when the request names some.
    pub uploads: Vec<super::uploads::Upload>,
}

/// The sender's participation and the conversation's state, read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SenderFacts {
    /// The sender's role in the conversation.
    pub role: Role,
    /// Whether the conversation is closed to new messages.
    pub closed: bool,
    /// The conversation's workflow status.
    pub status: ConversationStatus,
    /// The `seq` of the conversation's newest message (0 when it has none). Must be read under
    /// the lock that serialises writers of the conversation, since the plan's `seq`s follow it.
    pub last_seq: u64,
}

/// What an append does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AppendPlan {
    /// The id is stored already with the same content: answer the stored message, write nothing.
    Repeat(Arc<StoredMessage>),
    /// Store new messages.
    Store(Writes),
}

/// Messages to store in one conversation, and what comes with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Writes {
    /// The messages, in `seq` order, each with the `seq` it gets: `last_seq + 1`, `+ 2`, … The
    /// store writes each with its own event ([`workflow::message_event`]) and reports it.
    pub messages: Vec<Arc<StoredMessage>>,
    /// The conversation's new status, if it changes.
    pub status: Option<ConversationStatus>,
    /// Business events to record after the messages', in order.
    pub events: Vec<Event>,
}

/// Plans an append against the facts. The checks run in this order, each refusal writing
/// nothing:
/// 1. idempotency: a message stored under the id is answered if it is the same message (same
///    conversation, sender, body and kind), else [`StoreError::IdConflict`] — before any other
///    check, so a repeat is answered even if the conversation was closed or the sender removed
///    since;
/// 2. the FIFO guard: [`StoreError::OutOfOrder`] unless the message `after` names is stored;
/// 3. participation: [`StoreError::NotFound`] for a missing conversation or a non-participant;
/// 4. [`StoreError::Closed`] for a closed conversation;
/// 5. [`StoreError::Forbidden`] unless the sender's role may write the kind
///    ([`workflow::may_write`]). The sender's role is the lesser of the participant's role and
///    the token's (`request.role`), and the message is stored with it;
/// 6. the attachments ([`uploads::check_attachments`]): each a complete upload of the sender in
///    the conversation, else [`StoreError::AttachmentNotFound`] or, while one is still
///    receiving, [`StoreError::AttachmentPending`].
///
/// Then the message gets `last_seq + 1`; a client's text to a resolved conversation reopens it,
/// with a system entry (id from `new_id`, `seq + 1`) and a `conversation.status_changed` event.
pub(crate) fn plan_append(
    request: &AppendRequest,
    facts: AppendFacts,
    new_id: impl FnOnce() -> String,
) -> Result<AppendPlan, StoreError> {
    if let Some(existing) = facts.existing {
        if is_repeat(request, &existing) {
            return Ok(AppendPlan::Repeat(existing));
        }
        // Another message under this id: a participant learns the id is taken; anyone else only
        // that the conversation is not theirs — never whether some message has this id.
        return Err(if facts.sender.is_some() {
            StoreError::IdConflict
        } else {
            StoreError::NotFound
        });
    }
    if request.after.is_some() && !facts.after_stored {
        return Err(StoreError::OutOfOrder);
    }
    let Some(mut sender) = facts.sender else {
        return Err(StoreError::NotFound);
    };
    // The token's role caps the participant's: a client token writes as a client everywhere.
    sender.role = super::lesser(sender.role, request.role);
    if sender.closed {
        return Err(StoreError::Closed);
    }
    if !workflow::may_write(sender.role, request.kind) {
        return Err(StoreError::Forbidden);
    }
    let attachments = uploads::check_attachments(
        &request.attachments,
        &request.sender,
        &request.conversation,
        &facts.uploads,
    )?;
    let message = StoredMessage {
        conversation: request.conversation.clone(),
        id: request.id.clone(),
        seq: sender.last_seq + 1,
        sender: request.sender.clone(),
        role: sender.role,
        body: request.body.clone(),
        ts: request.ts,
        kind: request.kind,
        data: None,
        attachments,
    };
    let mut writes = Writes {
        messages: vec![Arc::new(message)],
        status: None,
        events: Vec::new(),
    };
    if let Some((entry, event)) =
        workflow::reopen(sender.status, sender.role, request.kind, &request.sender)
    {
        // The entry is written by the client whose message reopened the conversation.
        writes.messages.push(Arc::new(system_message(
            &request.conversation,
            sender.last_seq + 2,
            &request.sender,
            Role::Client,
            entry,
            request.ts,
            new_id(),
        )));
        writes.status = Some(ConversationStatus::Open);
        writes.events.push(event);
    }
    debug_assert_eq!(writes.messages[0].seq, sender.last_seq + 1);
    debug_assert!(gap_free(sender.last_seq, &writes.messages));
    Ok(AppendPlan::Store(writes))
}

/// Whether [`plan_append`] will look at [`AppendFacts::sender`], given the facts read so far: not
/// when the idempotency check or the FIFO guard decides first. Stores use it to skip that read
/// (and, in PostgreSQL, the conversation's row lock it takes) for repeats and refusals.
pub(crate) fn needs_sender(request: &AppendRequest, facts: &AppendFacts) -> bool {
    match &facts.existing {
        Some(existing) => !is_repeat(request, existing),
        None => request.after.is_none() || facts.after_stored,
    }
}

/// Whether `request` repeats the message stored under its id.
fn is_repeat(request: &AppendRequest, existing: &StoredMessage) -> bool {
    existing.conversation == request.conversation
        && existing.sender == request.sender
        && existing.body == request.body
        && existing.kind == request.kind
        && existing
            .attachments
            .iter()
            .map(|a| &a.id)
            .eq(request.attachments.iter())
}

/// What a planned workflow change writes after `last_seq`: its timeline entries as system
/// messages by `by`, and its events. The one step every store applies the same way.
pub(crate) fn change_writes(
    conversation: &str,
    last_seq: u64,
    by: &str,
    plan: workflow::Plan,
    ts: u64,
) -> Writes {
    Writes {
        messages: system_messages(
            conversation,
            last_seq,
            by,
            Role::Operator,
            plan.entries,
            ts,
            workflow::system_id,
        ),
        status: None,
        events: plan.events,
    }
}

/// System messages for `entries` (a workflow change's timeline), numbered after `last_seq`, each
/// with an id from `new_id`.
pub(crate) fn system_messages(
    conversation: &str,
    last_seq: u64,
    by: &str,
    role: Role,
    entries: Vec<SystemEntry>,
    ts: u64,
    mut new_id: impl FnMut() -> String,
) -> Vec<Arc<StoredMessage>> {
    let messages: Vec<_> = entries
        .into_iter()
        .zip(last_seq + 1..)
        .map(|(entry, seq)| {
            Arc::new(system_message(
                conversation,
                seq,
                by,
                role,
                entry,
                ts,
                new_id(),
            ))
        })
        .collect();
    debug_assert!(gap_free(last_seq, &messages));
    messages
}

fn system_message(
    conversation: &str,
    seq: u64,
    by: &str,
    role: Role,
    entry: SystemEntry,
    ts: u64,
    id: String,
) -> StoredMessage {
    StoredMessage {
        conversation: conversation.to_owned(),
        id,
        seq,
        sender: by.to_owned(),
        role,
        body: entry.body,
        ts,
        kind: MessageKind::System,
        data: Some(entry.data),
        attachments: Vec::new(),
    }
}

/// Whether `messages` continue `last_seq` with no gap and no repeat.
fn gap_free(last_seq: u64, messages: &[Arc<StoredMessage>]) -> bool {
    messages
        .iter()
        .zip(last_seq + 1..)
        .all(|(message, seq)| message.seq == seq)
}

/// What a store reads before a receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReceiptFacts {
    /// The participant's row with its current cursors; `None` when the conversation does not
    /// exist or the user is not a participant.
    pub participant: Option<ParticipantState>,
    /// The `seq` of the conversation's newest message.
    pub last_seq: u64,
}

/// What a receipt does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReceiptPlan {
    /// The answer; when `changed`, the store writes `state`'s cursors and reports the receipt.
    pub outcome: ReceiptOutcome,
    /// Business events to record (empty unless a cursor moved).
    pub events: Vec<Event>,
}

/// Plans a receipt: [`StoreError::NotFound`] for a non-participant, then the cursors move with
/// [`advance`] (which refuses cursors beyond `last_seq`).
pub(crate) fn plan_receipt(
    request: &ReceiptRequest,
    facts: ReceiptFacts,
) -> Result<ReceiptPlan, StoreError> {
    let Some(current) = facts.participant else {
        return Err(StoreError::NotFound);
    };
    debug_assert_eq!(current.user_id, request.user_id);
    let before = (current.delivered, current.read);
    let after = advance(&current, request.delivered, request.read, facts.last_seq)?;
    debug_assert!(
        after.0 >= before.0 && after.1 >= before.1,
        "cursors only move forward"
    );
    debug_assert!(after.1 <= after.0 && after.0 <= facts.last_seq.max(before.0));
    let changed = after != before;
    let events = if changed {
        let role = super::lesser(current.role, request.role);
        workflow::receipt_events(&request.user_id, role, before, after)
    } else {
        Vec::new()
    };
    Ok(ReceiptPlan {
        outcome: ReceiptOutcome {
            state: ParticipantState {
                delivered: after.0,
                read: after.1,
                ..current
            },
            changed,
        },
        events,
    })
}

/// New cursors `(delivered, read)` after a receipt: each only moves forward, `read` implies
/// `delivered`, and neither may pass `last_seq` ([`StoreError::CursorOutOfRange`]).
pub(crate) fn advance(
    current: &ParticipantState,
    delivered: Option<u64>,
    read: Option<u64>,
    last_seq: u64,
) -> Result<(u64, u64), StoreError> {
    for cursor in [delivered, read].into_iter().flatten() {
        if cursor > last_seq {
            return Err(StoreError::CursorOutOfRange { cursor, last_seq });
        }
    }
    let read = current.read.max(read.unwrap_or(0));
    let delivered = current.delivered.max(delivered.unwrap_or(0)).max(read);
    Ok((delivered, read))
}

/// What adding participants does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MembershipPlan {
    /// Whether the conversation is created first.
    pub create: bool,
    /// The participants to insert, in the order asked (those already there are left out).
    pub new: Vec<ParticipantSpec>,
}

/// Plans adding `wanted` to a conversation whose participants are `existing` (`None`: the
/// conversation does not exist). Refusals: [`StoreError::NotFound`] for a missing conversation
/// unless `create`; [`StoreError::ParticipantConflict`] for a user already there (or asked
/// twice) with another role; [`StoreError::TooManyParticipants`] past `participants_max`.
/// Asking for a participant who is already there with the same role adds nothing.
pub(crate) fn plan_participants(
    existing: Option<&[ParticipantState]>,
    wanted: &[ParticipantSpec],
    participants_max: usize,
    create: bool,
) -> Result<MembershipPlan, StoreError> {
    let missing = existing.is_none();
    if missing && !create {
        return Err(StoreError::NotFound);
    }
    let existing = existing.unwrap_or_default();
    let mut new: Vec<ParticipantSpec> = Vec::new();
    for spec in wanted {
        let known = existing
            .iter()
            .map(|p| (&p.user_id, p.role))
            .chain(new.iter().map(|p| (&p.user_id, p.role)))
            .find(|(user, _)| **user == spec.user_id);
        match known {
            Some((_, role)) if role == spec.role => {}
            Some((_, role)) => return Err(StoreError::ParticipantConflict(role)),
            None => new.push(spec.clone()),
        }
    }
    if existing.len() + new.len() > participants_max {
        return Err(StoreError::TooManyParticipants);
    }
    Ok(MembershipPlan {
        create: missing,
        new,
    })
}
