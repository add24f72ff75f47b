//! The in-memory store: the fast reference implementation. Everything sits behind one mutex, so
//! every operation is trivially atomic and ordered; nothing is durable. Used by tests and as the
//! model the other stores are checked against.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{ConversationState, ConversationStatus, MessageKind, ParticipantState};
use protocol::Role;
use serde_json::{json, Value};

use super::workflow::{self, SystemEntry};
use super::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, CommitListener, Committed,
    ConversationChange, EventRecord, Listener, Pending, ReceiptOutcome, ReceiptRequest, Store,
    StoreError, StoredMessage, Webhook,
};

/// A store that keeps everything in memory.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    listener: Listener,
}

#[derive(Default)]
struct State {
    conversations: HashMap<String, Conversation>,
    /// Message id → (conversation, seq).
    ids: HashMap<String, (String, u64)>,
    events: Vec<EventRecord>,
    /// Messages already reported as `message.unread_timeout`.
    flagged: HashSet<String>,
    webhooks: Vec<Webhook>,
    leases: HashMap<String, (String, u64)>,
}

struct Conversation {
    epoch: u64,
    created_at: u64,
    participants: Vec<ParticipantState>,
    messages: Vec<Arc<StoredMessage>>,
    status: ConversationStatus,
    assignee: Option<String>,
    metadata: Option<Value>,
    closed: bool,
}

impl Conversation {
    fn view(&self, id: &str) -> ConversationView {
        ConversationView {
            id: id.to_owned(),
            epoch: self.epoch,
            last_seq: self.messages.len() as u64,
            created_at: self.created_at,
            participants: self.participants.clone(),
            status: self.status,
            assignee: self.assignee.clone(),
            metadata: self.metadata.clone(),
            closed: self.closed,
        }
    }
}

impl State {
    fn event(&mut self, kind: &str, conversation: &str, data: Value, now: u64) {
        let id = self.events.len() as u64 + 1;
        self.events.push(EventRecord {
            id,
            kind: kind.to_owned(),
            conversation: conversation.to_owned(),
            data,
            created_at: now,
        });
    }

    /// Appends a message to `conversation` (which exists) and reports it.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        listener: &Listener,
        conversation: &str,
        id: String,
        sender: &str,
        role: Role,
        body: String,
        kind: MessageKind,
        data: Option<Value>,
        ts: u64,
    ) -> Arc<StoredMessage> {
        let c = self
            .conversations
            .get_mut(conversation)
            .expect("the conversation exists");
        let message = Arc::new(StoredMessage {
            conversation: conversation.to_owned(),
            id: id.clone(),
            seq: c.messages.len() as u64 + 1,
            sender: sender.to_owned(),
            role,
            body,
            ts,
            kind,
            data,
        });
        c.messages.push(message.clone());
        self.ids.insert(id, (conversation.to_owned(), message.seq));
        if let Some((kind, data)) = workflow::message_event(&message) {
            self.event(kind, conversation, data, ts);
        }
        listener.notify(Committed::Message(message.clone()));
        message
    }

    fn system(
        &mut self,
        listener: &Listener,
        conversation: &str,
        by: &str,
        role: Role,
        entry: SystemEntry,
        now: u64,
    ) {
        self.push(
            listener,
            conversation,
            workflow::system_id(),
            by,
            role,
            entry.body,
            MessageKind::System,
            Some(entry.data),
            now,
        );
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn ready<T: Send + 'static>(result: Result<T, StoreError>) -> Pending<T> {
        Box::pin(std::future::ready(result))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds participants (creating the conversation first if `create`), returning the view,
    /// whether the conversation was created and how many participants were added.
    fn add_participants(
        &self,
        id: &str,
        wanted: &[ParticipantSpec],
        participants_max: usize,
        now: u64,
        create: bool,
    ) -> Result<(ConversationView, bool, usize), StoreError> {
        let mut state = self.lock();
        let created = !state.conversations.contains_key(id);
        if created && !create {
            return Err(StoreError::NotFound);
        }
        let existing = state
            .conversations
            .get(id)
            .map_or(&[][..], |c| &c.participants[..]);
        let new = participants_to_add(existing, wanted, participants_max)?;
        let conversation =
            state
                .conversations
                .entry(id.to_owned())
                .or_insert_with(|| Conversation {
                    epoch: new_epoch(),
                    created_at: now,
                    participants: Vec::new(),
                    messages: Vec::new(),
                    status: ConversationStatus::Open,
                    assignee: None,
                    metadata: None,
                    closed: false,
                });
        conversation
            .participants
            .extend(new.iter().map(|spec| ParticipantState {
                user_id: spec.user_id.clone(),
                role: spec.role,
                delivered: 0,
                read: 0,
            }));
        let view = conversation.view(id);
        if created {
            state.event(
                "conversation.created",
                id,
                json!({"participants": view.participants}),
                now,
            );
        }
        for spec in &new {
            self.listener.notify(Committed::Joined {
                conversation: id.to_owned(),
                user_id: spec.user_id.clone(),
            });
        }
        Ok((view, created, new.len()))
    }
}

impl Store for MemoryStore {
    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.listener.attach(listener);
    }

    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        let mut state = self.lock();
        if let Some((conversation, seq)) = state.ids.get(&request.id) {
            let existing = &state.conversations[conversation].messages[*seq as usize - 1];
            let same = existing.conversation == request.conversation
                && existing.sender == request.sender
                && existing.body == request.body
                && existing.kind == request.kind;
            let result = if same {
                Ok(Appended {
                    message: existing.clone(),
                    created: false,
                })
            } else {
                Err(StoreError::IdConflict)
            };
            return Self::ready(result);
        }
        if request
            .after
            .as_ref()
            .is_some_and(|after| !state.ids.contains_key(after))
        {
            return Self::ready(Err(StoreError::OutOfOrder));
        }
        let Some(conversation) = state.conversations.get(&request.conversation) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let Some(role) = conversation
            .participants
            .iter()
            .find(|p| p.user_id == request.sender)
            .map(|p| p.role)
        else {
            return Self::ready(Err(StoreError::NotFound));
        };
        if conversation.closed {
            return Self::ready(Err(StoreError::Closed));
        }
        if !workflow::may_write(role, request.kind) {
            return Self::ready(Err(StoreError::Forbidden));
        }
        let reopen = workflow::reopen(conversation.status, role, request.kind, &request.sender);
        let message = state.push(
            &self.listener,
            &request.conversation,
            request.id,
            &request.sender,
            role,
            request.body,
            request.kind,
            None,
            request.ts,
        );
        if let Some((entry, (kind, data))) = reopen {
            state
                .conversations
                .get_mut(&request.conversation)
                .expect("exists")
                .status = ConversationStatus::Open;
            state.system(
                &self.listener,
                &request.conversation,
                &request.sender,
                Role::Client,
                entry,
                request.ts,
            );
            state.event(kind, &request.conversation, data, request.ts);
        }
        Self::ready(Ok(Appended {
            message,
            created: true,
        }))
    }

    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome> {
        let mut state = self.lock();
        let Some(conversation) = state.conversations.get_mut(&request.conversation) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let last_seq = conversation.messages.len() as u64;
        let Some(participant) = conversation
            .participants
            .iter_mut()
            .find(|p| p.user_id == request.user_id)
        else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let (delivered, read) =
            match advance(participant, request.delivered, request.read, last_seq) {
                Ok(cursors) => cursors,
                Err(err) => return Self::ready(Err(err)),
            };
        let before = (participant.delivered, participant.read);
        let changed = (delivered, read) != before;
        participant.delivered = delivered;
        participant.read = read;
        let outcome = ReceiptOutcome {
            state: participant.clone(),
            changed,
        };
        if changed {
            for (kind, data) in workflow::receipt_events(
                &request.user_id,
                outcome.state.role,
                before,
                (delivered, read),
            ) {
                state.event(kind, &request.conversation, data, super::super::now_ms());
            }
            self.listener.notify(Committed::Receipt {
                conversation: request.conversation,
                state: outcome.state.clone(),
            });
        }
        Self::ready(Ok(outcome))
    }

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

    fn conversation(&self, id: String) -> Pending<Option<ConversationView>> {
        let state = self.lock();
        Self::ready(Ok(state.conversations.get(&id).map(|c| c.view(&id))))
    }

    fn participant(
        &self,
        conversation: String,
        user_id: String,
    ) -> Pending<Option<ParticipantState>> {
        let state = self.lock();
        let found = state.conversations.get(&conversation).and_then(|c| {
            c.participants
                .iter()
                .find(|p| p.user_id == user_id)
                .cloned()
        });
        Self::ready(Ok(found))
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

    fn conversation_states_of(&self, user_id: String) -> Pending<Vec<ConversationState>> {
        let state = self.lock();
        let mut states: Vec<ConversationState> = state
            .conversations
            .iter()
            .filter(|(_, c)| c.participants.iter().any(|p| p.user_id == user_id))
            .map(|(id, c)| super::state_of(&c.view(id)))
            .collect();
        states.sort_by(|a, b| a.id.cmp(&b.id));
        Self::ready(Ok(states))
    }

    fn states(&self, ids: Vec<String>) -> Pending<Vec<ConversationState>> {
        let state = self.lock();
        let states = ids
            .iter()
            .filter_map(|id| {
                state
                    .conversations
                    .get(id)
                    .map(|c| super::state_of(&c.view(id)))
            })
            .collect();
        Self::ready(Ok(states))
    }

    fn messages_since(
        &self,
        conversation: String,
        after: u64,
        limit: u32,
    ) -> Pending<Vec<StoredMessage>> {
        let state = self.lock();
        let messages = state
            .conversations
            .get(&conversation)
            .map(|c| {
                c.messages
                    .iter()
                    .skip(after as usize)
                    .take(limit as usize)
                    .map(|m| (**m).clone())
                    .collect()
            })
            .unwrap_or_default();
        Self::ready(Ok(messages))
    }

    fn health(&self) -> Pending<()> {
        Self::ready(Ok(()))
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
        let plan = workflow::plan_change(&current, &change);
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
        for entry in plan.entries {
            state.system(&self.listener, &id, &change.by, Role::Operator, entry, now);
        }
        for (kind, data) in plan.events {
            state.event(kind, &id, data, now);
        }
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

    fn flag_unread(&self, older_than: u64, now: u64) -> Pending<u64> {
        let mut state = self.lock();
        let mut due = Vec::new();
        for (id, c) in &state.conversations {
            for m in &c.messages {
                let read_by_recipient = c
                    .participants
                    .iter()
                    .any(|p| p.role != m.role && p.read >= m.seq);
                if m.kind == MessageKind::Text
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
}

/// Most recently active first (by last message time, then creation), ties by id.
pub(crate) fn sort_summaries(rows: &mut [ConversationSummary]) {
    rows.sort_by(|a, b| {
        let at = a.last_message.as_ref().map_or(0, |m| m.ts);
        let bt = b.last_message.as_ref().map_or(0, |m| m.ts);
        bt.cmp(&at).then_with(|| a.id.cmp(&b.id))
    });
}
