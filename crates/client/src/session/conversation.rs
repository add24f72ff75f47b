//! One conversation as a device holds it: the contiguous cursor, the messages held, the
//! participants' receipts, and the statuses of the user's own messages derived from them.

use std::collections::{BTreeMap, HashMap};

use protocol::frames::Message;
use protocol::Role;

use super::types::{ChatMessage, DeliveryStatus, Event};
use super::StoredConversation;

#[derive(Debug)]
pub(crate) struct Conversation {
    pub id: String,
    pub epoch: Option<u64>,
    /// Every message up to this `seq` is held.
    pub cursor: u64,
    /// The user's role here, from `welcome`.
    pub role: Option<Role>,
    /// Held messages by `seq`.
    messages: BTreeMap<u64, ChatMessage>,
    /// Id → seq of held messages.
    ids: HashMap<String, u64>,
    /// Messages received beyond `cursor + 1` (only if the server skipped; never expected).
    /// `None` marks a skipped position (a private note this device may not see).
    early: BTreeMap<u64, Option<Message>>,
    /// user → (role, delivered, read).
    participants: BTreeMap<String, (Role, u64, u64)>,
    /// Own messages acked but not yet held: id → (seq, status).
    acked: HashMap<String, (u64, DeliveryStatus)>,
    /// Own messages (seq → id) not yet delivered, and not yet read.
    undelivered_own: BTreeMap<u64, String>,
    unread_own: BTreeMap<u64, String>,
    /// Seqs of the user's own private notes: clients never receive them, so only other
    /// operators' receipts move their ticks.
    notes: std::collections::BTreeSet<u64>,
    /// The highest `seq` held of a message someone else wrote: receipts report progress past
    /// it, never over the user's own messages alone.
    pub from_others: u64,
    /// Receipt cursors last sent by (or known to the server for) this user.
    pub delivered_sent: u64,
    pub read_sent: u64,
    /// Read cursor the app asked for.
    pub read_wanted: u64,
}

impl Conversation {
    pub(crate) fn new(id: String) -> Self {
        Conversation {
            id,
            epoch: None,
            cursor: 0,
            role: None,
            messages: BTreeMap::new(),
            ids: HashMap::new(),
            early: BTreeMap::new(),
            participants: BTreeMap::new(),
            acked: HashMap::new(),
            undelivered_own: BTreeMap::new(),
            unread_own: BTreeMap::new(),
            notes: Default::default(),
            from_others: 0,
            delivered_sent: 0,
            read_sent: 0,
            read_wanted: 0,
        }
    }

    pub(crate) fn restore(stored: StoredConversation, me: Option<&str>) -> Self {
        let mut conversation = Conversation::new(stored.id);
        conversation.epoch = stored.epoch;
        // The stored cursor is the truth: positions under it without a message were skipped.
        for mut message in stored.messages {
            let Some(seq) = message.seq else { continue };
            if seq > stored.cursor {
                break;
            }
            if me == Some(message.sender.as_str()) {
                // Ticks never go back: a stored `delivered` or `read` stays; anything else
                // restarts from `sent` and moves on with the next receipts.
                let status = match message.status.take() {
                    Some(kept @ (DeliveryStatus::Delivered | DeliveryStatus::Read)) => kept,
                    _ => DeliveryStatus::Sent { seq },
                };
                if status.rank() < DeliveryStatus::Delivered.rank() {
                    conversation.undelivered_own.insert(seq, message.id.clone());
                }
                if status.rank() < DeliveryStatus::Read.rank() {
                    conversation.unread_own.insert(seq, message.id.clone());
                }
                message.status = Some(status);
            } else {
                message.status = None;
                conversation.from_others = seq;
            }
            conversation.ids.insert(message.id.clone(), seq);
            conversation.messages.insert(seq, message);
        }
        conversation.cursor = stored.cursor;
        conversation
    }

    pub(crate) fn messages(&self) -> impl Iterator<Item = &ChatMessage> {
        self.messages.values()
    }

    pub(crate) fn own_status(&self, id: &str) -> Option<DeliveryStatus> {
        if let Some((_, status)) = self.acked.get(id) {
            return Some(status.clone());
        }
        let seq = self.ids.get(id)?;
        self.messages.get(seq)?.status.clone()
    }

    /// Drops everything held: the server's storage was reset.
    pub(crate) fn reset(&mut self, epoch: u64) {
        let id = std::mem::take(&mut self.id);
        let role = self.role;
        *self = Conversation::new(id);
        self.role = role;
        self.epoch = Some(epoch);
    }

    pub(crate) fn participant(&mut self, user: &str, role: Role, delivered: u64, read: u64) {
        let entry = self
            .participants
            .entry(user.to_owned())
            .or_insert((role, 0, 0));
        entry.0 = role;
        entry.1 = entry.1.max(delivered);
        entry.2 = entry.2.max(read);
    }

    /// One of the user's messages got `seq` (its ack, or its echo came first): emits `sent`.
    pub(crate) fn own_sent(
        &mut self,
        id: &str,
        seq: u64,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        if self.ids.contains_key(id) || self.acked.contains_key(id) {
            return;
        }
        self.acked
            .insert(id.to_owned(), (seq, DeliveryStatus::Sent { seq }));
        self.undelivered_own.insert(seq, id.to_owned());
        self.unread_own.insert(seq, id.to_owned());
        events.push_back(Event::DeliveryStatus {
            conversation: self.id.clone(),
            id: id.to_owned(),
            status: DeliveryStatus::Sent { seq },
        });
    }

    /// Records a status of an own message, emitting it if it moved forward.
    pub(crate) fn note_status(
        &mut self,
        id: &str,
        status: DeliveryStatus,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        let current = match (self.acked.get_mut(id), self.ids.get(id)) {
            (Some((_, current)), _) => current,
            (None, Some(seq)) => match self.messages.get_mut(seq).and_then(|m| m.status.as_mut()) {
                Some(current) => current,
                None => return,
            },
            (None, None) => return,
        };
        if status.rank() > current.rank() {
            *current = status.clone();
            events.push_back(Event::DeliveryStatus {
                conversation: self.id.clone(),
                id: id.to_owned(),
                status,
            });
        }
    }

    /// A message from the server (`None`: a skipped position): hold it if it continues the
    /// cursor, then any early ones.
    pub(crate) fn receive(
        &mut self,
        seq: u64,
        message: Option<Message>,
        me: Option<&str>,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        if seq <= self.cursor
            || message
                .as_ref()
                .is_some_and(|m| self.ids.contains_key(&m.id))
        {
            return;
        }
        if seq > self.cursor + 1 {
            self.early.insert(seq, message);
            return;
        }
        self.take(seq, message, me, events);
        while let Some(next) = self.early.remove(&(self.cursor + 1)) {
            self.take(self.cursor + 1, next, me, events);
        }
        self.early.retain(|seq, _| *seq > self.cursor);
        events.push_back(Event::Cursor {
            conversation: self.id.clone(),
            epoch: self.epoch.unwrap_or(0),
            seq: self.cursor,
        });
        self.recompute(me, events);
    }

    fn take(
        &mut self,
        seq: u64,
        message: Option<Message>,
        me: Option<&str>,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        match message {
            Some(message) => self.hold(message, me, events),
            None => self.cursor = seq,
        }
    }

    fn hold(
        &mut self,
        message: Message,
        me: Option<&str>,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        let own = me == Some(message.sender.as_str());
        if own && message.kind == protocol::frames::MessageKind::Note {
            self.notes.insert(message.seq);
        }
        let status = if own {
            let status = match self.acked.remove(&message.id) {
                Some((_, status)) => status,
                None => {
                    // Sent from another device of ours (or acked before a restart).
                    self.undelivered_own.insert(message.seq, message.id.clone());
                    self.unread_own.insert(message.seq, message.id.clone());
                    DeliveryStatus::Sent { seq: message.seq }
                }
            };
            Some(status)
        } else {
            self.from_others = self.from_others.max(message.seq);
            None
        };
        let held = ChatMessage {
            conversation: message.conversation,
            id: message.id,
            seq: Some(message.seq),
            sender: message.sender,
            role: message.role,
            body: message.body,
            ts: Some(message.ts),
            status,
            attachments: message.attachments,
        };
        self.cursor = message.seq;
        self.ids.insert(held.id.clone(), held.seq.unwrap_or(0));
        self.messages.insert(message.seq, held.clone());
        events.push_back(Event::Message(held));
    }

    /// Moves own messages to `delivered` / `read` from the other side's receipts: a client's
    /// message counts once any operator has it, an operator's once any client has it.
    pub(crate) fn recompute(
        &mut self,
        me: Option<&str>,
        events: &mut std::collections::VecDeque<Event>,
    ) {
        let Some(me) = me else { return };
        let my_role = self.role.or_else(|| self.participants.get(me).map(|p| p.0));
        let Some(my_role) = my_role else { return };
        // The other side's cursors move ordinary messages; other operators' move private notes.
        let (mut delivered, mut read, mut notes_delivered, mut notes_read) = (0, 0, 0, 0);
        for (user, (role, d, r)) in &self.participants {
            if user != me && *role != my_role {
                delivered = delivered.max(*d);
                read = read.max(*r);
            } else if user != me && *role == protocol::Role::Operator {
                notes_delivered = notes_delivered.max(*d);
                notes_read = notes_read.max(*r);
            }
        }
        let (delivered, notes_delivered) = (delivered.max(read), notes_delivered.max(notes_read));
        let notes = &self.notes;
        let reached = |seq: u64, other: u64, operators: u64| {
            seq <= if notes.contains(&seq) {
                operators
            } else {
                other
            }
        };
        let newly_delivered: Vec<(u64, String)> = self
            .undelivered_own
            .iter()
            .filter(|(s, _)| reached(**s, delivered, notes_delivered))
            .map(|(s, id)| (*s, id.clone()))
            .collect();
        let newly_read: Vec<(u64, String)> = self
            .unread_own
            .iter()
            .filter(|(s, _)| reached(**s, read, notes_read))
            .map(|(s, id)| (*s, id.clone()))
            .collect();
        for (seq, id) in newly_delivered {
            self.undelivered_own.remove(&seq);
            self.note_status(&id, DeliveryStatus::Delivered, events);
        }
        for (seq, id) in newly_read {
            self.unread_own.remove(&seq);
            self.note_status(&id, DeliveryStatus::Read, events);
        }
    }
}
