//! The writer task of the PostgreSQL store: group commit, with whole-batch retries on conflicts
//! with other nodes.

use std::sync::Arc;

use protocol::api::{ConversationView, ParticipantSpec};
use protocol::frames::ParticipantState;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Transaction};

use super::{read, role, unavailable};
use crate::store::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, Committed, Listener,
    ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage,
};

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Times a batch is run again after a conflict with another node before it fails.
const CONFLICT_RETRIES_MAX: u32 = 8;

/// Work for the writer.
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
    Ping(Reply<()>),
}

/// A command's result, held until its batch commits.
enum Outcome {
    Append(Result<Appended, StoreError>),
    Receipt(Result<ReceiptOutcome, StoreError>),
    Add(Result<(ConversationView, bool, usize), StoreError>),
    Remove(Result<bool, StoreError>),
    Ping,
}

impl Command {
    /// Answers with the outcome, or with `failure` for the whole batch.
    fn answer(self, outcome: Option<Outcome>, failure: Option<&StoreError>) {
        fn pick<T>(
            r: Option<Result<T, StoreError>>,
            failure: Option<&StoreError>,
        ) -> Result<T, StoreError> {
            match (r, failure) {
                (Some(r), None) => r,
                (_, Some(err)) => Err(err.clone()),
                (None, None) => Err(StoreError::Unavailable("no outcome".into())),
            }
        }
        // A requester that went away no longer needs the answer.
        match (self, outcome) {
            (Command::Append(_, reply), Some(Outcome::Append(r))) => {
                drop(reply.send(pick(Some(r), failure)))
            }
            (Command::Append(_, reply), _) => drop(reply.send(pick(None, failure))),
            (Command::Receipt(_, reply), Some(Outcome::Receipt(r))) => {
                drop(reply.send(pick(Some(r), failure)))
            }
            (Command::Receipt(_, reply), _) => drop(reply.send(pick(None, failure))),
            (Command::AddParticipants { reply, .. }, Some(Outcome::Add(r))) => {
                drop(reply.send(pick(Some(r), failure)))
            }
            (Command::AddParticipants { reply, .. }, _) => drop(reply.send(pick(None, failure))),
            (Command::RemoveParticipant { reply, .. }, Some(Outcome::Remove(r))) => {
                drop(reply.send(pick(Some(r), failure)))
            }
            (Command::RemoveParticipant { reply, .. }, _) => drop(reply.send(pick(None, failure))),
            (Command::Ping(reply), Some(Outcome::Ping)) => {
                drop(reply.send(pick(Some(Ok(())), failure)))
            }
            (Command::Ping(reply), _) => drop(reply.send(pick(None, failure))),
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
            Outcome::Remove(if exists {
                Ok(removed)
            } else {
                Err(StoreError::NotFound)
            })
        }
        Command::Ping(_) => Outcome::Ping,
    })
}

async fn append(
    tx: &Transaction<'_>,
    request: &AppendRequest,
    changes: &mut Vec<Committed>,
) -> Result<Result<Appended, StoreError>, tokio_postgres::Error> {
    if let Some(existing) = read::message_by_id(tx, &request.id).await? {
        let same = existing.conversation == request.conversation
            && existing.sender == request.sender
            && existing.body == request.body;
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
    // One statement: check membership, take the conversation's row lock and next seq, insert.
    let row = tx
        .query_opt(
            "WITH p AS (SELECT role FROM participants WHERE conversation_id = $1 AND user_id = $2),
                  c AS (UPDATE conversations SET last_seq = last_seq + 1
                        WHERE id = $1 AND EXISTS (SELECT 1 FROM p) RETURNING last_seq)
             INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at)
             SELECT $1, c.last_seq, $3, $2, p.role, $4, $5 FROM c, p
             RETURNING seq, sender_role",
            &[&request.conversation, &request.sender, &request.id, &request.body, &(request.ts as i64)],
        )
        .await?;
    let Some(row) = row else {
        return Ok(Err(StoreError::NotFound));
    };
    let message = Arc::new(StoredMessage {
        conversation: request.conversation.clone(),
        id: request.id.clone(),
        seq: row.get::<_, i64>(0) as u64,
        sender: request.sender.clone(),
        role: role(row.get(1)),
        body: request.body.clone(),
        ts: request.ts,
    });
    changes.push(Committed::Message(message.clone()));
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
        tx.execute(
            "INSERT INTO participants (conversation_id, user_id, role, delivered_seq, read_seq, joined_at)
             VALUES ($1, $2, $3, 0, 0, $4)",
            &[&id, &spec.user_id, &spec.role.as_str(), &(now as i64)],
        )
        .await?;
        changes.push(Committed::Joined {
            conversation: id.to_owned(),
            user_id: spec.user_id.clone(),
        });
    }
    let view = read::conversation_view(tx, id)
        .await?
        .expect("the conversation exists in this transaction");
    Ok(Ok((view, !exists, new.len())))
}
