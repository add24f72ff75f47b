//! The fan-out hub: maps conversations and users to connected devices, and wakes them when
//! something they care about is committed.
//!
//! The store is the truth; the hub only carries notices. Each connection has a bounded queue; when
//! it is full the connection is marked lagging and closed (close code 4409) — it resumes from its
//! cursors, so nothing is lost and nothing is buffered without bound. A message notice carries the
//! already-encoded frame so that fan-out to N devices encodes once, not N times.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::Instant;

use protocol::frames::{self, MessageKind, ServerFrame};
use protocol::Role;
use tokio::sync::{mpsc, Notify};

use crate::metrics::Metrics;
use crate::store::{CommitListener, Committed, StoredMessage};

/// What the hub tells a connection.
#[derive(Debug, Clone)]
pub enum HubEvent {
    /// A message was stored; `frame` is its encoded `message` frame.
    Message {
        /// The message.
        message: Arc<StoredMessage>,
        /// Its `message` frame, encoded once for every subscriber.
        frame: Arc<str>,
    },
    /// An encoded frame of `conversation` to forward as is (`receipt`, `typing`).
    Frame {
        /// The conversation it belongs to (checked by the connection before forwarding).
        conversation: Arc<str>,
        /// The encoded frame.
        frame: Arc<str>,
    },
    /// Messages up to `seq` exist in storage (stored by another node): catch up if behind.
    Wake {
        /// Conversation id.
        conversation: Arc<str>,
        /// The newest seq known.
        seq: u64,
    },
    /// Notices may have been lost: reread the state of every conversation.
    Refresh,
    /// The connection's user joined a conversation.
    Joined(String),
    /// The connection's user left a conversation.
    Left(String),
    /// The connection's user's tokens were revoked.
    Revoked,
}

/// One connected device as the hub sees it.
pub struct Subscriber {
    id: u64,
    user_id: String,
    queue: mpsc::Sender<HubEvent>,
    lagging: AtomicBool,
    lag: Notify,
}

impl Subscriber {
    /// The connection's id.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Resolves when the connection's queue overflowed; the connection must close.
    pub async fn lagged(&self) {
        if self.lagging.load(Ordering::Acquire) {
            return;
        }
        self.lag.notified().await;
    }

    /// Queues `event`; `false` if the queue was full and it was dropped (the connection is then
    /// lagging and closes).
    fn deliver(&self, event: HubEvent) -> bool {
        if self.queue.try_send(event).is_ok() {
            return true;
        }
        if !self.lagging.swap(true, Ordering::AcqRel) {
            self.lag.notify_one();
        }
        false
    }
}

#[derive(Default)]
struct HubState {
    by_conversation: HashMap<String, Vec<Arc<Subscriber>>>,
    by_user: HashMap<String, Vec<Arc<Subscriber>>>,
}

/// The hub.
#[derive(Default)]
pub struct Hub {
    state: Mutex<HubState>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
}

/// Why a connection could not register.
#[derive(Debug, PartialEq, Eq)]
pub struct TooManyConnections;

/// A registered connection: its queue, and its removal from the hub when dropped.
pub struct Registration {
    hub: Arc<Hub>,
    subscriber: Arc<Subscriber>,
    /// Notices for this connection.
    pub events: mpsc::Receiver<HubEvent>,
}

impl Registration {
    /// The hub's view of this connection.
    pub fn subscriber(&self) -> &Arc<Subscriber> {
        &self.subscriber
    }

    /// Starts receiving notices for a conversation.
    pub fn subscribe(&self, conversation: &str) {
        let mut state = self.hub.lock();
        let list = state
            .by_conversation
            .entry(conversation.to_owned())
            .or_default();
        if !list.iter().any(|s| s.id == self.subscriber.id) {
            list.push(self.subscriber.clone());
        }
    }

    /// Stops receiving notices for a conversation.
    pub fn unsubscribe(&self, conversation: &str) {
        let mut state = self.hub.lock();
        remove_from(&mut state.by_conversation, conversation, self.subscriber.id);
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        let id = self.subscriber.id;
        state.by_conversation.retain(|_, list| {
            list.retain(|s| s.id != id);
            !list.is_empty()
        });
        remove_from(&mut state.by_user, &self.subscriber.user_id, id);
    }
}

fn remove_from(map: &mut HashMap<String, Vec<Arc<Subscriber>>>, key: &str, id: u64) {
    if let Some(list) = map.get_mut(key) {
        list.retain(|s| s.id != id);
        if list.is_empty() {
            map.remove(key);
        }
    }
}

impl Hub {
    /// A hub with no connections, counting into metrics of its own.
    pub fn new() -> Arc<Self> {
        Arc::new(Hub::default())
    }

    /// A hub with no connections, counting drops and delivery times into `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Hub {
            metrics,
            ..Hub::default()
        })
    }

    /// Queues `event` for `subscriber`, counting it if dropped.
    fn deliver(&self, subscriber: &Subscriber, event: HubEvent) {
        if !subscriber.deliver(event) {
            self.metrics.hub_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection of `user_id` with a queue of `capacity` notices, unless the user
    /// already has `per_user_max` connections.
    pub fn register(
        self: &Arc<Self>,
        user_id: &str,
        capacity: usize,
        per_user_max: usize,
    ) -> Result<Registration, TooManyConnections> {
        let (queue, events) = mpsc::channel(capacity.max(1));
        let subscriber = Arc::new(Subscriber {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            user_id: user_id.to_owned(),
            queue,
            lagging: AtomicBool::new(false),
            lag: Notify::new(),
        });
        let mut state = self.lock();
        let list = state.by_user.entry(user_id.to_owned()).or_default();
        if list.len() >= per_user_max {
            return Err(TooManyConnections);
        }
        list.push(subscriber.clone());
        drop(state);
        Ok(Registration {
            hub: self.clone(),
            subscriber,
            events,
        })
    }

    /// Conversations with at least one connection on this node.
    pub fn conversations(&self) -> Vec<String> {
        self.lock().by_conversation.keys().cloned().collect()
    }

    /// Whether `user` has a connection on this node.
    pub fn has_user(&self, user: &str) -> bool {
        self.lock().by_user.contains_key(user)
    }

    /// Connections currently registered.
    pub fn connections(&self) -> usize {
        self.lock().by_user.values().map(Vec::len).sum()
    }

    /// Sends an encoded frame to the devices following `conversation`, except `except_user`'s.
    pub fn broadcast(&self, conversation: &str, frame: Arc<str>, except_user: Option<&str>) {
        let event = HubEvent::Frame {
            conversation: conversation.into(),
            frame,
        };
        let state = self.lock();
        for subscriber in state
            .by_conversation
            .get(conversation)
            .into_iter()
            .flatten()
        {
            if Some(subscriber.user_id.as_str()) != except_user {
                self.deliver(subscriber, event.clone());
            }
        }
    }

    /// Forwards a typing signal to the other users' devices in the conversation.
    pub fn typing(&self, conversation: &str, user_id: &str, role: Role, active: bool) {
        let frame: Arc<str> = ServerFrame::Typing(frames::Typing {
            conversation: conversation.to_owned(),
            user_id: user_id.to_owned(),
            role,
            active,
        })
        .encode()
        .into();
        let event = HubEvent::Frame {
            conversation: conversation.into(),
            frame,
        };
        let state = self.lock();
        for subscriber in state
            .by_conversation
            .get(conversation)
            .into_iter()
            .flatten()
        {
            if subscriber.user_id != user_id {
                self.deliver(subscriber, event.clone());
            }
        }
    }

    fn to_conversation(&self, conversation: &str, event: HubEvent) {
        let state = self.lock();
        for subscriber in state
            .by_conversation
            .get(conversation)
            .into_iter()
            .flatten()
        {
            self.deliver(subscriber, event.clone());
        }
    }

    fn to_user(&self, user_id: &str, event: HubEvent) {
        let state = self.lock();
        for subscriber in state.by_user.get(user_id).into_iter().flatten() {
            self.deliver(subscriber, event.clone());
        }
    }
}

impl CommitListener for Hub {
    fn committed(&self, change: Committed) {
        match change {
            Committed::Message(message) => {
                if message.kind == MessageKind::Text {
                    self.metrics.message_stored(
                        &message.conversation,
                        message.seq,
                        &message.sender,
                        Instant::now(),
                    );
                }
                let frame: Arc<str> = ServerFrame::Message((*message).clone()).encode().into();
                let conversation = message.conversation.clone();
                self.to_conversation(&conversation, HubEvent::Message { message, frame });
            }
            Committed::Receipt {
                conversation,
                state,
            } => {
                self.metrics.cursors_moved(
                    &conversation,
                    &state.user_id,
                    state.delivered,
                    state.read,
                    Instant::now(),
                );
                let frame: Arc<str> = ServerFrame::Receipt(frames::Receipt {
                    conversation: conversation.clone(),
                    user_id: state.user_id,
                    role: state.role,
                    delivered: state.delivered,
                    read: state.read,
                })
                .encode()
                .into();
                let event = HubEvent::Frame {
                    conversation: conversation.as_str().into(),
                    frame,
                };
                self.to_conversation(&conversation, event);
            }
            Committed::Joined {
                conversation,
                user_id,
            } => {
                self.to_user(&user_id, HubEvent::Joined(conversation));
            }
            Committed::Left {
                conversation,
                user_id,
            } => {
                self.to_user(&user_id, HubEvent::Left(conversation));
            }
            Committed::Notice { conversation, seq } => {
                let event = HubEvent::Wake {
                    conversation: conversation.as_str().into(),
                    seq,
                };
                self.to_conversation(&conversation, event);
            }
            Committed::Revoked { user_id } => self.to_user(&user_id, HubEvent::Revoked),
            Committed::Missed => {
                let state = self.lock();
                for subscriber in state.by_user.values().flatten() {
                    self.deliver(subscriber, HubEvent::Refresh);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64) -> Committed {
        Committed::Message(Arc::new(StoredMessage {
            conversation: "b1".into(),
            id: format!("m{seq}"),
            seq,
            sender: "ana".into(),
            role: Role::Client,
            body: "hi".into(),
            ts: 0,
            kind: MessageKind::Text,
            data: None,
            attachments: Vec::new(),
        }))
    }

    #[test]
    fn a_full_queue_marks_the_connection_lagging_and_counts_every_drop() {
        let metrics = Arc::new(Metrics::default());
        let hub = Hub::with_metrics(metrics.clone());
        let registration = hub.register("olga", 2, 8).unwrap();
        registration.subscribe("b1");
        for seq in 1..=5 {
            hub.committed(message(seq));
        }
        assert!(registration.subscriber().lagging.load(Ordering::Acquire));
        assert_eq!(metrics.hub_drops.load(Ordering::Relaxed), 3);
    }
}
