//! [`ReachStore`] on SQLite: reads on the reader pool, writes through the one writer (so they
//! are ordered with everything else and durable when they answer).

use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::read::role;
use super::SqliteStore;
use crate::store::reach::{
    Channel, Delivery, EmailLink, Notice, PushSubscription, ReachFacts, ReachStore, Redeemed,
    Settled, UnreadMessage, SUBSCRIPTIONS_PER_USER_MAX, UNREAD_MESSAGES_MAX,
};
use crate::store::{Pending, StoreError};

const SUBSCRIPTION_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at";
const DELIVERY_COLUMNS: &str = "id, channel, conversation_id, user_id, first_seq, up_to_seq, \
                                target, payload, attempts, next_at, expires_at";

fn subscription(row: &Row<'_>) -> rusqlite::Result<PushSubscription> {
    Ok(PushSubscription {
        id: row.get(0)?,
        user_id: row.get(1)?,
        endpoint: row.get(2)?,
        p256dh: row.get(3)?,
        auth: row.get(4)?,
        created_at: row.get(5)?,
    })
}

fn delivery(row: &Row<'_>) -> rusqlite::Result<Delivery> {
    let channel: String = row.get(1)?;
    Ok(Delivery {
        id: row.get(0)?,
        channel: Channel::parse(&channel).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                rusqlite::types::Type::Text,
                format!("unknown channel `{channel}`").into(),
            )
        })?,
        conversation_id: row.get(2)?,
        user_id: row.get(3)?,
        first_seq: row.get(4)?,
        up_to_seq: row.get(5)?,
        target: row.get(6)?,
        payload: row.get(7)?,
        attempts: row.get(8)?,
        next_at: row.get(9)?,
        expires_at: row.get(10)?,
    })
}

fn put_subscription(
    tx: &Transaction<'_>,
    s: &PushSubscription,
) -> rusqlite::Result<(PushSubscription, bool)> {
    let existing: Option<u64> = tx
        .query_row(
            "SELECT created_at FROM push_subscriptions WHERE endpoint = ?1",
            [&s.endpoint],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (endpoint) DO UPDATE
         SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
        params![s.id, s.user_id, s.endpoint, s.p256dh, s.auth, s.created_at],
    )?;
    // The oldest beyond the cap go: a browser that re-subscribes gets a new endpoint, and the
    // old one would otherwise stay forever if its push service never answers 410.
    tx.execute(
        "DELETE FROM push_subscriptions WHERE user_id = ?1 AND id NOT IN
           (SELECT id FROM push_subscriptions WHERE user_id = ?1
            ORDER BY created_at DESC, id DESC LIMIT ?2)",
        params![s.user_id, SUBSCRIPTIONS_PER_USER_MAX],
    )?;
    let stored = tx.query_row(
        &format!("SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE endpoint = ?1"),
        [&s.endpoint],
        subscription,
    )?;
    Ok((stored, existing.is_none()))
}

fn facts(conn: &Connection) -> rusqlite::Result<Vec<ReachFacts>> {
    // Driven from the people who can be reached (few, compared with participants), then their
    // conversations with anything beyond their read cursor.
    let mut rows: Vec<ReachFacts> = conn
        .prepare_cached(
            "WITH reachable (user_id) AS (
                 SELECT user_id FROM push_subscriptions
                 UNION SELECT user_id FROM contacts WHERE unsubscribed_at IS NULL)
             SELECT p.conversation_id, p.user_id, p.role, p.read_seq,
                    (SELECT COUNT(*) FROM push_subscriptions s WHERE s.user_id = p.user_id),
                    (SELECT k.email FROM contacts k
                      WHERE k.user_id = p.user_id AND k.unsubscribed_at IS NULL),
                    COALESCE(mp.up_to_seq, 0), COALESCE(me.up_to_seq, 0), COALESCE(me.at, 0)
             FROM reachable r
             JOIN participants p ON p.user_id = r.user_id
             JOIN conversations c ON c.id = p.conversation_id
             LEFT JOIN reach_marks mp ON mp.conversation_id = p.conversation_id
                  AND mp.user_id = p.user_id AND mp.channel = 'push'
             LEFT JOIN reach_marks me ON me.conversation_id = p.conversation_id
                  AND me.user_id = p.user_id AND me.channel = 'email'
             WHERE c.last_seq > p.read_seq",
        )?
        .query_map([], |row| {
            Ok(ReachFacts {
                conversation_id: row.get(0)?,
                user_id: row.get(1)?,
                role: role(row, 2)?,
                read_seq: row.get(3)?,
                subscriptions: row.get(4)?,
                email: row.get(5)?,
                pushed_up_to: row.get(6)?,
                emailed_up_to: row.get(7)?,
                emailed_at: row.get(8)?,
                unread: Vec::new(),
                last_unread_seq: 0,
                unread_count: 0,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut unread = conn.prepare_cached(
        "SELECT seq, sender_id, sender_role, body, created_at FROM messages
         WHERE conversation_id = ?1 AND seq > ?2 AND sender_id <> ?3 AND kind = 'text'
         ORDER BY seq LIMIT ?4",
    )?;
    let mut last = conn.prepare_cached(
        "SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM messages
         WHERE conversation_id = ?1 AND seq > ?2 AND sender_id <> ?3 AND kind = 'text'",
    )?;
    for fact in &mut rows {
        let key = params![fact.conversation_id, fact.read_seq, fact.user_id];
        fact.unread = unread
            .query_map(
                params![
                    fact.conversation_id,
                    fact.read_seq,
                    fact.user_id,
                    UNREAD_MESSAGES_MAX
                ],
                |row| {
                    Ok(UnreadMessage {
                        seq: row.get(0)?,
                        sender_id: row.get(1)?,
                        sender_role: role(row, 2)?,
                        body: row.get(3)?,
                        created_at: row.get(4)?,
                    })
                },
            )?
            .collect::<Result<_, _>>()?;
        (fact.last_unread_seq, fact.unread_count) =
            last.query_row(key, |row| Ok((row.get(0)?, row.get(1)?)))?;
    }
    rows.retain(|fact| !fact.unread.is_empty());
    Ok(rows)
}

fn enqueue(tx: &Transaction<'_>, notices: &[Notice], now: u64) -> rusqlite::Result<u32> {
    let mut stored = 0;
    for notice in notices {
        let moved = tx.execute(
            "INSERT INTO reach_marks (conversation_id, user_id, channel, up_to_seq, at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (conversation_id, user_id, channel) DO UPDATE
             SET up_to_seq = excluded.up_to_seq, at = excluded.at
             WHERE reach_marks.up_to_seq < excluded.up_to_seq",
            params![
                notice.conversation_id,
                notice.user_id,
                notice.channel.as_str(),
                notice.up_to_seq,
                now
            ],
        )?;
        if moved == 0 {
            continue;
        }
        stored += 1;
        if let Some(link) = &notice.link {
            tx.execute(
                "INSERT INTO email_links (id, conversation_id, user_id, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![link.id, link.conversation_id, link.user_id, link.expires_at],
            )?;
        }
        for (target, payload) in &notice.deliveries {
            tx.execute(
                "INSERT INTO reach_outbox (channel, conversation_id, user_id, first_seq,
                     up_to_seq, target, payload, next_at, expires_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?8)",
                params![
                    notice.channel.as_str(),
                    notice.conversation_id,
                    notice.user_id,
                    notice.first_seq,
                    notice.up_to_seq,
                    target,
                    payload,
                    now,
                    notice.expires_at
                ],
            )?;
        }
    }
    Ok(stored)
}

fn settle(
    tx: &Transaction<'_>,
    delivery: &Delivery,
    settled: &Settled,
    now: u64,
) -> rusqlite::Result<()> {
    let (state, next_at, error) = match settled {
        Settled::Sent => ("sent", delivery.next_at, None),
        Settled::Cancelled => ("cancelled", delivery.next_at, None),
        Settled::Failed(why) => ("failed", delivery.next_at, Some(why.as_str())),
        Settled::Gone => ("gone", delivery.next_at, None),
        Settled::Retry { at, error } => ("pending", *at, Some(error.as_str())),
    };
    let attempts = delivery.attempts + u32::from(!matches!(settled, Settled::Cancelled));
    let settled_at = (state != "pending").then_some(now);
    tx.execute(
        "UPDATE reach_outbox SET state = ?2, attempts = ?3, next_at = ?4,
             last_error = COALESCE(?5, last_error), settled_at = ?6
         WHERE id = ?1",
        params![delivery.id, state, attempts, next_at, error, settled_at],
    )?;
    if matches!(settled, Settled::Gone) {
        tx.execute(
            "DELETE FROM push_subscriptions WHERE id = ?1",
            [&delivery.target],
        )?;
    }
    Ok(())
}

fn redeem(tx: &Transaction<'_>, id: &str, now: u64) -> rusqlite::Result<Redeemed> {
    let row: Option<(String, String, u64, Option<u64>)> = tx
        .query_row(
            "SELECT conversation_id, user_id, expires_at, used_at FROM email_links WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((conversation_id, user_id, expires_at, used_at)) = row else {
        return Ok(Redeemed::Unknown);
    };
    if used_at.is_some() {
        return Ok(Redeemed::Used);
    }
    if expires_at <= now {
        return Ok(Redeemed::Expired);
    }
    tx.execute(
        "UPDATE email_links SET used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(Redeemed::Opened(EmailLink {
        id: id.to_owned(),
        conversation_id,
        user_id,
        expires_at,
    }))
}

impl ReachStore for SqliteStore {
    fn put_push_subscription(
        &self,
        subscription: PushSubscription,
    ) -> Pending<(PushSubscription, bool)> {
        self.submit(move |tx, _| Ok(Ok(put_subscription(tx, &subscription)?)))
    }

    fn push_subscriptions(&self, user_id: String) -> Pending<Vec<PushSubscription>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = ?1
                 ORDER BY created_at, id"
            ))?
            .query_map([user_id], subscription)?
            .collect()
        })
    }

    fn delete_push_subscription(&self, user_id: Option<String>, id: String) -> Pending<bool> {
        self.submit(move |tx, _| {
            let removed = tx.execute(
                "DELETE FROM push_subscriptions WHERE id = ?1 AND (?2 IS NULL OR user_id = ?2)",
                params![id, user_id],
            )?;
            Ok(Ok(removed > 0))
        })
    }

    fn put_contact(&self, user_id: String, email: String) -> Pending<()> {
        self.submit(move |tx, _| {
            tx.execute(
                "INSERT INTO contacts (user_id, email) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,
                   unsubscribed_at = CASE WHEN contacts.email = excluded.email
                                          THEN contacts.unsubscribed_at END",
                params![user_id, email],
            )?;
            Ok(Ok(()))
        })
    }

    fn unsubscribe(&self, user_id: String, now: u64) -> Pending<bool> {
        self.submit(move |tx, _| {
            let changed = tx.execute(
                "UPDATE contacts SET unsubscribed_at = COALESCE(unsubscribed_at, ?2)
                 WHERE user_id = ?1",
                params![user_id, now],
            )?;
            Ok(Ok(changed > 0))
        })
    }

    fn reach_facts(&self) -> Pending<Vec<ReachFacts>> {
        self.read(facts)
    }

    fn reach_enqueue(&self, notices: Vec<Notice>, now: u64) -> Pending<u32> {
        self.submit(move |tx, _| Ok(Ok(enqueue(tx, &notices, now)?)))
    }

    fn reach_due(&self, now: u64, limit: u32) -> Pending<Vec<Delivery>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM reach_outbox
                 WHERE state = 'pending' AND next_at <= ?1 ORDER BY id LIMIT ?2"
            ))?
            .query_map(params![now, limit], delivery)?
            .collect()
        })
    }

    fn reach_settle(&self, delivery: Delivery, settled: Settled, now: u64) -> Pending<()> {
        self.submit(move |tx, _| Ok(Ok(settle(tx, &delivery, &settled, now)?)))
    }

    fn redeem_link(&self, id: String, now: u64) -> Pending<Redeemed> {
        self.submit(move |tx, _| Ok(Ok::<_, StoreError>(redeem(tx, &id, now)?)))
    }
}
