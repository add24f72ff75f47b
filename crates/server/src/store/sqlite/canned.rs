//! [`CannedStore`] on SQLite: reads on the reader pool, writes through the writer, where a taken
//! shortcut is checked and the row written in one job.

use rusqlite::{params, OptionalExtension, Row, Transaction};

use super::SqliteStore;
use crate::store::canned::{CannedReply, CannedStore, Saved};
use crate::store::Pending;

const COLUMNS: &str = "id, shortcut, title, body, created_by, created_at, updated_at";

fn reply(row: &Row<'_>) -> rusqlite::Result<CannedReply> {
    Ok(CannedReply {
        id: row.get(0)?,
        shortcut: row.get(1)?,
        title: row.get(2)?,
        body: row.get(3)?,
        created_by: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

/// Whether a reply other than `id` has `shortcut`. Checked first rather than left to the UNIQUE
/// constraint: a constraint error would fail the writer's batch, when a taken shortcut is an
/// answer.
fn taken(tx: &Transaction<'_>, shortcut: &str, id: &str) -> rusqlite::Result<bool> {
    Ok(tx
        .query_row(
            "SELECT 1 FROM canned_replies WHERE shortcut = ?1 AND id <> ?2",
            params![shortcut, id],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

impl CannedStore for SqliteStore {
    fn canned_replies(&self) -> Pending<Vec<CannedReply>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM canned_replies ORDER BY shortcut"
            ))?
            .query_map([], reply)?
            .collect()
        })
    }

    fn create_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.submit(move |tx, _| {
            if taken(tx, &r.shortcut, &r.id)? {
                return Ok(Ok(Saved::ShortcutTaken));
            }
            tx.execute(
                &format!(
                    "INSERT INTO canned_replies ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params![
                    r.id,
                    r.shortcut,
                    r.title,
                    r.body,
                    r.created_by,
                    r.created_at,
                    r.updated_at
                ],
            )?;
            Ok(Ok(Saved::Saved(r)))
        })
    }

    fn update_canned(&self, r: CannedReply) -> Pending<Saved> {
        self.submit(move |tx, _| {
            let exists = tx
                .query_row("SELECT 1 FROM canned_replies WHERE id = ?1", [&r.id], |_| Ok(()))
                .optional()?
                .is_some();
            if !exists {
                return Ok(Ok(Saved::NotFound));
            }
            if taken(tx, &r.shortcut, &r.id)? {
                return Ok(Ok(Saved::ShortcutTaken));
            }
            let stored = tx
                .query_row(
                    &format!(
                        "UPDATE canned_replies SET shortcut = ?2, title = ?3, body = ?4, updated_at = ?5
                         WHERE id = ?1 RETURNING {COLUMNS}"
                    ),
                    params![r.id, r.shortcut, r.title, r.body, r.updated_at],
                    reply,
                )
                .optional()?;
            Ok(Ok(stored.map_or(Saved::NotFound, Saved::Saved)))
        })
    }

    fn delete_canned(&self, id: String) -> Pending<bool> {
        self.submit(move |tx, _| {
            Ok(Ok(tx.execute(
                "DELETE FROM canned_replies WHERE id = ?1",
                [id],
            )? > 0))
        })
    }
}
