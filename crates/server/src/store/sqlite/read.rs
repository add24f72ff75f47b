//! Read queries of the SQLite store.

use protocol::api::{ConversationSummary, ConversationView};
use protocol::frames::{ConversationState, ConversationStatus, ParticipantState};
use protocol::Role;
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::store::decode::{self, Corrupt};
use crate::store::{EventRecord, StoredMessage, Webhook};

/// The columns [`message`] reads, in order (and aliased `m`).
pub(super) use crate::store::decode::{MESSAGE_COLUMNS, MESSAGE_COLUMNS_OF_M};

/// Carries a value that cannot be interpreted through rusqlite; `super::unavailable` finds the
/// [`Corrupt`] inside again.
pub(super) fn corrupt(index: usize, err: Corrupt) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(err))
}

pub(super) fn role(row: &Row<'_>, index: usize) -> rusqlite::Result<Role> {
    let text: String = row.get(index)?;
    decode::role(&text).map_err(|err| corrupt(index, err))
}

pub(super) fn status(row: &Row<'_>, index: usize) -> rusqlite::Result<ConversationStatus> {
    let text: String = row.get(index)?;
    decode::status(&text).map_err(|err| corrupt(index, err))
}

fn json(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<serde_json::Value>> {
    let text: Option<String> = row.get(index)?;
    text.map(|t| decode::json(&t).map_err(|err| corrupt(index, err)))
        .transpose()
}

pub(super) fn message(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    message_at(row, 0)
}

/// The message whose [`MESSAGE_COLUMNS`] start at column `at`.
fn message_at(row: &Row<'_>, at: usize) -> rusqlite::Result<StoredMessage> {
    let kind: String = row.get(at + 7)?;
    Ok(StoredMessage {
        conversation: row.get(at)?,
        id: row.get(at + 1)?,
        seq: row.get(at + 2)?,
        sender: row.get(at + 3)?,
        role: role(row, at + 4)?,
        body: row.get(at + 5)?,
        ts: row.get(at + 6)?,
        kind: decode::kind(&kind).map_err(|err| corrupt(at + 7, err))?,
        data: json(row, at + 8)?,
        attachments: decode::attachments(row.get_ref(at + 9)?.as_str_or_null()?)
            .map_err(|err| corrupt(at + 9, err))?,
    })
}

fn participant_row(row: &Row<'_>) -> rusqlite::Result<ParticipantState> {
    Ok(ParticipantState {
        user_id: row.get(0)?,
        role: role(row, 1)?,
        delivered: row.get(2)?,
        read: row.get(3)?,
    })
}

pub(super) fn participants(
    conn: &Connection,
    conversation: &str,
) -> rusqlite::Result<Vec<ParticipantState>> {
    conn.prepare_cached(
        "SELECT user_id, role, delivered_seq, read_seq FROM participants
         WHERE conversation_id = ?1 ORDER BY joined_at, user_id",
    )?
    .query_map(params![conversation], participant_row)?
    .collect()
}

pub(super) fn participant(
    conn: &Connection,
    conversation: &str,
    user: &str,
) -> rusqlite::Result<Option<ParticipantState>> {
    conn.prepare_cached(
        "SELECT user_id, role, delivered_seq, read_seq FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
    )?
    .query_row(params![conversation, user], participant_row)
    .optional()
}

pub(super) fn conversation_view(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<ConversationView>> {
    let head = conn
        .prepare_cached("SELECT epoch, last_seq, created_at, status, assignee, metadata, closed FROM conversations WHERE id = ?1")?
        .query_row(params![id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                status(row, 3)?,
                row.get(4)?,
                json(row, 5)?,
                row.get(6)?,
            ))
        })
        .optional()?;
    let Some((epoch, last_seq, created_at, status, assignee, metadata, closed)) = head else {
        return Ok(None);
    };
    Ok(Some(ConversationView {
        id: id.to_owned(),
        epoch,
        last_seq,
        created_at,
        participants: participants(conn, id)?,
        status,
        assignee,
        metadata,
        closed,
    }))
}

pub(super) fn states(
    conn: &Connection,
    ids: &[String],
) -> rusqlite::Result<Vec<ConversationState>> {
    let mut states = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(view) = conversation_view(conn, id)? {
            states.push(crate::store::state_of(&view));
        }
    }
    Ok(states)
}

pub(super) fn messages_since(
    conn: &Connection,
    conversation: &str,
    after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<StoredMessage>> {
    conn.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
    ))?
    .query_map(params![conversation, after, limit], message)?
    .collect()
}

/// The kinds a role sees in summaries: clients never see notes; system entries are not unread.
fn visible_kinds(role: Role) -> &'static str {
    match role {
        Role::Client => "('text')",
        Role::Operator => "('text', 'note')",
    }
}

pub(super) fn conversations_of(
    conn: &Connection,
    user: &str,
) -> rusqlite::Result<Vec<ConversationSummary>> {
    let rows: Vec<(String, u64, u64, Role, u64, u64)> = conn
        .prepare_cached(
            "SELECT c.id, c.epoch, c.last_seq, p.role, p.delivered_seq, p.read_seq
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.user_id = ?1",
        )?
        .query_map(params![user], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                role(row, 3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut summaries = Vec::with_capacity(rows.len());
    for (id, epoch, last_seq, role, delivered, read) in rows {
        let kinds = visible_kinds(role);
        let unread: u64 = conn
            .prepare_cached(&format!(
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ?1 AND seq > ?2 AND sender_id <> ?3 AND kind IN {kinds}"
            ))?
            .query_row(params![id, read, user], |row| row.get(0))?;
        let last_message = conn
            .prepare_cached(&format!(
                "SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ?1 AND kind IN {kinds} ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(params![id], message)
            .optional()?;
        summaries.push(ConversationSummary {
            id,
            epoch,
            last_seq,
            role,
            delivered,
            read,
            unread,
            last_message,
        });
    }
    crate::store::memory::sort_summaries(&mut summaries);
    Ok(summaries)
}

pub(super) fn events_since(
    conn: &Connection,
    after: u64,
    limit: u32,
) -> rusqlite::Result<Vec<EventRecord>> {
    // One statement, so an event and the message it names come from one snapshot.
    conn.prepare_cached(&format!(
        "SELECT e.id, e.type, e.conversation_id, e.data, e.created_at, e.message_seq IS NOT NULL, {MESSAGE_COLUMNS_OF_M}
         FROM events e LEFT JOIN messages m
           ON e.message_seq IS NOT NULL AND m.conversation_id = e.conversation_id AND m.seq = e.message_seq
         WHERE e.id > ?1 ORDER BY e.id LIMIT ?2"
    ))?
    .query_map(params![after, limit], |row| {
        let message = match row.get_ref(6)?.as_str_or_null()? {
            Some(_) => Some(message_at(row, 6)?),
            None => None,
        };
        let data: String = row.get(3)?;
        Ok(EventRecord {
            id: row.get(0)?,
            kind: row.get(1)?,
            conversation: row.get(2)?,
            data: decode::event_data(&data, row.get(5)?, message)
                .map_err(|err| corrupt(3, err))?,
            created_at: row.get(4)?,
        })
    })?
    .collect()
}

pub(super) fn webhooks(conn: &Connection) -> rusqlite::Result<Vec<Webhook>> {
    conn.prepare_cached(
        "SELECT id, url, secret, state, delivered_up_to, failing_since, failures, last_error, created_at FROM webhooks ORDER BY id",
    )?
    .query_map([], |row| {
        Ok(Webhook {
            id: row.get(0)?,
            url: row.get(1)?,
            secret: row.get(2)?,
            state: row.get(3)?,
            delivered_up_to: row.get(4)?,
            failing_since: row.get(5)?,
            failures: row.get(6)?,
            last_error: row.get(7)?,
            created_at: row.get(8)?,
        })
    })?
    .collect()
}

/// The operator directory by id (`only`: just that operator).
pub(super) fn operators(
    conn: &Connection,
    only: Option<&str>,
) -> rusqlite::Result<Vec<protocol::api::Operator>> {
    conn.prepare_cached(
        "SELECT id, name, avatar_url, active FROM operators WHERE ?1 IS NULL OR id = ?1 ORDER BY id",
    )?
    .query_map([only], |row| {
        Ok(protocol::api::Operator {
            id: row.get(0)?,
            name: row.get(1)?,
            avatar_url: row.get(2)?,
            active: row.get(3)?,
        })
    })?
    .collect()
}
