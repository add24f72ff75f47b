//! The SQLite store, the default backend: one file under the data directory, WAL mode with
//! `synchronous=FULL` so every commit is fsync'd before it is acknowledged.
//!
//! Writes go through one writer thread that drains its queue into a single transaction (group
//! commit): under load, hundreds of sends share one fsync, while each waits for that commit before
//! its future resolves. A failure inside a batch rolls the whole batch back and answers every
//! request in it `Unavailable` (transient), so devices retry; idempotent ids make that safe.
//! Reads run on a small pool of read-only connections on the blocking thread pool; WAL lets them
//! proceed while the writer commits.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{ConversationState, ParticipantState};
use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, CommitListener, Committed,
    Listener, Pending, ReceiptOutcome, ReceiptRequest, Store, StoreError, StoredMessage,
};

/// Schema migrations, applied in order at open; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[include_str!("sqlite/0001_init.sql")];

/// Read connections kept open for reuse.
const READERS_MAX: usize = 8;

/// The database file name inside the data directory.
pub const DATABASE_FILE: &str = "surechat.db";

/// Options of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most writes in one transaction. Larger batches amortise the fsync further but delay the
    /// first ack of the batch; 1024 keeps a batch's work well under a millisecond per hundred.
    pub group_commit_max: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            group_commit_max: 1024,
        }
    }
}

/// The SQLite store.
pub struct SqliteStore {
    path: PathBuf,
    writer: mpsc::Sender<Command>,
    readers: Arc<Mutex<Vec<Connection>>>,
    listener: Arc<Listener>,
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
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let sqlite_err = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = open_connection(&path, false).map_err(sqlite_err)?;
        migrate(&mut conn).map_err(sqlite_err)?;
        let (writer, queue) = mpsc::channel();
        let listener = Arc::new(Listener::default());
        let thread_listener = listener.clone();
        let batch_max = options.group_commit_max.max(1);
        std::thread::Builder::new()
            .name("surechat-sqlite-writer".into())
            .spawn(move || write_loop(conn, queue, batch_max, &thread_listener))
            .expect("spawning the writer thread");
        Ok(SqliteStore {
            path,
            writer,
            readers: Arc::new(Mutex::new(Vec::new())),
            listener,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn submit<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Pending<T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.writer.send(make(reply));
        Box::pin(async move {
            if sent.is_err() {
                return Err(StoreError::Unavailable("the writer has stopped".into()));
            }
            answer
                .await
                .unwrap_or_else(|_| Err(StoreError::Unavailable("the writer has stopped".into())))
        })
    }

    fn read<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Pending<T> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        Box::pin(async move {
            let joined = tokio::task::spawn_blocking(move || {
                let pooled = readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let conn = match pooled {
                    Some(conn) => conn,
                    None => open_connection(&path, true)?,
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

fn unavailable(err: rusqlite::Error) -> StoreError {
    tracing::error!(error = %err, "sqlite error");
    StoreError::Unavailable(err.to_string())
}

fn open_connection(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: in WAL mode the WAL is fsync'd at every commit, which is what makes an ack durable.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if read_only {
        conn.pragma_update(None, "query_only", "ON")?;
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

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Work for the writer thread.
enum Command {
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
    /// Answers once the writer has committed a batch: proves the write path is alive.
    Ping(Reply<()>),
}

/// A command's result, held until the batch commits.
enum Done {
    Append(Result<Appended, StoreError>, Reply<Appended>),
    Receipt(Result<ReceiptOutcome, StoreError>, Reply<ReceiptOutcome>),
    Add(
        Result<(ConversationView, bool, usize), StoreError>,
        Reply<(ConversationView, bool, usize)>,
    ),
    Remove(Result<bool, StoreError>, Reply<bool>),
    Ping(Reply<()>),
}

impl Done {
    fn send(self, failure: Option<&StoreError>) {
        fn pick<T>(
            result: Result<T, StoreError>,
            failure: Option<&StoreError>,
        ) -> Result<T, StoreError> {
            match failure {
                Some(err) => Err(err.clone()),
                None => result,
            }
        }
        // A requester that went away (connection closed) no longer needs the answer.
        match self {
            Done::Append(r, reply) => drop(reply.send(pick(r, failure))),
            Done::Receipt(r, reply) => drop(reply.send(pick(r, failure))),
            Done::Add(r, reply) => drop(reply.send(pick(r, failure))),
            Done::Remove(r, reply) => drop(reply.send(pick(r, failure))),
            Done::Ping(reply) => drop(reply.send(pick(Ok(()), failure))),
        }
    }
}

fn write_loop(
    mut conn: Connection,
    queue: mpsc::Receiver<Command>,
    batch_max: usize,
    listener: &Listener,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < batch_max {
            match queue.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        write_batch(&mut conn, batch, listener);
    }
    tracing::debug!("sqlite writer stopped: every queued write is committed");
}

fn write_batch(conn: &mut Connection, batch: Vec<Command>, listener: &Listener) {
    let mut done = Vec::with_capacity(batch.len());
    let mut changes = Vec::new();
    let outcome = (|| -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for command in batch {
            done.push(apply(&tx, command, &mut changes)?);
        }
        tx.commit()
    })();
    match outcome {
        Ok(()) => {
            for change in changes {
                listener.notify(change);
            }
            for d in done {
                d.send(None);
            }
        }
        Err(err) => {
            // The transaction rolled back (dropped): nothing of this batch is stored.
            let failure = unavailable(err);
            for d in done {
                d.send(Some(&failure));
            }
            // Commands after the failing one were dropped with their reply senders: their
            // requesters see the writer's "stopped" error, also transient.
        }
    }
}

/// Applies one command inside the batch's transaction. Logical rejections are returned inside
/// `Done` (they write nothing); SQLite errors abort the batch.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    command: Command,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Done> {
    Ok(match command {
        Command::Append(request, reply) => Done::Append(append(tx, request, changes)?, reply),
        Command::Receipt(request, reply) => Done::Receipt(receipt(tx, request, changes)?, reply),
        Command::Ping(reply) => Done::Ping(reply),
        Command::AddParticipants {
            id,
            wanted,
            participants_max,
            now,
            create,
            reply,
        } => Done::Add(
            add_participants(tx, &id, &wanted, participants_max, now, create, changes)?,
            reply,
        ),
        Command::RemoveParticipant {
            conversation,
            user_id,
            reply,
        } => {
            let removed = tx
                .prepare_cached(
                    "DELETE FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
                )?
                .execute(params![conversation, user_id])?
                > 0;
            let exists = conversation_exists(tx, &conversation)?;
            if removed {
                changes.push(Committed::Left {
                    conversation,
                    user_id,
                });
            }
            Done::Remove(
                if exists {
                    Ok(removed)
                } else {
                    Err(StoreError::NotFound)
                },
                reply,
            )
        }
    })
}

fn append(
    tx: &rusqlite::Transaction<'_>,
    request: AppendRequest,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<Appended, StoreError>> {
    if let Some(existing) = tx
        .prepare_cached(
            "SELECT conversation_id, id, seq, sender_id, sender_role, body, created_at
             FROM messages WHERE id = ?1",
        )?
        .query_row(params![request.id], message_from_row)
        .optional()?
    {
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
        let stored = tx
            .prepare_cached("SELECT 1 FROM messages WHERE id = ?1")?
            .query_row(params![after], |_| Ok(()))
            .optional()?;
        if stored.is_none() {
            return Ok(Err(StoreError::OutOfOrder));
        }
    }
    let role: Option<String> = tx
        .prepare_cached(
            "SELECT role FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .query_row(params![request.conversation, request.sender], |row| {
            row.get(0)
        })
        .optional()?;
    let Some(role) = role.as_deref().and_then(Role::parse) else {
        return Ok(Err(StoreError::NotFound));
    };
    let seq: u64 = tx
        .prepare_cached(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )?
        .query_row(params![request.conversation], |row| row.get(0))?;
    tx.prepare_cached(
        "INSERT INTO messages (conversation_id, seq, id, sender_id, sender_role, body, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        request.conversation,
        seq,
        request.id,
        request.sender,
        role.as_str(),
        request.body,
        request.ts
    ])?;
    let message = Arc::new(StoredMessage {
        conversation: request.conversation,
        id: request.id,
        seq,
        sender: request.sender,
        role,
        body: request.body,
        ts: request.ts,
    });
    changes.push(Committed::Message(message.clone()));
    Ok(Ok(Appended {
        message,
        created: true,
    }))
}

fn receipt(
    tx: &rusqlite::Transaction<'_>,
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
                row.get::<_, String>(0)?,
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
        role: Role::parse(&role).unwrap_or(Role::Client),
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
        tx.prepare_cached(
            "UPDATE participants SET delivered_seq = ?3, read_seq = ?4
             WHERE conversation_id = ?1 AND user_id = ?2",
        )?
        .execute(params![
            request.conversation,
            request.user_id,
            new_delivered,
            new_read
        ])?;
        changes.push(Committed::Receipt {
            conversation: request.conversation,
            state: state.clone(),
        });
    }
    Ok(Ok(ReceiptOutcome { state, changed }))
}

fn add_participants(
    tx: &rusqlite::Transaction<'_>,
    id: &str,
    wanted: &[ParticipantSpec],
    participants_max: usize,
    now: u64,
    create: bool,
    changes: &mut Vec<Committed>,
) -> rusqlite::Result<Result<(ConversationView, bool, usize), StoreError>> {
    let created = !conversation_exists(tx, id)?;
    if created && !create {
        return Ok(Err(StoreError::NotFound));
    }
    let existing = if created {
        Vec::new()
    } else {
        participants(tx, id)?
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
        tx.prepare_cached(
            "INSERT INTO participants (conversation_id, user_id, role, delivered_seq, read_seq, joined_at)
             VALUES (?1, ?2, ?3, 0, 0, ?4)",
        )?
        .execute(params![id, spec.user_id, spec.role.as_str(), now])?;
        changes.push(Committed::Joined {
            conversation: id.to_owned(),
            user_id: spec.user_id.clone(),
        });
    }
    let view = conversation_view(tx, id)?.expect("the conversation exists in this transaction");
    Ok(Ok((view, created, new.len())))
}

fn conversation_exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.prepare_cached("SELECT 1 FROM conversations WHERE id = ?1")?
        .query_row(params![id], |_| Ok(()))
        .optional()
        .map(|found| found.is_some())
}

fn participants(conn: &Connection, conversation: &str) -> rusqlite::Result<Vec<ParticipantState>> {
    conn.prepare_cached(
        "SELECT user_id, role, delivered_seq, read_seq FROM participants
         WHERE conversation_id = ?1 ORDER BY joined_at, user_id",
    )?
    .query_map(params![conversation], participant_from_row)?
    .collect()
}

fn participant_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ParticipantState> {
    Ok(ParticipantState {
        user_id: row.get(0)?,
        role: role_from(row, 1)?,
        delivered: row.get(2)?,
        read: row.get(3)?,
    })
}

fn role_from(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(index)?;
    Role::parse(&text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Text,
            format!("unknown role {text}").into(),
        )
    })
}

fn message_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredMessage> {
    Ok(StoredMessage {
        conversation: row.get(0)?,
        id: row.get(1)?,
        seq: row.get(2)?,
        sender: row.get(3)?,
        role: role_from(row, 4)?,
        body: row.get(5)?,
        ts: row.get(6)?,
    })
}

fn conversation_view(conn: &Connection, id: &str) -> rusqlite::Result<Option<ConversationView>> {
    let head = conn
        .prepare_cached("SELECT epoch, last_seq, created_at FROM conversations WHERE id = ?1")?
        .query_row(params![id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((epoch, last_seq, created_at)) = head else {
        return Ok(None);
    };
    Ok(Some(ConversationView {
        id: id.to_owned(),
        epoch,
        last_seq,
        created_at,
        participants: participants(conn, id)?,
    }))
}

const MESSAGE_COLUMNS: &str = "conversation_id, id, seq, sender_id, sender_role, body, created_at";

impl Store for SqliteStore {
    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.listener.attach(listener);
    }

    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        self.submit(|reply| Command::Append(request, reply))
    }

    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome> {
        self.submit(|reply| Command::Receipt(request, reply))
    }

    fn create_conversation(
        &self,
        id: String,
        participants: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)> {
        let pending = self.submit(|reply| Command::AddParticipants {
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
        let pending = self.submit(|reply| Command::AddParticipants {
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
        self.submit(|reply| Command::RemoveParticipant {
            conversation,
            user_id,
            reply,
        })
    }

    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        self.read(move |conn| conversation_view(conn, &id))
    }

    fn participant(
        &self,
        conversation: String,
        user_id: String,
    ) -> Pending<Option<ParticipantState>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT user_id, role, delivered_seq, read_seq FROM participants
                 WHERE conversation_id = ?1 AND user_id = ?2",
            )?
            .query_row(params![conversation, user_id], participant_from_row)
            .optional()
        })
    }

    fn conversations_of(&self, user_id: String) -> Pending<Vec<ConversationSummary>> {
        self.read(move |conn| {
            let rows: Vec<(String, u64, u64, Role, u64, u64)> = conn
                .prepare_cached(
                    "SELECT c.id, c.epoch, c.last_seq, p.role, p.delivered_seq, p.read_seq
                     FROM participants p JOIN conversations c ON c.id = p.conversation_id
                     WHERE p.user_id = ?1",
                )?
                .query_map(params![user_id], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, role_from(row, 3)?, row.get(4)?, row.get(5)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut summaries = Vec::with_capacity(rows.len());
            for (id, epoch, last_seq, role, delivered, read) in rows {
                let unread: u64 = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM messages
                         WHERE conversation_id = ?1 AND seq > ?2 AND sender_id <> ?3",
                    )?
                    .query_row(params![id, read, user_id], |row| row.get(0))?;
                let last_message = conn
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq = ?2"
                    ))?
                    .query_row(params![id, last_seq], message_from_row)
                    .optional()?;
                summaries.push(ConversationSummary { id, epoch, last_seq, role, delivered, read, unread, last_message });
            }
            super::memory::sort_summaries(&mut summaries);
            Ok(summaries)
        })
    }

    fn conversation_states_of(&self, user_id: String) -> Pending<Vec<ConversationState>> {
        self.read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached("SELECT conversation_id FROM participants WHERE user_id = ?1 ORDER BY conversation_id")?
                .query_map(params![user_id], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            let mut states = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(view) = conversation_view(conn, &id)? {
                    states.push(super::state_of(&view));
                }
            }
            Ok(states)
        })
    }

    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>> {
        self.read(move |conn| {
            let mut states = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(view) = conversation_view(conn, &id)? {
                    states.push(super::state_of(&view));
                }
            }
            Ok(states)
        })
    }

    fn messages_since(
        &self,
        conversation: String,
        after: u64,
        limit: u32,
    ) -> Pending<Vec<StoredMessage>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages
                 WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
            ))?
            .query_map(params![conversation, after, limit], message_from_row)?
            .collect()
        })
    }

    fn health(&self) -> Pending<()> {
        // Both paths: a read, and a round trip through the writer thread.
        let read = self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())));
        let write = self.submit(Command::Ping);
        Box::pin(async move {
            read.await?;
            write.await
        })
    }
}
