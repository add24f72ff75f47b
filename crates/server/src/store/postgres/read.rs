//! Read queries of the PostgreSQL store, on a pooled connection.

use protocol::api::{ConversationSummary, ConversationView};
use protocol::frames::{ConversationState, ParticipantState};
use tokio_postgres::{GenericClient, Row};

use super::Fault;
use crate::store::decode::{self, Corrupt};
use crate::store::{EventRecord, StoredMessage, Webhook};

/// The columns [`message`] reads, in order (and aliased `m`).
pub(crate) use crate::store::decode::{MESSAGE_COLUMNS, MESSAGE_COLUMNS_OF_M};

fn json(text: Option<&str>) -> Result<Option<serde_json::Value>, Corrupt> {
    text.map(decode::json).transpose()
}

pub(crate) fn message(row: &Row) -> Result<StoredMessage, Corrupt> {
    message_at(row, 0)
}

/// The message whose [`MESSAGE_COLUMNS`] start at column `at`.
fn message_at(row: &Row, at: usize) -> Result<StoredMessage, Corrupt> {
    Ok(StoredMessage {
        conversation: row.get(at),
        id: row.get(at + 1),
        seq: row.get::<_, i64>(at + 2) as u64,
        sender: row.get(at + 3),
        role: decode::role(row.get(at + 4))?,
        body: row.get(at + 5),
        ts: row.get::<_, i64>(at + 6) as u64,
        kind: decode::kind(row.get(at + 7))?,
        data: json(row.get(at + 8))?,
        attachments: decode::attachments(row.get(at + 9))?,
    })
}

fn participant_row(row: &Row) -> Result<ParticipantState, Corrupt> {
    Ok(ParticipantState {
        user_id: row.get(0),
        role: decode::role(row.get(1))?,
        delivered: row.get::<_, i64>(2) as u64,
        read: row.get::<_, i64>(3) as u64,
    })
}

pub(crate) async fn participants<C: GenericClient>(
    c: &C,
    conversation: &str,
) -> Result<Vec<ParticipantState>, Fault> {
    let rows = c
        .query(
            "SELECT user_id, role, delivered_seq, read_seq FROM participants
             WHERE conversation_id = $1 ORDER BY joined_at, user_id",
            &[&conversation],
        )
        .await?;
    Ok(rows.iter().map(participant_row).collect::<Result<_, _>>()?)
}

pub(crate) async fn participant<C: GenericClient>(
    c: &C,
    conversation: &str,
    user: &str,
) -> Result<Option<ParticipantState>, Fault> {
    let row = c
        .query_opt(
            "SELECT user_id, role, delivered_seq, read_seq FROM participants WHERE conversation_id = $1 AND user_id = $2",
            &[&conversation, &user],
        )
        .await?;
    Ok(row.as_ref().map(participant_row).transpose()?)
}

pub(crate) async fn conversation_view<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<ConversationView>, Fault> {
    let Some(head) = c
        .query_opt("SELECT epoch, last_seq, created_at, status, assignee, metadata, closed FROM conversations WHERE id = $1", &[&id])
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(ConversationView {
        id: id.to_owned(),
        epoch: head.get::<_, i64>(0) as u64,
        last_seq: head.get::<_, i64>(1) as u64,
        created_at: head.get::<_, i64>(2) as u64,
        participants: participants(c, id).await?,
        status: decode::status(head.get(3))?,
        assignee: head.get(4),
        metadata: json(head.get(5))?,
        closed: head.get(6),
    }))
}

pub(crate) async fn states<C: GenericClient>(
    c: &C,
    ids: &[String],
) -> Result<Vec<ConversationState>, Fault> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(view) = conversation_view(c, id).await? {
            out.push(crate::store::state_of(&view));
        }
    }
    Ok(out)
}

pub(crate) async fn messages_since<C: GenericClient>(
    c: &C,
    conversation: &str,
    after: u64,
    limit: u32,
) -> Result<Vec<StoredMessage>, Fault> {
    let rows = c
        .query(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
            &[&conversation, &(after as i64), &(limit as i64)],
        )
        .await?;
    Ok(rows.iter().map(message).collect::<Result<_, _>>()?)
}

pub(crate) async fn message_by_id<C: GenericClient>(
    c: &C,
    id: &str,
) -> Result<Option<StoredMessage>, Fault> {
    let row = c
        .query_opt(
            &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1"),
            &[&id],
        )
        .await?;
    Ok(row.as_ref().map(message).transpose()?)
}

pub(crate) async fn conversations_of<C: GenericClient>(
    c: &C,
    user: &str,
) -> Result<Vec<ConversationSummary>, Fault> {
    let rows = c
        .query(
            "SELECT c.id, c.epoch, c.last_seq, p.role, p.delivered_seq, p.read_seq,
                    (SELECT COUNT(*) FROM messages m
                                  WHERE m.conversation_id = c.id AND m.seq > p.read_seq AND m.sender_id <> $1
                       AND (m.kind = 'text' OR (m.kind = 'note' AND p.role = 'operator')))
             FROM participants p JOIN conversations c ON c.id = p.conversation_id
             WHERE p.user_id = $1",
            &[&user],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.get(0);
        let last_seq = row.get::<_, i64>(2) as u64;
        let role = decode::role(row.get(3))?;
        // Clients never see notes; system entries are not "the last message".
        let kinds: &[&str] = if role == protocol::Role::Operator {
            &["text", "note"]
        } else {
            &["text"]
        };
        let last_message = c
            .query_opt(
                &format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation_id = $1 AND kind = ANY($2) ORDER BY seq DESC LIMIT 1"),
                &[&id, &kinds],
            )
            .await?
            .as_ref()
            .map(message)
            .transpose()?;
        out.push(ConversationSummary {
            id,
            epoch: row.get::<_, i64>(1) as u64,
            last_seq,
            role,
            delivered: row.get::<_, i64>(4) as u64,
            read: row.get::<_, i64>(5) as u64,
            unread: row.get::<_, i64>(6) as u64,
            last_message,
        });
    }
    crate::store::memory::sort_summaries(&mut out);
    Ok(out)
}

pub(crate) async fn events_since<C: GenericClient>(
    c: &C,
    after: u64,
    limit: u32,
) -> Result<Vec<EventRecord>, Fault> {
    // One statement, so an event and the message it names come from one snapshot.
    let rows = c
        .query(
            &format!(
                "SELECT e.id, e.type, e.conversation_id, e.data, e.created_at, e.message_seq IS NOT NULL, {MESSAGE_COLUMNS_OF_M}
                 FROM events e LEFT JOIN messages m
                   ON e.message_seq IS NOT NULL AND m.conversation_id = e.conversation_id AND m.seq = e.message_seq
                 WHERE e.id > $1 ORDER BY e.id LIMIT $2"
            ),
            &[&(after as i64), &(limit as i64)],
        )
        .await?;
    let events = rows
        .iter()
        .map(|row| {
            let message = match row.get::<_, Option<&str>>(6) {
                Some(_) => Some(message_at(row, 6)?),
                None => None,
            };
            Ok(EventRecord {
                id: row.get::<_, i64>(0) as u64,
                kind: row.get(1),
                conversation: row.get(2),
                data: decode::event_data(row.get(3), row.get(5), message)?,
                created_at: row.get::<_, i64>(4) as u64,
            })
        })
        .collect::<Result<_, Corrupt>>()?;
    Ok(events)
}

pub(crate) async fn webhooks<C: GenericClient>(c: &C) -> Result<Vec<Webhook>, Fault> {
    let rows = c
        .query(
            "SELECT id, url, secret, state, delivered_up_to, failing_since, failures, last_error, created_at FROM webhooks ORDER BY id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Webhook {
            id: row.get::<_, i64>(0) as u64,
            url: row.get(1),
            secret: row.get(2),
            state: row.get(3),
            delivered_up_to: row.get::<_, i64>(4) as u64,
            failing_since: row.get::<_, i64>(5) as u64,
            failures: row.get::<_, i64>(6) as u64,
            last_error: row.get(7),
            created_at: row.get::<_, i64>(8) as u64,
        })
        .collect())
}

/// The operator directory by id (`only`: just that operator).
pub(crate) async fn operators<C: GenericClient>(
    c: &C,
    only: Option<&str>,
) -> Result<Vec<protocol::api::Operator>, Fault> {
    let rows = c
        .query(
            "SELECT id, name, avatar_url, active FROM operators WHERE $1::TEXT IS NULL OR id = $1 ORDER BY id",
            &[&only],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| protocol::api::Operator {
            id: row.get(0),
            name: row.get(1),
            avatar_url: row.get(2),
            active: row.get(3),
        })
        .collect())
}
