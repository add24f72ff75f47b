//! Operator availability: `available` / `away` from an explicit switch, `offline` when the
//! operator has no connection for longer than the leave delay (so a page reload does not flap).
//! Changes are pushed to the conversations the operator takes part in as `presence` frames, and
//! round-robin assignment picks among available operators.
//!
//! On one node, presence lives in memory. With several nodes ([`Sharing`]) every node also writes
//! the operators connected to it into storage, renewed every `presence_heartbeat_ms` and valid for
//! `presence_ttl_ms`, and announces changes on the cluster bus; every node reads the rows back on
//! an announcement and at each heartbeat. So an operator's availability is the same on every node
//! within a heartbeat (at once when announcements arrive), and a node that dies takes its
//! operators' presence with it within `presence_ttl_ms + presence_heartbeat_ms`. An operator is
//! `available` if any of their devices is, on any node.
//!
//! Round-robin takes its turns from a counter in storage, so two nodes assigning at the same time
//! never take the same turn.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::frames::{self, PresenceStatus, ServerFrame};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::now_ms;
use crate::store::Store;

/// The counter round-robin takes its turns from.
const TURN_COUNTER: &str = "round_robin";

#[derive(Debug)]
struct Entry {
    connections: usize,
    /// The operator's own choice (`available` unless they said `away`).
    switch: PresenceStatus,
    /// What this node's connections say (`offline` only after the leave delay).
    here: PresenceStatus,
    conversations: HashSet<String>,
}

#[derive(Default)]
struct State {
    /// Operators connected to this node (or within their leave delay).
    local: HashMap<String, Entry>,
    /// Operators as the nodes report them in storage, as last read: available or away.
    shared: HashMap<String, PresenceStatus>,
    /// What devices on this node were last told of each operator.
    told: HashMap<String, PresenceStatus>,
}

impl State {
    /// What devices should see: the better of this node's word and the shared one.
    fn effective(&self, user: &str) -> PresenceStatus {
        let here = self
            .local
            .get(user)
            .map_or(PresenceStatus::Offline, |e| e.here);
        let shared = self
            .shared
            .get(user)
            .copied()
            .unwrap_or(PresenceStatus::Offline);
        if rank(here) >= rank(shared) {
            here
        } else {
            shared
        }
    }

    fn told(&self, user: &str) -> PresenceStatus {
        self.told
            .get(user)
            .copied()
            .unwrap_or(PresenceStatus::Offline)
    }
}

fn rank(status: PresenceStatus) -> u8 {
    match status {
        PresenceStatus::Offline => 0,
        PresenceStatus::Away => 1,
        PresenceStatus::Available => 2,
    }
}

/// How this node shares presence with the others.
pub struct Sharing {
    /// The shared storage.
    pub store: Arc<dyn Store>,
    /// Tells the other nodes to read presence again (a cluster notice).
    pub announce: Arc<dyn Fn() + Send + Sync>,
    /// Woken when another node announced a change.
    pub heard: Arc<Notify>,
    /// This node's name in the presence rows (unique per process).
    pub node: String,
    /// How often rows are renewed and read back.
    pub heartbeat: Duration,
    /// How long a row stays valid without renewal.
    pub ttl: Duration,
}

/// The presence of operators, as this node sees it.
pub struct Presence {
    hub: Arc<Hub>,
    state: Mutex<State>,
    leave_delay: Duration,
    rotation: Mutex<usize>,
    sharing: Option<Sharing>,
    /// A local change to write to storage.
    dirty: Notify,
}

impl Presence {
    /// Presence of one node, published through `hub`.
    pub fn new(hub: Arc<Hub>, leave_delay: Duration) -> Arc<Self> {
        Self::build(hub, leave_delay, None)
    }

    /// Presence shared with other nodes through `sharing`, until `shutdown` (which withdraws
    /// this node's operators).
    pub fn shared(
        hub: Arc<Hub>,
        leave_delay: Duration,
        sharing: Sharing,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let presence = Self::build(hub, leave_delay, Some(sharing));
        tokio::spawn(presence.clone().share(shutdown));
        presence
    }

    fn build(hub: Arc<Hub>, leave_delay: Duration, sharing: Option<Sharing>) -> Arc<Self> {
        Arc::new(Presence {
            hub,
            state: Mutex::default(),
            leave_delay,
            rotation: Mutex::new(0),
            sharing,
            dirty: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An operator's connection opened, following `conversations`.
    pub fn connected(&self, user: &str, conversations: impl IntoIterator<Item = String>) {
        let mut state = self.lock();
        let entry = state.local.entry(user.to_owned()).or_insert_with(|| Entry {
            connections: 0,
            switch: PresenceStatus::Available,
            here: PresenceStatus::Offline,
            conversations: HashSet::new(),
        });
        entry.connections += 1;
        entry.conversations.extend(conversations);
        self.settle(&mut state, user);
    }

    /// An operator's connection closed: offline after the leave delay, unless one reopens.
    pub fn disconnected(self: &Arc<Self>, user: &str) {
        if let Some(entry) = self.lock().local.get_mut(user) {
            entry.connections = entry.connections.saturating_sub(1);
        }
        let (presence, user) = (self.clone(), user.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(presence.leave_delay).await;
            let mut state = presence.lock();
            if state.local.get(&user).is_some_and(|e| e.connections == 0) {
                presence.settle(&mut state, &user);
            }
        });
    }

    /// The operator switched to `available` or `away`.
    pub fn switch(&self, user: &str, status: PresenceStatus) {
        let mut state = self.lock();
        if let Some(entry) = state.local.get_mut(user) {
            entry.switch = status;
            self.settle(&mut state, user);
        }
    }

    /// An operator's availability as devices see it.
    pub fn status(&self, user: &str) -> PresenceStatus {
        self.lock().effective(user)
    }

    /// Operators connected to this node whose status is available.
    pub fn available(&self) -> usize {
        self.lock()
            .local
            .values()
            .filter(|e| e.connections > 0 && e.switch == PresenceStatus::Available)
            .count()
    }

    /// The next available operator in rotation among those `eligible` accepts (the directory's
    /// active operators), if any (round-robin assignment). With several nodes, among the
    /// operators available on any node, by a turn no other assignment gets.
    pub async fn next_available(&self, eligible: impl Fn(&str) -> bool) -> Option<String> {
        let available: Vec<String> = {
            let state = self.lock();
            let users: BTreeSet<&String> = state.local.keys().chain(state.shared.keys()).collect();
            users
                .into_iter()
                .filter(|user| state.effective(user) == PresenceStatus::Available && eligible(user))
                .cloned()
                .collect()
        };
        if available.is_empty() {
            return None;
        }
        let shared_turn = match &self.sharing {
            Some(sharing) => sharing.store.next_turn(TURN_COUNTER.into()).await.ok(),
            None => None,
        };
        let turn = shared_turn.map_or_else(
            || {
                let mut rotation = self.rotation.lock().unwrap_or_else(|p| p.into_inner());
                *rotation = rotation.wrapping_add(1);
                *rotation
            },
            |turn| turn as usize,
        );
        Some(available[turn % available.len()].clone())
    }

    /// This node's word on `user` may have changed: tells devices here if what they see
    /// changed, and has the shared rows rewritten.
    fn settle(&self, state: &mut State, user: &str) {
        if let Some(entry) = state.local.get_mut(user) {
            entry.here = if entry.connections == 0 {
                PresenceStatus::Offline
            } else {
                entry.switch
            };
        }
        let now = state.effective(user);
        if now != state.told(user) {
            state.told.insert(user.to_owned(), now);
            let conversations = state
                .local
                .get(user)
                .map(|e| e.conversations.iter().cloned().collect())
                .unwrap_or_default();
            self.tell(user, now, conversations);
        }
        if self.sharing.is_some() {
            self.dirty.notify_one();
        }
    }

    /// Sends `presence` frames to the devices here following `conversations`.
    fn tell(&self, user: &str, status: PresenceStatus, conversations: Vec<String>) {
        for conversation in conversations {
            let frame = ServerFrame::Presence(frames::Presence {
                conversation: conversation.clone(),
                user_id: user.to_owned(),
                status,
            });
            self.hub
                .broadcast(&conversation, frame.encode().into(), Some(user));
        }
    }

    /// Keeps this node's rows renewed and the shared view current, until `shutdown`.
    async fn share(self: Arc<Self>, shutdown: CancellationToken) {
        let Some(sharing) = &self.sharing else {
            return;
        };
        let mut tick = tokio::time::interval(sharing.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut written: Option<Vec<(String, bool)>> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
                _ = self.dirty.notified() => {}
                _ = sharing.heard.notified() => {}
            }
            self.exchange(sharing, &mut written).await;
        }
        // Leaving: withdraw this node's operators so the others need not wait for the expiry.
        if sharing
            .store
            .put_presence(sharing.node.clone(), Vec::new(), 0)
            .await
            .is_ok()
        {
            (sharing.announce)();
        }
    }

    /// Writes this node's operators, reads everyone's, and tells devices here what changed.
    async fn exchange(&self, sharing: &Sharing, written: &mut Option<Vec<(String, bool)>>) {
        let mine: Vec<(String, bool)> = {
            let state = self.lock();
            let mut mine: Vec<(String, bool)> = state
                .local
                .iter()
                .filter(|(_, e)| e.here != PresenceStatus::Offline)
                .map(|(user, e)| (user.clone(), e.here == PresenceStatus::Available))
                .collect();
            mine.sort();
            mine
        };
        // Renewed while there is something to renew; a node without operators writes once.
        if !(mine.is_empty() && written.as_ref().is_some_and(Vec::is_empty)) {
            let expires_at = now_ms() + sharing.ttl.as_millis() as u64;
            match sharing
                .store
                .put_presence(sharing.node.clone(), mine.clone(), expires_at)
                .await
            {
                Ok(()) if written.as_ref() != Some(&mine) => {
                    *written = Some(mine);
                    (sharing.announce)();
                }
                Ok(()) => {}
                Err(err) => {
                    tracing::warn!(%err, "cannot share operators' presence; retrying at the next heartbeat");
                    *written = None;
                }
            }
        }
        let Ok(rows) = sharing.store.presence(now_ms()).await else {
            return;
        };
        let changed: Vec<(String, PresenceStatus)> = {
            let mut state = self.lock();
            state.shared = rows
                .into_iter()
                .map(|(user, available)| {
                    let status = if available {
                        PresenceStatus::Available
                    } else {
                        PresenceStatus::Away
                    };
                    (user, status)
                })
                .collect();
            let users: BTreeSet<String> = state
                .local
                .keys()
                .chain(state.shared.keys())
                .chain(state.told.keys())
                .cloned()
                .collect();
            let mut changed = Vec::new();
            for user in users {
                let now = state.effective(&user);
                if now != state.told(&user) {
                    state.told.insert(user.clone(), now);
                    changed.push((user, now));
                }
            }
            state
                .told
                .retain(|_, status| *status != PresenceStatus::Offline);
            changed
        };
        let followed: HashSet<String> = self.hub.conversations().into_iter().collect();
        for (user, status) in changed {
            // Every conversation of the operator that a device here follows.
            let Ok(theirs) = sharing.store.conversations_of(user.clone()).await else {
                continue;
            };
            let conversations = theirs
                .into_iter()
                .map(|c| c.id)
                .filter(|id| followed.contains(id))
                .collect();
            self.tell(&user, status, conversations);
        }
    }
}
