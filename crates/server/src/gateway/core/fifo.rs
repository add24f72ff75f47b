//! FIFO per sender: the one rule that keeps the messages one connection sends to one conversation
//! in the order it sent them, whatever is refused in between (`docs/protocol.md` §5).
//!
//! Per conversation the guard keeps two things:
//! - the **predecessor**: the last send taken for storing whose answer is not out yet. The next
//!   send is stored only if the predecessor is stored by then (the store checks
//!   `AppendRequest::after`, in call order), so a whole pipelined run behind a failure fails too;
//! - the **blocker**: the first send that was refused or failed transiently and has not been taken
//!   again since. While there is one, every other send is refused `out_of_order` at once.
//!
//! Resending the blocker takes it again *and clears the block at once*: it becomes the
//! predecessor, and the sends that follow it (the device resends "it and everything after it, in
//! order, without waiting") chain behind it through the store's `after` check. If it fails again,
//! everything chained behind it fails with it and it becomes the blocker again. Clearing the block
//! only when the blocker is *stored* (the old rule) let sends that arrived during that store be
//! refused without a trace while the next one after it was accepted — ahead of them.
//!
//! **Invariant:** for messages A before B sent by one connection to one conversation, if both
//! are stored then `seq(A) < seq(B)` — given a device that resends from the refused message in
//! order, as the protocol says.

use std::collections::HashMap;

/// What to do with a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Store it, behind `after` if that is still unanswered.
    Take {
        /// The FIFO guard for the store (`AppendRequest::after`).
        after: Option<String>,
    },
    /// Refuse it `out_of_order`: `blocker` must be resent (and taken) first.
    Refuse {
        /// The blocking message's id.
        blocker: String,
    },
}

/// How a taken send was answered, as far as order is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Stored (new or a repeat), or refused for good: it will not come back, later ones may go.
    Settled,
    /// Refused or failed transiently: the device will resend it, and nothing may overtake it.
    Retry,
}

#[derive(Debug, Default)]
struct Lane {
    predecessor: Option<String>,
    blocker: Option<String>,
    /// Sends taken and not answered yet.
    taken: usize,
}

/// The FIFO guard of one connection.
#[derive(Debug, Default)]
pub struct Fifo {
    lanes: HashMap<String, Lane>,
}

impl Fifo {
    /// Decides about a (valid) send of `id` to `conversation`. A `Take` makes it the predecessor.
    pub fn admit(&mut self, conversation: &str, id: &str) -> Admission {
        let lane = self.lanes.entry(conversation.to_owned()).or_default();
        if let Some(blocker) = &lane.blocker {
            if blocker != id {
                return Admission::Refuse {
                    blocker: blocker.clone(),
                };
            }
            // The blocker, resent: its refusal was answered after every send before it, so
            // nothing is in flight ahead of it. Later sends chain behind it from now on.
            lane.blocker = None;
            lane.predecessor = Some(id.to_owned());
            lane.taken += 1;
            return Admission::Take { after: None };
        }
        let after = lane
            .predecessor
            .replace(id.to_owned())
            .filter(|previous| previous != id);
        lane.taken += 1;
        Admission::Take { after }
    }

    /// Records the answer of a taken send. Answers arrive in the order sends were taken.
    pub fn answered(&mut self, conversation: &str, id: &str, answer: Answer) {
        let Some(lane) = self.lanes.get_mut(conversation).filter(|l| l.taken > 0) else {
            debug_assert!(false, "an answer for a send that was never taken");
            return;
        };
        lane.taken -= 1;
        if lane.predecessor.as_deref() == Some(id) {
            lane.predecessor = None;
        }
        match answer {
            Answer::Retry => {
                lane.blocker.get_or_insert_with(|| id.to_owned());
            }
            Answer::Settled => {
                if lane.blocker.as_deref() == Some(id) {
                    lane.blocker = None;
                }
            }
        }
        if lane.taken == 0 && lane.blocker.is_none() {
            debug_assert!(
                lane.predecessor.is_none(),
                "the last answer clears the predecessor"
            );
            self.lanes.remove(conversation);
        }
    }

    /// The blocker of `conversation`, if any.
    pub fn blocker(&self, conversation: &str) -> Option<&str> {
        self.lanes.get(conversation)?.blocker.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take(after: Option<&str>) -> Admission {
        Admission::Take {
            after: after.map(str::to_owned),
        }
    }

    #[test]
    fn pipelined_sends_chain_behind_each_other() {
        let mut fifo = Fifo::default();
        assert_eq!(fifo.admit("c", "a"), take(None));
        assert_eq!(fifo.admit("c", "b"), take(Some("a")));
        assert_eq!(fifo.admit("other", "x"), take(None));
        fifo.answered("c", "a", Answer::Settled);
        assert_eq!(fifo.admit("c", "c"), take(Some("b")));
        fifo.answered("c", "b", Answer::Settled);
        fifo.answered("c", "c", Answer::Settled);
        assert_eq!(fifo.admit("c", "d"), take(None));
    }

    #[test]
    fn a_refused_send_blocks_every_other_until_resent() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.admit("c", "b");
        fifo.answered("c", "a", Answer::Retry);
        fifo.answered("c", "b", Answer::Retry); // failed behind a: a stays the blocker
        assert_eq!(fifo.blocker("c"), Some("a"));
        let refused = Admission::Refuse {
            blocker: "a".into(),
        };
        assert_eq!(fifo.admit("c", "b"), refused);
        assert_eq!(fifo.admit("c", "z"), refused);
    }

    /// The bug this rule fixes: b, resent while the resent a is being stored, must chain behind
    /// a rather than be refused without a trace (which let c, arriving after a's store, overtake
    /// it).
    #[test]
    fn resending_the_blocker_lets_the_resent_run_chain_behind_it() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.answered("c", "a", Answer::Retry);
        assert_eq!(fifo.admit("c", "a"), take(None));
        assert_eq!(fifo.admit("c", "b"), take(Some("a")));
        fifo.answered("c", "a", Answer::Settled);
        assert_eq!(fifo.admit("c", "c"), take(Some("b")));
    }

    #[test]
    fn a_blocker_that_fails_again_blocks_again() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.answered("c", "a", Answer::Retry);
        fifo.admit("c", "a");
        fifo.admit("c", "b");
        fifo.answered("c", "a", Answer::Retry);
        fifo.answered("c", "b", Answer::Retry);
        assert_eq!(fifo.blocker("c"), Some("a"));
    }

    #[test]
    fn a_permanent_refusal_of_the_blocker_releases_the_others() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.answered("c", "a", Answer::Retry);
        fifo.admit("c", "a");
        fifo.answered("c", "a", Answer::Settled);
        assert_eq!(fifo.blocker("c"), None);
        assert_eq!(fifo.admit("c", "b"), take(None));
    }

    #[test]
    fn a_repeat_of_the_predecessor_is_not_guarded_by_itself() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        assert_eq!(fifo.admit("c", "a"), take(None));
        fifo.answered("c", "a", Answer::Settled);
        fifo.answered("c", "a", Answer::Settled);
        assert_eq!(fifo.admit("c", "b"), take(None));
    }
}
