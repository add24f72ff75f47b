//! Delivery to the device: live notices from the hub, catch-up from storage in pages, joins,
//! leaves and refreshes — paced by what the device has read, so that a slow device falls behind
//! (and later reads from storage) instead of making the server buffer for it.

use std::collections::VecDeque;

use protocol::api::ConversationView;
use protocol::frames::{self, ConversationState, MessageKind, ServerFrame};
use protocol::limits::PAGE_LIMIT_MAX;
use protocol::{ErrorCode, Role};

use super::{Core, Metric, Output, Text, WRITE_QUEUE_HIGH_BYTES};
use crate::hub::HubEvent;
use crate::store::{StoreError, StoredMessage};

/// A read the core asks the driver for. One runs at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `messages_since(conversation, after, limit)`; answer with `handle_page`.
    Page {
        /// Conversation id.
        conversation: String,
        /// Read messages after this `seq`.
        after: u64,
        /// At most this many.
        limit: u32,
    },
    /// `conversation(id)`; answer with `handle_conversation`.
    Conversation(String),
    /// `conversation_states_of(user)`; answer with `handle_states`.
    States,
}

/// A page read from storage, being queued for the socket as the device reads.
#[derive(Debug)]
struct Page {
    conversation: String,
    messages: VecDeque<StoredMessage>,
    /// The page was full: more may follow.
    full: bool,
    sent: u64,
}

/// The delivery side of a connection.
#[derive(Debug, Default)]
pub(super) struct Delivery {
    /// Conversations to catch up from storage, in order.
    pub(super) catch_up: VecDeque<String>,
    /// Joins and refreshes to read, before catch-up.
    urgent: VecDeque<Read>,
    /// The read in progress.
    reading: Option<Read>,
    /// A page being queued.
    page: Option<Page>,
}

/// What a device of `role` gets instead of `message` as stored, if anything: clients get a
/// `skip` for a private note, and a transfer's entry without the operators' note.
fn for_device(role: Role, message: &StoredMessage) -> Option<ServerFrame> {
    if role == Role::Operator {
        return None;
    }
    match message.kind {
        MessageKind::Note => Some(ServerFrame::Skip(frames::Skip {
            conversation: message.conversation.clone(),
            seq: message.seq,
        })),
        MessageKind::System => {
            crate::store::workflow::for_clients(message).map(ServerFrame::Message)
        }
        MessageKind::Text => None,
    }
}

impl Core {
    fn below_high_mark(&self) -> bool {
        self.queued_bytes < WRITE_QUEUE_HIGH_BYTES
    }

    /// Notes that messages up to `seq` exist, and queues a catch-up if the device lacks some.
    fn mark_catch_up(&mut self, conversation: &str, seq: u64) {
        if let Some(subscription) = self.conversations.get_mut(conversation) {
            subscription.latest = subscription.latest.max(seq);
            if subscription.latest > subscription.pushed && !subscription.catching_up {
                subscription.catching_up = true;
                self.delivery.catch_up.push_back(conversation.to_owned());
            }
        }
    }

    /// Moves delivery on: queues more of the current page while the device keeps up, then starts
    /// the next read.
    pub(super) fn delivery_next(&mut self) {
        if self.is_closed() {
            return;
        }
        self.queue_page();
        if self.delivery.reading.is_some() || self.delivery.page.is_some() {
            return;
        }
        if let Some(read) = self.delivery.urgent.pop_front() {
            self.delivery.reading = Some(read.clone());
            self.outputs.push_back(Output::Read(read));
            return;
        }
        if !self.below_high_mark() {
            return; // resumes from `handle_written`
        }
        while let Some(conversation) = self.delivery.catch_up.pop_front() {
            let Some(subscription) = self.conversations.get(&conversation) else {
                continue; // left meanwhile
            };
            let read = Read::Page {
                conversation,
                after: subscription.pushed,
                limit: PAGE_LIMIT_MAX,
            };
            self.delivery.reading = Some(read.clone());
            self.outputs.push_back(Output::Read(read));
            return;
        }
    }

    fn queue_page(&mut self) {
        while self.below_high_mark() && !self.is_closed() {
            let Some(page) = self.delivery.page.as_mut() else {
                return;
            };
            let Some(message) = page.messages.pop_front() else {
                let page = self.delivery.page.take().expect("checked above");
                return self.page_done(page);
            };
            let conversation = page.conversation.clone();
            let Some(subscription) = self.conversations.get_mut(&conversation) else {
                self.delivery.page = None; // left meanwhile
                return;
            };
            if message.seq != subscription.pushed + 1 {
                continue; // already forwarded live while this page was read
            }
            subscription.pushed = message.seq;
            let role = subscription.role;
            page.sent += 1;
            self.own_message_pushed(&message);
            let frame = for_device(role, &message).unwrap_or(ServerFrame::Message(message));
            self.send_frame(&frame);
        }
    }

    /// The device now knows `message` is stored: if it is its own, the FIFO guard stops waiting
    /// for a resend of it (the device drops it from its outbox rather than resend it).
    fn own_message_pushed(&mut self, message: &StoredMessage) {
        if message.sender == self.user_id {
            self.sends.fifo.stored(&message.conversation, &message.id);
        }
    }

    fn page_done(&mut self, page: Page) {
        self.outputs
            .push_back(Output::Metric(Metric::Backlog(page.sent)));
        let Some(subscription) = self.conversations.get_mut(&page.conversation) else {
            return;
        };
        // A full page, or messages known to have been stored after this page was read (and not
        // forwarded live because the device was behind): read on.
        if page.full || subscription.latest > subscription.pushed {
            self.delivery.catch_up.push_back(page.conversation);
        } else {
            subscription.catching_up = false;
            let seq = subscription.pushed;
            self.send_frame(&ServerFrame::Synced(frames::Synced {
                conversation: page.conversation,
                seq,
            }));
        }
    }

    fn take_read(&mut self, expected: impl Fn(&Read) -> bool) -> bool {
        let matches = self.delivery.reading.as_ref().is_some_and(expected);
        debug_assert!(matches, "an answer to a read that was not asked for");
        if matches {
            self.delivery.reading = None;
        }
        matches
    }

    /// The answer to `Read::Page`.
    pub fn handle_page(
        &mut self,
        conversation: &str,
        result: Result<Vec<StoredMessage>, StoreError>,
    ) {
        if !self.take_read(|r| matches!(r, Read::Page { conversation: c, .. } if c == conversation))
        {
            return;
        }
        match result {
            Ok(messages) => {
                self.delivery.page = Some(Page {
                    conversation: conversation.to_owned(),
                    full: messages.len() == PAGE_LIMIT_MAX as usize,
                    messages: messages.into(),
                    sent: 0,
                });
                self.delivery_next();
            }
            Err(err) => self.storage_failed(&err),
        }
    }

    /// The answer to `Read::Conversation` (after a `Joined` notice).
    pub fn handle_conversation(
        &mut self,
        id: &str,
        result: Result<Option<ConversationView>, StoreError>,
    ) {
        if !self.take_read(|r| matches!(r, Read::Conversation(c) if c == id)) {
            return;
        }
        match result {
            Ok(Some(view))
                if !self.conversations.contains_key(id)
                    && view.participants.iter().any(|p| p.user_id == self.user_id) =>
            {
                let state = crate::store::state_of(&view);
                self.send_frame(&ServerFrame::Joined(frames::Joined {
                    conversation: state.clone(),
                }));
                self.subscribe(&state, 0);
            }
            Ok(_) => {}
            Err(err) => return self.storage_failed(&err),
        }
        self.delivery_next();
    }

    /// The answer to `Read::States` (after a `Refresh` notice): sends the participants' cursors,
    /// catches up what is behind, and joins or leaves what changed.
    pub fn handle_states(&mut self, result: Result<Vec<ConversationState>, StoreError>) {
        if !self.take_read(|r| *r == Read::States) {
            return;
        }
        let states = match result {
            Ok(states) => states,
            Err(err) => return self.storage_failed(&err),
        };
        let gone: Vec<String> = self
            .conversations
            .keys()
            .filter(|id| !states.iter().any(|s| &s.id == *id))
            .cloned()
            .collect();
        for conversation in gone {
            self.leave(conversation);
        }
        for state in states {
            let Some(subscription) = self.conversations.get(&state.id) else {
                self.send_frame(&ServerFrame::Joined(frames::Joined {
                    conversation: state.clone(),
                }));
                self.subscribe(&state, 0);
                continue;
            };
            if state.last_seq > subscription.pushed {
                self.mark_catch_up(&state.id, state.last_seq);
            }
            for p in &state.participants {
                self.send_frame(&ServerFrame::Receipt(frames::Receipt {
                    conversation: state.id.clone(),
                    user_id: p.user_id.clone(),
                    role: p.role,
                    delivered: p.delivered,
                    read: p.read,
                }));
            }
        }
        self.delivery_next();
    }

    fn leave(&mut self, conversation: String) {
        if self.conversations.remove(&conversation).is_some() {
            self.outputs
                .push_back(Output::Unsubscribe(conversation.clone()));
            self.delivery.catch_up.retain(|c| *c != conversation);
            if self
                .delivery
                .page
                .as_ref()
                .is_some_and(|p| p.conversation == conversation)
            {
                self.delivery.page = None;
            }
            self.send_frame(&ServerFrame::Left(frames::Left { conversation }));
        }
    }

    /// A notice from the hub.
    pub fn handle_notice(&mut self, event: HubEvent) {
        if self.is_closed() {
            return;
        }
        match event {
            HubEvent::Message { message, frame } => {
                let below = self.below_high_mark();
                let Some(subscription) = self.conversations.get_mut(&message.conversation) else {
                    return;
                };
                if message.seq == subscription.pushed + 1 && below {
                    subscription.pushed = message.seq;
                    match for_device(subscription.role, &message) {
                        None => self.send_text(Text::Shared(frame)),
                        Some(instead) => self.send_frame(&instead),
                    }
                    self.own_message_pushed(&message);
                } else if message.seq > subscription.pushed {
                    // A gap, or the device is behind on reading: storage fills it later.
                    self.mark_catch_up(&message.conversation, message.seq);
                }
            }
            HubEvent::Frame {
                conversation,
                frame,
            } => {
                // Only for conversations this connection has (a subscription may be on its way out).
                if self.conversations.contains_key(&*conversation) {
                    self.send_text(Text::Shared(frame));
                }
            }
            HubEvent::Wake { conversation, seq } => self.mark_catch_up(&conversation, seq),
            HubEvent::Refresh => {
                if !self.delivery.urgent.contains(&Read::States) {
                    self.delivery.urgent.push_back(Read::States);
                }
            }
            HubEvent::Joined(conversation) => {
                if !self.conversations.contains_key(&conversation) {
                    self.delivery
                        .urgent
                        .push_back(Read::Conversation(conversation));
                }
            }
            HubEvent::Left(conversation) => self.leave(conversation),
            HubEvent::Revoked => {
                self.error(
                    ErrorCode::TokenInvalid,
                    "this user's tokens were revoked; sign in again",
                    None,
                );
                return self.close(super::Ending::new(
                    protocol::close::UNAUTHORIZED,
                    "token_revoked",
                    "token_revoked",
                ));
            }
        }
        self.delivery_next();
    }
}
