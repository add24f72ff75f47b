//! The in-memory store's [`CannedStore`].

use super::MemoryStore;
use crate::store::canned::{CannedReply, CannedStore, Saved};
use crate::store::Pending;

impl CannedStore for MemoryStore {
    fn canned_replies(&self) -> Pending<Vec<CannedReply>> {
        let mut replies = self.lock().canned.clone();
        replies.sort_by(|a, b| a.shortcut.cmp(&b.shortcut));
        Self::ready(Ok(replies))
    }

    fn create_canned(&self, reply: CannedReply) -> Pending<Saved> {
        let mut state = self.lock();
        if state.canned.iter().any(|r| r.shortcut == reply.shortcut) {
            return Self::ready(Ok(Saved::ShortcutTaken));
        }
        state.canned.push(reply.clone());
        Self::ready(Ok(Saved::Saved(reply)))
    }

    fn update_canned(&self, reply: CannedReply) -> Pending<Saved> {
        let mut state = self.lock();
        if !state.canned.iter().any(|r| r.id == reply.id) {
            return Self::ready(Ok(Saved::NotFound));
        }
        if state
            .canned
            .iter()
            .any(|r| r.shortcut == reply.shortcut && r.id != reply.id)
        {
            return Self::ready(Ok(Saved::ShortcutTaken));
        }
        let Some(stored) = state.canned.iter_mut().find(|r| r.id == reply.id) else {
            return Self::ready(Ok(Saved::NotFound));
        };
        stored.shortcut = reply.shortcut;
        stored.title = reply.title;
        stored.body = reply.body;
        stored.updated_at = reply.updated_at;
        Self::ready(Ok(Saved::Saved(stored.clone())))
    }

    fn delete_canned(&self, id: String) -> Pending<bool> {
        let mut state = self.lock();
        let before = state.canned.len();
        state.canned.retain(|r| r.id != id);
        Self::ready(Ok(state.canned.len() < before))
    }
}
