//! [`ReachStore`] on PostgreSQL, on pooled connections (none of it is on a message's path, so it
//! does not go through the writer). What must be atomic is one statement: a notice's mark, link
//! and deliveries are stored by one statement of data-modifying CTEs; a link is used by one
//! conditional `UPDATE`.

use tokio_postgres::Row;

use super::PgStore;
use crate::store::decode::{self, Corrupt};
use crate::store::reach::{
    Channel, Delivery, EmailLink, Notice, PushSubscription, ReachFacts, ReachStore, Redeemed,
    Settled, UnreadMessage, SUBSCRIPTIONS_PER_USER_MAX, UNREAD_MESSAGES_MAX,
};
use crate::store::Pending;

const SUBSCRIPTION_COLUMNS: &str = "id, user_id, endpoint, p256dh, auth, created_at";
const DELIVERY_COLUMNS: &str = "id, channel, conversation_id, user_id, first_seq, up_to_seq, \
                                target, payload, attempts, next_at, expires_at";

fn subscription(row: &Row) -> PushSubscription {
    PushSubscription {
        id: row.get(0),
        user_id: row.get(1),
        endpoint: row.get(2),
        p256dh: row.get(3),
        auth: row.get(4),
        created_at: row.get::<_, i64>(5) as u64,
    }
}

fn delivery(row: &Row) -> Result<Delivery, Corrupt> {
    let channel: &str = row.get(1);
    Ok(Delivery {
        id: row.get::<_, i64>(0) as u64,
        channel: Channel::parse(channel)
            .ok_or_else(|| Corrupt(format!("unknown channel `{channel}`")))?,
        conversation_id: row.get(2),
        user_id: row.get(3),
        first_seq: row.get::<_, i64>(4) as u64,
        up_to_seq: row.get::<_, i64>(5) as u64,
        target: row.get(6),
        payload: row.get(7),
        attempts: row.get::<_, i64>(8) as u32,
        next_at: row.get::<_, i64>(9) as u64,
        expires_at: row.get::<_, i64>(10) as u64,
    })
}

impl ReachStore for PgStore {
    fn put_push_subscription(&self, s: PushSubscription) -> Pending<(PushSubscription, bool)> {
        self.read(move |c| async move {
            // `xmax = 0` only for a row this statement inserted.
            let row = c
                .query_one(
                    "INSERT INTO push_subscriptions (id, user_id, endpoint, p256dh, auth, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (endpoint) DO UPDATE
                     SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth
                     RETURNING (xmax = 0)",
                    &[
                        &s.id,
                        &s.user_id,
                        &s.endpoint,
                        &s.p256dh,
                        &s.auth,
                        &(s.created_at as i64),
                    ],
                )
                .await?;
            let created: bool = row.get(0);
            c.execute(
                "DELETE FROM push_subscriptions WHERE user_id = $1 AND id NOT IN
                   (SELECT id FROM push_subscriptions WHERE user_id = $1
                    ORDER BY created_at DESC, id DESC LIMIT $2)",
                &[&s.user_id, &i64::from(SUBSCRIPTIONS_PER_USER_MAX)],
            )
            .await?;
            let stored = c
                .query_one(
                    &format!(
                        "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE endpoint = $1"
                    ),
                    &[&s.endpoint],
                )
                .await?;
            Ok((subscription(&stored), created))
        })
    }

    fn push_subscriptions(&self, user_id: String) -> Pending<Vec<PushSubscription>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {SUBSCRIPTION_COLUMNS} FROM push_subscriptions WHERE user_id = $1
                         ORDER BY created_at, id"
                    ),
                    &[&user_id],
                )
                .await?;
            Ok(rows.iter().map(subscription).collect())
        })
    }

    fn delete_push_subscription(&self, user_id: Option<String>, id: String) -> Pending<bool> {
        self.read(move |c| async move {
            let removed = c
                .execute(
                    "DELETE FROM push_subscriptions
                     WHERE id = $1 AND ($2::text IS NULL OR user_id = $2)",
                    &[&id, &user_id],
                )
                .await?;
            Ok(removed > 0)
        })
    }

    fn put_contact(&self, user_id: String, email: String) -> Pending<()> {
        self.read(move |c| async move {
            c.execute(
                "INSERT INTO contacts (user_id, email) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,
                   unsubscribed_at = CASE WHEN contacts.email = excluded.email
                                          THEN contacts.unsubscribed_at END",
                &[&user_id, &email],
            )
            .await?;
            Ok(())
        })
    }

    fn unsubscribe(&self, user_id: String, now: u64) -> Pending<bool> {
        self.read(move |c| async move {
            let changed = c
                .execute(
                    "UPDATE contacts SET unsubscribed_at = COALESCE(unsubscribed_at, $2)
                     WHERE user_id = $1",
                    &[&user_id, &(now as i64)],
                )
                .await?;
            Ok(changed > 0)
        })
    }

    fn reach_facts(&self) -> Pending<Vec<ReachFacts>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    "WITH reachable (user_id) AS (
                         SELECT user_id FROM push_subscriptions
                         UNION SELECT user_id FROM contacts WHERE unsubscribed_at IS NULL)
                     SELECT p.conversation_id, p.user_id, p.role, p.read_seq,
                            (SELECT COUNT(*) FROM push_subscriptions s WHERE s.user_id = p.user_id),
                            (SELECT k.email FROM contacts k
                              WHERE k.user_id = p.user_id AND k.unsubscribed_at IS NULL),
                            COALESCE(mp.up_to_seq, 0), COALESCE(me.up_to_seq, 0),
                            COALESCE(me.at, 0)
                     FROM reachable r
                     JOIN participants p ON p.user_id = r.user_id
                     JOIN conversations c ON c.id = p.conversation_id
                     LEFT JOIN reach_marks mp ON mp.conversation_id = p.conversation_id
                          AND mp.user_id = p.user_id AND mp.channel = 'push'
                     LEFT JOIN reach_marks me ON me.conversation_id = p.conversation_id
                          AND me.user_id = p.user_id AND me.channel = 'email'
                     WHERE c.last_seq > p.read_seq",
                    &[],
                )
                .await?;
            let mut facts = Vec::with_capacity(rows.len());
            for row in rows {
                let conversation_id: String = row.get(0);
                let user_id: String = row.get(1);
                let read_seq = row.get::<_, i64>(3);
                let unread = c
                    .query(
                        "SELECT seq, sender_id, sender_role, body, created_at FROM messages
                         WHERE conversation_id = $1 AND seq > $2 AND sender_id <> $3
                           AND kind = 'text'
                         ORDER BY seq LIMIT $4",
                        &[
                            &conversation_id,
                            &read_seq,
                            &user_id,
                            &i64::from(UNREAD_MESSAGES_MAX),
                        ],
                    )
                    .await?
                    .iter()
                    .map(|m| {
                        Ok(UnreadMessage {
                            seq: m.get::<_, i64>(0) as u64,
                            sender_id: m.get(1),
                            sender_role: decode::role(m.get(2))?,
                            body: m.get(3),
                            created_at: m.get::<_, i64>(4) as u64,
                        })
                    })
                    .collect::<Result<Vec<_>, Corrupt>>()?;
                if unread.is_empty() {
                    continue;
                }
                let last = c
                    .query_one(
                        "SELECT COALESCE(MAX(seq), 0), COUNT(*) FROM messages
                         WHERE conversation_id = $1 AND seq > $2 AND sender_id <> $3
                           AND kind = 'text'",
                        &[&conversation_id, &read_seq, &user_id],
                    )
                    .await?;
                facts.push(ReachFacts {
                    role: decode::role(row.get(2))?,
                    read_seq: read_seq as u64,
                    subscriptions: row.get::<_, i64>(4) as u32,
                    email: row.get(5),
                    pushed_up_to: row.get::<_, i64>(6) as u64,
                    emailed_up_to: row.get::<_, i64>(7) as u64,
                    emailed_at: row.get::<_, i64>(8) as u64,
                    unread,
                    last_unread_seq: last.get::<_, i64>(0) as u64,
                    unread_count: last.get::<_, i64>(1) as u64,
                    conversation_id,
                    user_id,
                });
            }
            Ok(facts)
        })
    }

    fn reach_enqueue(&self, notices: Vec<Notice>, now: u64) -> Pending<u32> {
        self.read(move |c| async move {
            let mut stored = 0;
            for n in notices {
                let (targets, payloads): (Vec<String>, Vec<String>) =
                    n.deliveries.into_iter().unzip();
                let link_id = n.link.as_ref().map(|l| l.id.clone());
                let link_expires = n.link.as_ref().map_or(0, |l| l.expires_at as i64);
                let row = c
                    .query_one(
                        "WITH mark AS (
                             INSERT INTO reach_marks (conversation_id, user_id, channel,
                                 up_to_seq, at)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (conversation_id, user_id, channel) DO UPDATE
                             SET up_to_seq = excluded.up_to_seq, at = excluded.at
                             WHERE reach_marks.up_to_seq < excluded.up_to_seq
                             RETURNING 1),
                         link AS (
                             INSERT INTO email_links (id, conversation_id, user_id, expires_at)
                             SELECT $9, $1, $2, $10
                             WHERE $9::text IS NOT NULL AND EXISTS (SELECT 1 FROM mark)
                             RETURNING 1),
                         outbox AS (
                             INSERT INTO reach_outbox (channel, conversation_id, user_id,
                                 first_seq, up_to_seq, target, payload, next_at, expires_at,
                                 created_at)
                             SELECT $3, $1, $2, $6, $4, d.t, d.p, $5, $8, $5
                             FROM unnest($7::text[], $11::text[]) AS d(t, p)
                             WHERE EXISTS (SELECT 1 FROM mark)
                             RETURNING 1)
                         SELECT (SELECT COUNT(*) FROM mark), (SELECT COUNT(*) FROM link),
                                (SELECT COUNT(*) FROM outbox)",
                        &[
                            &n.conversation_id,
                            &n.user_id,
                            &n.channel.as_str(),
                            &(n.up_to_seq as i64),
                            &(now as i64),
                            &(n.first_seq as i64),
                            &targets,
                            &(n.expires_at as i64),
                            &link_id,
                            &link_expires,
                            &payloads,
                        ],
                    )
                    .await?;
                stored += u32::from(row.get::<_, i64>(0) > 0);
            }
            Ok(stored)
        })
    }

    fn reach_due(&self, now: u64, limit: u32) -> Pending<Vec<Delivery>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {DELIVERY_COLUMNS} FROM reach_outbox
                         WHERE state = 'pending' AND next_at <= $1 ORDER BY id LIMIT $2"
                    ),
                    &[&(now as i64), &i64::from(limit)],
                )
                .await?;
            Ok(rows.iter().map(delivery).collect::<Result<_, _>>()?)
        })
    }

    fn reach_settle(&self, d: Delivery, settled: Settled, now: u64) -> Pending<()> {
        self.read(move |c| async move {
            let (state, next_at, error) = match &settled {
                Settled::Sent => ("sent", d.next_at, None),
                Settled::Cancelled => ("cancelled", d.next_at, None),
                Settled::Failed(why) => ("failed", d.next_at, Some(why.clone())),
                Settled::Gone => ("gone", d.next_at, None),
                Settled::Retry { at, error } => ("pending", *at, Some(error.clone())),
            };
            let attempts = d.attempts + u32::from(!matches!(settled, Settled::Cancelled));
            let settled_at = (state != "pending").then_some(now as i64);
            c.execute(
                "UPDATE reach_outbox SET state = $2, attempts = $3, next_at = $4,
                     last_error = COALESCE($5, last_error), settled_at = $6
                 WHERE id = $1",
                &[
                    &(d.id as i64),
                    &state,
                    &i64::from(attempts),
                    &(next_at as i64),
                    &error,
                    &settled_at,
                ],
            )
            .await?;
            if matches!(settled, Settled::Gone) {
                c.execute("DELETE FROM push_subscriptions WHERE id = $1", &[&d.target])
                    .await?;
            }
            Ok(())
        })
    }

    fn redeem_link(&self, id: String, now: u64) -> Pending<Redeemed> {
        self.read(move |c| async move {
            // One statement decides: two clicks at once cannot both open the link.
            if let Some(row) = c
                .query_opt(
                    "UPDATE email_links SET used_at = $2
                     WHERE id = $1 AND used_at IS NULL AND expires_at > $2
                     RETURNING conversation_id, user_id, expires_at",
                    &[&id, &(now as i64)],
                )
                .await?
            {
                return Ok(Redeemed::Opened(EmailLink {
                    conversation_id: row.get(0),
                    user_id: row.get(1),
                    expires_at: row.get::<_, i64>(2) as u64,
                    id,
                }));
            }
            let row = c
                .query_opt("SELECT used_at FROM email_links WHERE id = $1", &[&id])
                .await?;
            Ok(match row {
                None => Redeemed::Unknown,
                Some(row) if row.get::<_, Option<i64>>(0).is_some() => Redeemed::Used,
                Some(_) => Redeemed::Expired,
            })
        })
    }
}
