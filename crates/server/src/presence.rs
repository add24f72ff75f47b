//! Operator availability: `available` / `away` from an explicit switch, `offline` when the
//! operator has no connection for longer than the leave delay (so a page reload does not flap).
//! Changes are pushed to the conversations the operator takes part in as `presence` frames, and
//! round-robin assignment picks among available operators.
//!
//! Presence is ephemeral and kept per node: with several nodes, each node knows the operators
//! connected to it (documented in docs/operations.md).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::frames::{self, PresenceStatus, ServerFrame};

use crate::hub::Hub;

#[derive(Debug)]
struct Entry {
    connections: usize,
    /// The operator's own choice (`available` unless they said `away`).
    switch: PresenceStatus,
    /// What was last told to devices.
    published: PresenceStatus,
    conversations: HashSet<String>,
}

/// The presence of operators connected to this node.
pub struct Presence {
    hub: Arc<Hub>,
    state: Mutex<HashMap<String, Entry>>,
    leave_delay: Duration,
    rotation: Mutex<usize>,
}

impl Presence {
    /// Presence published through `hub`.
    pub fn new(hub: Arc<Hub>, leave_delay: Duration) -> Arc<Self> {
        Arc::new(Presence {
            hub,
            state: Mutex::default(),
            leave_delay,
            rotation: Mutex::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An operator's connection opened, following `conversations`.
    pub fn connected(&self, user: &str, conversations: impl IntoIterator<Item = String>) {
        let mut state = self.lock();
        let entry = state.entry(user.to_owned()).or_insert_with(|| Entry {
            connections: 0,
            switch: PresenceStatus::Available,
            published: PresenceStatus::Offline,
            conversations: HashSet::new(),
        });
        entry.connections += 1;
        entry.conversations.extend(conversations);
        self.publish(user, entry);
    }

    /// An operator's connection closed: offline after the leave delay, unless one reopens.
    pub fn disconnected(self: &Arc<Self>, user: &str) {
        if let Some(entry) = self.lock().get_mut(user) {
            entry.connections = entry.connections.saturating_sub(1);
        }
        let (presence, user) = (self.clone(), user.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(presence.leave_delay).await;
            let mut state = presence.lock();
            if let Some(entry) = state.get_mut(&user) {
                if entry.connections == 0 {
                    presence.publish(&user, entry);
                }
            }
        });
    }

    /// The operator switched to `available` or `away`.
    pub fn switch(&self, user: &str, status: PresenceStatus) {
        if let Some(entry) = self.lock().get_mut(user) {
            entry.switch = status;
            self.publish(user, entry);
        }
    }

    /// An operator's availability as devices see it.
    pub fn status(&self, user: &str) -> PresenceStatus {
        self.lock()
            .get(user)
            .map_or(PresenceStatus::Offline, |e| e.published)
    }

    /// Operators connected to this node whose status is available.
    pub fn available(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| e.connections > 0 && e.switch == PresenceStatus::Available)
            .count()
    }

    /// The next available operator in rotation among those `eligible` accepts (the directory's
    /// active operators), if any (round-robin assignment).
    pub fn next_available(&self, eligible: impl Fn(&str) -> bool) -> Option<String> {
        let mut available: Vec<String> = self
            .lock()
            .iter()
            .filter(|(user, e)| {
                e.connections > 0 && e.switch == PresenceStatus::Available && eligible(user)
            })
            .map(|(user, _)| user.clone())
            .collect();
        available.sort();
        if available.is_empty() {
            return None;
        }
        let mut rotation = self.rotation.lock().unwrap_or_else(|p| p.into_inner());
        let chosen = available[*rotation % available.len()].clone();
        *rotation = rotation.wrapping_add(1);
        Some(chosen)
    }

    /// Tells the operator's conversations if what devices see changed.
    fn publish(&self, user: &str, entry: &mut Entry) {
        let now = if entry.connections == 0 {
            PresenceStatus::Offline
        } else {
            entry.switch
        };
        if now == entry.published {
            return;
        }
        entry.published = now;
        for conversation in &entry.conversations {
            let frame = ServerFrame::Presence(frames::Presence {
                conversation: conversation.clone(),
                user_id: user.to_owned(),
                status: now,
            });
            self.hub
                .broadcast(conversation, frame.encode().into(), Some(user));
        }
    }
}
