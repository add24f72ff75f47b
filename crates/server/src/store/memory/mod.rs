//! The in-memory store: the fast reference implementation. Everything sits behind one mutex, so
//! every operation is trivially atomic and ordered; nothing is durable. Used by tests and as the
//! model the other stores are checked against. The delivery contract ([`MessageStore`]) is here;
//! membership and the operators' workflow ([`super::WorkflowStore`]) are in `manage.rs`.

mod accounts;
mod canned;
mod manage;
mod reach;
mod search;
mod uploads;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use protocol::api::{ConversationSummary, ConversationView, ParticipantSpec};
use protocol::frames::{ConversationState, ConversationStatus, ParticipantState};
use serde_json::{json, Value};

use super::ledger::{self, AppendFacts, AppendPlan, ReceiptFacts, SenderFacts, Writes};
use super::workflow;
use super::{
    new_epoch, AppendRequest, Appended, CommitListener, Committed, EventRecord, Listener,
    MessageStore, Pending, ReceiptOutcome, ReceiptRequest, StoreError, StoredMessage, Webhook,
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
    /// (node, operator) → (available, expires at).
    presence: HashMap<(String, String), (bool, u64)>,
    counters: HashMap<String, u64>,
    /// User → tokens issued at or before this second are refused.
    revocations: HashMap<String, u64>,
    /// The operator directory, by id.
    operators: std::collections::BTreeMap<String, protocol::api::Operator>,
    /// Push subscriptions, contacts, marks, outbox and links (see `reach.rs`).
    reach: reach::ReachState,
    /// Accounts, sessions, reset tokens and the audit log (see `accounts.rs`).
    accounts: accounts::AccountState,
    /// Saved replies (see `canned.rs`).
    canned: Vec<crate::store::canned::CannedReply>,
    /// Uploads and the messages naming them (see `uploads.rs`).
    uploads: uploads::UploadState,
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

    /// Stores a planned message (its conversation exists, its `seq` is the next one), records its
    /// event and reports it.
    fn store(&mut self, listener: &Listener, message: Arc<StoredMessage>) {
        let c = self
            .conversations
            .get_mut(&message.conversation)
            .expect("the conversation exists");
        debug_assert_eq!(
            message.seq,
            c.messages.len() as u64 + 1,
            "planned seq follows"
        );
        c.messages.push(message.clone());
        for attachment in &message.attachments {
            self.uploads
                .naming
                .entry(attachment.id.clone())
                .or_default()
                .push(message.kind);
        }
        self.ids.insert(
            message.id.clone(),
            (message.conversation.clone(), message.seq),
        );
        if let Some((kind, data)) = workflow::message_event(&message) {
            self.event(kind, &message.conversation, data, message.ts);
        }
        listener.notify(Committed::Message(message));
    }

    /// Applies an append's writes to `conversation`.
    fn apply(&mut self, listener: &Listener, conversation: &str, writes: Writes, ts: u64) {
        for message in writes.messages {
            self.store(listener, message);
        }
        if let Some(status) = writes.status {
            self.conversations
                .get_mut(conversation)
                .expect("the conversation exists")
                .status = status;
        }
        for (kind, data) in writes.events {
            self.event(kind, conversation, data, ts);
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
        let existing = state.conversations.get(id).map(|c| &c.participants[..]);
        let plan = ledger::plan_participants(existing, wanted, participants_max, create)?;
        let (created, new) = (plan.create, plan.new);
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

impl MessageStore for MemoryStore {
    fn attach(&self, listener: Arc<dyn CommitListener>) {
        self.listener.attach(listener);
    }

    fn append(&self, request: AppendRequest) -> Pending<Appended> {
        let mut state = self.lock();
        let existing = state
            .ids
            .get(&request.id)
            .map(|(c, seq)| state.conversations[c].messages[*seq as usize - 1].clone());
        let after_stored = request
            .after
            .as_ref()
            .is_some_and(|after| state.ids.contains_key(after));
        let sender = state
            .conversations
            .get(&request.conversation)
            .and_then(|c| {
                let role = c
                    .participants
                    .iter()
                    .find(|p| p.user_id == request.sender)?
                    .role;
                Some(SenderFacts {
                    role,
                    closed: c.closed,
                    status: c.status,
                    last_seq: c.messages.len() as u64,
                })
            });
        let uploads = request
            .attachments
            .iter()
            .filter_map(|id| state.uploads.files.get(id).map(|f| f.upload.clone()))
            .collect();
        let facts = AppendFacts {
            existing,
            after_stored,
            sender,
            uploads,
        };
        let result =
            ledger::plan_append(&request, facts, workflow::system_id).map(|plan| match plan {
                AppendPlan::Repeat(message) => Appended {
                    message,
                    created: false,
                },
                AppendPlan::Store(writes) => {
                    let message = writes.messages[0].clone();
                    state.apply(&self.listener, &request.conversation, writes, request.ts);
                    Appended {
                        message,
                        created: true,
                    }
                }
            });
        Self::ready(result)
    }

    fn record_receipt(&self, request: ReceiptRequest) -> Pending<ReceiptOutcome> {
        let mut state = self.lock();
        let facts = match state.conversations.get(&request.conversation) {
            Some(c) => ReceiptFacts {
                participant: c
                    .participants
                    .iter()
                    .find(|p| p.user_id == request.user_id)
                    .cloned(),
                last_seq: c.messages.len() as u64,
            },
            None => ReceiptFacts {
                participant: None,
                last_seq: 0,
            },
        };
        let plan = match ledger::plan_receipt(&request, facts) {
            Ok(plan) => plan,
            Err(err) => return Self::ready(Err(err)),
        };
        if plan.outcome.changed {
            let participant = state
                .conversations
                .get_mut(&request.conversation)
                .and_then(|c| {
                    c.participants
                        .iter_mut()
                        .find(|p| p.user_id == request.user_id)
                })
                .expect("the plan found the participant");
            *participant = plan.outcome.state.clone();
            let now = super::super::now_ms();
            for (kind, data) in plan.events {
                state.event(kind, &request.conversation, data, now);
            }
            self.listener.notify(Committed::Receipt {
                conversation: request.conversation,
                state: plan.outcome.state.clone(),
            });
        }
        Self::ready(Ok(plan.outcome))
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
