//! The in-memory store's [`ReachStore`]: the same rules as the SQL stores, on maps.

use std::collections::{BTreeMap, HashMap};

use protocol::frames::MessageKind;

use super::MemoryStore;
use crate::store::reach::{
    Channel, Delivery, EmailLink, Notice, PushSubscription, ReachFacts, ReachStore, Redeemed,
    Settled, UnreadMessage, SUBSCRIPTIONS_PER_USER_MAX, UNREAD_MESSAGES_MAX,
};
use crate::store::Pending;

#[derive(Default)]
pub(super) struct ReachState {
    /// By endpoint.
    subscriptions: BTreeMap<String, PushSubscription>,
    /// User → (email, unsubscribed at).
    contacts: HashMap<String, (String, Option<u64>)>,
    /// (conversation, user, channel) → (up to seq, at).
    marks: HashMap<(String, String, Channel), (u64, u64)>,
    /// By id, with its state.
    outbox: BTreeMap<u64, (Delivery, &'static str)>,
    /// By id, with when it was used.
    links: HashMap<String, (EmailLink, Option<u64>)>,
}

impl ReachStore for MemoryStore {
    fn put_push_subscription(&self, s: PushSubscription) -> Pending<(PushSubscription, bool)> {
        let mut state = self.lock();
        let reach = &mut state.reach;
        let created = match reach.subscriptions.get_mut(&s.endpoint) {
            Some(old) => {
                old.user_id = s.user_id.clone();
                old.p256dh = s.p256dh.clone();
                old.auth = s.auth.clone();
                false
            }
            None => {
                reach.subscriptions.insert(s.endpoint.clone(), s.clone());
                true
            }
        };
        let mut mine: Vec<(u64, String, String)> = reach
            .subscriptions
            .values()
            .filter(|x| x.user_id == s.user_id)
            .map(|x| (x.created_at, x.id.clone(), x.endpoint.clone()))
            .collect();
        mine.sort();
        let excess = mine
            .len()
            .saturating_sub(SUBSCRIPTIONS_PER_USER_MAX as usize);
        for (_, _, endpoint) in mine.into_iter().take(excess) {
            reach.subscriptions.remove(&endpoint);
        }
        let stored = reach.subscriptions[&s.endpoint].clone();
        Self::ready(Ok((stored, created)))
    }

    fn push_subscriptions(&self, user_id: String) -> Pending<Vec<PushSubscription>> {
        let state = self.lock();
        let mut mine: Vec<PushSubscription> = state
            .reach
            .subscriptions
            .values()
            .filter(|s| s.user_id == user_id)
            .cloned()
            .collect();
        mine.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Self::ready(Ok(mine))
    }

    fn delete_push_subscription(&self, user_id: Option<String>, id: String) -> Pending<bool> {
        let mut state = self.lock();
        let subscriptions = &mut state.reach.subscriptions;
        let found = subscriptions
            .iter()
            .find(|(_, s)| s.id == id && user_id.as_ref().is_none_or(|u| *u == s.user_id))
            .map(|(endpoint, _)| endpoint.clone());
        if let Some(endpoint) = &found {
            subscriptions.remove(endpoint);
        }
        Self::ready(Ok(found.is_some()))
    }

    fn put_contact(&self, user_id: String, email: String) -> Pending<()> {
        let mut state = self.lock();
        let contacts = &mut state.reach.contacts;
        let unsubscribed = contacts
            .get(&user_id)
            .filter(|(old, _)| *old == email)
            .and_then(|(_, at)| *at);
        contacts.insert(user_id, (email, unsubscribed));
        Self::ready(Ok(()))
    }

    fn unsubscribe(&self, user_id: String, now: u64) -> Pending<bool> {
        let mut state = self.lock();
        let found = match state.reach.contacts.get_mut(&user_id) {
            Some((_, at)) => {
                at.get_or_insert(now);
                true
            }
            None => false,
        };
        Self::ready(Ok(found))
    }

    fn reach_facts(&self) -> Pending<Vec<ReachFacts>> {
        let state = self.lock();
        let reach = &state.reach;
        let mut facts = Vec::new();
        for (id, conversation) in &state.conversations {
            for p in &conversation.participants {
                let subscriptions = reach
                    .subscriptions
                    .values()
                    .filter(|s| s.user_id == p.user_id)
                    .count() as u32;
                let email = reach
                    .contacts
                    .get(&p.user_id)
                    .filter(|(_, unsubscribed)| unsubscribed.is_none())
                    .map(|(email, _)| email.clone());
                if subscriptions == 0 && email.is_none() {
                    continue;
                }
                let from_others: Vec<_> = conversation
                    .messages
                    .iter()
                    .filter(|m| {
                        m.seq > p.read && m.sender != p.user_id && m.kind == MessageKind::Text
                    })
                    .collect();
                if from_others.is_empty() {
                    continue;
                }
                let mark = |channel| {
                    reach
                        .marks
                        .get(&(id.clone(), p.user_id.clone(), channel))
                        .copied()
                        .unwrap_or((0, 0))
                };
                facts.push(ReachFacts {
                    conversation_id: id.clone(),
                    user_id: p.user_id.clone(),
                    role: p.role,
                    read_seq: p.read,
                    subscriptions,
                    email,
                    pushed_up_to: mark(Channel::Push).0,
                    emailed_up_to: mark(Channel::Email).0,
                    emailed_at: mark(Channel::Email).1,
                    unread: from_others
                        .iter()
                        .take(UNREAD_MESSAGES_MAX as usize)
                        .map(|m| UnreadMessage {
                            seq: m.seq,
                            sender_id: m.sender.clone(),
                            sender_role: m.role,
                            body: m.body.clone(),
                            created_at: m.ts,
                        })
                        .collect(),
                    last_unread_seq: from_others.last().map_or(0, |m| m.seq),
                    unread_count: from_others.len() as u64,
                });
            }
        }
        Self::ready(Ok(facts))
    }

    fn reach_enqueue(&self, notices: Vec<Notice>, now: u64) -> Pending<u32> {
        let mut state = self.lock();
        let reach = &mut state.reach;
        let mut stored = 0;
        for notice in notices {
            let key = (
                notice.conversation_id.clone(),
                notice.user_id.clone(),
                notice.channel,
            );
            if reach
                .marks
                .get(&key)
                .is_some_and(|(up_to, _)| *up_to >= notice.up_to_seq)
            {
                continue;
            }
            reach.marks.insert(key, (notice.up_to_seq, now));
            stored += 1;
            if let Some(link) = notice.link {
                reach.links.insert(link.id.clone(), (link, None));
            }
            for (target, payload) in notice.deliveries {
                let id = reach.outbox.keys().next_back().map_or(1, |last| last + 1);
                let delivery = Delivery {
                    id,
                    channel: notice.channel,
                    conversation_id: notice.conversation_id.clone(),
                    user_id: notice.user_id.clone(),
                    first_seq: notice.first_seq,
                    up_to_seq: notice.up_to_seq,
                    target,
                    payload,
                    attempts: 0,
                    next_at: now,
                    expires_at: notice.expires_at,
                };
                reach.outbox.insert(id, (delivery, "pending"));
            }
        }
        Self::ready(Ok(stored))
    }

    fn reach_due(&self, now: u64, limit: u32) -> Pending<Vec<Delivery>> {
        let state = self.lock();
        let due = state
            .reach
            .outbox
            .values()
            .filter(|(d, state)| *state == "pending" && d.next_at <= now)
            .take(limit as usize)
            .map(|(d, _)| d.clone())
            .collect();
        Self::ready(Ok(due))
    }

    fn reach_settle(&self, delivery: Delivery, settled: Settled, _now: u64) -> Pending<()> {
        let mut state = self.lock();
        let reach = &mut state.reach;
        if let Some((stored, state)) = reach.outbox.get_mut(&delivery.id) {
            if !matches!(settled, Settled::Cancelled) {
                stored.attempts = delivery.attempts + 1;
            }
            *state = match &settled {
                Settled::Sent => "sent",
                Settled::Cancelled => "cancelled",
                Settled::Failed(_) => "failed",
                Settled::Gone => "gone",
                Settled::Retry { at, .. } => {
                    stored.next_at = *at;
                    "pending"
                }
            };
        }
        if matches!(settled, Settled::Gone) {
            reach.subscriptions.retain(|_, s| s.id != delivery.target);
        }
        Self::ready(Ok(()))
    }

    fn redeem_link(&self, id: String, now: u64) -> Pending<Redeemed> {
        let mut state = self.lock();
        let outcome = match state.reach.links.get_mut(&id) {
            None => Redeemed::Unknown,
            Some((_, Some(_))) => Redeemed::Used,
            Some((link, _)) if link.expires_at <= now => Redeemed::Expired,
            Some((link, used)) => {
                *used = Some(now);
                Redeemed::Opened(link.clone())
            }
        };
        Self::ready(Ok(outcome))
    }
}
