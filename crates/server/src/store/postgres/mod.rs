//! The PostgreSQL store, for several nodes sharing one database. Selected with
//! `--database postgres://…`.
//!
//! Writes go through one writer task per node that drains its queue into one transaction (group
//! commit), as in SQLite. Across nodes, `UPDATE conversations SET last_seq = last_seq + 1 …
//! RETURNING` takes the conversation's row lock inside the storing transaction, so two nodes
//! writing to one conversation serialise on it and `seq` stays gap-free. A batch that meets a
//! deadlock, a serialisation failure or a concurrent insert of the same message id (another node
//! storing a resend) is rolled back and run again: nothing of it was committed, and on the rerun
//! the other node's row is visible, so the repeat is answered idempotently.
//!
//! Migrations run at start under an advisory lock, so nodes starting together do not race.
//!
//! **The database may restart or vanish at any time.** Every connection is opened within
//! [`CONNECT_TIMEOUT`], every read answers within [`READ_TIMEOUT`] and every step of a batch of
//! writes (its begin, each command, its commit) within [`WRITE_TIMEOUT`], or fails
//! `unavailable`: a connection that does not answer (a partition, a peer gone without a FIN) is
//! never waited on for ever. A connection that failed or
//! timed out is dropped, and the next request opens a fresh one, so the node recovers by itself
//! once the database answers again. Writes refused this way are retried by the devices with the
//! same ids, so a batch whose commit went through unseen is answered idempotently.

mod accounts;
mod canned;
mod reach;
mod read;
mod search;
mod uploads;
mod write;
mod writer;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{ConversationState, ParticipantState};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio_postgres::{Client, Config, NoTls};

use super::decode::Corrupt;
use super::{
    AppendRequest, Appended, CommitListener, ConversationChange, EventRecord, Listener,
    MessageStore, Pending, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage, Webhook,
    WorkflowStore,
};
use crate::metrics::WriterStats;

/// Schema migrations, in order.
const MIGRATIONS: &[&str] = &[
    include_str!("0001_init.sql"),
    include_str!("0002_workflow.sql"),
    include_str!("0003_operators.sql"),
    include_str!("0004_revocations.sql"),
    include_str!("0005_presence.sql"),
    include_str!("0006_reach.sql"),
    include_str!("0007_accounts.sql"),
    include_str!("0008_search.sql"),
    include_str!("0009_canned.sql"),
    include_str!("0010_uploads.sql"),
    include_str!("0011_message_events_by_reference.sql"),
];

/// Key of the advisory lock held while migrating (any constant; "surechat" in ASCII digits).
const MIGRATION_LOCK_KEY: i64 = 0x7375_7265_6368_6174;

/// How long opening a connection may take (TCP connect and PostgreSQL's startup handshake)
/// before it counts as failed. A database on the same network answers in milliseconds; this only
/// bounds how long a request waits on one that does not answer at all.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a read may take, connecting included, before it fails `unavailable` and its
/// connection is dropped. Reads are single indexed queries that take milliseconds.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How long one step of a batch of writes (its begin, one command's statements, its commit) may
/// wait for the database before the batch fails `unavailable` and the writer's connection is
/// dropped. A step takes well under a millisecond; one still waiting after this long is waiting on
/// a connection that no longer answers. The batch as a whole is not bounded: a large one (the
/// backlog after an outage) that keeps getting answers is progress, and cutting it off would only
/// have it resent, as large, into the same bound. It is also the writer session's
/// `idle_in_transaction_session_timeout`: a transaction the node gave up on (its connection
/// silently gone) would otherwise keep its row and advisory locks, and block every node's
/// writes, until PostgreSQL noticed the dead peer — hours, with default TCP keepalives.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most writes in one transaction.
    pub group_commit_max: usize,
    /// Connections for reads. Reads are pipelined on each, so a few carry many requests.
    pub read_connections: usize,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            group_commit_max: 1024,
            read_connections: 4,
        }
    }
}

/// Failure to connect or migrate.
#[derive(Debug, thiserror::Error)]
pub enum PgOpenError {
    /// The URL is not a valid PostgreSQL connection string.
    #[error("invalid database URL: {0}")]
    Url(String),
    /// The server could not be reached or refused.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(tokio_postgres::Error),
    /// A migration failed.
    #[error("cannot migrate the PostgreSQL schema: {0}")]
    Migrate(tokio_postgres::Error),
}

/// The PostgreSQL store.
pub struct PgStore {
    /// The writer's queue, bounded by `WRITER_QUEUE_MAX`.
    writer: mpsc::Sender<writer::Command>,
    pool: Arc<Pool>,
    listener: Arc<Listener>,
    stats: Arc<WriterStats>,
    heartbeat: Arc<writer::Heartbeat>,
}

/// Read connections, used round-robin (each pipelines many requests) and reopened when lost.
struct Pool {
    config: Config,
    readers: Vec<Mutex<Option<Arc<Client>>>>,
    next: AtomicUsize,
}

impl Pool {
    /// A connection, reopened if it was lost.
    async fn get(&self) -> Result<Arc<Client>, Fault> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        let mut slot = self.readers[index].lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(client.clone());
        }
        *slot = None;
        let client = Arc::new(connect_bounded(&self.config).await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Forgets every connection: one did not answer in time, and the others went the same
    /// way to the database (a partition, a peer gone without a FIN), so they are as suspect.
    /// Reads already running on them finish or time out on their own; the next read of each
    /// slot opens a fresh connection. A slot that is busy is being reopened already (or handed
    /// out, and its read will time out in turn): it is skipped rather than waited for, so the
    /// failing read is answered at once.
    fn discard_all(&self) {
        for slot in &self.readers {
            if let Ok(mut slot) = slot.try_lock() {
                *slot = None;
            }
        }
    }
}

/// Connects with `config`, driving the connection on a task.
pub(crate) async fn connect(config: &Config) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::warn!(%err, "postgres connection ended");
        }
    });
    Ok(client)
}

/// [`connect`] within [`CONNECT_TIMEOUT`]. `connect_timeout` of the URL bounds only the TCP
/// connect; a peer that accepts and then says nothing would hold the startup handshake for ever.
pub(crate) async fn connect_bounded(config: &Config) -> Result<Client, Fault> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect(config)).await {
        Ok(connected) => Ok(connected?),
        Err(_) => Err(Fault::Timeout("connecting", CONNECT_TIMEOUT)),
    }
}

/// Why a query failed: the database, or a row it returned that cannot be interpreted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Fault {
    /// PostgreSQL or the connection failed.
    #[error(transparent)]
    Pg(#[from] tokio_postgres::Error),
    /// A row holds a value this version cannot interpret.
    #[error(transparent)]
    Corrupt(#[from] Corrupt),
    /// PostgreSQL did not answer in time (what was being done, and the bound).
    #[error("PostgreSQL did not answer within {1:?} ({0})")]
    Timeout(&'static str, Duration),
}

/// The store error for a failure, logged here once.
fn unavailable(fault: impl Into<Fault>) -> StoreError {
    match fault.into() {
        Fault::Pg(err) => {
            tracing::error!(error = %err, "postgres error");
            StoreError::Unavailable(err.to_string())
        }
        Fault::Corrupt(corrupt) => {
            tracing::error!(error = %corrupt, "postgres row cannot be interpreted");
            corrupt.into()
        }
        timeout @ Fault::Timeout(..) => {
            tracing::error!(error = %timeout, "postgres timeout");
            StoreError::Unavailable(timeout.to_string())
        }
    }
}

impl PgStore {
    /// Connects to `url`, applies migrations and starts the writer task.
    pub async fn connect(url: &str, options: PgOptions) -> Result<PgStore, PgOpenError> {
        let config: Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| PgOpenError::Url(e.to_string()))?;
        let mut client = connect(&config).await.map_err(PgOpenError::Connect)?;
        migrate(&mut client).await.map_err(PgOpenError::Migrate)?;
        writer::prepare(&client)
            .await
            .map_err(PgOpenError::Migrate)?;
        let (writer, queue) = mpsc::channel(protocol::limits::WRITER_QUEUE_MAX);
        let listener = Arc::new(Listener::default());
        let stats = Arc::new(WriterStats::default());
        let heartbeat = Arc::new(writer::Heartbeat::default());
        tokio::spawn(writer::run(
            config.clone(),
            Some(client),
            queue,
            options.group_commit_max.max(1),
            listener.clone(),
            stats.clone(),
            heartbeat.clone(),
        ));
        let readers = (0..options.read_connections.max(1))
            .map(|_| Mutex::new(None))
            .collect();
        let pool = Arc::new(Pool {
            config,
            readers,
            next: AtomicUsize::new(0),
        });
        Ok(PgStore {
            writer,
            pool,
            listener,
            stats,
            heartbeat,
        })
    }

    /// The connection settings (for the notice bus and tools).
    pub fn config(&self) -> &Config {
        &self.pool.config
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Command,
    ) -> Pending<T> {
        let (reply, answer) = oneshot::channel();
        // Never waits: a full queue refuses at once (ordering at call time is kept: what is
        // queued is queued in call order). Counted before sending so that the writer's
        // decrement never comes first.
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        let sent = self.writer.try_send(make(reply));
        if sent.is_err() {
            self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
        }
        Box::pin(async move {
            match sent {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    return Err(StoreError::Unavailable("the writer's queue is full".into()))
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    return Err(StoreError::Unavailable("the writer has stopped".into()))
                }
            }
            answer
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".into())))
        })
    }

    fn read<T, F, Fut>(&self, query: F) -> Pending<T>
    where
        T: Send + 'static,
        F: FnOnce(Arc<Client>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, Fault>> + Send + 'static,
    {
        let pool = self.pool.clone();
        // On its own task, so that a caller that stops waiting (`/readyz` gives up after a
        // second) does not cancel the timeout that discards a connection that no longer answers.
        let read = tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + READ_TIMEOUT;
            let client = match tokio::time::timeout_at(deadline, pool.get()).await {
                Ok(got) => got.map_err(unavailable)?,
                Err(_) => return Err(unavailable(Fault::Timeout("reading", READ_TIMEOUT))),
            };
            match tokio::time::timeout_at(deadline, query(client)).await {
                Ok(result) => result.map_err(unavailable),
                Err(_) => {
                    // A connection that does not answer would fail every read queued on it.
                    pool.discard_all();
                    Err(unavailable(Fault::Timeout("reading", READ_TIMEOUT)))
                }
            }
        });
        Box::pin(async move {
            match read.await {
                Ok(answer) => answer,
                // A bug of ours in the read: as loud as it would have been without the task.
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(_) => Err(StoreError::Unavailable("the read was cancelled".into())),
            }
        })
    }
}

impl MessageStore for PgStore {
    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.listener.attach(listener);
    }

    fn writer_stats(&self) -> Option<&WriterStats> {
        Some(&self.stats)
    }

    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        self.submit(|reply| writer::Command::Append(request, reply))
    }

    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome> {
        self.submit(|reply| writer::Command::Receipt(request, reply))
    }

    fn participant(
        &self,
        conversation: String,
        user_id: String,
    ) -> Pending<Option<ParticipantState>> {
        self.read(move |c| async move { read::participant(&*c, &conversation, &user_id).await })
    }

    fn conversation_states_of(&self, user_id: String) -> Pending<Vec<ConversationState>> {
        self.read(move |c| async move {
            let ids: Vec<String> = c
                .query("SELECT conversation_id FROM participants WHERE user_id = $1 ORDER BY conversation_id", &[&user_id])
                .await?
                .iter()
                .map(|row| row.get(0))
                .collect();
            read::states(&*c, &ids).await
        })
    }

    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>> {
        self.read(move |c| async move { read::states(&*c, &ids).await })
    }

    fn messages_since(
        &self,
        conversation: String,
        after: u64,
        limit: u32,
    ) -> Pending<Vec<StoredMessage>> {
        self.read(
            move |c| async move { read::messages_since(&*c, &conversation, after, limit).await },
        )
    }

    fn health(&self) -> Pending<()> {
        let read = self.read(|c| async move {
            c.query_one("SELECT 1", &[]).await?;
            Ok(())
        });
        let write = self.submit(writer::Command::Ping);
        let heartbeat = self.heartbeat.clone();
        Box::pin(async move {
            read.await?;
            // A writer working through a backlog answers the ping only after it; its connection
            // answering the backlog's steps shows as well that the writer works.
            let beat = heartbeat.next();
            tokio::select! {
                answered = write => answered,
                () = beat => Ok(()),
            }
        })
    }
}

impl WorkflowStore for PgStore {
    fn create_conversation(
        &self,
        id: String,
        participants: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)> {
        let pending = self.submit(|reply| writer::Command::AddParticipants {
            id,
            wanted: participants,
            participants_max,
            now,
            create: true,
            reply,
        });
        Box::pin(async move { pending.await.map(|(view, created, _)| (view, created)) })
    }

    fn add_participant(
        &self,
        conversation: String,
        participant: ParticipantSpec,
        participants_max: usize,
        now: u64,
    ) -> Pending<bool> {
        let pending = self.submit(|reply| writer::Command::AddParticipants {
            id: conversation,
            wanted: vec![participant],
            participants_max,
            now,
            create: false,
            reply,
        });
        Box::pin(async move { pending.await.map(|(_, _, added)| added > 0) })
    }

    fn remove_participant(&self, conversation: String, user_id: String) -> Pending<bool> {
        self.submit(|reply| writer::Command::RemoveParticipant {
            conversation,
            user_id,
            reply,
        })
    }

    fn erase_conversation(&self, id: String) -> Pending<bool> {
        self.submit(|reply| writer::Command::Erase { id, reply })
    }

    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        self.read(move |c| async move { read::conversation_view(&*c, &id).await })
    }

    fn conversations_of(&self, user_id: String) -> Pending<Vec<ConversationSummary>> {
        self.read(move |c| async move { read::conversations_of(&*c, &user_id).await })
    }

    fn change_conversation(
        &self,
        id: String,
        change: ConversationChange,
        now: u64,
    ) -> Pending<ConversationView> {
        self.submit(|reply| writer::Command::Change {
            id,
            change,
            now,
            reply,
        })
    }

    fn events_since(&self, after: u64, limit: u32) -> Pending<Vec<EventRecord>> {
        self.read(move |c| async move { read::events_since(&*c, after, limit).await })
    }

    fn flag_unread(&self, after: u64, older_than: u64, now: u64) -> Pending<u64> {
        self.submit(|reply| writer::Command::FlagUnread {
            after,
            older_than,
            now,
            reply,
        })
    }

    fn conversation_ids(&self, limit: u32) -> Pending<Vec<String>> {
        self.read(move |c| async move {
            Ok(c.query(
                "SELECT id FROM conversations ORDER BY id LIMIT $1",
                &[&(limit as i64)],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
        })
    }

    fn webhooks(&self) -> Pending<Vec<Webhook>> {
        self.read(|c| async move { read::webhooks(&*c).await })
    }

    fn create_webhook(&self, url: String, secret: String, now: u64) -> Pending<Webhook> {
        self.submit(|reply| writer::Command::CreateWebhook {
            url,
            secret,
            now,
            reply,
        })
    }

    fn update_webhook(&self, webhook: Webhook) -> Pending<()> {
        self.submit(|reply| writer::Command::UpdateWebhook { webhook, reply })
    }

    fn delete_webhook(&self, id: u64) -> Pending<bool> {
        self.submit(|reply| writer::Command::DeleteWebhook { id, reply })
    }

    fn operators(&self) -> Pending<Vec<protocol::api::Operator>> {
        self.read(|c| async move { read::operators(&*c, None).await })
    }

    fn operator(&self, id: String) -> Pending<Option<protocol::api::Operator>> {
        self.read(move |c| async move { Ok(read::operators(&*c, Some(&id)).await?.pop()) })
    }

    fn put_operator(&self, operator: protocol::api::Operator) -> Pending<bool> {
        self.submit(|reply| writer::Command::PutOperator { operator, reply })
    }

    fn delete_operator(&self, id: String) -> Pending<bool> {
        self.submit(|reply| writer::Command::DeleteOperator { id, reply })
    }

    fn lease(&self, name: String, holder: String, ttl_ms: u64, now: u64) -> Pending<bool> {
        self.submit(|reply| writer::Command::Lease {
            name,
            holder,
            ttl_ms,
            now,
            reply,
        })
    }

    // Presence and counters are written on a pooled connection, outside the writer: they are
    // not part of the delivery contract, and a heartbeat must not wait behind a batch of messages.
    fn put_presence(
        &self,
        node: String,
        operators: Vec<(String, bool)>,
        expires_at: u64,
    ) -> Pending<()> {
        self.read(move |c| async move {
            let (users, available): (Vec<String>, Vec<bool>) = operators.into_iter().unzip();
            // Renew first, then withdraw the node's other operators: a reader in between sees
            // one operator too many for a moment, never one too few.
            c.execute(
                "INSERT INTO presence (node, user_id, status, expires_at)
                 SELECT $1, u, CASE WHEN a THEN 'available' ELSE 'away' END, $4
                 FROM unnest($2::text[], $3::bool[]) AS t(u, a)
                 ON CONFLICT (node, user_id) DO UPDATE
                 SET status = excluded.status, expires_at = excluded.expires_at",
                &[&node, &users, &available, &(expires_at as i64)],
            )
            .await?;
            c.execute(
                "DELETE FROM presence WHERE node = $1 AND NOT (user_id = ANY($2))",
                &[&node, &users],
            )
            .await?;
            Ok(())
        })
    }

    fn presence(&self, now: u64) -> Pending<Vec<(String, bool)>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    "SELECT user_id, bool_or(status = 'available') FROM presence
                     WHERE expires_at > $1 GROUP BY user_id ORDER BY user_id",
                    &[&(now as i64)],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn next_turn(&self, name: String) -> Pending<u64> {
        self.read(move |c| async move {
            let row = c
                .query_one(
                    "INSERT INTO counters (name, value) VALUES ($1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
                    &[&name],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn revoke_tokens(&self, user_id: String, at: u64) -> Pending<()> {
        self.submit(|reply| writer::Command::Revoke { user_id, at, reply })
    }

    fn tokens_revoked_at(&self, user_id: String) -> Pending<Option<u64>> {
        self.read(move |c| async move {
            let row = c
                .query_opt(
                    "SELECT revoked_at FROM revocations WHERE user_id = $1",
                    &[&user_id],
                )
                .await?;
            Ok(row.map(|r| r.get::<_, i64>(0) as u64))
        })
    }
}

/// Creates a fresh schema named `prefix_<random>` in the database of `url` and returns a URL
/// that uses it (via `options=-c search_path=…`), with the schema's name. For tests and chaos
/// runs that share one database without seeing each other.
pub async fn fresh_schema(url: &str, prefix: &str) -> Result<(String, String), PgOpenError> {
    let config: Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgOpenError::Url(e.to_string()))?;
    let client = connect(&config).await.map_err(PgOpenError::Connect)?;
    let schema = format!("{prefix}_{}", crate::auth::random_hex(6));
    client
        .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
        .await
        .map_err(PgOpenError::Migrate)?;
    let separator = if url.contains('?') { '&' } else { '?' };
    Ok((
        format!("{url}{separator}options=-c%20search_path%3D{schema}"),
        schema,
    ))
}

/// Drops a schema made by [`fresh_schema`], with everything in it.
pub async fn drop_schema(url: &str, schema: &str) -> Result<(), PgOpenError> {
    let config: Config = url
        .parse()
        .map_err(|e: tokio_postgres::Error| PgOpenError::Url(e.to_string()))?;
    let client = connect(&config).await.map_err(PgOpenError::Connect)?;
    client
        .batch_execute(&format!(
            "SET lock_timeout = '10s'; DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        ))
        .await
        .map_err(PgOpenError::Migrate)
}

async fn migrate(client: &mut Client) -> Result<(), tokio_postgres::Error> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = async {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS surechat_migrations (version INT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .await?;
        let applied: i64 = client.query_one("SELECT COUNT(*) FROM surechat_migrations", &[]).await?.get(0);
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
            let tx = client.transaction().await?;
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO surechat_migrations (version, applied_at) VALUES ($1, $2)",
                &[&(index as i32 + 1), &(crate::now_ms() as i64)],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(migration = index + 1, "applied postgres migration");
        }
        Ok(())
    }
    .await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    result
}
