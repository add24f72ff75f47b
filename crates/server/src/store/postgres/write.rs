//! The writer task of the PostgreSQL store: group commit, with whole-batch retries on conflicts
//! with other nodes.

use std::sync::Arc;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::{ConversationStatus, MessageKind, ParticipantState};
use protocol::Role;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Transaction};

use super::{read, role, unavailable};
use crate::store::workflow::{self, SystemEntry};
use crate::store::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, Committed,
    ConversationChange, Listener, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage,
    Webhook,
};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Key of the transaction-level advisory lock that orders event ids with commits.
const EVENTS_LOCK_KEY: i64 = 0x7375_7265_6576_7473;

/// Times a batch is run again after a conflict with another node before it fails.
const CONFLICT_RETRIES_MAX: u32 = 8;

/// Work for the writer. Commands are borrowed while a batch runs, so a batch that conflicts with
/// another node can be run again.
pub(crate) enum Command {
    Append(AppendRequest, Reply<Appended>),
    Receipt(ReceiptRequest, Reply<ReceiptOutcome>),
    AddParticipants {
        id: String,
        wanted: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
        create: bool,
        reply: Reply<(ConversationView, bool, usize)>,
    },
    RemoveParticipant {
        conversation: String,
        user_id: String,
        reply: Reply<bool>,
    },
    Change {
        id: String,
        change: ConversationChange,
        now: u64,
        reply: Reply<ConversationView>,
    },
    FlagUnread {
        older_than: u64,
        now: u64,
        reply: Reply<u64>,
    },
    CreateWebhook {
        url: String,
        secret: String,
        now: u64,
        reply: Reply<Webhook>,
    },
    UpdateWebhook {
        webhook: Webhook,
        reply: Reply<()>,
    },
    DeleteWebhook {
        id: u64,
        reply: Reply<bool>,
    },
    Lease {
        name: String,
        holder: String,
        ttl_ms: u64,
        now: u64,
        reply: Reply<bool>,
    },
    Ping(Reply<()>),
}

/// A command's result, held until its batch commits.
enum Outcome {
    Append(Result<Appended, StoreError>),
    Receipt(Result<ReceiptOutcome, StoreError>),
    Add(Result<(ConversationView, bool, usize), StoreError>),
    View(Result<ConversationView, StoreError>),
    Count(Result<u64, StoreError>),
    Webhook(Result<Webhook, StoreError>),
    Flag(Result<bool, StoreError>),
    Unit(Result<(), StoreError>),
}

impl Command {
    /// Answers with the outcome, or with `failure` for the whole batch.
    fn answer(self, outcome: Option<Outcome>, failure: Option<&StoreError>) {
        fn send<T>(
            reply: Reply<T>,
            result: Option<Result<T, StoreError>>,
            failure: Option<&StoreError>,
        ) {
            let answer = match (result, failure) {
                (Some(r), None) => r,
                (_, Some(err)) => Err(err.clone()),
                (None, None) => Err(StoreError::Unavailable("no outcome".into())),
            };
            // A requester that went away no longer needs the answer.
            let _ = reply.send(answer);
        }
        match (self, outcome) {
            (Command::Append(_, reply), Some(Outcome::Append(r))) => send(reply, Some(r), failure),
            (Command::Append(_, reply), _) => send(reply, None, failure),
            (Command::Receipt(_, reply), Some(Outcome::Receipt(r))) => {
                send(reply, Some(r), failure)
            }
            (Command::Receipt(_, reply), _) => send(reply, None, failure),
            (Command::AddParticipants { reply, .. }, Some(Outcome::Add(r))) => {
                send(reply, Some(r), failure)
            }
            (Command::AddParticipants { reply, .. }, _) => send(reply, None, failure),
            (Command::Change { reply, .. }, Some(Outcome::View(r))) => {
                send(reply, Some(r), failure)
            }
            (Command::Change { reply, .. }, _) => send(reply, None, failure),
            (Command::FlagUnread { reply, .. }, Some(Outcome::Count(r))) => {
                send(reply, Some(r), failure)
            }
            (Command::FlagUnread { reply, .. }, _) => send(reply, None, failure),
            (Command::CreateWebhook { reply, .. }, Some(Outcome::Webhook(r))) => {
                send(reply, Some(r), failure)
            }
            (Command::CreateWebhook { reply, .. }, _) => send(reply, None, failure),
            (
                Command::RemoveParticipant { reply, .. }
                | Command::DeleteWebhook { reply, .. }
                | Command::Lease { reply, .. },
                o,
            ) => send(
                reply,
                if let Some(Outcome::Flag(r)) = o {
                    Some(r)
                } else {
                    None
                },
                failure,
            ),
            (Command::UpdateWebhook { reply, .. } | Command::Ping(reply), o) => send(
                reply,
                if let Some(Outcome::Unit(r)) = o {
                    Some(r)
                } else {
                    None
                },
                failure,
            ),
        }
    }
}

pub(crate) async fn run(
    config: Config,
    mut client: Client,
    mut queue: mpsc::UnboundedReceiver<Command>,
    batch_max: usize,
    listener: Arc<Listener>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut conflicts = 0;
        let result = loop {
            if client.is_closed() {
                match super::connect(&config).await {
                    Ok(fresh) => client = fresh,
                    Err(err) => break Err(unavailable(err)),
                }
            }
            match execute(&mut client, &batch).await {
                Ok(done) => break Ok(done),
                Err(err) if is_conflict(&err) && conflicts < CONFLICT_RETRIES_MAX => {
                    conflicts += 1;
                    tracing::debug!(%err, conflicts, "batch conflicted with another node; running it again");
                }
                Err(err) => break Err(unavailable(err)),
            }
        };
        match result {
            Ok((outcomes, changes)) => {
                for change in changes {
                    listener.notify(change);
                }
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(Some(outcome), None);
                }
            }
            Err(failure) => {
                for command in batch {
                    command.answer(None, Some(&failure));
                }
            }
        }
    }
}

fn is_conflict(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::UNIQUE_VIOLATION
    )
}

async fn execute(
    client: &mut Client,
    batch: &[Command],
) -> Result<(Vec<Outcome>, Vec<Committed>), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Event ids come from a sequence, which hands them out in call order, not commit order: with
    // two nodes writing, id 11 could commit before id 10 and a webhook reader past 11 would never
    // see 10. Holding this lock from before the first event id until the commit makes event ids
    // commit in order across nodes.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK_KEY])
        .await?;
    let mut outcomes = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    for command in batch {
        outcomes.push(apply(&tx, command, &mut changes).await?);
    }
    tx.commit().await?;
    Ok((outcomes, changes))
}

async fn apply(
    tx: &Transaction<'_>,
    command: &Command,
    changes: &mut Vec<Committed>,
) -> Result<Outcome, tokio_postgres::Error> {
    Ok(match command {
        Command::Append(request, _) => Outcome::Append(append(tx, request, changes).await?),
        Command::Receipt(request, _) => Outcome::Receipt(receipt(tx, request, changes).await?),
        Command::AddParticipants {
            id,
            wanted,
            participants_max,
            now,
            create,
            ..
        } => Outcome::Add(
            add_participants(tx, id, wanted, *participants_max, *now, *create, changes).await?,
        ),
        Command::RemoveParticipant {
            conversation,
            user_id,
            ..
        } => {
            let exists = tx
                .query_opt("SELECT 1 FROM conversations WHERE id = $1", &[conversation])
                .await?
                .is_some();
            let removed = tx
                .execute(
                    "DELETE FROM participants WHERE conversation_id = $1 AND user_id = $2",
                    &[conversation, user_id],
                )
                .await?
                > 0;
            if removed {
                changes.push(Committed::Left {
                    conversation: conversation.clone(),
                    user_id: user_id.clone(),
                });
            }
            Outcome::Flag(if exists {
                Ok(removed)
            } else {
                Err(StoreError::NotFound)
            })
        }
        Command::Change {
            id, change, now, ..
        } => Outcome::View(change_conversation(tx, id, change, *now, changes).await?),
        Command::FlagUnread {
            older_than, now, ..
        } => Outcome::Count(flag_unread(tx, *older_than, *now).await?),
        Command::CreateWebhook {
            url, secret, now, ..
        } => {
            let newest: i64 = tx
                .query_one("SELECT COALESCE(MAX(id), 0) FROM events", &[])
                .await?
                .get(0);
            let row = tx
                .query_one(
                    "INSERT INTO webhooks (url, secret, state, delivered_up_to, created_at) VALUES ($1, $2, 'active', $3, $4) RETURNING id",
                    &[url, secret, &newest, &(*now as i64)],
                )
                .await?;
            Outcome::Webhook(Ok(Webhook {
                id: row.get::<_, i64>(0) as u64,
                url: url.clone(),
                secret: secret.clone(),
                state: "active".into(),
                delivered_up_to: newest as u64,
                failing_since: 0,
                failures: 0,
                last_error: None,
                created_at: *now,
            }))
        }
        Command::UpdateWebhook { webhook: w, .. } => {
            let updated = tx
                .execute(
                    "UPDATE webhooks SET state = $2, delivered_up_to = $3, failing_since = $4, failures = $5, last_error = $6 WHERE id = $1",
                    &[&(w.id as i64), &w.state, &(w.delivered_up_to as i64), &(w.failing_since as i64), &(w.failures as i64), &w.last_error],
                )
                .await?;
            Outcome::Unit(if updated > 0 {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            })
        }
        Command::DeleteWebhook { id, .. } => Outcome::Flag(Ok(tx
            .execute("DELETE FROM webhooks WHERE id = $1", &[&(*id as i64)])
            .await?
            > 0)),
        Command::Lease {
            name,
            holder,
            ttl_ms,
            now,
            ..
        } => {
            let taken = tx
                .execute(
                    "INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until
                     WHERE leases.holder = excluded.holder OR leases.until <= $4",
                    &[name, holder, &((now + ttl_ms) as i64), &(*now as i64)],
                )
                .await?;
            Outcome::Flag(Ok(taken > 0))
        }
        Command::Ping(_) => Outcome::Unit(Ok(())),
    })
}

async fn event(
    tx: &Transaction<'_>,
    kind: &str,
    conversation: &str,
    data: &Value,
    now: u64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO events (type, conversation_id, data, created_at) VALUES ($1, $2, $3, $4)",
        &[&kind, &conversation, &data.to_string(), &(now as i64)],
    )
    .await
    .map(drop)
}

/// Stores a message with the next seq (the conversation exists and the sender may write), its
/// event, and reports it.
#[allow(clippy::too_many_arguments)]
async fn insert(
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
) -> Result<Arc<StoredMessage>, tokio_postgres::Error> {
    // The row lock taken here serialises writers of this conversation across nodes.
    let seq: i64 = tx
        .query_one(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq",
            &[&conversation],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&conversation, &seq, &id, &sender, &role.as_str(), &body, &(ts as i64), &kind.as_str(), &data.as_ref().map(Value::to_string)],
    )
    .await?;
    let message = Arc::new(StoredMessage {
        conversation: conversation.to_owned(),
        id,
        seq: seq as u64,
        sender: sender.to_owned(),
        role,
        body,
        ts,
        kind,
        data,
    });
    if let Some((kind, data)) = workflow::message_event(&message) {
        event(tx, kind, conversation, &data, ts).await?;
    }
    changes.push(Committed::Message(message.clone()));
    Ok(message)
}

async fn system(
    tx: &Transaction<'_>,
    conversation: &str,
    by: &str,
    role: Role,
    entry: SystemEntry,
    now: u64,
    changes: &mut Vec<Committed>,
) -> Result<(), tokio_postgres::Error> {
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
    .await
    .map(drop)
}

async fn change_conversation(
    tx: &Transaction<'_>,
    id: &str,
    change: &ConversationChange,
    now: u64,
    changes: &mut Vec<Committed>,
) -> Result<Result<ConversationView, StoreError>, tokio_postgres::Error> {
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
    let plan = workflow::plan_change(&current, change);
    if let Some(operator) = &plan.add_operator {
        insert_participant(tx, id, operator, Role::Operator, now, changes).await?;
    }
    tx.execute(
        "UPDATE conversations SET status = $2, assignee = $3, metadata = $4, closed = $5 WHERE id = $1",
        &[&id, &plan.status.as_str(), &plan.assignee, &plan.metadata.as_ref().map(Value::to_string), &plan.closed],
    )
    .await?;
    for entry in plan.entries {
        system(tx, id, &change.by, Role::Operator, entry, now, changes).await?;
    }
    for (kind, data) in &plan.events {
        event(tx, kind, id, data, now).await?;
    }
    Ok(Ok(read::conversation_view(tx, id).await?.expect("exists")))
}

async fn flag_unread(
    tx: &Transaction<'_>,
    older_than: u64,
    now: u64,
) -> Result<Result<u64, StoreError>, tokio_postgres::Error> {
    let columns = read::MESSAGE_COLUMNS
        .split(", ")
        .map(|c| format!("m.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = tx
        .query(
            &format!(
                "SELECT {columns} FROM messages m
                 WHERE NOT m.unread_flagged AND m.kind = 'text' AND m.created_at <= $1
                   AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = m.conversation_id
                                   AND p.role <> m.sender_role AND p.read_seq >= m.seq)
                 ORDER BY m.created_at LIMIT 1000 FOR UPDATE OF m SKIP LOCKED"
            ),
            &[&(older_than as i64)],
        )
        .await?;
    for row in &rows {
        let message = read::message(row);
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
) -> Result<(), tokio_postgres::Error> {
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

async fn append(
    tx: &Transaction<'_>,
    request: &AppendRequest,
    changes: &mut Vec<Committed>,
) -> Result<Result<Appended, StoreError>, tokio_postgres::Error> {
    if let Some(existing) = read::message_by_id(tx, &request.id).await? {
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
    if let Some(after) = &request.after {
        if tx
            .query_opt("SELECT 1 FROM messages WHERE id = $1", &[after])
            .await?
            .is_none()
        {
            return Ok(Err(StoreError::OutOfOrder));
        }
    }
    let found = tx
        .query_opt(
            "SELECT p.role, c.closed, c.status FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = $1 AND p.user_id = $2",
            &[&request.conversation, &request.sender],
        )
        .await?;
    let Some(found) = found else {
        return Ok(Err(StoreError::NotFound));
    };
    let (sender_role, closed, status): (Role, bool, ConversationStatus) = (
        role(found.get(0)),
        found.get(1),
        ConversationStatus::parse(found.get(2)).unwrap_or_default(),
    );
    if closed {
        return Ok(Err(StoreError::Closed));
    }
    if !workflow::may_write(sender_role, request.kind) {
        return Ok(Err(StoreError::Forbidden));
    }
    let reopen = workflow::reopen(status, sender_role, request.kind, &request.sender);
    let message = insert(
        tx,
        &request.conversation,
        request.id.clone(),
        &request.sender,
        sender_role,
        request.body.clone(),
        request.kind,
        None,
        request.ts,
        changes,
    )
    .await?;
    if let Some((entry, (kind, data))) = reopen {
        tx.execute(
            "UPDATE conversations SET status = 'open' WHERE id = $1",
            &[&request.conversation],
        )
        .await?;
        system(
            tx,
            &request.conversation,
            &request.sender,
            Role::Client,
            entry,
            request.ts,
            changes,
        )
        .await?;
        event(tx, kind, &request.conversation, &data, request.ts).await?;
    }
    Ok(Ok(Appended {
        message,
        created: true,
    }))
}

async fn receipt(
    tx: &Transaction<'_>,
    request: &ReceiptRequest,
    changes: &mut Vec<Committed>,
) -> Result<Result<ReceiptOutcome, StoreError>, tokio_postgres::Error> {
    // FOR UPDATE: two nodes moving one participant's cursors must not overwrite each other.
    let row = tx
        .query_opt(
            "SELECT p.role, p.delivered_seq, p.read_seq, c.last_seq
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.conversation_id = $1 AND p.user_id = $2 FOR UPDATE OF p",
            &[&request.conversation, &request.user_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Err(StoreError::NotFound));
    };
    let current = ParticipantState {
        user_id: request.user_id.clone(),
        role: role(row.get(0)),
        delivered: row.get::<_, i64>(1) as u64,
        read: row.get::<_, i64>(2) as u64,
    };
    let last_seq = row.get::<_, i64>(3) as u64;
    let (delivered, read) = match advance(&current, request.delivered, request.read, last_seq) {
        Ok(cursors) => cursors,
        Err(err) => return Ok(Err(err)),
    };
    let changed = (delivered, read) != (current.delivered, current.read);
    let state = ParticipantState {
        delivered,
        read,
        ..current
    };
    if changed {
        tx.execute(
            "UPDATE participants SET delivered_seq = $3, read_seq = $4 WHERE conversation_id = $1 AND user_id = $2",
            &[&request.conversation, &request.user_id, &(delivered as i64), &(read as i64)],
        )
                .await?;
        let now = crate::now_ms();
        for (kind, data) in workflow::receipt_events(
            &request.user_id,
            current.role,
            (current.delivered, current.read),
            (delivered, read),
        ) {
            event(tx, kind, &request.conversation, &data, now).await?;
        }
        changes.push(Committed::Receipt {
            conversation: request.conversation.clone(),
            state: state.clone(),
        });
    }
    Ok(Ok(ReceiptOutcome { state, changed }))
}

async fn add_participants(
    tx: &Transaction<'_>,
    id: &str,
    wanted: &[ParticipantSpec],
    participants_max: usize,
    now: u64,
    create: bool,
    changes: &mut Vec<Committed>,
) -> Result<Result<(ConversationView, bool, usize), StoreError>, tokio_postgres::Error> {
    // FOR UPDATE: concurrent additions on two nodes are serialised, so the limit holds.
    let exists = tx
        .query_opt(
            "SELECT 1 FROM conversations WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .is_some();
    if !exists && !create {
        return Ok(Err(StoreError::NotFound));
    }
    let existing = if exists {
        read::participants(tx, id).await?
    } else {
        Vec::new()
    };
    let new = match participants_to_add(&existing, wanted, participants_max) {
        Ok(new) => new,
        Err(err) => return Ok(Err(err)),
    };
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
