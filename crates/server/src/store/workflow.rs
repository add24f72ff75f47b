//! The rules of the operators' workflow, shared by every store: what a change of status or
//! assignee records in the timeline (system messages) and for the business (events), and which
//! events a message or a receipt causes. Pure functions; each store applies the plan in its own
//! transaction.

use protocol::api::{ConversationView, Operator};
use protocol::frames::{ConversationStatus, MessageKind};
use protocol::Role;
use serde_json::{json, Value};

use super::{ConversationChange, StoreError, StoredMessage};

/// A system message to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SystemEntry {
    pub body: String,
    pub data: Value,
}

/// What a change does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    pub status: ConversationStatus,
    pub assignee: Option<String>,
    pub metadata: Option<Value>,
    pub closed: bool,
    /// System messages, in order.
    pub entries: Vec<SystemEntry>,
    /// Business events `(type, data)`, in order.
    pub events: Vec<(&'static str, Value)>,
    /// An assignee to add as an operator participant first.
    pub add_operator: Option<String>,
}

/// The operators a change names (its author, the current and the new assignee): a store reads
/// their directory entries ([`ChangeFacts`]) before planning.
pub(crate) fn named_operators(
    current: &ConversationView,
    change: &ConversationChange,
) -> Vec<String> {
    let mut ids = vec![change.by.clone()];
    ids.extend(current.assignee.clone());
    if let Some(Some(to)) = &change.assignee {
        ids.push(to.clone());
    }
    ids.sort();
    ids.dedup();
    ids
}

/// What a store reads before a change: the directory entries of [`named_operators`] that exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ChangeFacts {
    pub operators: Vec<Operator>,
}

impl ChangeFacts {
    fn entry(&self, id: &str) -> Option<&Operator> {
        self.operators.iter().find(|o| o.id == id)
    }

    /// The name people see for `id`: its display name when it is in the directory.
    fn name(&self, id: &str) -> String {
        self.entry(id)
            .map_or_else(|| id.to_owned(), |o| o.name.clone())
    }
}

/// Plans `change` against the conversation as it is. A new assignee must be an active operator
/// of the directory ([`StoreError::UnknownOperator`] otherwise: a client's id can never become
/// an operator participant this way) and, if already a participant, one with the operator role
/// ([`StoreError::ParticipantConflict`]). Timeline entries name operators by their display names
/// (the ids stay in `data`), since clients read them.
pub(crate) fn plan_change(
    current: &ConversationView,
    change: &ConversationChange,
    facts: &ChangeFacts,
) -> Result<Plan, StoreError> {
    let mut plan = Plan {
        status: current.status,
        assignee: current.assignee.clone(),
        metadata: change.metadata.clone().or_else(|| current.metadata.clone()),
        closed: change.closed.unwrap_or(current.closed),
        entries: Vec::new(),
        events: Vec::new(),
        add_operator: None,
    };
    let by = facts.name(&change.by);
    if let Some(to) = &change.assignee {
        if *to != current.assignee {
            if let Some(to) = to {
                if !facts.entry(to).is_some_and(|o| o.active) {
                    return Err(StoreError::UnknownOperator);
                }
                if let Some(p) = current.participants.iter().find(|p| &p.user_id == to) {
                    if p.role != Role::Operator {
                        return Err(StoreError::ParticipantConflict(p.role));
                    }
                }
            }
            let from = current.assignee.clone();
            let from_name = from.as_deref().map(|id| facts.name(id));
            let to_name = to.as_deref().map(|id| facts.name(id));
            let body = match (&from_name, &to_name) {
                (None, Some(to)) => format!("{by} assigned the conversation to {to}"),
                (Some(from), Some(to)) => {
                    format!("{by} transferred the conversation from {from} to {to}")
                }
                (Some(from), None) => format!("{by} unassigned {from}"),
                (None, None) => unreachable!("no change"),
            };
            // The note stays in `data` for operators (and the business's events); the body,
            // which clients read too, does not carry it.
            let data = json!({"event": "assigned", "from": from, "to": to, "by": change.by,
                "from_name": from_name, "to_name": to_name, "by_name": by, "note": change.note});
            plan.entries.push(SystemEntry {
                body,
                data: data.clone(),
            });
            plan.events.push(("conversation.assigned", data));
            if let Some(to) = to {
                if !current.participants.iter().any(|p| &p.user_id == to) {
                    if change
                        .participants_max
                        .is_some_and(|max| current.participants.len() >= max)
                    {
                        return Err(StoreError::TooManyParticipants);
                    }
                    plan.add_operator = Some(to.clone());
                }
            }
            plan.assignee = to.clone();
        }
    }
    if let Some(to) = change.status {
        if to != current.status {
            plan.entries
                .push(status_entry(current.status, to, &change.by, &by));
            plan.events.push((
                "conversation.status_changed",
                status_data(current.status, to, &change.by),
            ));
            plan.status = to;
        }
    }
    Ok(plan)
}

fn status_data(from: ConversationStatus, to: ConversationStatus, by: &str) -> Value {
    json!({"event": "status", "from": from, "to": to, "by": by})
}

fn status_entry(
    from: ConversationStatus,
    to: ConversationStatus,
    by: &str,
    by_name: &str,
) -> SystemEntry {
    SystemEntry {
        body: format!(
            "{by_name} changed the status from {} to {}",
            from.as_str(),
            to.as_str()
        ),
        data: status_data(from, to, by),
    }
}

/// When a client writes to a resolved conversation, it is open again: the entry and event that
/// record it, to append after the client's message.
pub(crate) fn reopen(
    status: ConversationStatus,
    role: Role,
    kind: MessageKind,
    sender: &str,
) -> Option<(SystemEntry, (&'static str, Value))> {
    if status != ConversationStatus::Resolved || role != Role::Client || kind != MessageKind::Text {
        return None;
    }
    let to = ConversationStatus::Open;
    Some((
        status_entry(status, to, sender, sender),
        (
            "conversation.status_changed",
            status_data(status, to, sender),
        ),
    ))
}

/// The type of the event a stored message causes, if any (see [`message_event`]).
pub(crate) fn message_event_kind(message: &StoredMessage) -> Option<&'static str> {
    (message.kind == MessageKind::Text).then_some("message.created")
}

/// The event a stored message causes, if any: only ordinary messages are `message.created`
/// (notes are for operators only; system messages have their own events). Its data is the
/// message; the SQL stores keep it by reference and read the message back with the event.
pub(crate) fn message_event(message: &StoredMessage) -> Option<(&'static str, Value)> {
    message_event_kind(message).map(|kind| {
        (
            kind,
            serde_json::to_value(message).expect("messages serialise"),
        )
    })
}

/// The events a receipt causes: `message.delivered` / `message.read` when a cursor moved.
pub(crate) fn receipt_events(
    user: &str,
    role: Role,
    before: (u64, u64),
    after: (u64, u64),
) -> Vec<(&'static str, Value)> {
    let mut events = Vec::new();
    if after.0 > before.0 {
        events.push((
            "message.delivered",
            json!({"user_id": user, "role": role, "up_to": after.0}),
        ));
    }
    if after.1 > before.1 {
        events.push((
            "message.read",
            json!({"user_id": user, "role": role, "up_to": after.1}),
        ));
    }
    events
}

/// Checks an append's kind against the sender's role.
pub(crate) fn may_write(role: Role, kind: MessageKind) -> bool {
    match kind {
        MessageKind::Text => true,
        MessageKind::Note => role == Role::Operator,
        MessageKind::System => false,
    }
}

/// A new system message's id.
pub(crate) fn system_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A system entry as clients see it: without the operators' note of a transfer (`None` when
/// there is nothing to hide).
pub fn for_clients(message: &StoredMessage) -> Option<StoredMessage> {
    let data = message.data.as_ref()?;
    if data.get("note").is_none_or(Value::is_null) {
        return None;
    }
    let mut data = data.clone();
    data["note"] = Value::Null;
    Some(StoredMessage {
        data: Some(data),
        ..message.clone()
    })
}
