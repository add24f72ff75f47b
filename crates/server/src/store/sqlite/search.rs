//! [`SearchStore`] on SQLite: the FTS5 index of `0008_search.sql`, on the reader pool.

use rusqlite::params;

use super::read::{message, MESSAGE_COLUMNS_OF_M};
use super::SqliteStore;
use crate::store::search::{SearchQuery, SearchStore};
use crate::store::{Pending, StoredMessage};

/// The FTS5 query of some terms: each quoted (so nothing in it is an operator) and a prefix;
/// all of them must match.
fn fts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("\"{}\"*", term.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

impl SearchStore for SqliteStore {
    fn search(&self, query: SearchQuery) -> Pending<Vec<StoredMessage>> {
        let columns = MESSAGE_COLUMNS_OF_M;
        self.read(move |conn| {
            if query.terms.is_empty() {
                return Ok(Vec::new());
            }
            conn.prepare_cached(&format!(
                "SELECT {columns} FROM message_search s
                 JOIN message_search_rows r ON r.id = s.rowid
                 JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq
                 WHERE message_search MATCH ?1
                   AND (?2 IS NULL OR m.conversation_id = ?2)
                   AND (?3 IS NULL OR EXISTS (SELECT 1 FROM participants p
                        WHERE p.conversation_id = m.conversation_id AND p.user_id = ?3))
                   AND (?4 OR m.kind <> 'note')
                 ORDER BY m.created_at DESC, m.seq DESC, m.id
                 LIMIT ?5"
            ))?
            .query_map(
                params![
                    fts_query(&query.terms),
                    query.conversation,
                    query.participant,
                    query.include_notes,
                    query.limit
                ],
                message,
            )?
            .collect()
        })
    }
}
