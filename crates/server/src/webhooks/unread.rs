//! Which messages each `message.unread_timeout` check looks at.
//!
//! A message qualifies once it is older than `unread_timeout_ms` and no recipient has read it.
//! Cursors never move back, so after a check that recorded fewer than the stores' limit, every
//! message created up to that check's bound is either read or flagged for good: later checks
//! start from there (less a margin) instead of walking every message ever read. Without that,
//! each check — every 5 s, on the storage writer — walked all unflagged text messages older
//! than the timeout, read ones included, and took longer the longer the server ran.

use crate::store::UNREAD_FLAG_MAX;

/// How far before the settled bound a check starts again. A message is only missed if it was
/// committed after a check whose bound is later than its time, that is, if it waited longer than
/// `unread_timeout_ms` in the writer's queue (or came from a node whose clock is that far behind):
/// the margin adds to that, for very short timeouts. Each check walks the messages of the margin
/// and of the interval since the last one, so it is kept short.
pub const MARGIN_MS: u64 = 5_000;

/// The bound up to which every message is read or flagged, as far as this node knows (0 after a
/// start: the first check walks everything once).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UnreadSweep {
    settled_to: u64,
}

impl UnreadSweep {
    /// The `(after, older_than)` window of a check at `now`, for `flag_unread`.
    pub fn window(&self, now: u64, timeout_ms: u64) -> (u64, u64) {
        let older_than = now.saturating_sub(timeout_ms);
        let after = self.settled_to.saturating_sub(MARGIN_MS);
        (after.min(older_than), older_than)
    }

    /// A check up to `older_than` recorded `flagged` messages: below the limit, it saw them all.
    pub fn checked(&mut self, older_than: u64, flagged: u64) {
        if flagged < UNREAD_FLAG_MAX {
            self.settled_to = self.settled_to.max(older_than);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: u64 = 15 * 60_000;

    #[test]
    fn the_first_check_walks_everything() {
        let sweep = UnreadSweep::default();
        assert_eq!(sweep.window(TIMEOUT + 5_000, TIMEOUT), (0, 5_000));
    }

    #[test]
    fn a_complete_check_moves_the_start_up_to_its_bound_less_the_margin() {
        let mut sweep = UnreadSweep::default();
        let now = 10 * TIMEOUT;
        let (_, older_than) = sweep.window(now, TIMEOUT);
        sweep.checked(older_than, 3);
        let later = now + 5_000;
        assert_eq!(
            sweep.window(later, TIMEOUT),
            (older_than - MARGIN_MS, later - TIMEOUT)
        );
    }

    #[test]
    fn a_check_cut_at_the_limit_keeps_its_start() {
        let mut sweep = UnreadSweep::default();
        let now = 10 * TIMEOUT;
        let (_, older_than) = sweep.window(now, TIMEOUT);
        sweep.checked(older_than, UNREAD_FLAG_MAX);
        // Messages past the first thousand are still unflagged below the bound: walked again.
        assert_eq!(sweep.window(now + 5_000, TIMEOUT).0, 0);
        sweep.checked(older_than + 5_000, 10);
        assert_eq!(
            sweep.window(now + 10_000, TIMEOUT).0,
            older_than + 5_000 - MARGIN_MS
        );
    }

    #[test]
    fn the_start_never_moves_back_nor_past_the_bound() {
        let mut sweep = UnreadSweep::default();
        sweep.checked(1_000_000, 0);
        // A check with an earlier bound (the clock stepped back) changes nothing.
        sweep.checked(500_000, 0);
        assert_eq!(sweep.window(2_000_000, 0).0, 1_000_000 - MARGIN_MS);
        // A longer timeout than before: the window starts no later than it ends.
        let (after, older_than) = sweep.window(1_000_000, 900_000);
        assert!(after <= older_than);
    }
}
