//! The [`ReachStore`] part of storage, the same cases on every backend: push subscriptions,
//! contacts and unsubscribing, the facts of who has something unread, notices stored once with
//! their deliveries, settling deliveries, and links used once.

mod common;

use std::sync::Arc;

use protocol::api::ParticipantSpec;
use protocol::frames::MessageKind;
use protocol::Role;
use server::store::reach::{
    Channel, EmailLink, Notice, PushSubscription, Redeemed, Settled, SUBSCRIPTIONS_PER_USER_MAX,
};
use server::store::{AppendRequest, ReceiptRequest, Store};

fn spec(user: &str, role: Role) -> ParticipantSpec {
    ParticipantSpec {
        user_id: user.into(),
        role,
        email: None,
    }
}

async fn booking(store: &dyn Store, id: &str) {
    store
        .create_conversation(
            id.into(),
            vec![spec("guest", Role::Client), spec("olga", Role::Operator)],
            8,
            1,
        )
        .await
        .unwrap();
}

async fn say(store: &dyn Store, conversation: &str, sender: &str, body: &str, kind: MessageKind) {
    store
        .append(AppendRequest {
            role: if sender == "guest" {
                Role::Client
            } else {
                Role::Operator
            },
            conversation: conversation.into(),
            id: uuid::Uuid::new_v4().to_string(),
            sender: sender.into(),
            body: body.into(),
            ts: 1_000,
            after: None,
            kind,
            attachments: Vec::new(),
        })
        .await
        .unwrap();
}

fn subscription(user: &str, n: u64) -> PushSubscription {
    PushSubscription {
        id: format!("sub-{user}-{n}"),
        user_id: user.into(),
        endpoint: format!("https://push.example/{user}/{n}"),
        p256dh: "key".into(),
        auth: "secret".into(),
        created_at: 1_000 + n,
    }
}

fn push_notice(conversation: &str, user: &str, up_to: u64, targets: &[&str]) -> Notice {
    Notice {
        channel: Channel::Push,
        conversation_id: conversation.into(),
        user_id: user.into(),
        first_seq: 1,
        up_to_seq: up_to,
        deliveries: targets
            .iter()
            .map(|t| (t.to_string(), format!("payload up to {up_to}")))
            .collect(),
        expires_at: 1_000_000,
        link: None,
    }
}

async fn subscriptions_are_per_endpoint_and_capped(store: Arc<dyn Store>) {
    let (first, created) = store
        .put_push_subscription(subscription("guest", 0))
        .await
        .unwrap();
    assert!(created);
    // The same endpoint again renews it (new keys), and may move to another user.
    let mut again = subscription("guest", 0);
    again.p256dh = "new-key".into();
    again.user_id = "guest-2".into();
    let (renewed, created) = store.put_push_subscription(again).await.unwrap();
    assert!(!created);
    assert_eq!(
        (renewed.id.as_str(), renewed.p256dh.as_str()),
        (first.id.as_str(), "new-key")
    );
    assert!(store
        .push_subscriptions("guest".into())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .push_subscriptions("guest-2".into())
            .await
            .unwrap()
            .len(),
        1
    );
    // Beyond the cap, the oldest go.
    for n in 1..=u64::from(SUBSCRIPTIONS_PER_USER_MAX) + 2 {
        store
            .put_push_subscription(subscription("guest", n))
            .await
            .unwrap();
    }
    let mine = store.push_subscriptions("guest".into()).await.unwrap();
    assert_eq!(mine.len(), SUBSCRIPTIONS_PER_USER_MAX as usize);
    assert_eq!(mine[0].id, "sub-guest-3");
    // Removing: only one's own (when a user is given).
    assert!(!store
        .delete_push_subscription(Some("someone-else".into()), "sub-guest-3".into())
        .await
        .unwrap());
    assert!(store
        .delete_push_subscription(Some("guest".into()), "sub-guest-3".into())
        .await
        .unwrap());
    assert!(!store
        .delete_push_subscription(None, "sub-guest-3".into())
        .await
        .unwrap());
}

async fn facts_list_reachable_people_with_unread_text_from_others(store: Arc<dyn Store>) {
    booking(&*store, "b1").await;
    say(&*store, "b1", "guest", "hello?", MessageKind::Text).await; // seq 1
    say(&*store, "b1", "olga", "internal", MessageKind::Note).await; // seq 2
    say(
        &*store,
        "b1",
        "olga",
        "Hi! Your room is ready.",
        MessageKind::Text,
    )
    .await; // seq 3
            // Nobody can be reached yet.
    assert!(store.reach_facts().await.unwrap().is_empty());
    store
        .put_contact("guest".into(), "guest@example.com".into())
        .await
        .unwrap();
    store
        .put_push_subscription(subscription("olga", 0))
        .await
        .unwrap();
    let mut facts = store.reach_facts().await.unwrap();
    facts.sort_by(|a, b| a.user_id.cmp(&b.user_id));
    assert_eq!(facts.len(), 2, "{facts:?}");
    let guest = &facts[0];
    assert_eq!(guest.user_id, "guest");
    assert_eq!(guest.role, Role::Client);
    assert_eq!(guest.email.as_deref(), Some("guest@example.com"));
    assert_eq!(guest.subscriptions, 0);
    // The note is not there: only text from others.
    assert_eq!(guest.unread.iter().map(|m| m.seq).collect::<Vec<_>>(), [3]);
    assert_eq!(guest.unread[0].body, "Hi! Your room is ready.");
    assert_eq!(guest.unread[0].sender_role, Role::Operator);
    assert_eq!((guest.last_unread_seq, guest.unread_count), (3, 1));
    let olga = &facts[1];
    assert_eq!(
        (olga.role, olga.subscriptions, olga.email.as_deref()),
        (Role::Operator, 1, None)
    );
    assert_eq!(olga.unread.iter().map(|m| m.seq).collect::<Vec<_>>(), [1]);
    // Reading removes them; unsubscribing removes the address.
    store
        .record_receipt(ReceiptRequest {
            conversation: "b1".into(),
            user_id: "guest".into(),
            role: Role::Client,
            delivered: Some(3),
            read: Some(3),
        })
        .await
        .unwrap();
    let facts = store.reach_facts().await.unwrap();
    assert_eq!(
        facts.iter().map(|f| f.user_id.as_str()).collect::<Vec<_>>(),
        ["olga"]
    );
    say(&*store, "b1", "olga", "Anything else?", MessageKind::Text).await;
    assert!(store.unsubscribe("guest".into(), 5).await.unwrap());
    let facts = store.reach_facts().await.unwrap();
    assert!(facts.iter().all(|f| f.user_id != "guest"), "{facts:?}");
    // The same address again keeps the unsubscription; a new one starts subscribed.
    store
        .put_contact("guest".into(), "guest@example.com".into())
        .await
        .unwrap();
    assert!(store
        .reach_facts()
        .await
        .unwrap()
        .iter()
        .all(|f| f.user_id != "guest"));
    store
        .put_contact("guest".into(), "new@example.com".into())
        .await
        .unwrap();
    let facts = store.reach_facts().await.unwrap();
    let guest = facts
        .iter()
        .find(|f| f.user_id == "guest")
        .expect("subscribed again");
    assert_eq!(guest.email.as_deref(), Some("new@example.com"));
    assert!(!store.unsubscribe("nobody".into(), 5).await.unwrap());
}

async fn notices_are_stored_once_with_their_deliveries(store: Arc<dyn Store>) {
    booking(&*store, "b1").await;
    let link = EmailLink {
        id: "link-1".into(),
        conversation_id: "b1".into(),
        user_id: "guest".into(),
        expires_at: 50_000,
    };
    let mut email = push_notice("b1", "guest", 3, &["guest@example.com"]);
    email.channel = Channel::Email;
    email.link = Some(link.clone());
    let stored = store
        .reach_enqueue(
            vec![push_notice("b1", "guest", 3, &["s1", "s2"]), email.clone()],
            10_000,
        )
        .await
        .unwrap();
    assert_eq!(stored, 2);
    // The same marks again (a second node, a retried round): nothing more.
    let again = store
        .reach_enqueue(
            vec![push_notice("b1", "guest", 3, &["s1", "s2"]), email],
            11_000,
        )
        .await
        .unwrap();
    assert_eq!(again, 0);
    let due = store.reach_due(10_000, 10).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.channel, d.target.as_str()))
            .collect::<Vec<_>>(),
        [
            (Channel::Push, "s1"),
            (Channel::Push, "s2"),
            (Channel::Email, "guest@example.com")
        ]
    );
    assert!(due.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(due[0].payload, "payload up to 3");
    assert_eq!(
        (due[0].first_seq, due[0].up_to_seq, due[0].expires_at),
        (1, 3, 1_000_000)
    );
    assert!(store.reach_due(9_999, 10).await.unwrap().is_empty());
    // The marks are in the facts (once there is something unread to report).
    store
        .put_contact("guest".into(), "guest@example.com".into())
        .await
        .unwrap();
    say(&*store, "b1", "olga", "one", MessageKind::Text).await;
    let facts = store.reach_facts().await.unwrap();
    assert_eq!(
        (
            facts[0].pushed_up_to,
            facts[0].emailed_up_to,
            facts[0].emailed_at
        ),
        (3, 3, 10_000)
    );
    // A newer mark is stored.
    assert_eq!(
        store
            .reach_enqueue(vec![push_notice("b1", "guest", 4, &["s1"])], 12_000)
            .await
            .unwrap(),
        1
    );
    // The link works once, then says it was used.
    match store.redeem_link("link-1".into(), 20_000).await.unwrap() {
        Redeemed::Opened(opened) => assert_eq!(opened, link),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.redeem_link("link-1".into(), 20_001).await.unwrap(),
        Redeemed::Used
    );
    assert_eq!(
        store.redeem_link("nope".into(), 20_001).await.unwrap(),
        Redeemed::Unknown
    );
}

async fn links_expire(store: Arc<dyn Store>) {
    let mut notice = push_notice("b1", "guest", 1, &[]);
    notice.link = Some(EmailLink {
        id: "old".into(),
        conversation_id: "b1".into(),
        user_id: "guest".into(),
        expires_at: 5_000,
    });
    store.reach_enqueue(vec![notice], 1_000).await.unwrap();
    assert_eq!(
        store.redeem_link("old".into(), 5_000).await.unwrap(),
        Redeemed::Expired
    );
    // Still expired (not used) when tried again.
    assert_eq!(
        store.redeem_link("old".into(), 6_000).await.unwrap(),
        Redeemed::Expired
    );
}

async fn settled_deliveries_leave_the_queue(store: Arc<dyn Store>) {
    store
        .put_push_subscription(subscription("guest", 0))
        .await
        .unwrap();
    store
        .reach_enqueue(
            vec![push_notice(
                "b1",
                "guest",
                1,
                &["sub-guest-0", "x", "y", "z"],
            )],
            1_000,
        )
        .await
        .unwrap();
    let due = store.reach_due(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 4);
    store
        .reach_settle(due[0].clone(), Settled::Gone, 1_001)
        .await
        .unwrap();
    store
        .reach_settle(due[1].clone(), Settled::Sent, 1_001)
        .await
        .unwrap();
    store
        .reach_settle(due[2].clone(), Settled::Cancelled, 1_001)
        .await
        .unwrap();
    store
        .reach_settle(
            due[3].clone(),
            Settled::Retry {
                at: 3_000,
                error: "HTTP 503".into(),
            },
            1_001,
        )
        .await
        .unwrap();
    // Gone removed the subscription.
    assert!(store
        .push_subscriptions("guest".into())
        .await
        .unwrap()
        .is_empty());
    assert!(store.reach_due(2_999, 10).await.unwrap().is_empty());
    let retried = store.reach_due(3_000, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!((retried[0].target.as_str(), retried[0].attempts), ("z", 1));
    store
        .reach_settle(retried[0].clone(), Settled::Failed("gave up".into()), 3_001)
        .await
        .unwrap();
    assert!(store.reach_due(u64::MAX / 2, 10).await.unwrap().is_empty());
}

store_tests!(
    subscriptions_are_per_endpoint_and_capped,
    facts_list_reachable_people_with_unread_text_from_others,
    notices_are_stored_once_with_their_deliveries,
    links_expire,
    settled_deliveries_leave_the_queue,
);
