//! The writer task of the PostgreSQL store: group commit, with whole-batch retries on conflicts
//! with other nodes. What each command writes is in [`super::write`].

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::api::{ConversationView, ParticipantSpec};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, Transaction};

use super::{unavailable, write, Fault, WRITE_TIMEOUT};
use crate::metrics::WriterStats;
use crate::store::{
    AppendRequest, Appended, Committed, ConversationChange, Listener, ReceiptOutcome,
    ReceiptRequest, StoreError, Webhook,
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
    Erase {
        id: String,
        reply: Reply<bool>,
    },
    Change {
        id: String,
        change: ConversationChange,
        now: u64,
        reply: Reply<ConversationView>,
    },
    FlagUnread {
        after: u64,
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
    PutOperator {
        operator: protocol::api::Operator,
        reply: Reply<bool>,
    },
    DeleteOperator {
        id: String,
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
    Revoke {
        user_id: String,
        at: u64,
        reply: Reply<()>,
    },
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
                | Command::Erase { reply, .. }
                | Command::DeleteWebhook { reply, .. }
                | Command::PutOperator { reply, .. }
                | Command::DeleteOperator { reply, .. }
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
            (
                Command::UpdateWebhook { reply, .. }
                | Command::Ping(reply)
                | Command::Revoke { reply, .. },
                o,
            ) => send(
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

/// How long the writer refuses batches at once after failing to connect, before it tries again:
/// while the database is down, sends are answered `unavailable` at once instead of each batch
/// waiting for a connect attempt of its own (up to [`super::CONNECT_TIMEOUT`] when the database
/// does not answer). Short, so the node notices within a fraction of a second that it is back.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(200);

/// Prepares a writer connection: a transaction this node abandons (its connection silently
/// gone) ends on the server after [`WRITE_TIMEOUT`] idle, releasing its locks.
pub(crate) async fn prepare(client: &Client) -> Result<(), tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "SET idle_in_transaction_session_timeout = {}",
            WRITE_TIMEOUT.as_millis()
        ))
        .await
}

/// Opens and prepares a writer connection, within [`super::CONNECT_TIMEOUT`] for each step.
async fn reconnect(config: &Config) -> Result<Client, Fault> {
    let client = super::connect_bounded(config).await?;
    match tokio::time::timeout(super::CONNECT_TIMEOUT, prepare(&client)).await {
        Ok(prepared) => prepared?,
        Err(_) => return Err(Fault::Timeout("preparing", super::CONNECT_TIMEOUT)),
    }
    Ok(client)
}

/// How long a batch may keep adding commands before it commits what it has run: the rest wait,
/// first in line, for the next batch. Under a normal load a batch commits in milliseconds; this
/// bounds a backlog's batches (after an outage, each command a few round trips), so acks keep
/// flowing, the other nodes' writers get the events lock in turn, and the writer keeps answering.
const BATCH_TIME_BUDGET: Duration = Duration::from_millis(200);

/// Beats each time the writer's connection answers a step: proof that storage answers while the
/// writer works through a backlog that a ping would have to wait behind (`/readyz`).
#[derive(Default)]
pub(crate) struct Heartbeat(Notify);

impl Heartbeat {
    fn beat(&self) {
        self.0.notify_waiters();
    }

    /// Resolves at the next step the connection answers after this call.
    pub(crate) fn next(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.0.notified()
    }
}

pub(crate) async fn run(
    config: Config,
    mut client: Option<Client>,
    mut queue: mpsc::Receiver<Command>,
    batch_max: usize,
    listener: Arc<Listener>,
    stats: Arc<WriterStats>,
    heartbeat: Arc<Heartbeat>,
) {
    // After a failed connect: batches before this instant are refused without trying.
    let mut down_until: Option<Instant> = None;
    // Commands a batch left to the next when its time ran out, in order; they go first.
    let mut carried: VecDeque<Command> = VecDeque::new();
    loop {
        let first = match carried.pop_front() {
            Some(command) => command,
            None => match queue.recv().await {
                Some(command) => {
                    stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                    command
                }
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < batch_max {
            if let Some(command) = carried.pop_front() {
                batch.push(command);
                continue;
            }
            match queue.try_recv() {
                Ok(command) => {
                    stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
                    batch.push(command);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = if down_until.is_some_and(|until| started < until) {
            Err(StoreError::Unavailable(
                "PostgreSQL cannot be reached; retry later".into(),
            ))
        } else {
            let writer = Writer {
                config: &config,
                heartbeat: &heartbeat,
            };
            writer
                .attempt(&mut client, &mut batch, &mut down_until)
                .await
        };
        match result {
            Ok((outcomes, changes)) => {
                stats.batch(outcomes.len(), started.elapsed(), true);
                for change in changes {
                    listener.notify(change);
                }
                let rest = batch.split_off(outcomes.len());
                for command in rest.into_iter().rev() {
                    carried.push_front(command);
                }
                for (command, outcome) in batch.into_iter().zip(outcomes) {
                    command.answer(Some(outcome), None);
                }
            }
            Err(failure) => {
                stats.batch(batch.len(), started.elapsed(), false);
                for command in batch {
                    command.answer(None, Some(&failure));
                }
            }
        }
    }
}

/// What a batch needs besides its connection.
struct Writer<'a> {
    config: &'a Config,
    heartbeat: &'a Heartbeat,
}

impl Writer<'_> {
    /// Runs a batch on the writer's connection (opening one if needed), rerunning it after
    /// conflicts with other nodes and without commands that failed alone. Answers the outcomes of
    /// the batch's first commands: all of them, or as many as ran within [`BATCH_TIME_BUDGET`].
    async fn attempt(
        &self,
        client: &mut Option<Client>,
        batch: &mut Vec<Command>,
        down_until: &mut Option<Instant>,
    ) -> Result<(Vec<Outcome>, Vec<Committed>), StoreError> {
        let mut conflicts = 0;
        loop {
            if client.as_ref().is_none_or(Client::is_closed) {
                *client = None;
                match reconnect(self.config).await {
                    Ok(fresh) => {
                        *client = Some(fresh);
                        *down_until = None;
                    }
                    Err(err) => {
                        *down_until = Some(Instant::now() + RECONNECT_BACKOFF);
                        return Err(unavailable(err));
                    }
                }
            }
            let connection = client.as_mut().expect("connected above");
            match self.execute(connection, batch).await {
                Ok(done) => return Ok(done),
                Err((_, timeout @ Fault::Timeout(..))) => {
                    // It may be waiting on a dead peer: never use it again. Whether the commit
                    // went through is unknown; the devices resend with the same ids and are
                    // answered idempotently if it did.
                    *client = None;
                    return Err(unavailable(timeout));
                }
                Err((_, err)) if is_conflict(&err) && conflicts < CONFLICT_RETRIES_MAX => {
                    conflicts += 1;
                    tracing::debug!(%err, conflicts, "batch conflicted with another node; running it again");
                }
                // One command failed on its own (the connection is fine): it fails alone, and
                // the others of its batch run again without it — a request that fails in
                // storage never rolls back the others that shared its commit.
                Err((Some(at), err)) if !connection.is_closed() && !is_conflict(&err) => {
                    tracing::warn!(%err, "a write failed alone; the rest of its batch runs again");
                    let failed = batch.remove(at);
                    failed.answer(None, Some(&unavailable(err)));
                }
                Err((_, err)) => return Err(unavailable(err)),
            }
        }
    }

    /// One step of a batch (its begin, lock, a command, its commit), failed as a whole-batch
    /// [`Fault::Timeout`] when the connection says nothing for [`WRITE_TIMEOUT`]. Steps are
    /// bounded one by one, not the batch as a whole: a large batch that keeps getting answers (a
    /// backlog after an outage, a loaded machine) is progress, and cutting it off would roll it
    /// back only for the devices to resend it, as large, into the same bound — the writer would
    /// never catch up.
    async fn step<T, E: Into<Fault>>(
        &self,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, Fault> {
        let answered = match tokio::time::timeout(WRITE_TIMEOUT, work).await {
            Ok(done) => done.map_err(Into::into),
            Err(_) => return Err(Fault::Timeout("writing", WRITE_TIMEOUT)),
        };
        self.heartbeat.beat();
        answered
    }

    /// Runs a batch in one transaction, or as much of it as fits [`BATCH_TIME_BUDGET`]. A
    /// failure names the command it came from, if any; a connection that stopped answering fails
    /// the whole batch with [`Fault::Timeout`].
    async fn execute(
        &self,
        client: &mut Client,
        batch: &[Command],
    ) -> Result<(Vec<Outcome>, Vec<Committed>), (Option<usize>, Fault)> {
        let started = Instant::now();
        let whole = |fault: Fault| (None, fault);
        let tx = self.step(client.transaction()).await.map_err(whole)?;
        // Event ids come from a sequence, which hands them out in call order, not commit order:
        // with two nodes writing, id 11 could commit before id 10 and a webhook reader past 11
        // would never see 10. Holding this lock from before the first event id until the commit
        // makes event ids commit in order across nodes.
        self.step(tx.execute("SELECT pg_advisory_xact_lock($1)", &[&EVENTS_LOCK_KEY]))
            .await
            .map_err(whole)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut changes = Vec::new();
        for (at, command) in batch.iter().enumerate() {
            if at > 0 && started.elapsed() >= BATCH_TIME_BUDGET {
                break;
            }
            let outcome = match self.step(apply(&tx, command, &mut changes)).await {
                Ok(outcome) => outcome,
                Err(timeout @ Fault::Timeout(..)) => return Err((None, timeout)),
                Err(fault) => return Err((Some(at), fault)),
            };
            outcomes.push(outcome);
        }
        self.step(tx.commit()).await.map_err(whole)?;
        Ok((outcomes, changes))
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

async fn apply(
    tx: &Transaction<'_>,
    command: &Command,
    changes: &mut Vec<Committed>,
) -> Result<Outcome, Fault> {
    Ok(match command {
        Command::Append(request, _) => Outcome::Append(write::append(tx, request, changes).await?),
        Command::Receipt(request, _) => {
            Outcome::Receipt(write::receipt(tx, request, changes).await?)
        }
        Command::AddParticipants {
            id,
            wanted,
            participants_max,
            now,
            create,
            ..
        } => Outcome::Add(
            write::add_participants(tx, id, wanted, *participants_max, *now, *create, changes)
                .await?,
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
        Command::Erase { id, .. } => {
            Outcome::Flag(Ok(write::erase_conversation(tx, id, changes).await?))
        }
        Command::Change {
            id, change, now, ..
        } => Outcome::View(write::change_conversation(tx, id, change, *now, changes).await?),
        Command::FlagUnread {
            after,
            older_than,
            now,
            ..
        } => Outcome::Count(write::flag_unread(tx, *after, *older_than, *now).await?),
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
        Command::Revoke { user_id, at, .. } => {
            tx.execute(
                "INSERT INTO revocations (user_id, revoked_at) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET revoked_at = GREATEST(revocations.revoked_at, excluded.revoked_at)",
                &[user_id, &(*at as i64)],
            )
            .await?;
            changes.push(Committed::Revoked {
                user_id: user_id.clone(),
            });
            Outcome::Unit(Ok(()))
        }
        Command::DeleteWebhook { id, .. } => Outcome::Flag(Ok(tx
            .execute("DELETE FROM webhooks WHERE id = $1", &[&(*id as i64)])
            .await?
            > 0)),
        Command::PutOperator { operator: o, .. } => {
            // xmax = 0 only on a row this statement inserted.
            let created: bool = tx
                .query_one(
                    "INSERT INTO operators (id, name, avatar_url, active) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET name = $2, avatar_url = $3, active = $4
                     RETURNING (xmax = 0)",
                    &[&o.id, &o.name, &o.avatar_url, &o.active],
                )
                .await?
                .get(0);
            Outcome::Flag(Ok(created))
        }
        Command::DeleteOperator { id, .. } => Outcome::Flag(Ok(tx
            .execute("DELETE FROM operators WHERE id = $1", &[id])
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
