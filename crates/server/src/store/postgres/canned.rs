//! [`CannedStore`] on PostgreSQL, on pooled connections: a taken shortcut is the unique
//! constraint refusing the statement, atomic however many nodes save at once.

use tokio_postgres::error::SqlState;
use tokio_postgres::Row;

use super::{Fault, PgStore};
use crate::store::canned::{CannedReply, CannedStore, Saved};
use crate::store::Pending;

const COLUMNS: &str = "id, shortcut, title, body, created_by, created_at, updated_at";

/// The constraint on `canned_replies.shortcut` (named in `0009_canned.sql`).
const SHORTCUT_UNIQUE: &str = "canned_shortcut_unique";

fn reply(row: &Row) -> CannedReply {
    CannedReply {
        id: row.get(0),
        shortcut: row.get(1),
        title: row.get(2),
        body: row.get(3),
        created_by: row.get(4),
        created_at: row.get::<_, i64>(5) as u64,
        updated_at: row.get::<_, i64>(6) as u64,
    }
}

fn taken(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|db| {
        *db.code() == SqlState::UNIQUE_VIOLATION && db.constraint() == Some(SHORTCUT_UNIQUE)
    })
}

impl CannedStore for PgStore {
    fn canned_replies(&self) -> Pending<Vec<CannedReply>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM canned_replies ORDER BY shortcut COLLATE \"C\""
                    ),
                    &[],
                )
                .await?;
            Ok(rows.iter().map(reply).collect())
        })
    }

    fn create_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.read(move |c| async move {
            let stored = c
                .execute(
                    &format!(
                        "INSERT INTO canned_replies ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    ),
                    &[
                        &r.id,
                        &r.shortcut,
                        &r.title,
                        &r.body,
                        &r.created_by,
                        &(r.created_at as i64),
                        &(r.updated_at as i64),
                    ],
                )
                .await;
            match stored {
                Ok(_) => Ok(Saved::Saved(r)),
                Err(err) if taken(&err) => Ok(Saved::ShortcutTaken),
                Err(err) => Err(Fault::Pg(err)),
            }
        })
    }

    fn update_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.read(move |c| async move {
            let stored = c
                .query_opt(
                    &format!(
                        "UPDATE canned_replies SET shortcut = $2, title = $3, body = $4, updated_at = $5
                         WHERE id = $1 RETURNING {COLUMNS}"
                    ),
                    &[&r.id, &r.shortcut, &r.title, &r.body, &(r.updated_at as i64)],
                )
                .await;
            match stored {
                Ok(row) => Ok(row.as_ref().map(reply).map_or(Saved::NotFound, Saved::Saved)),
                Err(err) if taken(&err) => Ok(Saved::ShortcutTaken),
                Err(err) => Err(Fault::Pg(err)),
            }
        })
    }

    fn delete_canned(&self, id: String) -> Pending<bool> {
        self.read(move |c| async move {
            Ok(
                c.execute("DELETE FROM canned_replies WHERE id = $1", &[&id])
                    .await?
                    > 0,
            )
        })
    }
}
