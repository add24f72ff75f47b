//! The SQLite store, the default backend: one file under the data directory, WAL mode with
//! `synchronous=FULL` so every commit is fsync'd before it is acknowledged.
//!
//! Writes go through one writer thread that drains its queue into a single transaction (group
//! commit): under load, hundreds of sends share one fsync, while each waits for that commit before
//! its future resolves. A failure inside a batch rolls the whole batch back and answers every
//! request in it `Unavailable` (transient), so devices retry; idempotent ids make that safe.
//! Reads run on a small pool of read-only connections on the blocking thread pool; WAL lets them
//! proceed while the writer commits.

mod accounts;
mod canned;
mod checkpoint;
mod reach;
mod read;
mod search;
mod uploads;
mod write;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use protocol::api::{ConversationSummary, ConversationView, Operator, ParticipantSpec};
use protocol::frames::{ConversationState, ParticipantState};
use rusqlite::{Connection, OptionalExtension, Transaction};
use tokio::sync::oneshot;

use super::decode::Corrupt;
use super::{
    AppendRequest, Appended, CommitListener, Committed, ConversationChange, EventRecord, Listener,
    MessageStore, Pending, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage, Webhook,
    WorkflowStore,
};
use crate::metrics::WriterStats;

/// Schema migrations, applied in order at open; `PRAGMA user_version` records how many ran.
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
    include_str!("0011_search_per_batch.sql"),
    include_str!("0012_message_events_by_reference.sql"),
];

/// Read connections kept open for reuse.
const READERS_MAX: usize = 8;

/// The writer's page cache, in KiB (SQLite's default is 2 MiB). Every message inserts into the
/// unique index of message ids at a random place, so a batch dirties about one index page per
/// message: with the default cache a large batch spills dirty pages to the WAL before its commit
/// and rereads index pages from the file. The cache grows only as pages are used.
const WRITER_CACHE_KIB: i64 = 64 * 1024;

/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "surechat.db";

/// Options of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most writes in one transaction. Larger batches amortise the fsync further but delay the
    /// first ack of the batch; 1024 keeps a batch's work well under a millisecond per hundred.
    pub group_commit_max: usize,
    /// How long a write waits for the database's write lock while another connection (another
    /// process) holds it, before the whole batch fails `Unavailable`; also how long reads wait on
    /// a lock. SQLite's busy timeout.
    pub busy_timeout: std::time::Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            group_commit_max: 1024,
            busy_timeout: std::time::Duration::from_secs(5),
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    /// The writer's queue, bounded by `WRITER_QUEUE_MAX`.
    writer: mpsc::SyncSender<write::Job>,
    readers: Arc<Mutex<Vec<Connection>>>,
    listener: Arc<Listener>,
    busy_timeout: std::time::Duration,
    stats: Arc<WriterStats>,
    upload_locks: crate::store::uploads::UploadLocks,
}

/// Failure to open the database.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite refused to open or migrate the file.
    #[error("cannot open database {path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `data_dir`, applies migrations and starts the
    /// writer thread.
    pub fn open(data_dir: &Path, options: SqliteOptions) -> Result<Self, OpenError> {
        crate::config::create_private_dir(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        create_private_file(&path).map_err(|source| OpenError::DataDir {
            path: path.clone(),
            source,
        })?;
        let sqlite_err = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let busy_timeout = options.busy_timeout;
        let mut conn = open_connection(&path, false, busy_timeout).map_err(sqlite_err)?;
        migrate(&mut conn).map_err(sqlite_err)?;
        let checkpointer =
            checkpoint::Checkpointer::start(&path, busy_timeout).map_err(sqlite_err)?;
        let (writer, queue) = mpsc::sync_channel(protocol::limits::WRITER_QUEUE_MAX);
        let listener = Arc::new(Listener::default());
        let thread_listener = listener.clone();
        let batch_max = options.group_commit_max.max(1);
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("surechat-sqlite-writer".into())
            .spawn(move || {
                write::run(
                    conn,
                    queue,
                    batch_max,
                    &thread_listener,
                    &thread_stats,
                    &checkpointer,
                )
            })
            .expect("spawning the writer thread");
        Ok(SqliteStore {
            path,
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
            listener,
            busy_timeout,
            stats,
            upload_locks: Default::default(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `work` in the writer's next batch; the answer comes after that batch commits.
    fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
            + Send
            + 'static,
    ) -> Pending<T> {
        submit_to(&self.writer, &self.stats, work)
    }

    /// Like [`Self::submit`], for work that may run again (see [`write::Job::Again`]).
    fn submit_again<T: Send + 'static>(
        &self,
        work: impl FnMut(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
            + Send
            + 'static,
    ) -> Pending<T> {
        let (reply, answer) = oneshot::channel();
        enqueue(
            &self.writer,
            &self.stats,
            write::job_again(work, reply),
            answer,
        )
    }

    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Pending<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let busy_timeout = self.busy_timeout;
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => open_connection(&path, true, busy_timeout)?,
                };
                let result = query(&conn);
                let mut pool = readers.lock().unwrap_or_else(|p| p.into_inner());
                if pool.len() < READERS_MAX {
                    pool.push(conn);
                }
                result
            })
            .await;
            match joined {
                Ok(result) => result.map_err(unavailable),
                Err(err) => Err(StoreError::Unavailable(format!("read task failed: {err}"))),
            }
        })
    }
}

/// [`SqliteStore::submit`] on a writer's queue held apart from the store, for a write decided
/// only after an await (see `accounts.rs`).
fn submit_to<T: Send + 'static>(
    writer: &mpsc::SyncSender<write::Job>,
    stats: &WriterStats,
    work: impl FnOnce(&Transaction<'_>, &mut Vec<Committed>) -> rusqlite::Result<Result<T, StoreError>>
        + Send
        + 'static,
) -> Pending<T> {
    let (reply, answer) = oneshot::channel();
    enqueue(writer, stats, write::job(work, reply), answer)
}

/// Queues `job` for the writer; answers what it replies on `answer`.
fn enqueue<T: Send + 'static>(
    writer: &mpsc::SyncSender<write::Job>,
    stats: &WriterStats,
    job: write::Job,
    answer: oneshot::Receiver<Result<T, StoreError>>,
) -> Pending<T> {
    // Never blocks the caller (an async task): a full queue refuses at once. Counted before
    // sending so that the writer's decrement never comes first.
    stats.queue_depth.fetch_add(1, Ordering::Relaxed);
    let sent = writer.try_send(job);
    if sent.is_err() {
        stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
    }
    Box::pin(async move {
        match sent {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                return Err(StoreError::Unavailable("the writer's queue is full".into()))
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(StoreError::Unavailable("the writer has stopped".into()))
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".into())))
    })
}

/// The store error for a failure, logged here once.
fn unavailable(err: rusqlite::Error) -> StoreError {
    let store_error = store_error(&err);
    tracing::error!(error = %store_error, "sqlite error");
    store_error
}

/// The store error for a failure: a value that cannot be interpreted (see `read::corrupt`)
/// says so; anything else is SQLite failing.
fn store_error(err: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = err {
        if let Some(corrupt) = inner.downcast_ref::<Corrupt>() {
            return corrupt.clone().into();
        }
    }
    StoreError::Unavailable(err.to_string())
}

/// Creates the database file empty with mode 0600 before SQLite opens it, so it is never readable
/// by others, not even for a moment; SQLite gives its `-wal` and `-shm` files the database file's
/// mode. A file made before this rule is tightened to 0600.
fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    if let Err(err) = std::fs::set_permissions(
                        path,
                        std::fs::Permissions::from_mode(mode & 0o700),
                    ) {
                        tracing::warn!(%err, path = %path.display(), "cannot make the database private (mode 0600)");
                    }
                }
            }
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Turns off SQLite's count of allocated memory, which takes a process-wide mutex on every
/// allocation and free (a tenth of the writer's time went to mutexes; nothing reads the count).
/// Only possible before SQLite's first use in the process: later, SQLite refuses and the count
/// stays on, which changes nothing else.
fn configure_sqlite() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SQLITE_CONFIG_MEMSTATUS takes one int, and only sets a flag that each
        // allocation reads to decide whether to count itself: a thread racing this call (a
        // client store opened at the same time, in tests) could at worst count an allocation
        // whose free is not counted, a statistic nothing reads. After initialisation the call
        // changes nothing and returns SQLITE_MISUSE.
        let code = unsafe {
            rusqlite::ffi::sqlite3_config(
                rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS,
                0 as std::os::raw::c_int,
            )
        };
        if code != rusqlite::ffi::SQLITE_OK {
            tracing::debug!(code, "SQLite was already in use: its memory count stays on");
        }
    });
}

fn open_connection(
    path: &Path,
    read_only: bool,
    busy_timeout: std::time::Duration,
) -> rusqlite::Result<Connection> {
    configure_sqlite();
    let conn = Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode the WAL is fsync'd at every commit, which is what makes an ack durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if read_only {
        conn.pragma_update(None, "query_only", "ON")?;
    } else {
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Requests run in savepoints (`write::Job`), which keep the pages they change in a
        // journal of their own until released: in memory, not a temporary file written page by
        // page. Only a rollback to a savepoint reads it; durability is the WAL's.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
    }
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
        tracing::info!(migration = index + 1, "applied sqlite migration");
    }
    Ok(())
}

impl MessageStore for SqliteStore {
    fn writer_stats(&self) -> Option<&WriterStats> {
        Some(&self.stats)
    }

    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.listener.attach(listener);
    }

    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        self.submit_again(move |tx, changes| write::append(tx, &request, changes))
    }

    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome> {
        self.submit_again(move |tx, changes| write::receipt(tx, &request, changes))
    }

    fn participant(
        &self,
        conversation: String,
        user_id: String,
    ) -> Pending<Option<ParticipantState>> {
        self.read(move |conn| read::participant(conn, &conversation, &user_id))
    }

    fn conversation_states_of(&self, user_id: String) -> Pending<Vec<ConversationState>> {
        self.read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT conversation_id FROM participants WHERE user_id = ?1 ORDER BY conversation_id")?
                .query_map([&user_id], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            read::states(conn, &ids)
        })
    }

    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>> {
        self.read(move |conn| read::states(conn, &ids))
    }

    fn messages_since(
        &self,
        conversation: String,
        after: u64,
        limit: u32,
    ) -> Pending<Vec<StoredMessage>> {
        self.read(move |conn| read::messages_since(conn, &conversation, after, limit))
    }

    fn health(&self) -> Pending<()> {
        // Both paths: a read, and a round trip through the writer thread.
        let read = self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())));
        let write = self.submit(|_, _| Ok(Ok(())));
        Box::pin(async move {
            read.await?;
            write.await
        })
    }
}

impl WorkflowStore for SqliteStore {
    fn create_conversation(
        &self,
        id: String,
        participants: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)> {
        let pending = self.submit(move |tx, changes| {
            write::add_participants(tx, &id, &participants, participants_max, now, true, changes)
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
        let pending = self.submit(move |tx, changes| {
            write::add_participants(
                tx,
                &conversation,
                &[participant],
                participants_max,
                now,
                false,
                changes,
            )
        });
        Box::pin(async move { pending.await.map(|(_, _, added)| added > 0) })
    }

    fn remove_participant(&self, conversation: String, user_id: String) -> Pending<bool> {
        self.submit(move |tx, changes| {
            write::remove_participant(tx, conversation, user_id, changes)
        })
    }

    fn erase_conversation(&self, id: String) -> Pending<bool> {
        let erased = self.submit(move |tx, changes| write::erase_conversation(tx, &id, changes));
        let dir = self.uploads_dir();
        Box::pin(async move {
            let Some(files) = erased.await? else {
                return Ok(false);
            };
            tokio::task::spawn_blocking(move || uploads::remove_files(&dir, &files))
                .await
                .map_err(|err| StoreError::Unavailable(format!("file task failed: {err}")))?;
            Ok(true)
        })
    }

    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        self.read(move |conn| read::conversation_view(conn, &id))
    }

    fn conversations_of(&self, user_id: String) -> Pending<Vec<ConversationSummary>> {
        self.read(move |conn| read::conversations_of(conn, &user_id))
    }

    fn change_conversation(
        &self,
        id: String,
        change: ConversationChange,
        now: u64,
    ) -> Pending<ConversationView> {
        self.submit(move |tx, changes| write::change_conversation(tx, &id, &change, now, changes))
    }

    fn events_since(&self, after: u64, limit: u32) -> Pending<Vec<EventRecord>> {
        self.read(move |conn| read::events_since(conn, after, limit))
    }

    fn flag_unread(&self, after: u64, older_than: u64, now: u64) -> Pending<u64> {
        self.submit(move |tx, _| write::flag_unread(tx, after, older_than, now))
    }

    fn conversation_ids(&self, limit: u32) -> Pending<Vec<String>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT id FROM conversations ORDER BY id LIMIT ?1")?
                .query_map([limit], |row| row.get(0))?
                .collect()
        })
    }

    fn webhooks(&self) -> Pending<Vec<Webhook>> {
        self.read(read::webhooks)
    }

    fn create_webhook(&self, url: String, secret: String, now: u64) -> Pending<Webhook> {
        self.submit(move |tx, _| write::create_webhook(tx, &url, &secret, now))
    }

    fn update_webhook(&self, webhook: Webhook) -> Pending<()> {
        self.submit(move |tx, _| write::update_webhook(tx, &webhook))
    }

    fn delete_webhook(&self, id: u64) -> Pending<bool> {
        self.submit(move |tx, _| {
            Ok(Ok(tx
                .execute("DELETE FROM webhooks WHERE id = ?1", [id])?
                > 0))
        })
    }

    fn operators(&self) -> Pending<Vec<Operator>> {
        self.read(|conn| read::operators(conn, None))
    }

    fn operator(&self, id: String) -> Pending<Option<Operator>> {
        self.read(move |conn| Ok(read::operators(conn, Some(&id))?.pop()))
    }

    fn put_operator(&self, operator: Operator) -> Pending<bool> {
        self.submit(move |tx, _| {
            let created = read::operators(tx, Some(&operator.id))?.is_empty();
            tx.prepare_cached(
                "INSERT INTO operators (id, name, avatar_url, active) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET name = ?2, avatar_url = ?3, active = ?4",
            )?
            .execute(rusqlite::params![
                operator.id,
                operator.name,
                operator.avatar_url,
                operator.active
            ])?;
            Ok(Ok(created))
        })
    }

    fn delete_operator(&self, id: String) -> Pending<bool> {
        self.submit(move |tx, _| {
            Ok(Ok(tx
                .execute("DELETE FROM operators WHERE id = ?1", [id])?
                > 0))
        })
    }

    fn lease(&self, name: String, holder: String, ttl_ms: u64, now: u64) -> Pending<bool> {
        self.submit(move |tx, _| write::lease(tx, &name, &holder, ttl_ms, now))
    }

    fn put_presence(
        &self,
        node: String,
        operators: Vec<(String, bool)>,
        expires_at: u64,
    ) -> Pending<()> {
        self.submit(move |tx, _| {
            tx.prepare_cached("DELETE FROM presence WHERE node = ?1")?
                .execute([&node])?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO presence (node, user_id, status, expires_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (user, available) in operators {
                let status = if available { "available" } else { "away" };
                insert.execute(rusqlite::params![node, user, status, expires_at as i64])?;
            }
            Ok(Ok(()))
        })
    }

    fn presence(&self, now: u64) -> Pending<Vec<(String, bool)>> {
        self.read(move |conn| {
            let mut query = conn.prepare_cached(
                "SELECT user_id, MAX(status = 'available') FROM presence
                 WHERE expires_at > ?1 GROUP BY user_id ORDER BY user_id",
            )?;
            let rows = query.query_map([now as i64], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?))
            })?;
            rows.collect()
        })
    }

    fn next_turn(&self, name: String) -> Pending<u64> {
        self.submit(move |tx, _| {
            let value: i64 = tx
                .prepare_cached(
                    "INSERT INTO counters (name, value) VALUES (?1, 1)
                     ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value",
                )?
                .query_row([name], |row| row.get(0))?;
            Ok(Ok(value as u64))
        })
    }

    fn revoke_tokens(&self, user_id: String, at: u64) -> Pending<()> {
        self.submit(move |tx, changes| {
            tx.prepare_cached(
                "INSERT INTO revocations (user_id, revoked_at) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET revoked_at = max(revoked_at, excluded.revoked_at)",
            )?
            .execute(rusqlite::params![user_id, at])?;
            changes.push(Committed::Revoked { user_id });
            Ok(Ok(()))
        })
    }

    fn tokens_revoked_at(&self, user_id: String) -> Pending<Option<u64>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT revoked_at FROM revocations WHERE user_id = ?1")?
                .query_row([user_id], |row| row.get(0))
                .optional()
        })
    }
}
