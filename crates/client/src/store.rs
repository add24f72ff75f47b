//! The device's local store: outbox, cursors and received messages in one SQLite file, so a
//! device that is killed at any moment starts again where it was. A message is in the outbox
//! (committed with fsync) before `send` returns. The format is versioned by `user_version`;
//! migrations carry pending messages forward, never drop them.

use std::path::Path;

use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension};

use crate::session::{
    ChatMessage, DeliveryStatus, Event, PendingMessage, Snapshot, StoredConversation,
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
];

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
                Ok(PendingMessage { id: r.get(0)?, conversation: r.get(1)?, body: r.get(2)?, failed: code.map(|c| (c, message.unwrap_or_default())) })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let heads: Vec<(String, Option<u64>, u64)> = self
            .conn
            .prepare("SELECT id, epoch, cursor FROM conversations ORDER BY id")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut conversations = Vec::new();
        for (id, epoch, cursor) in heads {
            let messages = self
                .conn
                .prepare("SELECT id, seq, sender, role, body, ts, status FROM messages WHERE conversation = ?1 AND seq <= ?2 ORDER BY seq")?
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
                        "INSERT OR IGNORE INTO messages (conversation, seq, id, sender, role, body, ts, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute(params![m.conversation, m.seq, m.id, m.sender, m.role.as_str(), m.body, m.ts.unwrap_or(0), kept_status(m.status.as_ref())])?;
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
                            tx.prepare_cached("DELETE FROM outbox WHERE id = ?1")?
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
}
