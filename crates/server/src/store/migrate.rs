//! Moving a single SQLite node to PostgreSQL: copies conversations (with their epochs),
//! participants (with their receipt cursors) and messages (with their `seq`s) in one PostgreSQL
//! transaction, so devices resume on the new storage from the cursors they hold; business events,
//! webhooks, the operator directory and saved replies come along, and so do uploads: their files
//! under `<data>/uploads/` become chunk rows. Search needs no copy: PostgreSQL indexes the copied
//! messages as they are inserted.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use tokio_postgres::types::ToSql;

use super::postgres::{PgOpenError, PgOptions, PgStore};

/// Rows copied per statement.
const CHUNK_ROWS: usize = 500;

/// What was copied.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MigrateReport {
    /// Conversations copied.
    pub conversations: u64,
    /// Participants copied.
    pub participants: u64,
    /// Messages copied.
    pub messages: u64,
    /// Business events copied.
    pub events: u64,
    /// Uploads copied (with their bytes).
    pub uploads: u64,
}

/// Why a migration failed; nothing is committed on PostgreSQL when it fails.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The SQLite file could not be read.
    #[error("cannot read {path}: {source}")]
    Sqlite {
        /// The file.
        path: String,
        /// Why.
        source: rusqlite::Error,
    },
    /// PostgreSQL could not be reached or migrated.
    #[error(transparent)]
    Open(#[from] PgOpenError),
    /// A statement failed (e.g. a conversation id already exists on PostgreSQL).
    #[error("copying to PostgreSQL failed, nothing was committed: {0}")]
    Copy(#[from] tokio_postgres::Error),
    /// The copy does not match the source.
    #[error("verification failed: {0}")]
    Verify(String),
}

type Row = Vec<Box<dyn ToSql + Sync + Send>>;

/// How a column is carried over: `i` integer, `s` text, `n` nullable text, `b` boolean (an
/// integer 0/1 in SQLite), `x` nullable integer, `w` nullable 32-bit integer, `B` nullable bytes.
fn read_rows(conn: &Connection, sql: &str, types: &str) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare(sql)?;
    let rows = statement.query_map([], |row| {
        let mut out: Row = Vec::with_capacity(types.len());
        for (i, kind) in types.chars().enumerate() {
            match kind {
                'i' => out.push(Box::new(row.get::<_, i64>(i)?)),
                's' => out.push(Box::new(row.get::<_, String>(i)?)),
                'n' => out.push(Box::new(row.get::<_, Option<String>>(i)?)),
                'b' => out.push(Box::new(row.get::<_, i64>(i)? != 0)),
                'x' => out.push(Box::new(row.get::<_, Option<i64>>(i)?)),
                'w' => out.push(Box::new(row.get::<_, Option<i32>>(i)?)),
                'B' => out.push(Box::new(row.get::<_, Option<Vec<u8>>>(i)?)),
                other => unreachable!("unknown column kind {other}"),
            }
        }
        Ok(out)
    })?;
    rows.collect()
}

/// Copies everything from the SQLite database at `sqlite` (a file, or a data directory holding
/// `surechat.db`) to the PostgreSQL database at `url`, then checks the counts and last `seq`s.
pub async fn sqlite_to_postgres(sqlite: &Path, url: &str) -> Result<MigrateReport, MigrateError> {
    let file = if sqlite.is_dir() {
        sqlite.join(super::sqlite::DATABASE_FILE)
    } else {
        sqlite.to_owned()
    };
    let err = |source| MigrateError::Sqlite {
        path: file.display().to_string(),
        source,
    };
    if !file.exists() {
        return Err(err(rusqlite::Error::InvalidPath(file.clone())));
    }
    // Opened read-write (never written) so a WAL left by the stopped node is read correctly.
    let source =
        Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(err)?;
    let conversations = read_rows(
        &source,
        "SELECT id, epoch, last_seq, created_at, status, assignee, metadata, closed FROM conversations ORDER BY id",
        "siiisnnb",
    )
    .map_err(err)?;
    let participants = read_rows(
        &source,
        "SELECT conversation_id, user_id, role, delivered_seq, read_seq, joined_at FROM participants ORDER BY conversation_id, user_id",
        "sssiii",
    )
    .map_err(err)?;
    // Uploads, in a database written since they exist.
    let has_uploads: bool = source
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'uploads'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    let messages = if has_uploads {
        read_rows(
            &source,
            "SELECT conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data, unread_flagged, attachments
             FROM messages ORDER BY conversation_id, seq",
            "sissssisnbn",
        )
    } else {
        read_rows(
            &source,
            "SELECT conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data, unread_flagged, NULL
             FROM messages ORDER BY conversation_id, seq",
            "sissssisnbn",
        )
    }
    .map_err(err)?;
    let (uploads, named, files) = if has_uploads {
        let uploads = read_rows(
            &source,
            "SELECT id, uploader, conversation_id, name, declared_type, length, \"offset\", state, content_type, size, sha256,
                    width, height, thumb, created_at,
                    EXISTS (SELECT 1 FROM message_attachments m WHERE m.upload_id = u.id)
             FROM uploads u ORDER BY id",
            "ssssniisnxnwwBib",
        )
        .map_err(err)?;
        let named = read_rows(
            &source,
            "SELECT upload_id, message_id, kind, conversation_id FROM message_attachments ORDER BY upload_id, message_id",
            "ssss",
        )
        .map_err(err)?;
        let mut statement = source
            .prepare(
                "SELECT id, file, \"offset\" FROM uploads WHERE state <> 'refused' ORDER BY id",
            )
            .map_err(err)?;
        let files = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            })
            .map_err(err)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(err)?;
        (uploads, named, files)
    } else {
        (Vec::new(), Vec::new(), Vec::new())
    };
    // Events written since `message.created` names its message (`0012_…`) carry `message_seq`;
    // PostgreSQL keeps them the same way.
    let by_reference: bool = source
        .query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('events') WHERE name = 'message_seq'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    let events = read_rows(
        &source,
        &format!(
            "SELECT id, type, conversation_id, data, created_at, {} FROM events ORDER BY id",
            if by_reference { "message_seq" } else { "NULL" }
        ),
        "isssix",
    )
    .map_err(err)?;
    let webhooks = read_rows(
        &source,
        "SELECT id, url, secret, state, delivered_up_to, failing_since, failures, last_error, created_at FROM webhooks ORDER BY id",
        "isssiiini",
    )
    .map_err(err)?;
    // A database written before the operator directory existed has no such table.
    let has_operators: bool = source
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'operators'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    let operators = if has_operators {
        read_rows(
            &source,
            "SELECT id, name, avatar_url, active FROM operators ORDER BY id",
            "ssnb",
        )
        .map_err(err)?
    } else {
        Vec::new()
    };
    // Saved replies, in a database written since they exist.
    let has_canned: bool = source
        .query_row(
            "SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'canned_replies'",
            [],
            |row| row.get(0),
        )
        .map_err(err)?;
    let canned = if has_canned {
        read_rows(
            &source,
            "SELECT id, shortcut, title, body, created_by, created_at, updated_at FROM canned_replies ORDER BY id",
            "sssssii",
        )
        .map_err(err)?
    } else {
        Vec::new()
    };
    // Connecting the store applies the schema migrations.
    let store = PgStore::connect(url, PgOptions::default()).await?;
    let mut client = super::postgres::connect(store.config())
        .await
        .map_err(PgOpenError::Connect)?;
    let tx = client.transaction().await?;
    copy(
        &tx,
        "conversations (id, epoch, last_seq, created_at, status, assignee, metadata, closed)",
        8,
        &conversations,
    )
    .await?;
    copy(
        &tx,
        "participants (conversation_id, user_id, role, delivered_seq, read_seq, joined_at)",
        6,
        &participants,
    )
    .await?;
    copy(
        &tx,
        "messages (conversation_id, seq, id, sender_id, sender_role, body, created_at, kind, data, unread_flagged, attachments)",
        11,
        &messages,
    )
    .await?;
    copy(
        &tx,
        "uploads (id, uploader, conversation_id, name, declared_type, length, \"offset\", state, content_type, size, sha256, width, height, thumb, created_at, named)",
        16,
        &uploads,
    )
    .await?;
    copy(
        &tx,
        "message_attachments (upload_id, message_id, kind, conversation_id)",
        4,
        &named,
    )
    .await?;
    let uploads_dir = file.parent().map_or_else(
        || Path::new("uploads").to_owned(),
        |dir| dir.join("uploads"),
    );
    for (id, name, offset) in &files {
        let mut bytes = match std::fs::read(uploads_dir.join(name)) {
            Ok(bytes) => bytes,
            Err(source) if source.kind() == std::io::ErrorKind::NotFound && *offset == 0 => {
                Vec::new()
            }
            Err(source) => {
                return Err(MigrateError::Verify(format!(
                    "upload {id}: cannot read its file {name}: {source}"
                )))
            }
        };
        // A receiving upload's file may hold bytes past its durable offset (a crash mid-chunk).
        let status: String = source
            .query_row("SELECT state FROM uploads WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .map_err(err)?;
        if status == "receiving" {
            bytes.truncate(*offset as usize);
        }
        for (index, piece) in bytes.chunks(1024 * 1024).enumerate() {
            tx.execute(
                "INSERT INTO upload_chunks (upload_id, version, start, data) VALUES ($1, 0, $2, $3)",
                &[id, &((index * 1024 * 1024) as i64), &piece],
            )
            .await?;
        }
    }
    copy(
        &tx,
        "events (id, type, conversation_id, data, created_at, message_seq)",
        6,
        &events,
    )
    .await?;
    copy(
        &tx,
        "webhooks (id, url, secret, state, delivered_up_to, failing_since, failures, last_error, created_at)",
        9,
        &webhooks,
    )
    .await?;
    copy(
        &tx,
        "operators (id, name, avatar_url, active)",
        4,
        &operators,
    )
    .await?;
    copy(
        &tx,
        "canned_replies (id, shortcut, title, body, created_by, created_at, updated_at)",
        7,
        &canned,
    )
    .await?;
    // Ids continue after the copied ones.
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('events', 'id'), GREATEST((SELECT MAX(id) FROM events), 1));
         SELECT setval(pg_get_serial_sequence('webhooks', 'id'), GREATEST((SELECT MAX(id) FROM webhooks), 1));",
    )
    .await?;
    // Verify inside the transaction: every conversation's messages are exactly 1..=last_seq.
    let broken: i64 = tx
        .query_one(
            "SELECT COUNT(*) FROM conversations c
             WHERE c.last_seq <> (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)
                OR c.last_seq <> COALESCE((SELECT MAX(seq) FROM messages m WHERE m.conversation_id = c.id), 0)",
            &[],
        )
        .await?
        .get(0);
    if broken > 0 {
        return Err(MigrateError::Verify(format!(
            "{broken} conversation(s) do not have exactly seq 1..last_seq"
        )));
    }
    tx.commit().await?;
    Ok(MigrateReport {
        conversations: conversations.len() as u64,
        participants: participants.len() as u64,
        messages: messages.len() as u64,
        events: events.len() as u64,
        uploads: uploads.len() as u64,
    })
}

async fn copy(
    tx: &tokio_postgres::Transaction<'_>,
    target: &str,
    columns: usize,
    rows: &[Row],
) -> Result<(), tokio_postgres::Error> {
    for chunk in rows.chunks(CHUNK_ROWS) {
        let mut sql = format!("INSERT INTO {target} VALUES ");
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(chunk.len() * columns);
        for (r, row) in chunk.iter().enumerate() {
            if r > 0 {
                sql.push(',');
            }
            sql.push('(');
            for (c, value) in row.iter().enumerate() {
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", r * columns + c + 1));
                params.push(value.as_ref() as &(dyn ToSql + Sync));
            }
            sql.push(')');
        }
        tx.execute(&sql, &params).await?;
    }
    Ok(())
}
