//! The writer task of the PostgreSQL store: group commit, with whole-batch retries on conflicts
//! with other nodes.

use std::sync::Arc;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::ParticipantState;
use protocol::Role;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Transaction};

use super::{read, unavailable, Fault};
use crate::store::decode;
use crate::store::ledger::{self, AppendFacts, AppendPlan, ReceiptFacts, SenderFacts, Writes};
use crate::store::workflow;
use crate::store::{
    new_epoch, AppendRequest, Appended, Committed, ConversationChange, Listener, ReceiptOutcome,
    ReceiptRequest, StoreError, StoredMessage, Webhook,
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

fn is_conflict(fault: &Fault) -> bool {
    let Fault::Pg(err) = fault else {
        return false;
    };
    matches!(
        err.code(),
        Some(c) if *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::UNIQUE_VIOLATION
    )
}

async fn execute(
    client: &mut Client,
    batch: &[Command],
) -> Result<(Vec<Outcome>, Vec<Committed>), Fault> {
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
) -> Result<Outcome, Fault> {
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
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
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
        ],
    )
    .await?;
    if let Some((kind, data)) = workflow::message_event(message) {
        event(tx, kind, &message.conversation, &data, message.ts).await?;
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

async fn change_conversation(
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
    let plan = workflow::plan_change(&current, change);
    if let Some(operator) = &plan.add_operator {
        insert_participant(tx, id, operator, Role::Operator, now, changes).await?;
    }
    tx.execute(
        "UPDATE conversations SET status = $2, assignee = $3, metadata = $4, closed = $5 WHERE id = $1",
        &[&id, &plan.status.as_str(), &plan.assignee, &plan.metadata.as_ref().map(Value::to_string), &plan.closed],
    )
    .await?;
    let writes = Writes {
        messages: ledger::system_messages(
            id,
            current.last_seq,
            &change.by,
            Role::Operator,
            plan.entries,
            now,
            workflow::system_id,
        ),
        status: None,
        events: plan.events,
    };
    apply_writes(tx, id, &writes, now, changes).await?;
    Ok(Ok(read::conversation_view(tx, id).await?.expect("exists")))
}

async fn flag_unread(
    tx: &Transaction<'_>,
    older_than: u64,
    now: u64,
) -> Result<Result<u64, StoreError>, Fault> {
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

async fn append(
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

async fn receipt(
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

async fn add_participants(
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
