//! What the PostgreSQL writer's commands write, each inside the batch's transaction: appends,
//! receipts and membership as the ledger plans them, workflow changes as `workflow` plans them.
//! Logical refusals are returned as `Ok(Err(..))` and write nothing; a [`Fault`] aborts the batch.

use std::sync::Arc;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::ParticipantState;
use protocol::Role;
use serde_json::{json, Value};
use tokio_postgres::Transaction;

use super::{read, Fault};
use crate::store::decode;
use crate::store::ledger::{self, AppendFacts, AppendPlan, ReceiptFacts, SenderFacts, Writes};
use crate::store::workflow;
use crate::store::{
    new_epoch, AppendRequest, Appended, Committed, ConversationChange, ReceiptOutcome,
    ReceiptRequest, StoreError, StoredMessage,
};

pub(super) async fn event(
    tx: &Transaction<'_>,
    kind: &str,
    conversation: &str,
    data: &Value,
    now: u64,
) -> Result<(), Fault> {
    tx.execute(
        "INSERT INTO events (type, conversation_id, data, created_at) VALUES ($1, $2, $3, $4)",
        &[&kind, &conversation, &data.to_string(), &(now as i64)],
    )
    .await?;
    Ok(())
}

/// Stores a planned message (its conversation exists and is locked by this transaction; its
/// `seq` follows `last_seq`), its event, and reports it.
async fn insert(
    tx: &Transaction<'_>,
    message: &Arc<StoredMessage>,
    changes: &mut Vec<Committed>,
) -> Result<(), Fault> {
    // The facts were read under the conversation's row lock, so `last_seq` cannot have moved;
    // should that ever break, the messages' primary key (conversation, seq) refuses the row and
    // the batch fails instead of storing two messages under one seq.
    let updated = tx
        .execute(
            "UPDATE conversations SET last_seq = $2 WHERE id = $1 AND last_seq = $3",
            &[
                &message.conversation,
                &(message.seq as i64),
                &(message.seq as i64 - 1),
            ],
        )
        .await?;
    debug_assert_eq!(
        updated, 1,
        "the planned seq follows the conversation's last_seq"
    );
    tx.execute(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data, attachments)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &message.conversation,
            &(message.seq as i64),
            &message.id,
            &message.sender,
            &message.role.as_str(),
            &message.body,
            &(message.ts as i64),
            &message.kind.as_str(),
            &message.data.as_ref().map(Value::to_string),
            &decode::attachments_text(&message.attachments),
        ],
    )
    .await?;
    for attachment in &message.attachments {
        // Names the upload in the message's transaction: from this commit on it is never
        // collected, and who may download it follows from this row.
        tx.execute(
            "INSERT INTO message_attachments (upload_id, message_id, kind, conversation_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[
                &attachment.id,
                &message.id,
                &message.kind.as_str(),
                &message.conversation,
            ],
        )
        .await?;
        tx.execute(
            "UPDATE uploads SET named = true WHERE id = $1 AND NOT named",
            &[&attachment.id],
        )
        .await?;
    }
    if let Some(kind) = workflow::message_event_kind(message) {
        // By reference (`0011_…`): its data, the message, is read back with the event.
        tx.execute(
            "INSERT INTO events (type, conversation_id, data, created_at, message_seq) VALUES ($1, $2, '', $3, $4)",
            &[&kind, &message.conversation, &(message.ts as i64), &(message.seq as i64)],
        )
        .await?;
    }
    changes.push(Committed::Message(message.clone()));
    Ok(())
}

/// Applies planned writes to `conversation`; events are recorded at `now`.
async fn apply_writes(
    tx: &Transaction<'_>,
    conversation: &str,
    writes: &Writes,
    now: u64,
    changes: &mut Vec<Committed>,
) -> Result<(), Fault> {
    for message in &writes.messages {
        insert(tx, message, changes).await?;
    }
    if let Some(status) = writes.status {
        tx.execute(
            "UPDATE conversations SET status = $2 WHERE id = $1",
            &[&conversation, &status.as_str()],
        )
        .await?;
    }
    for (kind, data) in &writes.events {
        event(tx, kind, conversation, data, now).await?;
    }
    Ok(())
}

/// Erases conversation `id` (see `WorkflowStore::erase_conversation`); `false` when there is no
/// such conversation. Its row lock first, so a concurrent append on any node either commits
/// before (and is erased) or finds the conversation gone.
pub(super) async fn erase_conversation(
    tx: &Transaction<'_>,
    id: &str,
    changes: &mut Vec<Committed>,
) -> Result<bool, Fault> {
    let locked = tx
        .query_opt(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?;
    if locked.is_none() {
        return Ok(false);
    }
    let users: Vec<String> = tx
        .query(
            "SELECT user_id FROM participants WHERE conversation_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // Upload chunks go with their uploads (ON DELETE CASCADE).
    for table in [
        "message_attachments",
        "uploads",
        "reach_outbox",
        "reach_marks",
        "email_links",
        "messages",
        "participants",
        "events",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE conversation_id = $1"),
            &[&id],
        )
        .await?;
    }
    tx.execute("DELETE FROM conversations WHERE id = $1", &[&id])
        .await?;
    for user_id in users {
        changes.push(Committed::Left {
            conversation: id.to_owned(),
            user_id,
        });
    }
    Ok(true)
}

pub(super) async fn change_conversation(
    tx: &Transaction<'_>,
    id: &str,
    change: &ConversationChange,
    now: u64,
    changes: &mut Vec<Committed>,
) -> Result<Result<ConversationView, StoreError>, Fault> {
    // FOR UPDATE: two nodes changing one conversation are serialised.
    if tx
        .query_opt(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .is_none()
    {
        return Ok(Err(StoreError::NotFound));
    }
    let current = read::conversation_view(tx, id)
        .await?
        .expect("locked above");
    let mut facts = workflow::ChangeFacts::default();
    for operator in workflow::named_operators(&current, change) {
        facts
            .operators
            .extend(read::operators(tx, Some(&operator)).await?);
    }
    let plan = match workflow::plan_change(&current, change, &facts) {
        Ok(plan) => plan,
        Err(err) => return Ok(Err(err)),
    };
    if let Some(operator) = &plan.add_operator {
        insert_participant(tx, id, operator, Role::Operator, now, changes).await?;
    }
    tx.execute(
        "UPDATE conversations SET status = $2, assignee = $3, metadata = $4, closed = $5 WHERE id = $1",
        &[&id, &plan.status.as_str(), &plan.assignee, &plan.metadata.as_ref().map(Value::to_string), &plan.closed],
    )
    .await?;
    let writes = ledger::change_writes(id, current.last_seq, &change.by, plan, now);
    apply_writes(tx, id, &writes, now, changes).await?;
    Ok(Ok(read::conversation_view(tx, id).await?.expect("exists")))
}

pub(super) async fn flag_unread(
    tx: &Transaction<'_>,
    after: u64,
    older_than: u64,
    now: u64,
) -> Result<Result<u64, StoreError>, Fault> {
    // `after` bounds the walk of `messages_unflagged`, which keeps read messages too (see
    // `webhooks::UnreadSweep`).
    let columns = read::MESSAGE_COLUMNS_OF_M;
    let rows = tx
        .query(
            &format!(
                "SELECT {columns} FROM messages m
                 WHERE NOT m.unread_flagged AND m.kind = 'text' AND m.created_at > $1 AND m.created_at <= $2
                   AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = m.conversation_id
                                   AND p.role <> m.sender_role AND p.read_seq >= m.seq)
                 ORDER BY m.created_at LIMIT $3 FOR UPDATE OF m SKIP LOCKED"
            ),
            &[
                &(after as i64),
                &(older_than as i64),
                &(crate::store::UNREAD_FLAG_MAX as i64),
            ],
        )
        .await?;
    for row in &rows {
        let message = read::message(row)?;
        tx.execute(
            "UPDATE messages SET unread_flagged = TRUE WHERE id = $1",
            &[&message.id],
        )
        .await?;
        event(
            tx,
            "message.unread_timeout",
            &message.conversation,
            &serde_json::to_value(&message).expect("serialises"),
            now,
        )
        .await?;
    }
    Ok(Ok(rows.len() as u64))
}

async fn insert_participant(
    tx: &Transaction<'_>,
    conversation: &str,
    user: &str,
    role: Role,
    now: u64,
    changes: &mut Vec<Committed>,
) -> Result<(), Fault> {
    tx.execute(
        "INSERT INTO participants (conversation_id, user_id, role, delivered_seq, read_seq, joined_at) VALUES ($1, $2, $3, 0, 0, $4)",
        &[&conversation, &user, &role.as_str(), &(now as i64)],
    )
    .await?;
    changes.push(Committed::Joined {
        conversation: conversation.to_owned(),
        user_id: user.to_owned(),
    });
    Ok(())
}

pub(super) async fn append(
    tx: &Transaction<'_>,
    request: &AppendRequest,
    changes: &mut Vec<Committed>,
) -> Result<Result<Appended, StoreError>, Fault> {
    let mut facts = AppendFacts {
        existing: read::message_by_id(tx, &request.id).await?.map(Arc::new),
        ..AppendFacts::default()
    };
    if let Some(after) = &request.after {
        if facts.existing.is_none() {
            facts.after_stored = tx
                .query_opt("SELECT 1 FROM messages WHERE id = $1", &[after])
                .await?
                .is_some();
        }
    }
    if ledger::needs_sender(request, &facts) {
        // FOR UPDATE OF c: the conversation's row lock serialises its writers across nodes, so
        // `last_seq` (and closed, status) stay as read until this transaction commits.
        let found = tx
            .query_opt(
                "SELECT p.role, c.closed, c.status, c.last_seq
                 FROM participants p JOIN conversations c ON c.id = p.conversation_id
                 WHERE p.conversation_id = $1 AND p.user_id = $2 FOR UPDATE OF c",
                &[&request.conversation, &request.sender],
            )
            .await?;
        facts.sender = match found {
            Some(row) => Some(SenderFacts {
                role: decode::role(row.get(0))?,
                closed: row.get(1),
                status: decode::status(row.get(2))?,
                last_seq: row.get::<_, i64>(3) as u64,
            }),
            None => None,
        };
        if facts.sender.is_some() && !request.attachments.is_empty() {
            facts.uploads = super::uploads::named(tx, &request.attachments).await?;
        }
    }
    let plan = match ledger::plan_append(request, facts, workflow::system_id) {
        Ok(plan) => plan,
        Err(err) => return Ok(Err(err)),
    };
    Ok(Ok(match plan {
        AppendPlan::Repeat(message) => Appended {
            message,
            created: false,
        },
        AppendPlan::Store(writes) => {
            apply_writes(tx, &request.conversation, &writes, request.ts, changes).await?;
            Appended {
                message: writes.messages[0].clone(),
                created: true,
            }
        }
    }))
}

pub(super) async fn receipt(
    tx: &Transaction<'_>,
    request: &ReceiptRequest,
    changes: &mut Vec<Committed>,
) -> Result<Result<ReceiptOutcome, StoreError>, Fault> {
    // FOR UPDATE: two nodes moving one participant's cursors must not overwrite each other.
    let row = tx
        .query_opt(
            "SELECT p.role, p.delivered_seq, p.read_seq, c.last_seq
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = $1 AND p.user_id = $2 FOR UPDATE OF p",
            &[&request.conversation, &request.user_id],
        )
        .await?;
    let facts = match row {
        Some(row) => ReceiptFacts {
            participant: Some(ParticipantState {
                user_id: request.user_id.clone(),
                role: decode::role(row.get(0))?,
                delivered: row.get::<_, i64>(1) as u64,
                read: row.get::<_, i64>(2) as u64,
            }),
            last_seq: row.get::<_, i64>(3) as u64,
        },
        None => ReceiptFacts {
            participant: None,
            last_seq: 0,
        },
    };
    let plan = match ledger::plan_receipt(request, facts) {
        Ok(plan) => plan,
        Err(err) => return Ok(Err(err)),
    };
    let state = &plan.outcome.state;
    if plan.outcome.changed {
        tx.execute(
            "UPDATE participants SET delivered_seq = $3, read_seq = $4 WHERE conversation_id = $1 AND user_id = $2",
            &[&request.conversation, &request.user_id, &(state.delivered as i64), &(state.read as i64)],
        )
        .await?;
        let now = crate::now_ms();
        for (kind, data) in &plan.events {
            event(tx, kind, &request.conversation, data, now).await?;
        }
        changes.push(Committed::Receipt {
            conversation: request.conversation.clone(),
            state: state.clone(),
        });
    }
    Ok(Ok(plan.outcome))
}

pub(super) async fn add_participants(
    tx: &Transaction<'_>,
    id: &str,
    wanted: &[ParticipantSpec],
    participants_max: usize,
    now: u64,
    create: bool,
    changes: &mut Vec<Committed>,
) -> Result<Result<(ConversationView, bool, usize), StoreError>, Fault> {
    // FOR UPDATE: concurrent additions on two nodes are serialised, so the limit holds.
    let exists = tx
        .query_opt(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .is_some();
    let existing = if exists {
        Some(read::participants(tx, id).await?)
    } else {
        None
    };
    let plan =
        match ledger::plan_participants(existing.as_deref(), wanted, participants_max, create) {
            Ok(plan) => plan,
            Err(err) => return Ok(Err(err)),
        };
    let new = plan.new;
    debug_assert_eq!(plan.create, !exists);
    if !exists {
        // A concurrent creation on another node makes this a unique violation: the batch is run
        // again and then finds the conversation.
        tx.execute(
            "INSERT INTO conversations (id, epoch, last_seq, created_at) VALUES ($1, $2, 0, $3)",
            &[&id, &(new_epoch() as i64), &(now as i64)],
        )
        .await?;
    }
    for spec in &new {
        insert_participant(tx, id, &spec.user_id, spec.role, now, changes).await?;
    }
    if !exists {
        event(
            tx,
            "conversation.created",
            id,
            &json!({"participants": read::participants(tx, id).await?}),
            now,
        )
        .await?;
    }
    let view = read::conversation_view(tx, id)
        .await?
        .expect("the conversation exists in this transaction");
    Ok(Ok((view, !exists, new.len())))
}
