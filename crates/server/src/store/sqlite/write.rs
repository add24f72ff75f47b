//! The writer thread of the SQLite store and the writes it runs, each inside the batch's
//! transaction. Logical rejections are returned as `Ok(Err(..))` and write nothing; SQLite
//! errors abort (and roll back) the whole batch.

use std::sync::mpsc;
use std::sync::Arc;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::{MessageKind, ParticipantState};
use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::read;
use crate::store::workflow::{self, SystemEntry};
use crate::store::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, Committed,
    ConversationChange, Listener, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage,
    Webhook,
};

/// Answers a job's requester once its batch is committed (`None`) or has failed.
pub(super) type Replier = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Work for the writer thread: runs inside the batch's transaction.
pub(super) type Job =
    Box<dyn FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Replier> + Send>;

/// Wraps `work` and its reply channel into a job.
pub(super) fn job<T: Send + 'static>(
    work: impl FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
        + Send
        + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Job {
    Box::new(move |tx, changes| {
        let result = work(tx, changes)?;
        Ok(Box::new(move |failure: Option<&StoreError>| {
            // A requester that went away (connection closed) no longer needs the answer.
            let _ = reply.send(match failure {
                Some(err) => Err(err.clone()),
                None => result,
            });
        }))
    })
}

pub(super) fn run(
    mut conn: Connection,
    queue: mpsc::Receiver<Job>,
    batch_max: usize,
    listener: &Listener,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        write_batch(&mut conn, batch, listener);
    }
    tracing::debug!("sqlite writer stopped: every queued write is committed");
}

fn write_batch(conn: &mut Connection, batch: Vec<Job>, listener: &Listener) {
    let mut repliers = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let outcome = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for job in batch {
            repliers.push(job(&tx, &mut changes)?);
        }
        tx.commit()
    })();
    match outcome {
        Ok(()) => {
            for change in changes {
                listener.notify(change);
            }
            for reply in repliers {
                reply(None);
            }
        }
        Err(err) => {
            // The transaction rolled back (dropped): nothing of this batch is stored. Jobs after
            // the failing one were dropped with their reply senders: their requesters see the
            // writer's "stopped" error, also transient.
            let failure = super::unavailable(err);
            for reply in repliers {
                reply(Some(&failure));
            }
        }
    }
}

fn event(
    tx: &Transaction<'_>,
    kind: &str,
    conversation: &str,
    data: &Value,
    now: u64,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO events (type, conversation_id, data, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![kind, conversation, data.to_string(), now])?;
    Ok(())
}

/// Stores a message with the next seq of its conversation (which exists), its event, and
/// reports it.
#[allow(clippy::too_many_arguments)]
fn insert(
    tx: &Transaction<'_>,
    conversation: &str,
    id: String,
    sender: &str,
    role: Role,
    body: String,
    kind: MessageKind,
    data: Option<Value>,
    ts: u64,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Arc<StoredMessage>> {
    let seq: u64 = tx
        .prepare_cached(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row(params![conversation], |row| row.get(0))?;
    tx.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![conversation, seq, id, sender, role.as_str(), body, ts, kind.as_str(), data.as_ref().map(Value::to_string)])?;
    let message = Arc::new(StoredMessage {
        conversation: conversation.to_owned(),
        id,
        seq,
        sender: sender.to_owned(),
        role,
        body,
        ts,
        kind,
        data,
    });
    if let Some(kind) = workflow::message_event_kind(&message) {
        // The same data as `workflow::message_event`, serialised straight to text.
        let data = serde_json::to_string(&*message).expect("messages serialise");
        tx.prepare_cached(
            "INSERT INTO events (type, conversation_id, data, created_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![kind, conversation, data, ts])?;
    }
    changes.push(Committed::Message(message.clone()));
    Ok(message)
}

fn system(
    tx: &Transaction<'_>,
    conversation: &str,
    by: &str,
    role: Role,
    entry: SystemEntry,
    now: u64,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<()> {
    insert(
        tx,
        conversation,
        workflow::system_id(),
        by,
        role,
        entry.body,
        MessageKind::System,
        Some(entry.data),
        now,
        changes,
    )
    .map(drop)
}

pub(super) fn append(
    tx: &Transaction<'_>,
    request: AppendRequest,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<Appended, StoreError>> {
    // One lookup for both the idempotency key and the FIFO guard's predecessor.
    let mut existing = None;
    let mut after_stored = false;
    {
        let mut lookup = tx.prepare_cached(&format!(
            "SELECT {} FROM messages WHERE id IN (?1, ?2)",
            read::MESSAGE_COLUMNS
        ))?;
        let mut rows = lookup.query(params![request.id, request.after])?;
        while let Some(row) = rows.next()? {
            if row.get_ref(1)?.as_str()? == request.id {
                existing = Some(read::message(row)?);
            } else {
                after_stored = true;
            }
        }
    }
    if let Some(existing) = existing {
        let same = existing.conversation == request.conversation
            && existing.sender == request.sender
            && existing.body == request.body
            && existing.kind == request.kind;
        return Ok(if same {
            Ok(Appended {
                message: Arc::new(existing),
                created: false,
            })
        } else {
            Err(StoreError::IdConflict)
        });
    }
    if request.after.is_some() && !after_stored {
        return Ok(Err(StoreError::OutOfOrder));
    }
    let found = tx
        .prepare_cached(
            "SELECT p.role, c.closed, c.status FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = ?1 AND p.user_id = ?2",
        )?
        .query_row(params![request.conversation, request.sender], |row| {
            Ok((read::role(row, 0)?, row.get::<_, bool>(1)?, row.get::<_, String>(2)?))
        })
        .optional()?;
    let Some((role, closed, status)) = found else {
        return Ok(Err(StoreError::NotFound));
    };
    if closed {
        return Ok(Err(StoreError::Closed));
    }
    if !workflow::may_write(role, request.kind) {
        return Ok(Err(StoreError::Forbidden));
    }
    let status = protocol::frames::ConversationStatus::parse(&status).unwrap_or_default();
    let reopen = workflow::reopen(status, role, request.kind, &request.sender);
    let message = insert(
        tx,
        &request.conversation,
        request.id,
        &request.sender,
        role,
        request.body,
        request.kind,
        None,
        request.ts,
        changes,
    )?;
    if let Some((entry, (kind, data))) = reopen {
        tx.prepare_cached("UPDATE conversations SET status = 'open' WHERE id = ?1")?
            .execute(params![request.conversation])?;
        system(
            tx,
            &request.conversation,
            &request.sender,
            Role::Client,
            entry,
            request.ts,
            changes,
        )?;
        event(tx, kind, &request.conversation, &data, request.ts)?;
    }
    Ok(Ok(Appended {
        message,
        created: true,
    }))
}

pub(super) fn receipt(
    tx: &Transaction<'_>,
    request: ReceiptRequest,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<ReceiptOutcome, StoreError>> {
    let row = tx
        .prepare_cached(
            "SELECT p.role, p.delivered_seq, p.read_seq, c.last_seq
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = ?1 AND p.user_id = ?2",
        )?
        .query_row(params![request.conversation, request.user_id], |row| {
            Ok((
                read::role(row, 0)?,
                row.get::<_, u64>(1)?,
                row.get::<_, u64>(2)?,
                row.get::<_, u64>(3)?,
            ))
        })
        .optional()?;
    let Some((role, delivered, read, last_seq)) = row else {
        return Ok(Err(StoreError::NotFound));
    };
    let current = ParticipantState {
        user_id: request.user_id.clone(),
        role,
        delivered,
        read,
    };
    let (new_delivered, new_read) =
        match advance(&current, request.delivered, request.read, last_seq) {
            Ok(cursors) => cursors,
            Err(err) => return Ok(Err(err)),
        };
    let changed = (new_delivered, new_read) != (delivered, read);
    let state = ParticipantState {
        delivered: new_delivered,
        read: new_read,
        ..current
    };
    if changed {
        tx.prepare_cached("UPDATE participants SET delivered_seq = ?3, read_seq = ?4 WHERE conversation_id = ?1 AND user_id = ?2")?
            .execute(params![request.conversation, request.user_id, new_delivered, new_read])?;
        let now = crate::now_ms();
        for (kind, data) in workflow::receipt_events(
            &request.user_id,
            role,
            (delivered, read),
            (new_delivered, new_read),
        ) {
            event(tx, kind, &request.conversation, &data, now)?;
        }
        changes.push(Committed::Receipt {
            conversation: request.conversation,
            state: state.clone(),
        });
    }
    Ok(Ok(ReceiptOutcome { state, changed }))
}

fn exists(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
        .query_row(params![id], |_| Ok(()))
        .optional()?
        .is_some())
}

fn insert_participant(
    tx: &Transaction<'_>,
    conversation: &str,
    user: &str,
    role: Role,
    now: u64,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO participants (conversation_id, user_id, role, delivered_seq, read_seq, joined_at) VALUES (?1, ?2, ?3, 0, 0, ?4)",
    )?
    .execute(params![conversation, user, role.as_str(), now])?;
    changes.push(Committed::Joined {
        conversation: conversation.to_owned(),
        user_id: user.to_owned(),
    });
    Ok(())
}

pub(super) fn add_participants(
    tx: &Transaction<'_>,
    id: &str,
    wanted: &[ParticipantSpec],
    participants_max: usize,
    now: u64,
    create: bool,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<(ConversationView, bool, usize), StoreError>> {
    let created = !exists(tx, id)?;
    if created && !create {
        return Ok(Err(StoreError::NotFound));
    }
    let existing = if created {
        Vec::new()
    } else {
        read::participants(tx, id)?
    };
    let new = match participants_to_add(&existing, wanted, participants_max) {
        Ok(new) => new,
        Err(err) => return Ok(Err(err)),
    };
    if created {
        tx.prepare_cached(
            "INSERT INTO conversations (id, epoch, last_seq, created_at) VALUES (?1, ?2, 0, ?3)",
        )?
        .execute(params![id, new_epoch(), now])?;
    }
    for spec in &new {
        insert_participant(tx, id, &spec.user_id, spec.role, now, changes)?;
    }
    let view =
        read::conversation_view(tx, id)?.expect("the conversation exists in this transaction");
    if created {
        event(
            tx,
            "conversation.created",
            id,
            &json!({"participants": view.participants}),
            now,
        )?;
    }
    Ok(Ok((view, created, new.len())))
}

pub(super) fn remove_participant(
    tx: &Transaction<'_>,
    conversation: String,
    user_id: String,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<bool, StoreError>> {
    let removed = tx
        .prepare_cached("DELETE FROM participants WHERE conversation_id = ?1 AND user_id = ?2")?
        .execute(params![conversation, user_id])?
        > 0;
    if !exists(tx, &conversation)? {
        return Ok(Err(StoreError::NotFound));
    }
    if removed {
        changes.push(Committed::Left {
            conversation,
            user_id,
        });
    }
    Ok(Ok(removed))
}

pub(super) fn change_conversation(
    tx: &Transaction<'_>,
    id: &str,
    change: &ConversationChange,
    now: u64,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<ConversationView, StoreError>> {
    let Some(current) = read::conversation_view(tx, id)? else {
        return Ok(Err(StoreError::NotFound));
    };
    let plan = workflow::plan_change(&current, change);
    if let Some(operator) = &plan.add_operator {
        insert_participant(tx, id, operator, Role::Operator, now, changes)?;
    }
    tx.prepare_cached("UPDATE conversations SET status = ?2, assignee = ?3, metadata = ?4, closed = ?5 WHERE id = ?1")?.execute(params![
        id,
        plan.status.as_str(),
        plan.assignee,
        plan.metadata.as_ref().map(Value::to_string),
        plan.closed
    ])?;
    for entry in plan.entries {
        system(tx, id, &change.by, Role::Operator, entry, now, changes)?;
    }
    for (kind, data) in &plan.events {
        event(tx, kind, id, data, now)?;
    }
    Ok(Ok(read::conversation_view(tx, id)?.expect("exists")))
}

pub(super) fn flag_unread(
    tx: &Transaction<'_>,
    older_than: u64,
    now: u64,
) -> rusqlite::Result<Result<u64, StoreError>> {
    // Text messages old enough that no participant of the other role has read.
    let due: Vec<StoredMessage> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM messages m
             WHERE m.unread_flagged = 0 AND m.kind = 'text' AND m.created_at <= ?1
               AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = m.conversation_id
                               AND p.role <> m.sender_role AND p.read_seq >= m.seq)
             ORDER BY m.created_at LIMIT 1000",
            read::MESSAGE_COLUMNS.split(", ").map(|c| format!("m.{c}")).collect::<Vec<_>>().join(", ")
        ))?
        .query_map(params![older_than], read::message)?
        .collect::<Result<_, _>>()?;
    for message in &due {
        tx.prepare_cached("UPDATE messages SET unread_flagged = 1 WHERE id = ?1")?
            .execute(params![message.id])?;
        event(
            tx,
            "message.unread_timeout",
            &message.conversation,
            &serde_json::to_value(message).expect("serialises"),
            now,
        )?;
    }
    Ok(Ok(due.len() as u64))
}

pub(super) fn create_webhook(
    tx: &Transaction<'_>,
    url: &str,
    secret: &str,
    now: u64,
) -> rusqlite::Result<Result<Webhook, StoreError>> {
    let newest: u64 = tx.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |row| {
        row.get(0)
    })?;
    tx.execute(
        "INSERT INTO webhooks (url, secret, state, delivered_up_to, created_at) VALUES (?1, ?2, 'active', ?3, ?4)",
        params![url, secret, newest, now],
    )?;
    let id = tx.last_insert_rowid() as u64;
    Ok(Ok(Webhook {
        id,
        url: url.to_owned(),
        secret: secret.to_owned(),
        state: "active".into(),
        delivered_up_to: newest,
        failing_since: 0,
        failures: 0,
        last_error: None,
        created_at: now,
    }))
}

pub(super) fn update_webhook(
    tx: &Transaction<'_>,
    w: &Webhook,
) -> rusqlite::Result<Result<(), StoreError>> {
    let updated = tx.execute(
        "UPDATE webhooks SET state = ?2, delivered_up_to = ?3, failing_since = ?4, failures = ?5, last_error = ?6 WHERE id = ?1",
        params![w.id, w.state, w.delivered_up_to, w.failing_since, w.failures, w.last_error],
    )?;
    Ok(if updated > 0 {
        Ok(())
    } else {
        Err(StoreError::NotFound)
    })
}

pub(super) fn lease(
    tx: &Transaction<'_>,
    name: &str,
    holder: &str,
    ttl_ms: u64,
    now: u64,
) -> rusqlite::Result<Result<bool, StoreError>> {
    let taken = tx.execute(
        "INSERT INTO leases (name, holder, until) VALUES (?1, ?2, ?3)
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
         WHERE leases.holder = excluded.holder OR leases.until <= ?4",
        params![name, holder, now + ttl_ms, now],
    )?;
    Ok(Ok(taken > 0))
}
