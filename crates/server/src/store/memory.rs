//! The in-memory store: the fast reference implementation. Everything sits behind one mutex, so
//! every operation is trivially atomic and ordered; nothing is durable. Used by tests and as the
//! model the other stores are checked against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{ConversationState, ParticipantState};

use super::{
    advance, new_epoch, participants_to_add, AppendRequest, Appended, CommitListener, Committed,
    Listener, Pending, ReceiptOutcome, ReceiptRequest, Store, StoreError, StoredMessage,
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
}

struct Conversation {
    epoch: u64,
    created_at: u64,
    participants: Vec<ParticipantState>,
    messages: Vec<Arc<StoredMessage>>,
}

impl Conversation {
    fn view(&self, id: &str) -> ConversationView {
        ConversationView {
            id: id.to_owned(),
            epoch: self.epoch,
            last_seq: self.messages.len() as u64,
            created_at: self.created_at,
            participants: self.participants.clone(),
        }
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
                && existing.body == request.body;
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
        let Some(conversation) = state.conversations.get_mut(&request.conversation) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let Some(sender) = conversation
            .participants
            .iter()
            .find(|p| p.user_id == request.sender)
        else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let seq = conversation.messages.len() as u64 + 1;
        let message = Arc::new(StoredMessage {
            conversation: request.conversation.clone(),
            id: request.id.clone(),
            seq,
            sender: request.sender,
            role: sender.role,
            body: request.body,
            ts: request.ts,
        });
        conversation.messages.push(message.clone());
        state.ids.insert(request.id, (request.conversation, seq));
        self.listener.notify(Committed::Message(message.clone()));
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
        let changed = (delivered, read) != (participant.delivered, participant.read);
        participant.delivered = delivered;
        participant.read = read;
        let outcome = ReceiptOutcome {
            state: participant.clone(),
            changed,
        };
        if changed {
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
                let unread = c
                    .messages
                    .iter()
                    .skip(me.read as usize)
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
                    last_message: c.messages.last().map(|m| (**m).clone()),
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
}

/// Most recently active first (by last message time, then creation), ties by id.
pub(crate) fn sort_summaries(rows: &mut [ConversationSummary]) {
    rows.sort_by(|a, b| {
        let at = a.last_message.as_ref().map_or(0, |m| m.ts);
        let bt = b.last_message.as_ref().map_or(0, |m| m.ts);
        bt.cmp(&at).then_with(|| a.id.cmp(&b.id))
    });
}
