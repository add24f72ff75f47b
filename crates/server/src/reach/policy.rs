//! When to reach a person, and what to tell them: pure decisions on the facts storage gives
//! ([`ReachFacts`]), tested on simulated time. The loop in [`super`] only carries them out.
//!
//! The rules:
//! - **Push** to every subscription of a person with no device connected, once the oldest message
//!   from others that no push told of has stayed unread for `push_delay`. One push tells of
//!   everything unread up to the newest message, so a burst is one notification (and the `Topic`
//!   collapses it with older ones of the same conversation on the push service).
//! - **Email** a client with an address, once the oldest operator message that no email told of
//!   has stayed unread for `email_delay`, and no email about this conversation went out in the
//!   last `email_period`.
//! - Only text messages count: private notes never reach a client, and are never in a push or
//!   an email, not even an operator's.
//! - A delivery is moot once the person has read the first message it tells of, and a push also
//!   once a device of theirs is connected: checked again just before sending ([`still_wanted`]).

use protocol::Role;

use crate::store::reach::{Channel, ReachFacts, UnreadMessage};

/// The settings the decisions read (from [`crate::Config`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Whether pushes are sent at all.
    pub push: bool,
    /// See `push_delay_ms`.
    pub push_delay_ms: u64,
    /// Whether emails are sent at all (an SMTP server is configured).
    pub email: bool,
    /// See `email_delay_ms`.
    pub email_delay_ms: u64,
    /// See `email_period_ms`.
    pub email_period_ms: u64,
}

/// A decision: tell this person, on this channel, of the messages `first_seq..=up_to_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Push or email.
    pub channel: Channel,
    /// The oldest unread message told of.
    pub first_seq: u64,
    /// The newest unread message told of.
    pub up_to_seq: u64,
    /// The messages to quote (email), oldest first: the unread ones this decision covers that
    /// the facts carry.
    pub messages: Vec<UnreadMessage>,
}

/// What to send to the person of `facts` now; `connected`: a device of theirs is connected.
pub fn decide(facts: &ReachFacts, connected: bool, rules: &Rules, now: u64) -> Vec<Decision> {
    let mut decisions = Vec::new();
    if rules.push && facts.subscriptions > 0 && !connected {
        if let Some(decision) = due(
            facts,
            Channel::Push,
            facts.pushed_up_to,
            rules.push_delay_ms,
            |_| true,
            now,
        ) {
            decisions.push(decision);
        }
    }
    let period_over =
        facts.emailed_at == 0 || now.saturating_sub(facts.emailed_at) >= rules.email_period_ms;
    if rules.email && facts.role == Role::Client && facts.email.is_some() && period_over {
        if let Some(decision) = due(
            facts,
            Channel::Email,
            facts.emailed_up_to,
            rules.email_delay_ms,
            |m| m.sender_role == Role::Operator,
            now,
        ) {
            decisions.push(decision);
        }
    }
    decisions
}

/// A decision for one channel, if its oldest message not yet told of is old enough.
fn due(
    facts: &ReachFacts,
    channel: Channel,
    told_up_to: u64,
    delay_ms: u64,
    counts: impl Fn(&UnreadMessage) -> bool,
    now: u64,
) -> Option<Decision> {
    if facts.last_unread_seq <= told_up_to {
        return None;
    }
    let fresh: Vec<UnreadMessage> = facts
        .unread
        .iter()
        .filter(|m| m.seq > told_up_to && counts(m))
        .cloned()
        .collect();
    // The facts carry the oldest unread messages; when all of those were told of already, the
    // newer ones are at least as recent as the last of them, so waiting for that one's delay
    // never tells early.
    let oldest = match fresh.first() {
        Some(first) => first,
        None if facts.unread.len() as u64 >= facts.unread_count => return None,
        None => facts.unread.last()?,
    };
    if now < oldest.created_at.saturating_add(delay_ms) {
        return None;
    }
    if fresh.is_empty() && channel == Channel::Email {
        // No operator message among those the facts carry: nothing to quote, and the rest may
        // be the client's own side of the conversation. The next round sees more once read.
        return None;
    }
    Some(Decision {
        channel,
        first_seq: fresh.first().map_or(told_up_to + 1, |m| m.seq),
        up_to_seq: facts.last_unread_seq,
        messages: fresh,
    })
}

/// Whether a stored delivery is still worth sending: the person has not read the first message
/// it tells of, and (for a push) has no device connected.
pub fn still_wanted(channel: Channel, first_seq: u64, read_seq: u64, connected: bool) -> bool {
    read_seq < first_seq && !(channel == Channel::Push && connected)
}

/// When to try a failed delivery again: `first_ms` after the first failure, doubling, at most
/// `cap_ms`.
pub fn backoff(attempts: u32, first_ms: u64, cap_ms: u64) -> u64 {
    let shift = attempts.saturating_sub(1).min(20);
    first_ms.saturating_mul(1 << shift).min(cap_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60_000;

    fn rules() -> Rules {
        Rules {
            push: true,
            push_delay_ms: MIN,
            email: true,
            email_delay_ms: 10 * MIN,
            email_period_ms: 60 * MIN,
        }
    }

    fn message(seq: u64, role: Role, at: u64) -> UnreadMessage {
        UnreadMessage {
            seq,
            sender_id: if role == Role::Operator {
                "op"
            } else {
                "guest"
            }
            .into(),
            sender_role: role,
            body: format!("message {seq}"),
            created_at: at,
        }
    }

    /// A client with a push subscription and an address, who has read nothing of `unread`.
    fn client(unread: Vec<UnreadMessage>) -> ReachFacts {
        ReachFacts {
            conversation_id: "booking-1".into(),
            user_id: "guest".into(),
            role: Role::Client,
            read_seq: 0,
            subscriptions: 1,
            email: Some("guest@example.com".into()),
            pushed_up_to: 0,
            emailed_up_to: 0,
            emailed_at: 0,
            last_unread_seq: unread.last().map_or(0, |m| m.seq),
            unread_count: unread.len() as u64,
            unread,
        }
    }

    fn channels(decisions: &[Decision]) -> Vec<Channel> {
        decisions.iter().map(|d| d.channel).collect()
    }

    #[test]
    fn nothing_before_the_delays_then_push_then_email() {
        let facts = client(vec![message(1, Role::Operator, 0)]);
        assert!(decide(&facts, false, &rules(), MIN - 1).is_empty());
        assert_eq!(
            channels(&decide(&facts, false, &rules(), MIN)),
            [Channel::Push]
        );
        assert_eq!(
            channels(&decide(&facts, false, &rules(), 10 * MIN)),
            [Channel::Push, Channel::Email]
        );
    }

    #[test]
    fn a_connected_person_gets_no_push_but_may_get_an_email() {
        let facts = client(vec![message(1, Role::Operator, 0)]);
        assert_eq!(
            channels(&decide(&facts, true, &rules(), 10 * MIN)),
            [Channel::Email]
        );
    }

    #[test]
    fn one_push_covers_a_burst_and_the_next_waits_for_a_newer_message() {
        let mut facts = client(vec![
            message(1, Role::Operator, 0),
            message(2, Role::Operator, 30_000),
            message(3, Role::Operator, 59_000),
        ]);
        let decision = &decide(&facts, false, &rules(), MIN)[0];
        assert_eq!((decision.first_seq, decision.up_to_seq), (1, 3));
        facts.pushed_up_to = 3;
        assert!(decide(&facts, false, &rules(), 5 * MIN).is_empty());
        facts.unread.push(message(4, Role::Operator, 6 * MIN));
        facts.last_unread_seq = 4;
        facts.unread_count = 4;
        assert!(decide(&facts, false, &rules(), 6 * MIN + 1).is_empty());
        let decision = &decide(&facts, false, &rules(), 7 * MIN)[0];
        assert_eq!((decision.first_seq, decision.up_to_seq), (4, 4));
    }

    #[test]
    fn emails_only_to_clients_only_of_operator_messages_and_once_per_period() {
        let mut operator = client(vec![message(1, Role::Client, 0)]);
        operator.role = Role::Operator;
        operator.user_id = "op".into();
        assert_eq!(
            channels(&decide(&operator, false, &rules(), 20 * MIN)),
            [Channel::Push]
        );

        // A client's view where only another client wrote: nothing to email.
        let facts = client(vec![message(1, Role::Client, 0)]);
        assert_eq!(channels(&decide(&facts, true, &rules(), 20 * MIN)), []);

        let mut facts = client(vec![message(1, Role::Operator, 0)]);
        facts.emailed_up_to = 1;
        facts.emailed_at = 10 * MIN;
        facts.unread.push(message(2, Role::Operator, 11 * MIN));
        facts.last_unread_seq = 2;
        facts.unread_count = 2;
        // Old enough, but within the period of the last email.
        assert!(decide(&facts, true, &rules(), 69 * MIN).is_empty());
        let decision = &decide(&facts, true, &rules(), 70 * MIN)[0];
        assert_eq!(decision.channel, Channel::Email);
        assert_eq!((decision.first_seq, decision.up_to_seq), (2, 2));
        assert_eq!(decision.messages, [message(2, Role::Operator, 11 * MIN)]);
    }

    #[test]
    fn no_address_no_subscription_or_switched_off_means_nothing() {
        let mut facts = client(vec![message(1, Role::Operator, 0)]);
        facts.email = None;
        facts.subscriptions = 0;
        assert!(decide(&facts, false, &rules(), 60 * MIN).is_empty());
        let facts = client(vec![message(1, Role::Operator, 0)]);
        let off = Rules {
            push: false,
            email: false,
            ..rules()
        };
        assert!(decide(&facts, false, &off, 60 * MIN).is_empty());
    }

    #[test]
    fn beyond_the_carried_messages_the_last_carried_one_sets_the_time() {
        // Ten carried, all pushed already; two more exist beyond them.
        let mut facts = client(
            (1..=10)
                .map(|s| message(s, Role::Operator, s * 1000))
                .collect(),
        );
        facts.pushed_up_to = 10;
        facts.last_unread_seq = 12;
        facts.unread_count = 12;
        assert!(decide(&facts, false, &rules(), 10_000 + MIN - 1).is_empty());
        let decision = &decide(&facts, false, &rules(), 10_000 + MIN)[0];
        assert_eq!((decision.first_seq, decision.up_to_seq), (11, 12));
    }

    #[test]
    fn deliveries_become_moot_when_read_or_connected() {
        assert!(still_wanted(Channel::Email, 3, 2, true));
        assert!(!still_wanted(Channel::Email, 3, 3, false));
        assert!(!still_wanted(Channel::Push, 3, 2, true));
        assert!(still_wanted(Channel::Push, 3, 2, false));
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let got: Vec<u64> = (1..=6).map(|n| backoff(n, 1000, 10_000)).collect();
        assert_eq!(got, [1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(backoff(u32::MAX, 1000, 600_000), 600_000);
    }
}
