//! The in-memory store's [`SearchStore`]: a scan with [`search::matches`].

use std::cmp::Reverse;

use protocol::frames::MessageKind;

use super::MemoryStore;
use crate::store::search::{self, SearchQuery, SearchStore};
use crate::store::{Pending, StoredMessage};

impl SearchStore for MemoryStore {
    fn search(&self, query: SearchQuery) -> Pending<Vec<StoredMessage>> {
        let state = self.lock();
        let mut found: Vec<StoredMessage> = state
            .conversations
            .iter()
            .filter(|(id, _)| query.conversation.as_ref().is_none_or(|c| c == *id))
            .filter(|(_, c)| {
                query
                    .participant
                    .as_ref()
                    .is_none_or(|user| c.participants.iter().any(|p| &p.user_id == user))
            })
            .flat_map(|(_, c)| c.messages.iter())
            .filter(|m| query.include_notes || m.kind != MessageKind::Note)
            .filter(|m| search::matches(&m.body, &query.terms))
            .map(|m| (**m).clone())
            .collect();
        found.sort_by(|a, b| {
            (Reverse(a.ts), Reverse(a.seq), &a.id).cmp(&(Reverse(b.ts), Reverse(b.seq), &b.id))
        });
        found.truncate(query.limit as usize);
        Self::ready(Ok(found))
    }
}
