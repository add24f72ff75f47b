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
//! Resending the blocker takes it again *and opens the lane at once*: the sends that follow it
//! (the device resends "it and everything after it, in order, without waiting") chain behind it
//! through the store's `after` check instead of being refused. If it fails again, everything
//! chained behind it fails with it and it is the blocker again; once it is stored, the blocker is
//! cleared. While it is being stored, the answers still coming for sends of the run before (which
//! failed because it did) are stale and do not make a new blocker. Clearing the block only when
//! the blocker was *stored* (the old rule) let sends that arrived during that store be refused
//! without a trace while the next one after it was accepted — ahead of them.
//!
//! A blocker can also turn out to be stored already: a copy sent on an earlier connection was
//! committed and its ack lost, and the device learns of it when the message comes back in a
//! catch-up — and then drops it from its outbox instead of resending it (protocol §5). Once this
//! connection has pushed one of the device's own messages to it, that message is no blocker
//! (nothing can overtake a stored message: later ones get later seqs), and a transient refusal of
//! a copy of it — sent before the device saw it come back, answered before or after the push — is
//! no failure either. Without this the lane waited forever for a resend that never came (found by
//! `surechat chaos --refusals`, in both orders).
//!
//! **Invariant:** for messages A before B sent by one connection to one conversation, if both
//! are stored then `seq(A) < seq(B)` — given a device that resends from the refused message in
//! order, as the protocol says.

use std::collections::{HashMap, HashSet, VecDeque};

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
    /// The predecessor, and the guard it was taken with (a repeat of it is taken with the same).
    predecessor: Option<(String, Option<String>)>,
    blocker: Option<String>,
    /// The blocker was resent and is being stored: the lane is open behind it.
    retaken: bool,
    /// Sends taken and not answered yet.
    taken: usize,
}

impl Lane {
    fn is_idle(&self) -> bool {
        self.taken == 0 && self.blocker.is_none()
    }
}

/// How many of the device's own messages pushed to it are remembered as stored: the SDKs' send
/// window, since the copies still to be answered are at most a window's worth.
pub const KNOWN_STORED_MAX: usize = 256;

/// The FIFO guard of one connection.
#[derive(Debug, Default)]
pub struct Fifo {
    lanes: HashMap<String, Lane>,
    /// `(conversation, id)` of the device's own messages pushed to it as stored, oldest first.
    known_stored: VecDeque<(String, String)>,
    known_stored_set: HashSet<(String, String)>,
}

impl Fifo {
    /// Decides about a (valid) send of `id` to `conversation`. A `Take` makes it the predecessor.
    pub fn admit(&mut self, conversation: &str, id: &str) -> Admission {
        let lane = self.lanes.entry(conversation.to_owned()).or_default();
        if let Some(blocker) = lane.blocker.as_ref().filter(|_| !lane.retaken) {
            if blocker != id {
                return Admission::Refuse {
                    blocker: blocker.clone(),
                };
            }
            // The blocker, resent: its refusal was answered after every send before it, so
            // nothing that counts is in flight ahead of it. Later sends chain behind it.
            lane.retaken = true;
            lane.predecessor = Some((id.to_owned(), None));
            lane.taken += 1;
            return Admission::Take { after: None };
        }
        // A repeat of the predecessor is guarded like the predecessor was: by the one before it
        // (guarding it by itself would refuse it forever; not guarding it would let it overtake).
        let after = match lane.predecessor.take() {
            Some((previous, guard)) if previous == id => guard,
            Some((previous, _)) => Some(previous),
            None => None,
        };
        lane.predecessor = Some((id.to_owned(), after.clone()));
        lane.taken += 1;
        Admission::Take { after }
    }

    /// Records the answer of a taken send. Answers arrive in the order sends were taken.
    pub fn answered(&mut self, conversation: &str, id: &str, answer: Answer) {
        // A copy of a message known stored: its failure fails nothing.
        let answer = if self.is_known_stored(conversation, id) {
            Answer::Settled
        } else {
            answer
        };
        let Some(lane) = self.lanes.get_mut(conversation).filter(|l| l.taken > 0) else {
            debug_assert!(false, "an answer for a send that was never taken");
            return;
        };
        lane.taken -= 1;
        // The predecessor is the last send taken, so it is answered last. (Comparing ids would
        // let the answer of an earlier transmission of the same id clear a later one.)
        if lane.taken == 0 {
            lane.predecessor = None;
        }
        let is_blocker = lane.blocker.as_deref() == Some(id);
        match answer {
            // The first failure since the lane was clear blocks it; the resent blocker failing
            // again blocks it again. Any other failure is behind the blocker, or stale.
            Answer::Retry if lane.blocker.is_none() => lane.blocker = Some(id.to_owned()),
            Answer::Retry if is_blocker => lane.retaken = false,
            Answer::Retry => {}
            Answer::Settled if is_blocker => {
                lane.blocker = None;
                lane.retaken = false;
            }
            Answer::Settled => {}
        }
        if lane.is_idle() {
            debug_assert!(
                lane.predecessor.is_none(),
                "the last answer clears the predecessor"
            );
            self.lanes.remove(conversation);
        }
    }

    /// The message `id` of `conversation` went out to the device as stored (a catch-up or a live
    /// notice): it is no blocker, and answers still due for copies of it settle it.
    pub fn stored(&mut self, conversation: &str, id: &str) {
        let key = (conversation.to_owned(), id.to_owned());
        if self.known_stored_set.insert(key.clone()) {
            self.known_stored.push_back(key);
            if self.known_stored.len() > KNOWN_STORED_MAX {
                let oldest = self.known_stored.pop_front().expect("not empty");
                self.known_stored_set.remove(&oldest);
            }
        }
        let Some(lane) = self.lanes.get_mut(conversation) else {
            return;
        };
        if lane.blocker.as_deref() == Some(id) {
            lane.blocker = None;
            lane.retaken = false;
        }
        if lane.is_idle() {
            self.lanes.remove(conversation);
        }
    }

    fn is_known_stored(&self, conversation: &str, id: &str) -> bool {
        // Most connections never get their own messages pushed back: no key to build then.
        !self.known_stored.is_empty()
            && self
                .known_stored_set
                .contains(&(conversation.to_owned(), id.to_owned()))
    }

    /// The blocker of `conversation`, if any.
    pub fn blocker(&self, conversation: &str) -> Option<&str> {
        let lane = self.lanes.get(conversation)?;
        lane.blocker.as_deref().filter(|_| !lane.retaken)
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

    /// Found by the model test: a stale failure of the run before must not become the blocker
    /// while the resent blocker is being stored — else resending that later message would be
    /// taken with no guard while the blocker fails again, and overtake it.
    #[test]
    fn stale_failures_behind_a_resent_blocker_do_not_block() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.admit("c", "b");
        fifo.answered("c", "a", Answer::Retry);
        assert_eq!(fifo.admit("c", "a"), take(None)); // resent before b's answer came
        fifo.answered("c", "b", Answer::Retry); // stale: b failed because a did
        assert_eq!(
            fifo.admit("c", "b"),
            take(Some("a")),
            "b chains behind the resent a"
        );
        fifo.answered("c", "a", Answer::Retry); // a fails again
        assert_eq!(fifo.blocker("c"), Some("a"));
        assert_eq!(
            fifo.admit("c", "b"),
            Admission::Refuse {
                blocker: "a".into()
            }
        );
    }

    /// Found by `surechat chaos --refusals`: the blocker was stored through an earlier
    /// connection, and the device, seeing it come back stored, never resends it.
    #[test]
    fn a_blocker_pushed_to_the_device_as_stored_releases_the_lane() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.admit("c", "b");
        fifo.answered("c", "a", Answer::Retry);
        fifo.answered("c", "b", Answer::Retry);
        assert_eq!(fifo.blocker("c"), Some("a"));
        fifo.stored("c", "a");
        assert_eq!(fifo.blocker("c"), None);
        assert_eq!(fifo.admit("c", "b"), take(None));
        fifo.stored("c", "zzz"); // not of this lane's business
        fifo.answered("c", "b", Answer::Settled);
        assert!(fifo.lanes.is_empty());
    }

    /// The same, when the message comes back before the refusal of its copy here is answered:
    /// that refusal makes no blocker.
    #[test]
    fn a_refusal_of_a_message_known_stored_blocks_nothing() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        fifo.admit("c", "b");
        fifo.stored("c", "b");
        fifo.answered("c", "a", Answer::Settled);
        fifo.answered("c", "b", Answer::Retry);
        assert_eq!(fifo.blocker("c"), None);
        assert_eq!(fifo.admit("c", "c"), take(None));
        // A copy sent before the device saw it come back, refused after the push: no blocker.
        fifo.answered("c", "c", Answer::Settled);
        fifo.admit("c", "b");
        fifo.answered("c", "b", Answer::Retry);
        assert_eq!(fifo.blocker("c"), None);
        // What is remembered is bounded: the oldest is forgotten first.
        for n in 0..KNOWN_STORED_MAX {
            fifo.stored("c", &format!("m{n}"));
        }
        fifo.admit("c", "b");
        fifo.answered("c", "b", Answer::Retry);
        assert_eq!(fifo.blocker("c"), Some("b"));
        assert_eq!(fifo.known_stored.len(), KNOWN_STORED_MAX);
    }

    /// Found by `surechat chaos --refusals` after the first fix: the catch-up pushed the message
    /// before its resent copy even arrived here; that copy was then refused by the send budget.
    #[test]
    fn a_copy_arriving_after_its_message_was_pushed_blocks_nothing() {
        let mut fifo = Fifo::default();
        fifo.stored("c", "a");
        assert_eq!(fifo.admit("c", "a"), take(None));
        assert_eq!(fifo.admit("c", "b"), take(Some("a")));
        fifo.answered("c", "a", Answer::Retry); // rate limited
        fifo.answered("c", "b", Answer::Retry); // behind it
        assert_eq!(fifo.blocker("c"), Some("b"), "b is the one to resend");
        assert_eq!(fifo.admit("c", "b"), take(None));
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

    /// Found by the model test: b resent right after b was sent must still wait for a.
    #[test]
    fn a_repeat_of_the_predecessor_is_guarded_like_it() {
        let mut fifo = Fifo::default();
        fifo.admit("c", "a");
        assert_eq!(fifo.admit("c", "b"), take(Some("a")));
        assert_eq!(fifo.admit("c", "b"), take(Some("a")));
        fifo.answered("c", "a", Answer::Settled);
        fifo.answered("c", "b", Answer::Settled);
        fifo.answered("c", "b", Answer::Settled);
        assert_eq!(fifo.admit("c", "a"), take(None));
        assert_eq!(fifo.admit("c", "a"), take(None));
        fifo.answered("c", "a", Answer::Settled);
        fifo.answered("c", "a", Answer::Settled);
        assert_eq!(fifo.admit("c", "b"), take(None));
    }
}
