//! The device's local store: outbox, cursors and received messages in one SQLite file, so a
//! device that is killed at any moment starts again where it was. A message is in the outbox
//! (committed with fsync) before `send` returns — with its files' bytes, in the same
//! transaction, when it has files; those bytes are deleted once the server has the message.
//! The format is versioned by `user_version`; migrations carry pending messages forward, never
//! drop them.

use std::path::Path;

use protocol::frames::Attachment;
use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension};

use crate::session::{
    ChatMessage, DeliveryStatus, Event, OutboxFile, PendingMessage, Snapshot, StoredConversation,
};

const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE outbox (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    conversation   TEXT NOT NULL,
    body           TEXT NOT NULL,
    failed_code    TEXT,
    failed_message TEXT
);
CREATE TABLE conversations (id TEXT PRIMARY KEY, epoch INTEGER, cursor INTEGER NOT NULL);
CREATE TABLE messages (
    conversation TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    id           TEXT NOT NULL,
    sender       TEXT NOT NULL,
    role         TEXT NOT NULL,
    body         TEXT NOT NULL,
    ts           INTEGER NOT NULL,
    PRIMARY KEY (conversation, seq)
);
",
    "
-- Version 2: how far the user's own messages got (`delivered`, `read`), so that ticks shown
-- before a restart are shown after it, also offline. Existing rows restart from `sent`.
ALTER TABLE messages ADD COLUMN status TEXT;
CREATE INDEX messages_by_id ON messages (conversation, id);
",
    "
-- Version 3: attachments. The files of outbox messages, bytes included, until the server has
-- the message; and the descriptions of received messages' files (a JSON array, NULL for none).
CREATE TABLE outbox_files (
    upload_id    TEXT PRIMARY KEY,
    message      TEXT NOT NULL,
    position     INTEGER NOT NULL,
    name         TEXT NOT NULL,
    content_type TEXT,
    length       INTEGER NOT NULL
);
CREATE INDEX outbox_files_by_message ON outbox_files (message, position);
-- The bytes in pieces of FILE_PIECE_BYTES, so that a chunk is read without the whole file.
CREATE TABLE outbox_file_pieces (
    upload_id TEXT NOT NULL,
    start     INTEGER NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (upload_id, start)
);
ALTER TABLE messages ADD COLUMN attachments TEXT;
",
];

/// Bytes of a file per row of `outbox_file_pieces`: a read of an upload chunk touches only the
/// rows it needs (an upload chunk is 1 MiB by default; a file at most 25 MiB).
const FILE_PIECE_BYTES: usize = 256 * 1024;

/// A file to put in the outbox with its message: its description and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct FileToStore<'a> {
    /// Upload id, name, declared type and length (`bytes.len()`).
    pub file: &'a OutboxFile,
    /// The whole file.
    pub bytes: &'a [u8],
}

/// The JSON of a message's attachments as stored (`NULL` for none).
fn attachments_json(attachments: &[Attachment]) -> Option<String> {
    (!attachments.is_empty())
        .then(|| serde_json::to_string(attachments).expect("attachments serialize"))
}

/// A stored attachments column, read back (a value that does not parse is shown as none: it
/// was written by this module, so that would be a bug, not input).
fn attachments_from(json: Option<String>) -> Vec<Attachment> {
    json.and_then(|text| {
        let parsed = serde_json::from_str(&text);
        debug_assert!(parsed.is_ok(), "stored attachments parse: {text}");
        parsed.ok()
    })
    .unwrap_or_default()
}

/// A kept status as stored (`delivered`, `read`); other statuses are not kept.
fn kept_status(status: Option<&DeliveryStatus>) -> Option<&'static str> {
    match status {
        Some(DeliveryStatus::Delivered) => Some("delivered"),
        Some(DeliveryStatus::Read) => Some("read"),
        _ => None,
    }
}

/// Failure of the local store.
#[derive(Debug, thiserror::Error)]
#[error("local store: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

/// The local store.
pub struct LocalStore {
    conn: Connection,
}

impl LocalStore {
    /// Opens (creating) the store at `path`, applying migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let applied: usize = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", index + 1)?;
            tx.commit()?;
        }
        Ok(LocalStore { conn })
    }

    /// Everything needed to restore a session.
    pub fn load(&self) -> Result<Snapshot, StoreError> {
        let user_id = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'user_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let outbox = self
            .conn
            .prepare("SELECT id, conversation, body, failed_code, failed_message FROM outbox ORDER BY position")?
            .query_map([], |r| {
                let code: Option<String> = r.get(3)?;
                let message: Option<String> = r.get(4)?;
                Ok(PendingMessage { id: r.get(0)?, conversation: r.get(1)?, body: r.get(2)?, failed: code.map(|c| (c, message.unwrap_or_default())), files: Vec::new() })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut outbox = outbox;
        for pending in &mut outbox {
            pending.files = self
                .conn
                .prepare_cached("SELECT upload_id, name, content_type, length FROM outbox_files WHERE message = ?1 ORDER BY position")?
                .query_map(params![pending.id], |r| {
                    Ok(OutboxFile { upload_id: r.get(0)?, name: r.get(1)?, content_type: r.get(2)?, length: r.get(3)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
        }
        let heads: Vec<(String, Option<u64>, u64)> = self
            .conn
            .prepare("SELECT id, epoch, cursor FROM conversations ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut conversations = Vec::new();
        for (id, epoch, cursor) in heads {
            let messages = self
                .conn
                .prepare("SELECT id, seq, sender, role, body, ts, status, attachments FROM messages WHERE conversation = ?1 AND seq <= ?2 ORDER BY seq")?
                .query_map(params![id, cursor], |r| {
                    let role: String = r.get(3)?;
                    let status: Option<String> = r.get(6)?;
                    Ok(ChatMessage {
                        conversation: id.clone(),
                        id: r.get(0)?,
                        seq: Some(r.get(1)?),
                        sender: r.get(2)?,
                        role: Role::parse(&role).unwrap_or(Role::Client),
                        body: r.get(4)?,
                        ts: Some(r.get(5)?),
                        status: match status.as_deref() {
                            Some("delivered") => Some(DeliveryStatus::Delivered),
                            Some("read") => Some(DeliveryStatus::Read),
                            _ => None,
                        },
                        attachments: attachments_from(r.get(7)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            conversations.push(StoredConversation {
                id,
                epoch,
                cursor,
                messages,
            });
        }
        Ok(Snapshot {
            user_id,
            outbox,
            conversations,
        })
    }

    /// Puts a message in the outbox, durably.
    pub fn add_outbox(&self, id: &str, conversation: &str, body: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO outbox (id, conversation, body) VALUES (?1, ?2, ?3)",
            params![id, conversation, body],
        )?;
        Ok(())
    }

    /// Puts a message and its files, bytes included, in the outbox, durably, in one
    /// transaction: after a crash either all of it is there or none.
    pub fn add_outbox_with_files(
        &mut self,
        id: &str,
        conversation: &str,
        body: &str,
        files: &[FileToStore<'_>],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        let added = tx.execute(
            "INSERT OR IGNORE INTO outbox (id, conversation, body) VALUES (?1, ?2, ?3)",
            params![id, conversation, body],
        )?;
        if added == 1 {
            for (position, file) in files.iter().enumerate() {
                debug_assert_eq!(file.file.length, file.bytes.len() as u64);
                tx.execute(
                    "INSERT INTO outbox_files (upload_id, message, position, name, content_type, length) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![file.file.upload_id, id, position, file.file.name, file.file.content_type, file.bytes.len() as u64],
                )?;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO outbox_file_pieces (upload_id, start, bytes) VALUES (?1, ?2, ?3)",
                )?;
                for (index, piece) in file.bytes.chunks(FILE_PIECE_BYTES).enumerate() {
                    let start = (index * FILE_PIECE_BYTES) as u64;
                    insert.execute(params![file.file.upload_id, start, piece])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `len` bytes of an outbox file from `offset` (fewer at its end; `None` if the store
    /// no longer holds it: its message was acknowledged).
    pub fn file_chunk(
        &self,
        upload_id: &str,
        offset: u64,
        len: usize,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let length: Option<u64> = self
            .conn
            .query_row(
                "SELECT length FROM outbox_files WHERE upload_id = ?1",
                params![upload_id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(length) = length else {
            return Ok(None);
        };
        let end = length.min(offset.saturating_add(len as u64));
        let mut out = Vec::with_capacity(end.saturating_sub(offset) as usize);
        if offset >= end {
            return Ok(Some(out));
        }
        let first = offset - offset % FILE_PIECE_BYTES as u64;
        let mut pieces = self.conn.prepare_cached(
            "SELECT start, bytes FROM outbox_file_pieces WHERE upload_id = ?1 AND start >= ?2 AND start < ?3 ORDER BY start",
        )?;
        let rows = pieces.query_map(params![upload_id, first, end], |r| {
            Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (start, bytes) = row?;
            let from = offset.max(start) - start;
            let to = (end - start).min(bytes.len() as u64);
            if from < to {
                out.extend_from_slice(&bytes[from as usize..to as usize]);
            }
        }
        Ok(Some(out))
    }

    /// Records the user id (learnt from `welcome`).
    pub fn set_user(&self, user_id: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('user_id', ?1)",
            params![user_id],
        )?;
        Ok(())
    }

    /// Persists what a batch of session events changed, in one transaction.
    pub fn apply(&mut self, events: &[Event]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for event in events {
            match event {
                Event::Message(m) => {
                    tx.prepare_cached(
                        "INSERT OR IGNORE INTO messages (conversation, seq, id, sender, role, body, ts, status, attachments) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![m.conversation, m.seq, m.id, m.sender, m.role.as_str(), m.body, m.ts.unwrap_or(0), kept_status(m.status.as_ref()), attachments_json(&m.attachments)])?;
                }
                Event::Cursor {
                    conversation,
                    epoch,
                    seq,
                } => {
                    tx.prepare_cached("INSERT OR REPLACE INTO conversations (id, epoch, cursor) VALUES (?1, ?2, ?3)")?
                        .execute(params![conversation, epoch, seq])?;
                }
                Event::DeliveryStatus {
                    conversation,
                    id,
                    status,
                } => {
                    if let Some(kept) = kept_status(Some(status)) {
                        // Only forward: `read` is never overwritten by a late `delivered`.
                        tx.prepare_cached(
                            "UPDATE messages SET status = ?3 WHERE conversation = ?1 AND id = ?2 AND (status IS NULL OR status = 'delivered')",
                        )?
                        .execute(params![conversation, id, kept])?;
                    }
                    match status {
                        DeliveryStatus::Sending => {
                            tx.prepare_cached("UPDATE outbox SET failed_code = NULL, failed_message = NULL WHERE id = ?1")?
                            .execute(params![id])?;
                        }
                        DeliveryStatus::Failed { code, message } => {
                            tx.prepare_cached("UPDATE outbox SET failed_code = ?2, failed_message = ?3 WHERE id = ?1")?
                            .execute(params![id, code, message])?;
                        }
                        _ => {
                            // Durable on the server: the outbox row and its files' bytes go.
                            tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
                                .execute(params![id])?;
                            tx.prepare_cached("DELETE FROM outbox_file_pieces WHERE upload_id IN (SELECT upload_id FROM outbox_files WHERE message = ?1)")?
                                .execute(params![id])?;
                            tx.prepare_cached("DELETE FROM outbox_files WHERE message = ?1")?
                                .execute(params![id])?;
                        }
                    }
                }
                Event::Resync {
                    conversation,
                    epoch,
                } => {
                    tx.prepare_cached("DELETE FROM messages WHERE conversation = ?1")?
                        .execute(params![conversation])?;
                    tx.prepare_cached("INSERT OR REPLACE INTO conversations (id, epoch, cursor) VALUES (?1, ?2, 0)")?
                        .execute(params![conversation, epoch])?;
                }
                _ => {}
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use protocol::frames::{self, ServerFrame};

    use super::*;
    use crate::session::{Action, Config, Session};

    fn welcome(olga: (u64, u64), last_seq: u64) -> ServerFrame {
        let state = |user: &str, role, (delivered, read)| frames::ParticipantState {
            user_id: user.into(),
            role,
            delivered,
            read,
        };
        ServerFrame::Welcome(frames::Welcome {
            v: 1,
            user_id: "ana".into(),
            role: Role::Client,
            connection_id: "c1".into(),
            heartbeat_ms: 25_000,
            timeout_ms: 35_000,
            conversations: vec![frames::ConversationState {
                id: "b1".into(),
                epoch: 7,
                last_seq,
                participants: vec![
                    state("ana", Role::Client, (last_seq, last_seq)),
                    state("olga", Role::Operator, olga),
                ],
                status: Default::default(),
                assignee: None,
                metadata: None,
                closed: false,
            }],
        })
    }

    fn receipt(delivered: u64, read: u64) -> ServerFrame {
        ServerFrame::Receipt(frames::Receipt {
            conversation: "b1".into(),
            user_id: "olga".into(),
            role: Role::Operator,
            delivered,
            read,
        })
    }

    /// Persists every event the session has for the store.
    fn persist(session: &mut Session, store: &mut LocalStore) {
        let events: Vec<Event> = std::iter::from_fn(|| session.poll_event()).collect();
        store.apply(&events).unwrap();
    }

    fn connect(session: &mut Session, now: Instant, welcome: ServerFrame) {
        session.connect(now);
        let Some(Action::Connect { attempt }) = session.poll_action() else {
            panic!("a connect")
        };
        session.handle_open(now, attempt);
        session.handle_frame(now, welcome);
    }

    #[test]
    fn ticks_survive_a_restart_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let now = Instant::now();
        let mut store = LocalStore::open(&path).unwrap();
        let mut session = Session::new(Config::default(), "t");
        connect(&mut session, now, welcome((0, 0), 0));
        store.set_user("ana").unwrap();
        let ids: Vec<String> = ["one", "two"]
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let id = format!("00000000-0000-4000-8000-00000000000{i}");
                store.add_outbox(&id, "b1", body).unwrap();
                session.send(now, id, "b1", body, None)
            })
            .collect();
        for (i, id) in ids.iter().enumerate() {
            let seq = i as u64 + 1;
            session.handle_frame(
                now,
                ServerFrame::Ack(frames::Ack {
                    id: id.clone(),
                    conversation: "b1".into(),
                    seq,
                    ts: 1,
                }),
            );
            session.handle_frame(
                now,
                ServerFrame::Message(frames::Message {
                    conversation: "b1".into(),
                    id: id.clone(),
                    seq,
                    sender: "ana".into(),
                    role: Role::Client,
                    body: "…".into(),
                    ts: 1,
                    kind: Default::default(),
                    data: None,
                    attachments: Vec::new(),
                }),
            );
        }
        persist(&mut session, &mut store);
        session.handle_frame(now, receipt(2, 1));
        persist(&mut session, &mut store);
        assert_eq!(session.delivery_status(&ids[0]), Some(DeliveryStatus::Read));
        assert_eq!(
            session.delivery_status(&ids[1]),
            Some(DeliveryStatus::Delivered)
        );
        drop(store);

        // The device restarts offline: what it showed, it shows again.
        let store = LocalStore::open(&path).unwrap();
        let mut restored = Session::restore(Config::default(), "t", store.load().unwrap());
        assert_eq!(
            restored.delivery_status(&ids[0]),
            Some(DeliveryStatus::Read)
        );
        assert_eq!(
            restored.delivery_status(&ids[1]),
            Some(DeliveryStatus::Delivered)
        );
        // Back online, the next receipts move them on from there.
        connect(&mut restored, now, welcome((2, 2), 2));
        assert_eq!(
            restored.delivery_status(&ids[1]),
            Some(DeliveryStatus::Read)
        );
    }

    #[test]
    fn an_outbox_message_keeps_its_files_until_the_server_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let mut store = LocalStore::open(&path).unwrap();
        let big: Vec<u8> = (0..(FILE_PIECE_BYTES * 2 + 100))
            .map(|i| (i % 251) as u8)
            .collect();
        let files = [
            OutboxFile {
                upload_id: "u1".into(),
                name: "scan.pdf".into(),
                content_type: Some("application/pdf".into()),
                length: big.len() as u64,
            },
            OutboxFile {
                upload_id: "u2".into(),
                name: "tiny.png".into(),
                content_type: None,
                length: 3,
            },
        ];
        let stored = [
            FileToStore {
                file: &files[0],
                bytes: &big,
            },
            FileToStore {
                file: &files[1],
                bytes: b"abc",
            },
        ];
        store
            .add_outbox_with_files("m1", "b1", "", &stored)
            .unwrap();
        drop(store);

        // After a restart: the message with its files, in order, and any range of their bytes.
        let mut store = LocalStore::open(&path).unwrap();
        let snapshot = store.load().unwrap();
        assert_eq!(snapshot.outbox.len(), 1);
        assert_eq!(snapshot.outbox[0].files, files);
        let piece = FILE_PIECE_BYTES as u64;
        for (offset, len) in [
            (0, 10),
            (piece - 5, 10),
            (piece - 1, FILE_PIECE_BYTES + 2),
            (piece * 2 + 90, 1000),
            (big.len() as u64, 10),
        ] {
            let end = (offset as usize + len).min(big.len());
            assert_eq!(
                store.file_chunk("u1", offset, len).unwrap().unwrap(),
                big[offset as usize..end],
                "{offset}+{len}"
            );
        }
        assert_eq!(store.file_chunk("u2", 1, 1_000).unwrap().unwrap(), b"bc");

        // Durable on the server: the bytes go with the outbox row, in the same transaction.
        store
            .apply(&[Event::DeliveryStatus {
                conversation: "b1".into(),
                id: "m1".into(),
                status: DeliveryStatus::Sent { seq: 1 },
            }])
            .unwrap();
        assert_eq!(store.file_chunk("u1", 0, 10).unwrap(), None);
        let pieces: u64 = store
            .conn
            .query_row("SELECT count(*) FROM outbox_file_pieces", [], |r| r.get(0))
            .unwrap();
        assert_eq!(pieces, 0);
        assert!(store.load().unwrap().outbox.is_empty());
    }

    #[test]
    fn received_attachments_are_kept_with_their_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.db");
        let mut store = LocalStore::open(&path).unwrap();
        let attachment = Attachment {
            id: "00000000-0000-4000-8000-0000000000a1".into(),
            name: "photo.jpg".into(),
            content_type: "image/jpeg".into(),
            size: 1234,
            sha256: "ab".repeat(32),
            width: Some(640),
            height: Some(480),
            thumb: true,
        };
        let message = |seq: u64, attachments: Vec<Attachment>| ChatMessage {
            conversation: "b1".into(),
            id: format!("o{seq}"),
            seq: Some(seq),
            sender: "olga".into(),
            role: Role::Operator,
            body: String::new(),
            ts: Some(1),
            status: None,
            attachments,
        };
        store
            .apply(&[
                Event::Message(message(1, vec![attachment.clone()])),
                Event::Message(message(2, Vec::new())),
                Event::Cursor {
                    conversation: "b1".into(),
                    epoch: 7,
                    seq: 2,
                },
            ])
            .unwrap();
        drop(store);
        let snapshot = LocalStore::open(&path).unwrap().load().unwrap();
        let held = &snapshot.conversations[0].messages;
        assert_eq!(held[0].attachments, vec![attachment]);
        assert!(held[1].attachments.is_empty());
    }
}
