//! The in-memory store's half for conversations as the integrator and the operators manage
//! them: membership, the inbox, workflow changes, events, webhooks and leases.

use std::sync::Arc;

use protocol::api::{ConversationSummary, ConversationView, Operator, ParticipantSpec};
use protocol::frames::{MessageKind, ParticipantState};
use protocol::Role;

use super::{sort_summaries, MemoryStore};
use crate::store::ledger;
use crate::store::workflow;
use crate::store::{
    Committed, ConversationChange, EventRecord, Pending, StoreError, StoredMessage, Webhook,
    WorkflowStore,
};

impl WorkflowStore for MemoryStore {
    fn create_conversation(
        &self,
        id: String,
        participants: Vec<ParticipantSpec>,
        participants_max: usize,
        now: u64,
    ) -> Pending<(ConversationView, bool)> {
        let result = self
            .add_participants(&id, &participants, participants_max, now, true)
            .map(|(view, created, _)| (view, created));
        Self::ready(result)
    }

    fn add_participant(
        &self,
        conversation: String,
        participant: ParticipantSpec,
        participants_max: usize,
        now: u64,
    ) -> Pending<bool> {
        let result = self
            .add_participants(&conversation, &[participant], participants_max, now, false)
            .map(|(_, _, added)| added > 0);
        Self::ready(result)
    }

    fn remove_participant(&self, conversation: String, user_id: String) -> Pending<bool> {
        let mut state = self.lock();
        let Some(c) = state.conversations.get_mut(&conversation) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let before = c.participants.len();
        c.participants.retain(|p| p.user_id != user_id);
        let removed = c.participants.len() < before;
        if removed {
            self.listener.notify(Committed::Left {
                conversation,
                user_id,
            });
        }
        Self::ready(Ok(removed))
    }

    fn erase_conversation(&self, id: String) -> Pending<bool> {
        let mut state = self.lock();
        let Some(c) = state.conversations.remove(&id) else {
            return Self::ready(Ok(false));
        };
        for message in &c.messages {
            state.ids.remove(&message.id);
        }
        state.events.retain(|e| e.conversation != id);
        state.erase_uploads(&id);
        for p in c.participants {
            self.listener.notify(Committed::Left {
                conversation: id.clone(),
                user_id: p.user_id,
            });
        }
        Self::ready(Ok(true))
    }

    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        let state = self.lock();
        Self::ready(Ok(state.conversations.get(&id).map(|c| c.view(&id))))
    }

    fn conversations_of(&self, user_id: String) -> Pending<Vec<ConversationSummary>> {
        let state = self.lock();
        let mut rows: Vec<ConversationSummary> = state
            .conversations
            .iter()
            .filter_map(|(id, c)| {
                let me = c.participants.iter().find(|p| p.user_id == user_id)?;
                let visible = |m: &&Arc<StoredMessage>| {
                    m.kind == MessageKind::Text
                        || (m.kind == MessageKind::Note && me.role == Role::Operator)
                };
                let unread = c
                    .messages
                    .iter()
                    .skip(me.read as usize)
                    .filter(visible)
                    .filter(|m| m.sender != user_id)
                    .count() as u64;
                Some(ConversationSummary {
                    id: id.clone(),
                    epoch: c.epoch,
                    last_seq: c.messages.len() as u64,
                    role: me.role,
                    delivered: me.delivered,
                    read: me.read,
                    unread,
                    last_message: c.messages.iter().rev().find(visible).map(|m| (**m).clone()),
                })
            })
            .collect();
        sort_summaries(&mut rows);
        Self::ready(Ok(rows))
    }

    fn change_conversation(
        &self,
        id: String,
        change: ConversationChange,
        now: u64,
    ) -> Pending<ConversationView> {
        let mut state = self.lock();
        let Some(current) = state.conversations.get(&id).map(|c| c.view(&id)) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let facts = workflow::ChangeFacts {
            operators: workflow::named_operators(&current, &change)
                .iter()
                .filter_map(|id| state.operators.get(id).cloned())
                .collect(),
        };
        let plan = match workflow::plan_change(&current, &change, &facts) {
            Ok(plan) => plan,
            Err(err) => return Self::ready(Err(err)),
        };
        let c = state.conversations.get_mut(&id).expect("exists");
        if let Some(operator) = &plan.add_operator {
            c.participants.push(ParticipantState {
                user_id: operator.clone(),
                role: Role::Operator,
                delivered: 0,
                read: 0,
            });
        }
        (c.status, c.assignee, c.metadata, c.closed) = (
            plan.status,
            plan.assignee.clone(),
            plan.metadata.clone(),
            plan.closed,
        );
        if let Some(operator) = plan.add_operator.clone() {
            self.listener.notify(Committed::Joined {
                conversation: id.clone(),
                user_id: operator,
            });
        }
        let writes = ledger::change_writes(&id, current.last_seq, &change.by, plan, now);
        state.apply(&self.listener, &id, writes, now);
        let view = state.conversations[&id].view(&id);
        Self::ready(Ok(view))
    }

    fn events_since(&self, after: u64, limit: u32) -> Pending<Vec<EventRecord>> {
        let state = self.lock();
        Self::ready(Ok(state
            .events
            .iter()
            .skip(after as usize)
            .take(limit as usize)
            .cloned()
            .collect()))
    }

    fn flag_unread(&self, after: u64, older_than: u64, now: u64) -> Pending<u64> {
        let mut state = self.lock();
        let mut due = Vec::new();
        for (id, c) in &state.conversations {
            for m in &c.messages {
                let read_by_recipient = c
                    .participants
                    .iter()
                    .any(|p| p.role != m.role && p.read >= m.seq);
                if m.kind == MessageKind::Text
                    && m.ts > after
                    && m.ts <= older_than
                    && !read_by_recipient
                    && !state.flagged.contains(&m.id)
                {
                    due.push((id.clone(), m.clone()));
                }
            }
        }
        for (conversation, message) in &due {
            state.flagged.insert(message.id.clone());
            state.event(
                "message.unread_timeout",
                conversation,
                serde_json::to_value(&**message).expect("serialises"),
                now,
            );
        }
        Self::ready(Ok(due.len() as u64))
    }

    fn conversation_ids(&self, limit: u32) -> Pending<Vec<String>> {
        let mut ids: Vec<String> = self.lock().conversations.keys().cloned().collect();
        ids.sort();
        ids.truncate(limit as usize);
        Self::ready(Ok(ids))
    }

    fn webhooks(&self) -> Pending<Vec<Webhook>> {
        Self::ready(Ok(self.lock().webhooks.clone()))
    }

    fn create_webhook(&self, url: String, secret: String, now: u64) -> Pending<Webhook> {
        let mut state = self.lock();
        let webhook = Webhook {
            id: state.webhooks.iter().map(|w| w.id).max().unwrap_or(0) + 1,
            url,
            secret,
            state: "active".into(),
            delivered_up_to: state.events.len() as u64,
            failing_since: 0,
            failures: 0,
            last_error: None,
            created_at: now,
        };
        state.webhooks.push(webhook.clone());
        Self::ready(Ok(webhook))
    }

    fn update_webhook(&self, webhook: Webhook) -> Pending<()> {
        let mut state = self.lock();
        match state.webhooks.iter_mut().find(|w| w.id == webhook.id) {
            Some(slot) => {
                *slot = webhook;
                Self::ready(Ok(()))
            }
            None => Self::ready(Err(StoreError::NotFound)),
        }
    }

    fn delete_webhook(&self, id: u64) -> Pending<bool> {
        let mut state = self.lock();
        let before = state.webhooks.len();
        state.webhooks.retain(|w| w.id != id);
        Self::ready(Ok(state.webhooks.len() < before))
    }

    fn operators(&self) -> Pending<Vec<Operator>> {
        Self::ready(Ok(self.lock().operators.values().cloned().collect()))
    }

    fn operator(&self, id: String) -> Pending<Option<Operator>> {
        Self::ready(Ok(self.lock().operators.get(&id).cloned()))
    }

    fn put_operator(&self, operator: Operator) -> Pending<bool> {
        let mut state = self.lock();
        let created = state
            .operators
            .insert(operator.id.clone(), operator)
            .is_none();
        Self::ready(Ok(created))
    }

    fn delete_operator(&self, id: String) -> Pending<bool> {
        Self::ready(Ok(self.lock().operators.remove(&id).is_some()))
    }

    fn lease(&self, name: String, holder: String, ttl_ms: u64, now: u64) -> Pending<bool> {
        let mut state = self.lock();
        let free = state
            .leases
            .get(&name)
            .is_none_or(|(h, until)| *h == holder || *until <= now);
        if free {
            state.leases.insert(name, (holder, now + ttl_ms));
        }
        Self::ready(Ok(free))
    }

    fn put_presence(
        &self,
        node: String,
        operators: Vec<(String, bool)>,
        expires_at: u64,
    ) -> Pending<()> {
        let mut state = self.lock();
        state.presence.retain(|(n, _), _| *n != node);
        for (user, available) in operators {
            state
                .presence
                .insert((node.clone(), user), (available, expires_at));
        }
        Self::ready(Ok(()))
    }

    fn presence(&self, now: u64) -> Pending<Vec<(String, bool)>> {
        let mut users: std::collections::BTreeMap<String, bool> = Default::default();
        for ((_, user), (available, expires_at)) in &self.lock().presence {
            if *expires_at > now {
                *users.entry(user.clone()).or_default() |= *available;
            }
        }
        Self::ready(Ok(users.into_iter().collect()))
    }

    fn next_turn(&self, name: String) -> Pending<u64> {
        let mut state = self.lock();
        let value = state.counters.entry(name).or_default();
        *value += 1;
        Self::ready(Ok(*value))
    }

    fn revoke_tokens(&self, user_id: String, at: u64) -> Pending<()> {
        let mut state = self.lock();
        let until = state.revocations.entry(user_id.clone()).or_default();
        *until = (*until).max(at);
        drop(state);
        self.listener.notify(Committed::Revoked { user_id });
        Self::ready(Ok(()))
    }

    fn tokens_revoked_at(&self, user_id: String) -> Pending<Option<u64>> {
        Self::ready(Ok(self.lock().revocations.get(&user_id).copied()))
    }
}
