//! The ledger's rules, checked without any store: every rule, every refusal, and the order in
//! which they apply.

use std::sync::Arc;

use protocol::api::ParticipantSpec;
use protocol::frames::{ConversationStatus, MessageKind, ParticipantState};
use protocol::Role;

use super::*;

fn request(kind: MessageKind, after: Option<&str>) -> AppendRequest {
    AppendRequest {
        conversation: "c1".into(),
        id: "m-new".into(),
        sender: "ana".into(),
        // The token's role caps the participant's; an operator token leaves it as it is.
        role: Role::Operator,
        body: "hello".into(),
        ts: 1_000,
        kind,
        after: after.map(str::to_owned),
        attachments: Vec::new(),
    }
}

fn sender(role: Role) -> SenderFacts {
    SenderFacts {
        role,
        closed: false,
        status: ConversationStatus::Open,
        last_seq: 7,
    }
}

fn stored(request: &AppendRequest, seq: u64) -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        conversation: request.conversation.clone(),
        id: request.id.clone(),
        seq,
        sender: request.sender.clone(),
        role: Role::Client,
        body: request.body.clone(),
        ts: 5,
        kind: request.kind,
        data: None,
        attachments: Vec::new(),
    })
}

fn facts(sender: Option<SenderFacts>) -> AppendFacts {
    AppendFacts {
        existing: None,
        after_stored: false,
        sender,
        uploads: Vec::new(),
    }
}

fn no_id() -> String {
    panic!("no system entry expected")
}

fn plan(request: &AppendRequest, facts: AppendFacts) -> Result<AppendPlan, StoreError> {
    plan_append(request, facts, no_id)
}

fn writes(plan: Result<AppendPlan, StoreError>) -> Writes {
    match plan {
        Ok(AppendPlan::Store(writes)) => writes,
        other => panic!("expected writes, got {other:?}"),
    }
}

#[test]
fn a_new_message_gets_the_next_seq_and_the_senders_role() {
    let request = request(MessageKind::Text, None);
    let writes = writes(plan(&request, facts(Some(sender(Role::Client)))));
    assert_eq!(writes.messages.len(), 1);
    let message = &writes.messages[0];
    assert_eq!(message.seq, 8, "last_seq + 1");
    assert_eq!(message.role, Role::Client, "the role comes from storage");
    assert_eq!(
        (
            &*message.id,
            &*message.body,
            message.ts,
            message.data.clone()
        ),
        ("m-new", "hello", 1_000, None)
    );
    assert_eq!((writes.status, writes.events.len()), (None, 0));
}

#[test]
fn a_repeat_is_answered_with_the_stored_message() {
    let request = request(MessageKind::Text, None);
    let original = stored(&request, 3);
    let plan = plan(
        &request,
        AppendFacts {
            existing: Some(original.clone()),
            ..facts(None)
        },
    );
    assert_eq!(plan, Ok(AppendPlan::Repeat(original)));
}

#[test]
fn a_repeat_wins_over_every_later_check() {
    // Stored earlier; since then the guard's message vanished from view, the sender left and
    // the conversation closed: the repeat is still answered, its order was decided then.
    let request = request(MessageKind::Note, Some("m-missing"));
    let original = stored(&request, 3);
    let closed = SenderFacts {
        closed: true,
        ..sender(Role::Client)
    };
    for sender in [None, Some(closed)] {
        let facts = AppendFacts {
            existing: Some(original.clone()),
            after_stored: false,
            sender,
            uploads: Vec::new(),
        };
        assert_eq!(
            plan(&request, facts),
            Ok(AppendPlan::Repeat(original.clone()))
        );
    }
}

#[test]
fn the_same_id_with_other_content_conflicts() {
    let request = request(MessageKind::Text, None);
    let changes: [fn(&mut StoredMessage); 4] = [
        |m| m.conversation = "c2".into(),
        |m| m.sender = "olga".into(),
        |m| m.body = "other".into(),
        |m| m.kind = MessageKind::Note,
    ];
    for change in changes {
        let mut other = (*stored(&request, 3)).clone();
        change(&mut other);
        let facts = AppendFacts {
            existing: Some(Arc::new(other)),
            ..facts(Some(sender(Role::Operator)))
        };
        assert_eq!(plan(&request, facts), Err(StoreError::IdConflict));
    }
}

/// No existence oracle: someone who is not a participant learns nothing about a message id.
#[test]
fn a_non_participant_reusing_an_id_gets_not_found() {
    let request = request(MessageKind::Text, None);
    let mut elsewhere = (*stored(&request, 3)).clone();
    elsewhere.conversation = "someone-elses".into();
    let facts = AppendFacts {
        existing: Some(Arc::new(elsewhere)),
        ..facts(None)
    };
    assert_eq!(plan(&request, facts), Err(StoreError::NotFound));
}

#[test]
fn the_fifo_guard_needs_its_message_stored() {
    let guarded = request(MessageKind::Text, Some("m-before"));
    assert_eq!(
        plan(&guarded, facts(Some(sender(Role::Client)))),
        Err(StoreError::OutOfOrder)
    );
    // Checked before participation: a refused guard says nothing about membership.
    assert_eq!(plan(&guarded, facts(None)), Err(StoreError::OutOfOrder));
    let stored_before = AppendFacts {
        after_stored: true,
        ..facts(Some(sender(Role::Client)))
    };
    assert_eq!(writes(plan(&guarded, stored_before)).messages[0].seq, 8);
    // Without a guard, `after_stored` is not looked at.
    let unguarded = request(MessageKind::Text, None);
    assert!(
        writes(plan(&unguarded, facts(Some(sender(Role::Client)))))
            .messages
            .len()
            == 1
    );
}

#[test]
fn only_participants_write() {
    assert_eq!(
        plan(&request(MessageKind::Text, None), facts(None)),
        Err(StoreError::NotFound)
    );
}

#[test]
fn a_closed_conversation_refuses_before_the_role_check() {
    let closed = SenderFacts {
        closed: true,
        ..sender(Role::Client)
    };
    // A client's note is forbidden, but the conversation being closed is said first.
    for kind in [MessageKind::Text, MessageKind::Note] {
        assert_eq!(
            plan(&request(kind, None), facts(Some(closed))),
            Err(StoreError::Closed)
        );
    }
}

#[test]
fn who_may_write_which_kind() {
    let cases = [
        (Role::Client, MessageKind::Text, true),
        (Role::Client, MessageKind::Note, false),
        (Role::Client, MessageKind::System, false),
        (Role::Operator, MessageKind::Text, true),
        (Role::Operator, MessageKind::Note, true),
        (Role::Operator, MessageKind::System, false),
    ];
    for (role, kind, allowed) in cases {
        let result = plan(&request(kind, None), facts(Some(sender(role))));
        if allowed {
            assert_eq!(writes(result).messages[0].kind, kind);
        } else {
            assert_eq!(result, Err(StoreError::Forbidden), "{role:?} {kind:?}");
        }
    }
}

#[test]
fn a_clients_text_reopens_a_resolved_conversation() {
    let resolved = SenderFacts {
        status: ConversationStatus::Resolved,
        ..sender(Role::Client)
    };
    let request = request(MessageKind::Text, None);
    let writes = writes(plan_append(&request, facts(Some(resolved)), || {
        "sys-1".into()
    }));
    assert_eq!(writes.messages.len(), 2);
    let (message, entry) = (&writes.messages[0], &writes.messages[1]);
    assert_eq!(
        (message.seq, entry.seq),
        (8, 9),
        "the entry follows the message"
    );
    assert_eq!(entry.id, "sys-1");
    assert_eq!(entry.kind, MessageKind::System);
    assert_eq!(
        (&*entry.sender, entry.role, entry.ts),
        ("ana", Role::Client, 1_000)
    );
    assert_eq!(entry.data.as_ref().unwrap()["to"], "open");
    assert_eq!(writes.status, Some(ConversationStatus::Open));
    assert_eq!(writes.events.len(), 1);
    assert_eq!(writes.events[0].0, "conversation.status_changed");
}

#[test]
fn only_a_clients_text_to_a_resolved_conversation_reopens_it() {
    let cases = [
        (
            Role::Operator,
            MessageKind::Text,
            ConversationStatus::Resolved,
        ),
        (
            Role::Operator,
            MessageKind::Note,
            ConversationStatus::Resolved,
        ),
        (Role::Client, MessageKind::Text, ConversationStatus::Pending),
        (Role::Client, MessageKind::Text, ConversationStatus::Open),
    ];
    for (role, kind, status) in cases {
        let facts = facts(Some(SenderFacts {
            status,
            ..sender(role)
        }));
        let writes = writes(plan(&request(kind, None), facts));
        assert_eq!(writes.messages.len(), 1, "{role:?} {kind:?} {status:?}");
        assert_eq!(writes.status, None);
    }
}

#[test]
fn the_sender_is_read_only_when_the_plan_looks_at_it() {
    let unguarded = request(MessageKind::Text, None);
    let guarded = request(MessageKind::Text, Some("m-before"));
    assert!(needs_sender(&unguarded, &facts(None)));
    assert!(!needs_sender(&guarded, &facts(None)));
    let after_stored = AppendFacts {
        after_stored: true,
        ..facts(None)
    };
    assert!(needs_sender(&guarded, &after_stored));
    let repeat = AppendFacts {
        existing: Some(stored(&unguarded, 1)),
        ..facts(None)
    };
    assert!(!needs_sender(&unguarded, &repeat));
    let other_body = AppendRequest {
        body: "another body".into(),
        ..unguarded.clone()
    };
    let conflict = AppendFacts {
        existing: Some(stored(&other_body, 1)),
        ..facts(None)
    };
    assert!(
        needs_sender(&unguarded, &conflict),
        "a conflict depends on participation"
    );
}

#[test]
fn system_messages_continue_the_seqs() {
    let entries = vec![
        SystemEntry {
            body: "a".into(),
            data: serde_json::json!({"n": 1}),
        },
        SystemEntry {
            body: "b".into(),
            data: serde_json::json!({"n": 2}),
        },
    ];
    let mut ids = ["s1", "s2"].into_iter();
    let messages = system_messages("c1", 4, "olga", Role::Operator, entries, 9, || {
        ids.next().unwrap().into()
    });
    let seen: Vec<_> = messages
        .iter()
        .map(|m| (m.seq, m.id.as_str(), m.body.as_str(), m.kind))
        .collect();
    assert_eq!(
        seen,
        vec![
            (5, "s1", "a", MessageKind::System),
            (6, "s2", "b", MessageKind::System)
        ]
    );
    assert!(system_messages("c1", 4, "olga", Role::Operator, Vec::new(), 9, no_id).is_empty());
}

fn participant(user: &str, role: Role, delivered: u64, read: u64) -> ParticipantState {
    ParticipantState {
        user_id: user.into(),
        role,
        delivered,
        read,
    }
}

fn receipt(delivered: Option<u64>, read: Option<u64>) -> ReceiptRequest {
    ReceiptRequest {
        conversation: "c1".into(),
        user_id: "olga".into(),
        role: Role::Operator,
        delivered,
        read,
    }
}

fn receipt_facts(delivered: u64, read: u64) -> ReceiptFacts {
    ReceiptFacts {
        participant: Some(participant("olga", Role::Operator, delivered, read)),
        last_seq: 5,
    }
}

#[test]
fn receipts_need_a_participant() {
    let facts = ReceiptFacts {
        participant: None,
        last_seq: 5,
    };
    assert_eq!(
        plan_receipt(&receipt(Some(1), None), facts),
        Err(StoreError::NotFound)
    );
}

#[test]
fn cursors_only_move_forward_and_read_implies_delivered() {
    let plan = plan_receipt(&receipt(Some(2), Some(1)), receipt_facts(3, 0)).unwrap();
    let state = &plan.outcome.state;
    assert_eq!((state.delivered, state.read), (3, 1));
    assert!(plan.outcome.changed);
    assert_eq!(
        plan.events.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec!["message.read"],
        "only the cursor that moved has an event"
    );
    let plan = plan_receipt(&receipt(None, Some(4)), receipt_facts(3, 1)).unwrap();
    assert_eq!(
        (plan.outcome.state.delivered, plan.outcome.state.read),
        (4, 4)
    );
    assert_eq!(
        plan.events.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec!["message.delivered", "message.read"]
    );
    assert_eq!(plan.events[0].1["up_to"], 4);
    assert_eq!(plan.events[0].1["role"], "operator");
}

#[test]
fn receipt_events_name_the_lesser_role() {
    let request = ReceiptRequest {
        role: Role::Client,
        ..receipt(Some(4), None)
    };
    let plan = plan_receipt(&request, receipt_facts(0, 0)).unwrap();
    assert_eq!(
        plan.events[0].1["role"], "client",
        "a client token acts as a client, whatever its participant row says"
    );
}

#[test]
fn an_unchanged_receipt_writes_nothing() {
    let plan = plan_receipt(&receipt(Some(2), Some(2)), receipt_facts(4, 4)).unwrap();
    assert!(!plan.outcome.changed);
    assert!(plan.events.is_empty());
    assert_eq!(
        plan.outcome.state,
        participant("olga", Role::Operator, 4, 4)
    );
}

#[test]
fn cursors_beyond_the_last_seq_are_refused() {
    for (delivered, read, cursor) in [
        (Some(6), None, 6),
        (None, Some(7), 7),
        (Some(9), Some(1), 9),
    ] {
        assert_eq!(
            plan_receipt(&receipt(delivered, read), receipt_facts(0, 0)),
            Err(StoreError::CursorOutOfRange {
                cursor,
                last_seq: 5
            })
        );
    }
    assert!(plan_receipt(&receipt(Some(5), Some(5)), receipt_facts(0, 0)).is_ok());
}

fn spec(user: &str, role: Role) -> ParticipantSpec {
    ParticipantSpec {
        user_id: user.into(),
        role,
        email: None,
    }
}

#[test]
fn a_missing_conversation_is_created_only_when_asked() {
    let wanted = [spec("ana", Role::Client)];
    assert_eq!(
        plan_participants(None, &wanted, 8, false),
        Err(StoreError::NotFound)
    );
    let plan = plan_participants(None, &wanted, 8, true).unwrap();
    assert!(plan.create);
    assert_eq!(plan.new, wanted);
    let existing = [participant("ana", Role::Client, 0, 0)];
    let plan = plan_participants(Some(&existing), &wanted, 8, true).unwrap();
    assert!(
        !plan.create,
        "an existing conversation is not created again"
    );
    assert!(plan.new.is_empty(), "ana is already there");
}

#[test]
fn participants_keep_their_role() {
    let existing = [participant("ana", Role::Client, 0, 0)];
    assert_eq!(
        plan_participants(Some(&existing), &[spec("ana", Role::Operator)], 8, false),
        Err(StoreError::ParticipantConflict(Role::Client))
    );
    // Asked twice in one request with two roles: the first one asked is the role kept.
    assert_eq!(
        plan_participants(
            None,
            &[spec("olga", Role::Operator), spec("olga", Role::Client)],
            8,
            true
        ),
        Err(StoreError::ParticipantConflict(Role::Operator))
    );
    let plan = plan_participants(
        None,
        &[spec("olga", Role::Operator), spec("olga", Role::Operator)],
        8,
        true,
    )
    .unwrap();
    assert_eq!(
        plan.new,
        vec![spec("olga", Role::Operator)],
        "asked twice, added once"
    );
}

#[test]
fn the_participant_limit_counts_those_there_and_those_added() {
    let existing = [
        participant("ana", Role::Client, 0, 0),
        participant("olga", Role::Operator, 0, 0),
    ];
    let omar = [spec("omar", Role::Operator)];
    assert!(plan_participants(Some(&existing), &omar, 3, false).is_ok());
    assert_eq!(
        plan_participants(Some(&existing), &omar, 2, false),
        Err(StoreError::TooManyParticipants)
    );
    // Someone already there does not count twice.
    assert!(plan_participants(Some(&existing), &[spec("ana", Role::Client)], 2, false).is_ok());
}

#[test]
fn a_client_token_writes_as_a_client_whatever_its_participant_row_says() {
    let client_token = AppendRequest {
        role: Role::Client,
        ..request(MessageKind::Note, None)
    };
    assert_eq!(
        plan(&client_token, facts(Some(sender(Role::Operator)))),
        Err(StoreError::Forbidden),
        "a client token never writes a note"
    );
    let text = AppendRequest {
        kind: MessageKind::Text,
        ..client_token
    };
    let writes = writes(plan(&text, facts(Some(sender(Role::Operator)))));
    assert_eq!(writes.messages[0].role, Role::Client, "shown as a client's");
}

mod changes {
    use protocol::api::{ConversationView, Operator};

    use super::*;
    use crate::store::workflow::{named_operators, plan_change, ChangeFacts};
    use crate::store::ConversationChange;

    fn view(assignee: Option<&str>) -> ConversationView {
        ConversationView {
            id: "c1".into(),
            epoch: 1,
            last_seq: 0,
            created_at: 0,
            participants: vec![
                participant("ana", Role::Client, 0, 0),
                participant("olga", Role::Operator, 0, 0),
            ],
            status: ConversationStatus::Open,
            assignee: assignee.map(str::to_owned),
            metadata: None,
            closed: false,
        }
    }

    fn operator(id: &str, name: &str, active: bool) -> Operator {
        Operator {
            id: id.into(),
            name: name.into(),
            avatar_url: None,
            active,
        }
    }

    fn assign(to: &str) -> ConversationChange {
        ConversationChange {
            assignee: Some(Some(to.into())),
            by: "olga".into(),
            ..Default::default()
        }
    }

    fn directory() -> ChangeFacts {
        ChangeFacts {
            operators: vec![
                operator("olga", "Olga", true),
                operator("bob", "Bob Stone", true),
                operator("otto", "Otto", false),
                // An operator of the directory who is a client of this conversation.
                operator("ana", "Ana", true),
            ],
        }
    }

    #[test]
    fn only_active_directory_operators_are_assigned() {
        for to in ["bbo", "otto"] {
            assert_eq!(
                plan_change(&view(None), &assign(to), &directory()),
                Err(StoreError::UnknownOperator),
                "{to}"
            );
        }
        assert_eq!(
            plan_change(&view(None), &assign("ana"), &directory()),
            Err(StoreError::ParticipantConflict(Role::Client)),
            "a client participant is never made an operator"
        );
        let plan = plan_change(&view(None), &assign("bob"), &directory()).unwrap();
        assert_eq!(plan.add_operator.as_deref(), Some("bob"));
    }

    #[test]
    fn an_assignee_who_joins_must_fit_the_participant_limit() {
        let limited = |max| ConversationChange {
            participants_max: Some(max),
            ..assign("bob")
        };
        assert_eq!(
            plan_change(&view(None), &limited(2), &directory()),
            Err(StoreError::TooManyParticipants),
            "ana and olga fill a limit of 2"
        );
        let plan = plan_change(&view(None), &limited(3), &directory()).unwrap();
        assert_eq!(plan.add_operator.as_deref(), Some("bob"));
        let plan = plan_change(
            &view(None),
            &ConversationChange {
                participants_max: Some(2),
                ..assign("olga")
            },
            &directory(),
        )
        .unwrap();
        assert_eq!(
            plan.assignee.as_deref(),
            Some("olga"),
            "a participant already"
        );
        assert_eq!(plan.add_operator, None);
    }

    #[test]
    fn a_client_id_is_an_unknown_operator() {
        let facts = ChangeFacts {
            operators: vec![operator("olga", "Olga", true)],
        };
        assert_eq!(
            plan_change(&view(Some("olga")), &assign("ana"), &facts),
            Err(StoreError::UnknownOperator)
        );
    }

    #[test]
    fn entries_name_operators_by_their_display_names() {
        let plan = plan_change(&view(Some("olga")), &assign("bob"), &directory()).unwrap();
        let entry = &plan.entries[0];
        assert_eq!(
            entry.body,
            "Olga transferred the conversation from Olga to Bob Stone"
        );
        assert_eq!(entry.data["to"], "bob");
        assert_eq!(entry.data["to_name"], "Bob Stone");
        assert_eq!(
            named_operators(&view(Some("olga")), &assign("bob")),
            vec!["bob".to_owned(), "olga".to_owned()]
        );
    }

    #[test]
    fn unassigning_needs_no_directory() {
        let change = ConversationChange {
            assignee: Some(None),
            by: "admin".into(),
            ..Default::default()
        };
        let plan = plan_change(&view(Some("gone")), &change, &ChangeFacts::default()).unwrap();
        assert_eq!(plan.entries[0].body, "admin unassigned gone");
    }
}
