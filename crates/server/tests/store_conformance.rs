//! One conformance suite for every [`Store`] implementation: the same cases, compiled once per
//! backend, so the backends cannot drift apart.

mod common;

use std::sync::{Arc, Mutex};

use protocol::api::ParticipantSpec;
use protocol::Role;
use server::store::sqlite::{SqliteOptions, SqliteStore};
use server::store::{
    AppendRequest, CommitListener, Committed, MessageStore, ReceiptRequest, Store, StoreError,
};

fn spec(user: &str, role: Role) -> ParticipantSpec {
    ParticipantSpec {
        user_id: user.into(),
        role,
        email: None,
    }
}

fn request(conversation: &str, sender: &str, body: &str) -> AppendRequest {
    AppendRequest {
        role: Role::Operator,
        conversation: conversation.into(),
        id: uuid::Uuid::new_v4().to_string(),
        sender: sender.into(),
        body: body.into(),
        ts: 1_000,
        after: None,
        kind: Default::default(),
        attachments: Vec::new(),
    }
}

async fn booking(store: &dyn Store, id: &str) {
    store
        .create_conversation(
            id.into(),
            vec![spec("ana", Role::Client), spec("olga", Role::Operator)],
            8,
            1,
        )
        .await
        .unwrap();
}

#[derive(Default)]
struct Recorder(Mutex<Vec<Committed>>);

impl CommitListener for Recorder {
    fn committed(&self, change: Committed) {
        self.0.lock().unwrap().push(change);
    }
}

async fn appends_get_gap_free_seqs_in_call_order(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    // Called one after another before any is awaited: stored in call order.
    let pending: Vec<_> = (0..50)
        .map(|i| store.append(request("c1", "ana", &format!("m{i}"))))
        .collect();
    for (i, p) in pending.into_iter().enumerate() {
        let appended = p.await.unwrap();
        assert!(appended.created);
        assert_eq!(appended.message.seq, i as u64 + 1);
        assert_eq!(appended.message.body, format!("m{i}"));
        assert_eq!(appended.message.role, Role::Client);
    }
    let page = store.messages_since("c1".into(), 10, 5).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![11, 12, 13, 14, 15]
    );
    assert!(store
        .messages_since("c1".into(), 50, 5)
        .await
        .unwrap()
        .is_empty());
}

async fn same_id_is_idempotent_and_conflicts_are_refused(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    booking(&*store, "c2").await;
    let first = request("c1", "ana", "hello");
    let stored = store.append(first.clone()).await.unwrap();
    store.append(request("c1", "olga", "other")).await.unwrap();
    let again = store
        .append(AppendRequest {
            ts: 99_999,
            ..first.clone()
        })
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        again.message, stored.message,
        "a repeat answers the original, timestamp included"
    );
    let other_body = AppendRequest {
        body: "changed".into(),
        ..first.clone()
    };
    assert_eq!(
        store.append(other_body).await.unwrap_err(),
        StoreError::IdConflict
    );
    let other_conversation = AppendRequest {
        conversation: "c2".into(),
        ..first.clone()
    };
    assert_eq!(
        store.append(other_conversation).await.unwrap_err(),
        StoreError::IdConflict
    );
    let other_sender = AppendRequest {
        sender: "olga".into(),
        ..first
    };
    assert_eq!(
        store.append(other_sender).await.unwrap_err(),
        StoreError::IdConflict
    );
    assert_eq!(
        store
            .conversation("c1".into())
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        2
    );
}

async fn fifo_guard_refuses_appends_after_a_missing_message(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    let first = store.append(request("c1", "ana", "first")).await.unwrap();
    let missing = uuid::Uuid::new_v4().to_string();
    let guarded = AppendRequest {
        after: Some(missing.clone()),
        ..request("c1", "ana", "second")
    };
    assert_eq!(
        store.append(guarded.clone()).await.unwrap_err(),
        StoreError::OutOfOrder
    );
    let ok = AppendRequest {
        after: Some(first.message.id.clone()),
        ..guarded
    };
    assert_eq!(store.append(ok).await.unwrap().message.seq, 2);
    // A repeat is answered whatever its guard says: its order was decided when it was stored.
    let repeat = AppendRequest {
        id: first.message.id.clone(),
        after: Some(missing),
        ..request("c1", "ana", "first")
    };
    assert_eq!(store.append(repeat).await.unwrap().message.seq, 1);
    assert_eq!(
        store
            .conversation("c1".into())
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        2
    );
}

async fn only_participants_write(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    assert_eq!(
        store
            .append(request("c1", "mallory", "x"))
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store.append(request("nope", "ana", "x")).await.unwrap_err(),
        StoreError::NotFound
    );
    let receipt = ReceiptRequest {
        conversation: "c1".into(),
        user_id: "mallory".into(),
        role: Role::Client,
        delivered: Some(0),
        read: None,
    };
    assert_eq!(
        store.record_receipt(receipt).await.unwrap_err(),
        StoreError::NotFound
    );
    assert_eq!(
        store
            .conversation("c1".into())
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        0
    );
    assert!(store
        .participant("c1".into(), "mallory".into())
        .await
        .unwrap()
        .is_none());
    assert!(store
        .conversations_of("mallory".into())
        .await
        .unwrap()
        .is_empty());
}

/// `message.created` carries the whole message, in every store; notes cause no event.
async fn message_created_events_carry_the_message(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    let first = store.append(request("c1", "ana", "first")).await.unwrap();
    let note = AppendRequest {
        kind: protocol::frames::MessageKind::Note,
        ..request("c1", "olga", "a note")
    };
    store.append(note).await.unwrap();
    let second = store
        .append(AppendRequest {
            after: Some(first.message.id.clone()),
            ..request("c1", "olga", "second \"quoted\" ✓")
        })
        .await
        .unwrap();
    let created: Vec<_> = store
        .events_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "message.created")
        .collect();
    assert_eq!(created.len(), 2);
    for (event, appended) in created.iter().zip([&first, &second]) {
        assert_eq!(event.conversation, "c1");
        assert_eq!(event.created_at, appended.message.ts);
        assert_eq!(
            event.data,
            serde_json::to_value(&*appended.message).unwrap()
        );
    }
}

async fn receipts_only_move_forward(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    for i in 0..5 {
        store
            .append(request("c1", "ana", &format!("m{i}")))
            .await
            .unwrap();
    }
    let receipt = |delivered, read| ReceiptRequest {
        conversation: "c1".into(),
        user_id: "olga".into(),
        role: Role::Operator,
        delivered,
        read,
    };
    let outcome = store.record_receipt(receipt(Some(3), None)).await.unwrap();
    assert!(outcome.changed);
    assert_eq!((outcome.state.delivered, outcome.state.read), (3, 0));
    let outcome = store
        .record_receipt(receipt(Some(2), Some(1)))
        .await
        .unwrap();
    assert_eq!(
        (outcome.state.delivered, outcome.state.read),
        (3, 1),
        "lower values never move a cursor back"
    );
    let outcome = store.record_receipt(receipt(None, Some(4))).await.unwrap();
    assert_eq!(
        (outcome.state.delivered, outcome.state.read),
        (4, 4),
        "read implies delivered"
    );
    assert!(
        !store
            .record_receipt(receipt(Some(4), Some(4)))
            .await
            .unwrap()
            .changed
    );
    let err = store
        .record_receipt(receipt(Some(6), None))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        StoreError::CursorOutOfRange {
            cursor: 6,
            last_seq: 5
        }
    );
    let olga = store
        .participant("c1".into(), "olga".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (olga.delivered, olga.read),
        (4, 4),
        "a rejected receipt changes nothing"
    );
}

async fn summaries_count_unread_from_others(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    booking(&*store, "c2").await;
    for i in 0..3 {
        store
            .append(request("c1", "ana", &format!("a{i}")))
            .await
            .unwrap();
    }
    store.append(request("c1", "olga", "o1")).await.unwrap();
    let receipt = ReceiptRequest {
        conversation: "c1".into(),
        user_id: "olga".into(),
        role: Role::Operator,
        delivered: None,
        read: Some(1),
    };
    store.record_receipt(receipt).await.unwrap();
    let olga = store.conversations_of("olga".into()).await.unwrap();
    assert_eq!(olga.len(), 2);
    assert_eq!(olga[0].id, "c1", "most recently active first");
    assert_eq!((olga[0].last_seq, olga[0].read, olga[0].unread), (4, 1, 2));
    assert_eq!(olga[0].last_message.as_ref().unwrap().body, "o1");
    assert_eq!(olga[1].unread, 0);
    let ana = store.conversations_of("ana".into()).await.unwrap();
    assert_eq!(
        ana[0].unread, 1,
        "only the operator's message is unread for ana"
    );
    let states = store.conversation_states_of("ana".into()).await.unwrap();
    assert_eq!(
        states.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec!["c1", "c2"]
    );
    assert_eq!(states[0].participants.len(), 2);
}

async fn membership_is_idempotent_and_limited(store: Arc<dyn Store>) {
    let (view, created) = store
        .create_conversation("c1".into(), vec![spec("ana", Role::Client)], 3, 7)
        .await
        .unwrap();
    assert!(created);
    assert_eq!(
        (view.last_seq, view.created_at, view.participants.len()),
        (0, 7, 1)
    );
    let (again, created) = store
        .create_conversation("c1".into(), vec![spec("ana", Role::Client)], 3, 8)
        .await
        .unwrap();
    assert!(!created);
    assert_eq!(again.epoch, view.epoch);
    let err = store
        .create_conversation("c1".into(), vec![spec("ana", Role::Operator)], 3, 8)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::ParticipantConflict(Role::Client));
    assert!(store
        .add_participant("c1".into(), spec("olga", Role::Operator), 3, 9)
        .await
        .unwrap());
    assert!(!store
        .add_participant("c1".into(), spec("olga", Role::Operator), 3, 9)
        .await
        .unwrap());
    assert!(store
        .add_participant("c1".into(), spec("omar", Role::Operator), 3, 9)
        .await
        .unwrap());
    let err = store
        .add_participant("c1".into(), spec("oscar", Role::Operator), 3, 9)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::TooManyParticipants);
    assert_eq!(
        store
            .add_participant("nope".into(), spec("x", Role::Client), 3, 9)
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    assert!(store
        .remove_participant("c1".into(), "omar".into())
        .await
        .unwrap());
    assert!(!store
        .remove_participant("c1".into(), "omar".into())
        .await
        .unwrap());
    assert_eq!(
        store
            .remove_participant("nope".into(), "omar".into())
            .await
            .unwrap_err(),
        StoreError::NotFound
    );
    let view = store.conversation("c1".into()).await.unwrap().unwrap();
    assert_eq!(
        view.participants
            .iter()
            .map(|p| p.user_id.as_str())
            .collect::<Vec<_>>(),
        vec!["ana", "olga"]
    );
    assert!(store.conversation("nope".into()).await.unwrap().is_none());
}

async fn listener_hears_commits_in_order(store: Arc<dyn Store>) {
    let recorder = Arc::new(Recorder::default());
    store.attach(recorder.clone());
    booking(&*store, "c1").await;
    let pending: Vec<_> = (0..20)
        .map(|i| store.append(request("c1", "ana", &format!("m{i}"))))
        .collect();
    let repeat = request("c1", "olga", "r");
    store.append(repeat.clone()).await.unwrap();
    store.append(repeat).await.unwrap();
    for p in pending {
        p.await.unwrap();
    }
    let receipt = ReceiptRequest {
        conversation: "c1".into(),
        user_id: "olga".into(),
        role: Role::Operator,
        delivered: Some(2),
        read: None,
    };
    store.record_receipt(receipt.clone()).await.unwrap();
    store.record_receipt(receipt).await.unwrap();
    let events = recorder.0.lock().unwrap().clone();
    let joined = events
        .iter()
        .filter(|e| matches!(e, Committed::Joined { .. }))
        .count();
    assert_eq!(joined, 2);
    let seqs: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            Committed::Message(m) => Some(m.seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs,
        (1..=21).collect::<Vec<_>>(),
        "each new message once, in seq order; repeats are silent"
    );
    let receipts = events
        .iter()
        .filter(|e| matches!(e, Committed::Receipt { .. }))
        .count();
    assert_eq!(receipts, 1, "an unchanged receipt is not reported");
}

async fn concurrent_appends_from_many_tasks_stay_gap_free(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..25 {
                let sender = if t % 2 == 0 { "ana" } else { "olga" };
                seqs.push(
                    store
                        .append(request("c1", sender, &format!("t{t}-{i}")))
                        .await
                        .unwrap()
                        .message
                        .seq,
                );
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "FIFO per sender task");
        all.extend(seqs);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=200).collect::<Vec<_>>());
}

/// The ledger's refusals in order, and a client's message reopening a resolved conversation, the
/// same on every backend.
async fn closed_forbidden_and_reopen(store: Arc<dyn Store>) {
    use protocol::frames::{ConversationStatus, MessageKind};
    use server::store::ConversationChange;
    booking(&*store, "c1").await;
    let note = |sender: &str| AppendRequest {
        kind: MessageKind::Note,
        ..request("c1", sender, "between us")
    };
    assert_eq!(
        store.append(note("ana")).await.unwrap_err(),
        StoreError::Forbidden,
        "clients write no notes"
    );
    let first = store.append(note("olga")).await.unwrap();
    assert_eq!((first.message.seq, first.message.role), (1, Role::Operator));
    let change = |closed, status| ConversationChange {
        closed,
        status,
        by: "olga".into(),
        ..ConversationChange::default()
    };
    store
        .change_conversation("c1".into(), change(Some(true), None), 5)
        .await
        .unwrap();
    assert_eq!(
        store
            .append(request("c1", "ana", "hello"))
            .await
            .unwrap_err(),
        StoreError::Closed
    );
    assert_eq!(
        store.append(note("ana")).await.unwrap_err(),
        StoreError::Closed,
        "closed is said before forbidden"
    );
    let repeat = AppendRequest {
        id: first.message.id.clone(),
        ..note("olga")
    };
    let again = store.append(repeat).await.unwrap();
    assert!(!again.created, "a repeat is answered even when closed");
    let resolved = Some(ConversationStatus::Resolved);
    let view = store
        .change_conversation("c1".into(), change(Some(false), resolved), 6)
        .await
        .unwrap();
    assert_eq!(
        view.last_seq, 2,
        "the status change is an entry of the timeline"
    );
    let reopening = store.append(request("c1", "ana", "again")).await.unwrap();
    assert_eq!(reopening.message.seq, 3);
    let view = store.conversation("c1".into()).await.unwrap().unwrap();
    assert_eq!((view.status, view.last_seq), (ConversationStatus::Open, 4));
    let entry = &store.messages_since("c1".into(), 3, 10).await.unwrap()[0];
    assert_eq!(
        (entry.kind, entry.role, entry.sender.as_str()),
        (MessageKind::System, Role::Client, "ana")
    );
}

fn operator(id: &str, name: &str, active: bool) -> protocol::api::Operator {
    protocol::api::Operator {
        id: id.into(),
        name: name.into(),
        avatar_url: None,
        active,
    }
}

async fn the_operator_directory_is_kept(store: Arc<dyn Store>) {
    assert_eq!(store.operators().await.unwrap(), vec![]);
    assert!(store
        .put_operator(operator("olga", "Olga", true))
        .await
        .unwrap());
    let bob = protocol::api::Operator {
        avatar_url: Some("https://example.com/bob.png".into()),
        ..operator("bob", "Bob Stone", true)
    };
    assert!(store.put_operator(bob.clone()).await.unwrap(), "created");
    let disabled = operator("olga", "Olga P.", false);
    assert!(
        !store.put_operator(disabled.clone()).await.unwrap(),
        "replaced"
    );
    assert_eq!(
        store.operators().await.unwrap(),
        vec![bob.clone(), disabled.clone()],
        "by id"
    );
    assert_eq!(store.operator("olga".into()).await.unwrap(), Some(disabled));
    assert_eq!(store.operator("nobody".into()).await.unwrap(), None);
    assert!(store.delete_operator("olga".into()).await.unwrap());
    assert!(!store.delete_operator("olga".into()).await.unwrap());
    assert_eq!(store.operators().await.unwrap(), vec![bob]);
}

async fn only_active_directory_operators_are_assigned(store: Arc<dyn Store>) {
    use server::store::ConversationChange;
    booking(&*store, "c1").await;
    store
        .put_operator(operator("olga", "Olga", true))
        .await
        .unwrap();
    store
        .put_operator(operator("bob", "Bob Stone", true))
        .await
        .unwrap();
    store
        .put_operator(operator("otto", "Otto", false))
        .await
        .unwrap();
    let assign = |to: &str| ConversationChange {
        assignee: Some(Some(to.into())),
        by: "olga".into(),
        ..ConversationChange::default()
    };
    for to in ["ana", "bbo", "otto"] {
        assert_eq!(
            store
                .change_conversation("c1".into(), assign(to), 2)
                .await
                .unwrap_err(),
            StoreError::UnknownOperator,
            "{to}"
        );
    }
    let view = store.conversation("c1".into()).await.unwrap().unwrap();
    assert_eq!((view.assignee, view.last_seq), (None, 0), "nothing written");
    assert!(
        view.participants
            .iter()
            .all(|p| p.user_id != "ana" || p.role == Role::Client),
        "the client stays a client"
    );
    let view = store
        .change_conversation("c1".into(), assign("bob"), 3)
        .await
        .unwrap();
    assert_eq!(view.assignee.as_deref(), Some("bob"));
    assert!(view
        .participants
        .iter()
        .any(|p| p.user_id == "bob" && p.role == Role::Operator));
    let entry = &store.messages_since("c1".into(), 0, 10).await.unwrap()[0];
    assert_eq!(entry.body, "Olga assigned the conversation to Bob Stone");
    assert_eq!(entry.data.as_ref().unwrap()["to"], "bob");
}

async fn a_client_token_never_writes_a_note(store: Arc<dyn Store>) {
    use protocol::frames::MessageKind;
    // A client's id with an operator participant row, planted directly.
    store
        .create_conversation(
            "c1".into(),
            vec![spec("ana", Role::Operator), spec("olga", Role::Operator)],
            8,
            1,
        )
        .await
        .unwrap();
    let as_client = |kind| AppendRequest {
        role: Role::Client,
        kind,
        ..request("c1", "ana", "from a client token")
    };
    assert_eq!(
        store
            .append(as_client(MessageKind::Note))
            .await
            .unwrap_err(),
        StoreError::Forbidden
    );
    let text = store.append(as_client(MessageKind::Text)).await.unwrap();
    assert_eq!(
        (text.message.seq, text.message.role),
        (1, Role::Client),
        "stored as a client's message"
    );
}

/// Each node's word on its operators replaces its previous one; expired rows are ignored; an
/// operator available on any node is available.
async fn presence_rows_expire_and_available_wins(store: Arc<dyn Store>) {
    let rows = |v: &[(&str, bool)]| -> Vec<(String, bool)> {
        v.iter().map(|(u, a)| (u.to_string(), *a)).collect()
    };
    store
        .put_presence("n1".into(), rows(&[("olga", false), ("omar", true)]), 2_000)
        .await
        .unwrap();
    store
        .put_presence("n2".into(), rows(&[("olga", true)]), 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.presence(500).await.unwrap(),
        rows(&[("olga", true), ("omar", true)])
    );
    // n2's row expired: olga is only away on n1.
    assert_eq!(
        store.presence(1_000).await.unwrap(),
        rows(&[("olga", false), ("omar", true)])
    );
    // n1 now reports omar alone; then withdraws everything.
    store
        .put_presence("n1".into(), rows(&[("omar", false)]), 3_000)
        .await
        .unwrap();
    assert_eq!(
        store.presence(1_500).await.unwrap(),
        rows(&[("omar", false)])
    );
    store
        .put_presence("n1".into(), Vec::new(), 0)
        .await
        .unwrap();
    assert_eq!(store.presence(1_500).await.unwrap(), rows(&[]));
}

/// Concurrent callers of a counter never get the same value, and no value is skipped.
async fn turns_are_handed_out_once_each(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.next_turn("round_robin".into()).await.unwrap()
        }));
    }
    let mut turns = Vec::new();
    for task in tasks {
        turns.push(task.await.unwrap());
    }
    turns.sort_unstable();
    assert_eq!(turns, (1..=20).collect::<Vec<u64>>());
    assert_eq!(store.next_turn("other".into()).await.unwrap(), 1);
}

/// `message.unread_timeout`: once per text message no recipient has read, created in the window
/// asked for (`after` excluded, `older_than` included).
async fn unread_messages_are_flagged_once_within_the_window(store: Arc<dyn Store>) {
    booking(&*store, "c1").await;
    let mut stored = Vec::new();
    for ts in [1_000, 2_000, 3_000, 1_500] {
        let appended = store
            .append(AppendRequest {
                ts,
                ..request("c1", "ana", &format!("at {ts}"))
            })
            .await
            .unwrap();
        stored.push(appended.message);
    }
    let note = AppendRequest {
        kind: protocol::frames::MessageKind::Note,
        ..request("c1", "olga", "a note is never flagged")
    };
    store.append(note).await.unwrap();
    // Olga read the first; her own note counts for nobody.
    store
        .record_receipt(ReceiptRequest {
            conversation: "c1".into(),
            user_id: "olga".into(),
            role: Role::Operator,
            delivered: None,
            read: Some(1),
        })
        .await
        .unwrap();
    assert_eq!(store.flag_unread(1_500, 2_500, 9_000).await.unwrap(), 1);
    assert_eq!(
        store.flag_unread(1_500, 2_500, 9_000).await.unwrap(),
        0,
        "once"
    );
    assert_eq!(store.flag_unread(2_000, 5_000, 9_000).await.unwrap(), 1);
    assert_eq!(
        store.flag_unread(0, 5_000, 9_000).await.unwrap(),
        1,
        "the one at 1,500"
    );
    assert_eq!(store.flag_unread(0, 5_000, 9_000).await.unwrap(), 0);
    let flagged: Vec<_> = store
        .events_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "message.unread_timeout")
        .map(|e| (e.created_at, e.data["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(flagged, vec![(9_000, 2), (9_000, 3), (9_000, 4)]);
    assert_eq!(stored[1].seq, 2);
}

store_tests!(
    appends_get_gap_free_seqs_in_call_order,
    same_id_is_idempotent_and_conflicts_are_refused,
    only_participants_write,
    fifo_guard_refuses_appends_after_a_missing_message,
    message_created_events_carry_the_message,
    receipts_only_move_forward,
    summaries_count_unread_from_others,
    membership_is_idempotent_and_limited,
    listener_hears_commits_in_order,
    concurrent_appends_from_many_tasks_stay_gap_free,
    closed_forbidden_and_reopen,
    the_operator_directory_is_kept,
    only_active_directory_operators_are_assigned,
    a_client_token_never_writes_a_note,
    presence_rows_expire_and_available_wins,
    turns_are_handed_out_once_each,
    unread_messages_are_flagged_once_within_the_window,
);

/// SQLite only: what was committed is there after the store is reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let stored = {
        let store = SqliteStore::open(
            dir.path(),
            SqliteOptions {
                group_commit_max: 7,
                ..SqliteOptions::default()
            },
        )
        .unwrap();
        booking(&store, "c1").await;
        let pending: Vec<_> = (0..30)
            .map(|i| store.append(request("c1", "ana", &format!("m{i}"))))
            .collect();
        let mut stored = Vec::new();
        for p in pending {
            stored.push(p.await.unwrap().message);
        }
        stored
    };
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    let read = store.messages_since("c1".into(), 0, 100).await.unwrap();
    assert_eq!(read.len(), 30);
    for (a, b) in read.iter().zip(&stored) {
        assert_eq!(a, &**b);
    }
}

/// SQLite only: committed pages reach the main database file from the store's checkpoint thread
/// soon after their commit, well before the WAL reaches the 1,000 pages at which the writer would
/// checkpoint in its own commit (and hold every queued send meanwhile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpoints_off_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    booking(&store, "c1").await;
    let file = dir.path().join(server::store::sqlite::DATABASE_FILE);
    let before = std::fs::metadata(&file).unwrap().len();
    // About 400 KB of bodies: a tenth of what the writer's own checkpoint waits for.
    let body = "x".repeat(2_000);
    let pending: Vec<_> = (0..200)
        .map(|_| store.append(request("c1", "ana", &body)))
        .collect();
    for p in pending {
        p.await.unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = std::fs::metadata(&file).unwrap().len();
        if now >= before + 400_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the database file is {now} bytes (was {before}): nothing was checkpointed"
        );
        // A file's size has no event to wait on.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Runs SQL straight against a store's database, behind the store's back.
enum Database {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl Database {
    async fn execute(&self, sql: &str) {
        match self {
            Database::Sqlite(path) => rusqlite::Connection::open(path)
                .unwrap()
                .execute_batch(sql)
                .unwrap(),
            Database::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.batch_execute(sql).await.unwrap();
            }
        }
    }
}

/// A store on `backend` (SQLite or PostgreSQL) and a way to its database behind its back; the
/// third value keeps both alive.
async fn sql_store(
    backend: common::Backend,
) -> (Arc<dyn Store>, Database, (common::Keep, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let (store, keep) = backend.store(dir.path()).await;
    let database = match &keep {
        common::Keep::Schema(schema) => Database::Postgres(schema.url.clone()),
        _ => Database::Sqlite(dir.path().join(server::store::sqlite::DATABASE_FILE)),
    };
    (store, database, (keep, dir))
}

fn is_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(&result, Err(StoreError::Unavailable(why)) if why.starts_with("stored data cannot be interpreted"))
}

/// Both SQL stores: a row storage cannot interpret (written by a newer version, or by hand) is
/// an error, never read as a default — a default could show an operator's note to a client as
/// text, or treat an unknown role as a client.
async fn rows_that_cannot_be_interpreted_are_errors(store: Arc<dyn Store>, database: Database) {
    for id in ["c-kind", "c-role", "c-data", "c-status", "c-meta", "c-ok"] {
        booking(&*store, id).await;
    }
    let mut planted = Vec::new();
    for id in ["c-kind", "c-role", "c-data", "c-ok"] {
        planted.push(
            store
                .append(request(id, "olga", "hi"))
                .await
                .unwrap()
                .message,
        );
    }
    database
        .execute(
            "UPDATE messages SET kind = 'sticker' WHERE conversation_id = 'c-kind';
             UPDATE messages SET sender_role = 'admin' WHERE conversation_id = 'c-role';
             UPDATE messages SET data = '{not json' WHERE conversation_id = 'c-data';
             UPDATE conversations SET status = 'archived' WHERE id = 'c-status';
             UPDATE conversations SET metadata = '{not json' WHERE id = 'c-meta';",
        )
        .await;
    for id in ["c-kind", "c-role", "c-data"] {
        let read = store.messages_since(id.into(), 0, 10).await;
        assert!(is_corrupt(read), "messages of {id}");
    }
    for id in ["c-status", "c-meta"] {
        assert!(is_corrupt(store.conversation(id.into()).await), "{id}");
        assert!(is_corrupt(store.states(vec![id.into()]).await), "{id}");
    }
    // The writer reads rows too: the status an append plans with, a repeat's stored message.
    assert!(is_corrupt(
        store.append(request("c-status", "ana", "x")).await
    ));
    let repeat = AppendRequest {
        id: planted[0].id.clone(),
        ..request("c-kind", "olga", "hi")
    };
    assert!(is_corrupt(store.append(repeat).await));
    // The inbox's last message of c-role has the unknown role.
    assert!(is_corrupt(store.conversations_of("olga".into()).await));
    // What can be read is still read, and the store still writes.
    let ok = store.messages_since("c-ok".into(), 0, 10).await.unwrap();
    assert_eq!(ok, vec![(*planted[3]).clone()]);
    let next = store.append(request("c-ok", "ana", "still")).await.unwrap();
    assert_eq!(next.message.seq, 2);
    // A request that fails in storage fails alone: the writes submitted around it, which share
    // its group commit, are stored.
    let mut around = Vec::new();
    let mut failing = Vec::new();
    for i in 0..40 {
        if i % 10 == 5 {
            failing.push(store.append(request("c-status", "ana", &format!("bad {i}"))));
        }
        around.push(store.append(request("c-ok", "ana", &format!("good {i}"))));
    }
    for pending in failing {
        assert!(is_corrupt(pending.await));
    }
    for (i, pending) in around.into_iter().enumerate() {
        let stored = pending
            .await
            .unwrap_or_else(|e| panic!("good {i} failed: {e}"));
        assert_eq!(stored.message.seq, 3 + i as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_rows_that_cannot_be_interpreted_are_errors() {
    let (store, database, _keep) = sql_store(common::Backend::Sqlite).await;
    rows_that_cannot_be_interpreted_are_errors(store, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_that_cannot_be_interpreted_are_errors() {
    let (store, database, _keep) = sql_store(common::Backend::Postgres).await;
    rows_that_cannot_be_interpreted_are_errors(store, database).await;
}

/// Both SQL stores keep `message.created` by reference (the row names the message; reading joins
/// it back). Rows written before that keep their copy and read as before; a row naming a message
/// that is not stored is an error, never an event without its data.
async fn message_events_by_reference(store: Arc<dyn Store>, database: Database) {
    booking(&*store, "c1").await;
    let stored = store.append(request("c1", "ana", "hi")).await.unwrap();
    database
        .execute(
            "INSERT INTO events (type, conversation_id, data, created_at)
             VALUES ('message.created', 'c1', '{\"written\":\"before\"}', 5)",
        )
        .await;
    let created: Vec<_> = store
        .events_since(0, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "message.created")
        .map(|e| e.data)
        .collect();
    assert_eq!(
        created,
        vec![
            serde_json::to_value(&*stored.message).unwrap(),
            serde_json::json!({"written": "before"})
        ]
    );
    database
        .execute(
            "INSERT INTO events (type, conversation_id, data, created_at, message_seq)
             VALUES ('message.created', 'c1', '', 6, 99)",
        )
        .await;
    assert!(is_corrupt(store.events_since(0, 100).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_message_events_by_reference() {
    let (store, database, _keep) = sql_store(common::Backend::Sqlite).await;
    message_events_by_reference(store, database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_message_events_by_reference() {
    let (store, database, _keep) = sql_store(common::Backend::Postgres).await;
    message_events_by_reference(store, database).await;
}
