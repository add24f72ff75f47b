//! The rules of the operators' workflow, shared by every store: what a change of status or
//! assignee records in the timeline (system messages) and for the business (events), and which
//! events a message or a receipt causes. Pure functions; each store applies the plan in its own
//! transaction.

use protocol::api::ConversationView;
use protocol::frames::{ConversationStatus, MessageKind};
use protocol::Role;
use serde_json::{json, Value};

use super::{ConversationChange, StoredMessage};

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

/// Plans `change` against the conversation as it is.
pub(crate) fn plan_change(current: &ConversationView, change: &ConversationChange) -> Plan {
    let mut plan = Plan {
        status: current.status,
        assignee: current.assignee.clone(),
        metadata: change.metadata.clone().or_else(|| current.metadata.clone()),
        closed: change.closed.unwrap_or(current.closed),
        entries: Vec::new(),
        events: Vec::new(),
        add_operator: None,
    };
    if let Some(to) = &change.assignee {
        if *to != current.assignee {
            let from = current.assignee.clone();
            let body = match (&from, to) {
                (None, Some(to)) => format!("{} assigned the conversation to {to}", change.by),
                (Some(from), Some(to)) => format!(
                    "{} transferred the conversation from {from} to {to}",
                    change.by
                ),
                (Some(from), None) => format!("{} unassigned {from}", change.by),
                (None, None) => unreachable!("no change"),
            };
            // The note stays in `data` for operators (and the business's events); the body,
            // which clients read too, does not carry it.
            let data = json!({"event": "assigned", "from": from, "to": to, "by": change.by, "note": change.note});
            plan.entries.push(SystemEntry {
                body,
                data: data.clone(),
            });
            plan.events.push(("conversation.assigned", data));
            if let Some(to) = to {
                if !current.participants.iter().any(|p| &p.user_id == to) {
                    plan.add_operator = Some(to.clone());
                }
            }
            plan.assignee = to.clone();
        }
    }
    if let Some(to) = change.status {
        if to != current.status {
            plan.entries
                .push(status_entry(current.status, to, &change.by));
            plan.events.push((
                "conversation.status_changed",
                status_data(current.status, to, &change.by),
            ));
            plan.status = to;
        }
    }
    plan
}

fn status_data(from: ConversationStatus, to: ConversationStatus, by: &str) -> Value {
    json!({"event": "status", "from": from, "to": to, "by": by})
}

fn status_entry(from: ConversationStatus, to: ConversationStatus, by: &str) -> SystemEntry {
    SystemEntry {
        body: format!(
            "{by} changed the status from {} to {}",
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
        status_entry(status, to, sender),
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
/// (notes are for operators only; system messages have their own events).
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
