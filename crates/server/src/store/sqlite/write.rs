//! The writer thread of the SQLite store and the writes it runs, each inside the batch's
//! transaction. Logical rejections are returned as `Ok(Err(..))` and write nothing. A request
//! that fails in storage fails alone: its writes are rolled back, and the rest of its batch is
//! committed (see [`Job`]).

use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::ParticipantState;
use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};
use tokio::sync::oneshot;

use super::read;
use crate::metrics::WriterStats;
use crate::store::decode;
use crate::store::ledger::{self, AppendFacts, AppendPlan, ReceiptFacts, SenderFacts, Writes};
use crate::store::workflow;
use crate::store::{
    new_epoch, AppendRequest, Appended, Committed, ConversationChange, Listener, ReceiptOutcome,
    ReceiptRequest, StoreError, StoredMessage, Webhook,
};

/// Answers a job's requester once its batch is committed (`None`) or has failed.
pub(super) type Replier = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// Work for the writer thread: runs inside the batch's transaction.
pub(super) enum Job {
    /// Runs once, in a savepoint of its own, so that a failure in storage rolls back its writes
    /// alone.
    Once(OnceJob),
    /// May run more than once (appends and receipts: most of the traffic). Consecutive ones
    /// share one savepoint; should one fail in storage, their writes are rolled back and each
    /// runs again in a savepoint of its own, where the failing one fails alone. A savepoint per
    /// request cost a statement to open, one to release, and a copy of each page it first
    /// changed: a tenth of the writer's time.
    Again(AgainJob),
}

type OnceJob =
    Box<dyn FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Replier> + Send>;

type AgainJob = Box<
    dyn FnMut(&Transaction<'_>, &mut Vec<Committed>, Attempt) -> rusqlite::Result<Replier> + Send,
>;

/// How an [`Job::Again`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attempt {
    /// With others in one savepoint: a failure is not its answer yet (it runs again alone).
    Grouped,
    /// In a savepoint of its own: a failure is its answer.
    Alone,
}

/// Wraps `work` and its reply channel into a job that runs once.
pub(super) fn job<T: Send + 'static>(
    work: impl FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
        + Send
        + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Job {
    Job::Once(Box::new(move |tx, changes| {
        let result = match work(tx, changes) {
            Ok(result) => result,
            Err(err) => {
                // This job's own failure aborts (and rolls back) the batch: answer it with the
                // cause, which the writer logs once, rather than with "the writer has stopped".
                let _ = reply.send(Err(super::store_error(&err)));
                return Err(err);
            }
        };
        Ok(Box::new(move |failure: Option<&StoreError>| {
            // A requester that went away (connection closed) no longer needs the answer.
            let _ = reply.send(match failure {
                Some(err) => Err(err.clone()),
                None => result,
            });
        }))
    }))
}

/// Wraps `work`, which may run again, and its reply channel into a [`Job::Again`]. Only the
/// replier of the run that counts answers; one from a run rolled back is dropped unused.
pub(super) fn job_again<T: Send + 'static>(
    mut work: impl FnMut(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
        + Send
        + 'static,
    reply: oneshot::Sender<Result<T, StoreError>>,
) -> Job {
    let reply = Arc::new(Mutex::new(Some(reply)));
    let answer = |reply: &Mutex<Option<oneshot::Sender<Result<T, StoreError>>>>, value| {
        let sender = reply.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(sender) = sender {
            let _ = sender.send(value);
        }
    };
    Job::Again(Box::new(move |tx, changes, attempt| {
        let result = match work(tx, changes) {
            Ok(result) => result,
            Err(err) => {
                if attempt == Attempt::Alone {
                    answer(&reply, Err(super::store_error(&err)));
                }
                return Err(err);
            }
        };
        let reply = reply.clone();
        Ok(Box::new(move |failure: Option<&StoreError>| {
            answer(
                &reply,
                match failure {
                    Some(err) => Err(err.clone()),
                    None => result,
                },
            )
        }))
    }))
}

pub(super) fn run(
    mut conn: Connection,
    queue: mpsc::Receiver<Job>,
    batch_max: usize,
    listener: &Listener,
    stats: &WriterStats,
    checkpointer: &super::checkpoint::Checkpointer,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let writes = batch.len();
        stats
            .queue_depth
            .fetch_sub(writes as i64, Ordering::Relaxed);
        let started = Instant::now();
        let committed = write_batch(&mut conn, batch, listener);
        stats.batch(writes, started.elapsed(), committed);
        if committed {
            checkpointer.committed();
        }
    }
    tracing::debug!("sqlite writer stopped: every queued write is committed");
}

/// Runs and commits one batch; `false` if it failed as a whole.
fn write_batch(conn: &mut Connection, batch: Vec<Job>, listener: &Listener) -> bool {
    let mut repliers = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let outcome = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut group = Vec::new();
        for job in batch {
            match job {
                Job::Again(work) => group.push(work),
                Job::Once(work) => {
                    run_group(&tx, &mut group, &mut changes, &mut repliers)?;
                    run_alone(
                        &tx,
                        |tx, changes| work(tx, changes),
                        &mut changes,
                        &mut repliers,
                    )?;
                }
            }
        }
        run_group(&tx, &mut group, &mut changes, &mut repliers)?;
        // Outside the jobs' savepoints: FTS5 writes out its pending terms at each release.
        index_for_search(&tx, &changes)?;
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
            true
        }
        Err(err) => {
            // The transaction itself failed (commit, or a savepoint could not be rolled back):
            // nothing of this batch is stored. Jobs not run were dropped with their reply
            // senders: their requesters see the writer's "stopped" error, also transient.
            let failure = super::unavailable(err);
            for reply in repliers {
                reply(Some(&failure));
            }
            false
        }
    }
}

/// Runs one job in a savepoint of its own: if it fails in storage, its writes are rolled back
/// and the batch goes on (its requester has its answer: the cause, or `unavailable`).
fn run_alone(
    tx: &Transaction<'_>,
    work: impl FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Replier>,
    changes: &mut Vec<Committed>,
    repliers: &mut Vec<Replier>,
) -> rusqlite::Result<()> {
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    let before = changes.len();
    match work(tx, changes) {
        Ok(reply) => {
            tx.prepare_cached("RELEASE job")?.execute([])?;
            repliers.push(reply);
        }
        Err(err) => {
            tracing::warn!(%err, "a write failed alone; the rest of its batch goes on");
            changes.truncate(before);
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
            tx.prepare_cached("RELEASE job")?.execute([])?;
        }
    }
    Ok(())
}

/// Runs the jobs of `group` (emptied) in one savepoint; if one fails in storage, rolls them all
/// back and runs each alone ([`Job::Again`]).
fn run_group(
    tx: &Transaction<'_>,
    group: &mut Vec<AgainJob>,
    changes: &mut Vec<Committed>,
    repliers: &mut Vec<Replier>,
) -> rusqlite::Result<()> {
    if group.is_empty() {
        return Ok(());
    }
    let before = (changes.len(), repliers.len());
    tx.prepare_cached("SAVEPOINT jobs")?.execute([])?;
    let mut failed = None;
    for work in group.iter_mut() {
        match work(tx, changes, Attempt::Grouped) {
            Ok(reply) => repliers.push(reply),
            Err(err) => {
                failed = Some(err);
                break;
            }
        }
    }
    if let Some(err) = failed {
        tracing::debug!(%err, "a grouped write failed: each of its group runs again alone");
        changes.truncate(before.0);
        // Unused: the runs they answer for are rolled back.
        repliers.truncate(before.1);
        tx.prepare_cached("ROLLBACK TO jobs")?.execute([])?;
        for work in group.iter_mut() {
            run_alone(
                tx,
                |tx, changes| work(tx, changes, Attempt::Alone),
                changes,
                repliers,
            )?;
        }
    }
    tx.prepare_cached("RELEASE jobs")?.execute([])?;
    group.clear();
    Ok(())
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

/// Stores a planned message (its conversation exists; its `seq` follows `last_seq`), its event,
/// and reports it.
fn insert(
    tx: &Transaction<'_>,
    message: &Arc<StoredMessage>,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<()> {
    // Only this writer thread writes, so the plan's facts are current; should that ever break,
    // the messages' primary key (conversation, seq) refuses a second message with one seq.
    let updated = tx
        .prepare_cached(
            "UPDATE conversations SET last_seq = ?2 WHERE id = ?1 AND last_seq = ?2 - 1",
        )?
        .execute(params![message.conversation, message.seq])?;
    debug_assert_eq!(
        updated, 1,
        "the planned seq follows the conversation's last_seq"
    );
    tx.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data, attachments)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        message.conversation,
        message.seq,
        message.id,
        message.sender,
        message.role.as_str(),
        message.body,
        message.ts,
        message.kind.as_str(),
        message.data.as_ref().map(Value::to_string),
        decode::attachments_text(&message.attachments),
    ])?;
    for attachment in &message.attachments {
        // Names the upload in the message's transaction: from this commit on it is never
        // collected, and who may download it follows from this row.
        tx.prepare_cached(
            "INSERT OR IGNORE INTO message_attachments (upload_id, message_id, kind, conversation_id)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            attachment.id,
            message.id,
            message.kind.as_str(),
            message.conversation
        ])?;
    }
    if let Some(kind) = workflow::message_event_kind(message) {
        // By reference (`0012_…`): its data, the message, is read back with the event.
        tx.prepare_cached(
            "INSERT INTO events (type, conversation_id, data, created_at, message_seq) VALUES (?1, ?2, '', ?3, ?4)",
        )?
        .execute(params![kind, message.conversation, message.ts, message.seq])?;
    }
    changes.push(Committed::Message(message.clone()));
    Ok(())
}

/// Adds the batch's new messages to the search index (`0008_search.sql`, `0011_…`), in its
/// transaction: a message is searchable from the commit that stores it.
fn index_for_search(tx: &Transaction<'_>, changes: &[Committed]) -> rusqlite::Result<()> {
    let mut row = tx
        .prepare_cached("INSERT INTO message_search_rows (conversation_id, seq) VALUES (?1, ?2)")?;
    let mut body = tx.prepare_cached("INSERT INTO message_search (rowid, body) VALUES (?1, ?2)")?;
    for change in changes {
        if let Committed::Message(message) = change {
            let id = row.insert(params![message.conversation, message.seq])?;
            body.execute(params![id, message.body])?;
        }
    }
    Ok(())
}

/// Applies planned writes to `conversation`; events are recorded at `now`.
fn apply(
    tx: &Transaction<'_>,
    conversation: &str,
    writes: &Writes,
    now: u64,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<()> {
    for message in &writes.messages {
        insert(tx, message, changes)?;
    }
    if let Some(status) = writes.status {
        tx.prepare_cached("UPDATE conversations SET status = ?2 WHERE id = ?1")?
            .execute(params![conversation, status.as_str()])?;
    }
    for (kind, data) in &writes.events {
        event(tx, kind, conversation, data, now)?;
    }
    Ok(())
}

pub(super) fn append(
    tx: &Transaction<'_>,
    request: &AppendRequest,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<Appended, StoreError>> {
    let mut facts = AppendFacts::default();
    {
        // One lookup for both the idempotency key and the FIFO guard's predecessor.
        let mut lookup = tx.prepare_cached(&format!(
            "SELECT {} FROM messages WHERE id IN (?1, ?2)",
            read::MESSAGE_COLUMNS
        ))?;
        let mut rows = lookup.query(params![request.id, request.after])?;
        while let Some(row) = rows.next()? {
            if row.get_ref(1)?.as_str()? == request.id {
                facts.existing = Some(Arc::new(read::message(row)?));
            } else {
                facts.after_stored = true;
            }
        }
    }
    if ledger::needs_sender(request, &facts) {
        facts.sender = tx
            .prepare_cached(
                "SELECT p.role, c.closed, c.status, c.last_seq
                 FROM participants p JOIN conversations c ON c.id = p.conversation_id
                 WHERE p.conversation_id = ?1 AND p.user_id = ?2",
            )?
            .query_row(params![request.conversation, request.sender], |row| {
                Ok(SenderFacts {
                    role: read::role(row, 0)?,
                    closed: row.get(1)?,
                    status: read::status(row, 2)?,
                    last_seq: row.get(3)?,
                })
            })
            .optional()?;
        if facts.sender.is_some() && !request.attachments.is_empty() {
            facts.uploads = super::uploads::named(tx, &request.attachments)?;
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
            apply(tx, &request.conversation, &writes, request.ts, changes)?;
            Appended {
                message: writes.messages[0].clone(),
                created: true,
            }
        }
    }))
}

pub(super) fn receipt(
    tx: &Transaction<'_>,
    request: &ReceiptRequest,
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
                ParticipantState {
                    user_id: request.user_id.clone(),
                    role: read::role(row, 0)?,
                    delivered: row.get(1)?,
                    read: row.get(2)?,
                },
                row.get::<_, u64>(3)?,
            ))
        })
        .optional()?;
    let facts = match row {
        Some((participant, last_seq)) => ReceiptFacts {
            participant: Some(participant),
            last_seq,
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
        tx.prepare_cached("UPDATE participants SET delivered_seq = ?3, read_seq = ?4 WHERE conversation_id = ?1 AND user_id = ?2")?
            .execute(params![request.conversation, request.user_id, state.delivered, state.read])?;
        let now = crate::now_ms();
        for (kind, data) in &plan.events {
            event(tx, kind, &request.conversation, data, now)?;
        }
        changes.push(Committed::Receipt {
            conversation: request.conversation.clone(),
            state: state.clone(),
        });
    }
    Ok(Ok(plan.outcome))
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
    let existing = if exists(tx, id)? {
        Some(read::participants(tx, id)?)
    } else {
        None
    };
    let plan =
        match ledger::plan_participants(existing.as_deref(), wanted, participants_max, create) {
            Ok(plan) => plan,
            Err(err) => return Ok(Err(err)),
        };
    let (created, new) = (plan.create, plan.new);
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

/// Erases conversation `id` (see `WorkflowStore::erase_conversation`); answers the names of its
/// upload files, to remove after the commit, or `None` when there is no such conversation.
pub(super) fn erase_conversation(
    tx: &Transaction<'_>,
    id: &str,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<Option<Vec<String>>, StoreError>> {
    if !exists(tx, id)? {
        return Ok(Ok(None));
    }
    let users: Vec<String> = tx
        .prepare_cached("SELECT user_id FROM participants WHERE conversation_id = ?1")?
        .query_map(params![id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    // The search index is contentless: an entry is deleted by giving back what it indexed.
    tx.execute(
        "INSERT INTO message_search (message_search, rowid, body)
         SELECT 'delete', r.id, m.body FROM message_search_rows r
         JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq
         WHERE r.conversation_id = ?1",
        params![id],
    )?;
    let files: Vec<String> = tx
        .prepare("DELETE FROM uploads WHERE conversation_id = ?1 RETURNING file")?
        .query_map(params![id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for table in [
        "message_search_rows",
        "message_attachments",
        "reach_outbox",
        "reach_marks",
        "email_links",
        "messages",
        "participants",
        "events",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE conversation_id = ?1"),
            params![id],
        )?;
    }
    tx.execute("DELETE FROM conversations WHERE id = ?1", params![id])?;
    for user_id in users {
        changes.push(Committed::Left {
            conversation: id.to_owned(),
            user_id,
        });
    }
    Ok(Ok(Some(files)))
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
    let mut facts = workflow::ChangeFacts::default();
    for operator in workflow::named_operators(&current, change) {
        facts
            .operators
            .extend(read::operators(tx, Some(&operator))?);
    }
    let plan = match workflow::plan_change(&current, change, &facts) {
        Ok(plan) => plan,
        Err(err) => return Ok(Err(err)),
    };
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
    let writes = ledger::change_writes(id, current.last_seq, &change.by, plan, now);
    apply(tx, id, &writes, now, changes)?;
    Ok(Ok(read::conversation_view(tx, id)?.expect("exists")))
}

pub(super) fn flag_unread(
    tx: &Transaction<'_>,
    after: u64,
    older_than: u64,
    now: u64,
) -> rusqlite::Result<Result<u64, StoreError>> {
    // Text messages old enough that no participant of the other role has read. The index
    // `messages_unflagged` keeps every unflagged text message, read or not: `after` bounds the
    // walk (see `webhooks::UnreadSweep`).
    let due: Vec<StoredMessage> = tx
        .prepare_cached(&format!(
            "SELECT {} FROM messages m
             WHERE m.unread_flagged = 0 AND m.kind = 'text' AND m.created_at > ?1 AND m.created_at <= ?2
               AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = m.conversation_id
                               AND p.role <> m.sender_role AND p.read_seq >= m.seq)
             ORDER BY m.created_at LIMIT ?3",
            read::MESSAGE_COLUMNS_OF_M
        ))?
        .query_map(params![after, older_than, crate::store::UNREAD_FLAG_MAX], read::message)?
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
