//! Several nodes on one shared store. Each node's hub only sees its own commits; the cluster
//! layer tells the other nodes, and makes sure a node that missed something finds out.
//!
//! Two mechanisms, the second covering the first's gaps:
//! - **Notices** on a [`Bus`] (PostgreSQL LISTEN/NOTIFY: [`pg_bus::PgBus`]): after a commit a node
//!   publishes small notices — conversation and `seq`, or conversation and user — never whole
//!   messages. Other nodes wake the devices concerned, which read what they miss from storage.
//!   When the bus may have lost notices (its connection dropped), every connection rereads its
//!   state.
//! - **Sweeps**: every `sweep_interval`, a node reads the state (last `seq`, participants' cursors)
//!   of the conversations its devices follow, and wakes or informs them of anything it did not hear
//!   about. This bounds how stale a device can be whatever happens to notices.
//!
//! **Invariant:** nothing here carries data a device needs: the store is the truth, notices and
//! sweeps only say "look again". A lost notice delays, it never loses.

pub mod pg_bus;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::frames::ParticipantState;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::store::{CommitListener, Committed, Store};

/// A small notice of a change committed by some node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Messages up to `seq` are stored in `conversation`.
    Message {
        /// Conversation id.
        conversation: String,
        /// The newest seq.
        seq: u64,
    },
    /// `user_id`'s cursors in `conversation` moved.
    Receipt {
        /// Conversation id.
        conversation: String,
        /// Whose.
        user_id: String,
    },
    /// `user_id` joined (`true`) or left `conversation`.
    Membership {
        /// Conversation id.
        conversation: String,
        /// Who.
        user_id: String,
        /// Joined or left.
        joined: bool,
    },
    /// `user_id`'s tokens were revoked: their connections close.
    Revoked {
        /// Whose.
        user_id: String,
    },
    /// Some node's operators changed availability: read presence again.
    Presence,
}

/// What a bus hands to the node: another node's notice, or word that notices may have been lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A notice from another node.
    Notice(Notice),
    /// Notices may have been missed (at start, and after the bus reconnected).
    Missed,
}

/// Carries notices between nodes. Small on purpose, so another transport (NATS, Redis) can
/// replace PostgreSQL's LISTEN/NOTIFY.
pub trait Bus: Send + Sync + 'static {
    /// Publishes this node's notices after their commit. Best effort: sweeps cover losses.
    fn publish(&self, notices: Vec<Notice>);
    /// Delivers what other nodes publish to `heard` until `shutdown`.
    fn run(self: Arc<Self>, heard: Arc<dyn Fn(Heard) + Send + Sync>, shutdown: CancellationToken);
}

/// What this node last knew of a conversation, to tell sweeps' news from old news.
#[derive(Default)]
struct Known {
    last_seq: u64,
    cursors: HashMap<String, (u64, u64)>,
}

/// The cluster layer of one node: a commit listener in front of the hub.
pub struct Cluster {
    hub: Arc<Hub>,
    bus: Arc<dyn Bus>,
    metrics: Arc<Metrics>,
    /// Woken when another node announces a presence change.
    presence: Arc<Notify>,
    known: Mutex<HashMap<String, Known>>,
}

impl Cluster {
    /// Wires `store` → cluster → `hub`, starts listening on `bus` and sweeping every
    /// `sweep_interval`, until `shutdown`.
    pub fn start(
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        bus: Arc<dyn Bus>,
        sweep_interval: Duration,
        metrics: Arc<Metrics>,
        presence: Arc<Notify>,
        shutdown: CancellationToken,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            hub,
            bus: bus.clone(),
            metrics,
            presence,
            known: Mutex::default(),
        });
        store.attach(cluster.clone());
        let (heard_cluster, heard_store) = (cluster.clone(), store.clone());
        let heard: Arc<dyn Fn(Heard) + Send + Sync> =
            Arc::new(move |heard| heard_cluster.heard(&heard_store, heard));
        bus.run(heard, shutdown.clone());
        let sweeper = cluster.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => sweeper.sweep(&*store).await,
                }
            }
        });
        cluster
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records a state as known; returns whether it was news.
    fn learn_seq(&self, conversation: &str, seq: u64) -> bool {
        let mut known = self.lock();
        let entry = known.entry(conversation.to_owned()).or_default();
        let news = seq > entry.last_seq;
        entry.last_seq = entry.last_seq.max(seq);
        news
    }

    fn learn_cursors(&self, conversation: &str, state: &ParticipantState) -> bool {
        let mut known = self.lock();
        let entry = known.entry(conversation.to_owned()).or_default();
        let cursors = (state.delivered, state.read);
        entry.cursors.insert(state.user_id.clone(), cursors) != Some(cursors)
    }

    /// Another node's notice (or a possible loss).
    fn heard(self: &Arc<Self>, store: &Arc<dyn Store>, heard: Heard) {
        if matches!(heard, Heard::Missed) {
            self.metrics.cluster_missed.fetch_add(1, Ordering::Relaxed);
        } else {
            self.metrics.cluster_notices(true, 1);
        }
        match heard {
            Heard::Missed => {
                // Presence announcements may be lost too.
                self.presence.notify_one();
                self.hub.committed(Committed::Missed)
            }
            Heard::Notice(Notice::Presence) => self.presence.notify_one(),
            Heard::Notice(Notice::Revoked { user_id }) => {
                self.hub.committed(Committed::Revoked { user_id })
            }
            Heard::Notice(Notice::Message { conversation, seq }) => {
                if self.learn_seq(&conversation, seq) {
                    self.hub.committed(Committed::Notice { conversation, seq });
                }
            }
            Heard::Notice(Notice::Membership {
                conversation,
                user_id,
                joined,
            }) => {
                self.hub.committed(if joined {
                    Committed::Joined {
                        conversation,
                        user_id,
                    }
                } else {
                    Committed::Left {
                        conversation,
                        user_id,
                    }
                });
            }
            Heard::Notice(Notice::Receipt {
                conversation,
                user_id,
            }) => {
                // The notice names who; the cursors come from storage.
                let (cluster, store) = (self.clone(), store.clone());
                tokio::spawn(async move {
                    if let Ok(Some(state)) = store.participant(conversation.clone(), user_id).await
                    {
                        if cluster.learn_cursors(&conversation, &state) {
                            cluster.hub.committed(Committed::Receipt {
                                conversation,
                                state,
                            });
                        }
                    }
                });
            }
        }
    }

    /// Reads the state of every conversation followed here and reports what is news.
    async fn sweep(&self, store: &dyn Store) {
        let followed = self.hub.conversations();
        if followed.is_empty() {
            return;
        }
        let Ok(states) = store.states(followed).await else {
            return;
        };
        for state in states {
            // A conversation this node knew nothing of is learned, not caught up on.
            let known = self.lock().contains_key(&state.id);
            let seq_news = self.learn_seq(&state.id, state.last_seq);
            let moved: Vec<ParticipantState> = state
                .participants
                .into_iter()
                .filter(|p| self.learn_cursors(&state.id, p))
                .collect();
            // Counted before devices are told, so whoever sees the news sees it counted.
            if known && (seq_news || !moved.is_empty()) {
                self.metrics
                    .cluster_catchups
                    .fetch_add(1, Ordering::Relaxed);
            }
            if seq_news {
                self.hub.committed(Committed::Notice {
                    conversation: state.id.clone(),
                    seq: state.last_seq,
                });
            }
            for participant in moved {
                self.hub.committed(Committed::Receipt {
                    conversation: state.id.clone(),
                    state: participant,
                });
            }
        }
    }
}

impl CommitListener for Cluster {
    /// This node's commits: to the local hub at once, and to the other nodes as notices.
    fn committed(&self, change: Committed) {
        let notice = match &change {
            Committed::Message(m) => {
                self.learn_seq(&m.conversation, m.seq);
                Some(Notice::Message {
                    conversation: m.conversation.clone(),
                    seq: m.seq,
                })
            }
            Committed::Receipt {
                conversation,
                state,
            } => {
                self.learn_cursors(conversation, state);
                Some(Notice::Receipt {
                    conversation: conversation.clone(),
                    user_id: state.user_id.clone(),
                })
            }
            Committed::Joined {
                conversation,
                user_id,
            } => Some(Notice::Membership {
                conversation: conversation.clone(),
                user_id: user_id.clone(),
                joined: true,
            }),
            Committed::Left {
                conversation,
                user_id,
            } => Some(Notice::Membership {
                conversation: conversation.clone(),
                user_id: user_id.clone(),
                joined: false,
            }),
            Committed::Revoked { user_id } => Some(Notice::Revoked {
                user_id: user_id.clone(),
            }),
            Committed::Notice { .. } | Committed::Missed => None,
        };
        self.hub.committed(change);
        if let Some(notice) = notice {
            self.metrics.cluster_notices(false, 1);
            self.bus.publish(vec![notice]);
        }
    }
}
