//! Time from a message being stored to the first `delivered` and the first `read` receipt of
//! another participant that covers it — the two numbers that say whether messages reach people.
//!
//! Pure bookkeeping over commits as the hub sees them: the caller passes the time and records what
//! comes back. Memory is bounded, and what does not fit is not measured rather than measured
//! wrongly: at most [`PER_CONVERSATION_MAX`] unread messages per conversation (the newest) and
//! [`CONVERSATIONS_MAX`] conversations, each message for at most [`AGE_MAX`]. On several nodes a
//! node measures the messages it stored, against the receipts it hears of.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Unread messages followed per conversation; older ones are forgotten first.
pub const PER_CONVERSATION_MAX: usize = 64;
/// Conversations followed at once; new ones are not followed while this many are.
pub const CONVERSATIONS_MAX: usize = 4096;
/// How long a message is followed.
pub const AGE_MAX: Duration = Duration::from_secs(24 * 3600);
/// Least time between two sweeps for forgotten entries when the table is full.
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// Which receipt covered a message first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Stored on one of a recipient's devices.
    Delivered,
    /// Seen by a recipient.
    Read,
}

impl Stage {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Delivered => "delivered",
            Stage::Read => "read",
        }
    }
}

struct Pending {
    seq: u64,
    sender: String,
    stored_at: Instant,
    delivered: bool,
}

/// The messages not yet read, per conversation.
#[derive(Default)]
pub struct DeliveryClock {
    conversations: HashMap<String, VecDeque<Pending>>,
    last_purge: Option<Instant>,
}

impl DeliveryClock {
    /// A message was stored.
    pub fn stored(&mut self, conversation: &str, seq: u64, sender: &str, now: Instant) {
        if !self.conversations.contains_key(conversation) {
            if self.conversations.len() >= CONVERSATIONS_MAX {
                self.purge(now);
            }
            if self.conversations.len() >= CONVERSATIONS_MAX {
                return;
            }
        }
        let pending = self
            .conversations
            .entry(conversation.to_owned())
            .or_default();
        if pending.len() == PER_CONVERSATION_MAX {
            pending.pop_front();
        }
        pending.push_back(Pending {
            seq,
            sender: sender.to_owned(),
            stored_at: now,
            delivered: false,
        });
    }

    /// `user`'s cursors in `conversation` are now `delivered` and `read`: returns how long each
    /// newly covered message of someone else took to reach each stage.
    pub fn receipt(
        &mut self,
        conversation: &str,
        user: &str,
        delivered: u64,
        read: u64,
        now: Instant,
    ) -> Vec<(Stage, Duration)> {
        let mut times = Vec::new();
        let Some(pending) = self.conversations.get_mut(conversation) else {
            return times;
        };
        let delivered = delivered.max(read);
        pending.retain_mut(|message| {
            if message.sender == user || message.seq > delivered {
                return true;
            }
            let age = now.saturating_duration_since(message.stored_at);
            if !message.delivered {
                message.delivered = true;
                times.push((Stage::Delivered, age));
            }
            if message.seq <= read {
                times.push((Stage::Read, age));
                return false;
            }
            true
        });
        if pending.is_empty() {
            self.conversations.remove(conversation);
        }
        times
    }

    /// Messages followed now, over all conversations.
    pub fn followed(&self) -> usize {
        self.conversations.values().map(VecDeque::len).sum()
    }

    fn purge(&mut self, now: Instant) {
        if self
            .last_purge
            .is_some_and(|at| now.saturating_duration_since(at) < PURGE_EVERY)
        {
            return;
        }
        self.last_purge = Some(now);
        self.conversations.retain(|_, pending| {
            pending.retain(|m| now.saturating_duration_since(m.stored_at) < AGE_MAX);
            !pending.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn first_delivered_and_first_read_are_timed_once_each() {
        let t0 = Instant::now();
        let mut clock = DeliveryClock::default();
        clock.stored("c", 1, "ana", t0);
        clock.stored("c", 2, "ana", t0 + 10 * MS);
        // The sender's own receipt covers nothing.
        assert!(clock.receipt("c", "ana", 2, 2, t0 + 20 * MS).is_empty());
        let times = clock.receipt("c", "olga", 1, 0, t0 + 30 * MS);
        assert_eq!(times, vec![(Stage::Delivered, 30 * MS)]);
        let times = clock.receipt("c", "olga", 2, 2, t0 + 50 * MS);
        assert_eq!(
            times,
            vec![
                (Stage::Read, 50 * MS),
                (Stage::Delivered, 40 * MS),
                (Stage::Read, 40 * MS)
            ]
        );
        // A second reader finds nothing left: only the first receipt counts.
        assert!(clock.receipt("c", "ivan", 2, 2, t0 + 60 * MS).is_empty());
        assert_eq!(clock.followed(), 0);
    }

    #[test]
    fn memory_stays_bounded() {
        let t0 = Instant::now();
        let mut clock = DeliveryClock::default();
        for seq in 1..=(PER_CONVERSATION_MAX as u64 + 10) {
            clock.stored("c", seq, "ana", t0);
        }
        assert_eq!(clock.followed(), PER_CONVERSATION_MAX);
        for n in 0..CONVERSATIONS_MAX + 10 {
            clock.stored(&format!("k{n}"), 1, "ana", t0);
        }
        assert_eq!(clock.conversations.len(), CONVERSATIONS_MAX);
        // Once old entries age out, new conversations are followed again.
        let later = t0 + AGE_MAX + MS;
        clock.stored("fresh", 1, "ana", later);
        assert_eq!(clock.conversations.len(), 1);
        assert_eq!(clock.receipt("fresh", "olga", 1, 0, later + MS).len(), 1);
    }
}
