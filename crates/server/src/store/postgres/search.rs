//! [`SearchStore`] on PostgreSQL: the generated `tsvector` of `0008_search.sql` and its GIN
//! index, on pooled connections.

use super::read::{message, MESSAGE_COLUMNS_OF_M};
use super::PgStore;
use crate::store::search::{SearchQuery, SearchStore};
use crate::store::{Pending, StoredMessage};

/// The `to_tsquery` text of some terms: each a quoted lexeme (so nothing in it is an operator)
/// matched as a prefix; all of them must match. Accents are already removed from the terms, as
/// the indexed column removes them from bodies.
fn ts_query(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("'{}':*", term.replace('\\', "\\\\").replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(" & ")
}

impl SearchStore for PgStore {
    fn search(&self, query: SearchQuery) -> Pending<Vec<StoredMessage>> {
        let columns = MESSAGE_COLUMNS_OF_M;
        self.read(move |c| async move {
            if query.terms.is_empty() {
                return Ok(Vec::new());
            }
            let rows = c
                .query(
                    &format!(
                        "SELECT {columns} FROM messages m
                         WHERE m.search @@ to_tsquery('simple', $1)
                           AND ($2::text IS NULL OR m.conversation_id = $2)
                           AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM participants p
                                WHERE p.conversation_id = m.conversation_id AND p.user_id = $3))
                           AND ($4 OR m.kind <> 'note')
                         ORDER BY m.created_at DESC, m.seq DESC, m.id
                         LIMIT $5"
                    ),
                    &[
                        &ts_query(&query.terms),
                        &query.conversation,
                        &query.participant,
                        &query.include_notes,
                        &i64::from(query.limit),
                    ],
                )
                .await?;
            Ok(rows.iter().map(message).collect::<Result<Vec<_>, _>>()?)
        })
    }
}
