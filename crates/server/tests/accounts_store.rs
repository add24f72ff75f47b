//! The [`AccountStore`] part of storage, the same cases on every backend: accounts by id and by
//! email, unique emails, lockout after failed sign-ins, TOTP steps accepted once, sessions,
//! single-use reset tokens and the audit log.

mod common;

use std::sync::Arc;

use serde_json::json;
use server::store::accounts::{
    Account, AccountRole, AuditEntry, Failure, Session, LAST_SEEN_STEP_MS,
};
use server::store::Store;

fn account(operator: &str, email: &str) -> Account {
    Account {
        operator_id: operator.into(),
        email: email.into(),
        role: AccountRole::Agent,
        password_hash: None,
        totp_secret: None,
        totp_enabled: false,
        totp_last_step: 0,
        failed_count: 0,
        locked_until: 0,
        created_at: 1_000,
    }
}

fn session(id: &str, operator: &str, created_at: u64, expires_at: u64) -> Session {
    Session {
        id: id.into(),
        operator_id: operator.into(),
        csrf_token: format!("csrf-{id}"),
        created_at,
        last_seen: created_at,
        expires_at,
        user_agent: "Mozilla/5.0 (X11; Linux x86_64)".into(),
        method: "password+totp".into(),
    }
}

fn entry(n: u64) -> AuditEntry {
    AuditEntry {
        id: 0,
        at: 1_000 + n,
        actor: ["olga", "admin-key"][(n % 2) as usize].into(),
        action: "role_changed".into(),
        // Some with and some without a target and an address.
        target: match n % 2 {
            0 => Some(format!("op-{n}")),
            _ => None,
        },
        detail: json!({"n": n, "from": "agent", "to": ["admin", {"nested": true}]}),
        ip: match n % 3 {
            0 => Some("203.0.113.7".to_string()),
            _ => None,
        },
    }
}

async fn accounts_are_found_by_id_and_by_email(store: Arc<dyn Store>) {
    let olga = Account {
        role: AccountRole::Admin,
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        totp_secret: Some("JBSWY3DPEHPK3PXP".into()),
        totp_enabled: true,
        totp_last_step: 7,
        failed_count: 2,
        locked_until: 9_000,
        created_at: 1_234,
        ..account("olga", "Olga.Petrova@Example.COM")
    };
    assert!(store.put_account(olga.clone()).await.unwrap());
    let stored = Account {
        email: "olga.petrova@example.com".into(),
        ..olga.clone()
    };
    // Every field comes back as written, the email lower-cased.
    assert_eq!(
        store.account("olga".into()).await.unwrap(),
        Some(stored.clone())
    );
    for asked in [
        "olga.petrova@example.com",
        "OLGA.PETROVA@EXAMPLE.COM",
        "Olga.Petrova@example.com",
    ] {
        assert_eq!(
            store.account_by_email(asked.into()).await.unwrap(),
            Some(stored.clone()),
            "{asked}"
        );
    }
    assert_eq!(
        store
            .account_by_email("olga@example.com".into())
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.account("omar".into()).await.unwrap(), None);

    // Replacing by operator id keeps one account, with the new values.
    let replaced = Account {
        role: AccountRole::Agent,
        password_hash: None,
        totp_secret: None,
        totp_enabled: false,
        ..stored.clone()
    };
    assert!(store.put_account(replaced.clone()).await.unwrap());
    assert!(store
        .put_account(account("aaron", "aaron@example.com"))
        .await
        .unwrap());
    let all = store.accounts().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|a| a.operator_id.as_str())
            .collect::<Vec<_>>(),
        ["aaron", "olga"]
    );
    assert_eq!(all[1], replaced);
}

async fn an_email_belongs_to_one_account(store: Arc<dyn Store>) {
    assert!(store
        .put_account(account("olga", "olga@example.com"))
        .await
        .unwrap());
    // Another operator cannot take it, in any case, and nothing of theirs is written.
    assert!(!store
        .put_account(account("omar", "OLGA@example.com"))
        .await
        .unwrap());
    assert_eq!(store.account("omar".into()).await.unwrap(), None);
    assert_eq!(store.accounts().await.unwrap().len(), 1);
    // The owner may write it again.
    assert!(store
        .put_account(account("olga", "Olga@Example.com"))
        .await
        .unwrap());
    // An existing account refused the email keeps its own.
    assert!(store
        .put_account(account("omar", "omar@example.com"))
        .await
        .unwrap());
    let mut admin_omar = account("omar", "olga@example.com");
    admin_omar.role = AccountRole::Admin;
    assert!(!store.put_account(admin_omar).await.unwrap());
    assert_eq!(
        store.account("omar".into()).await.unwrap(),
        Some(account("omar", "omar@example.com"))
    );
    assert_eq!(
        store
            .account_by_email("olga@example.com".into())
            .await
            .unwrap()
            .map(|a| a.operator_id),
        Some("olga".into())
    );
    // Once freed, it can be taken.
    assert!(store
        .put_account(account("olga", "olga.new@example.com"))
        .await
        .unwrap());
    assert!(store
        .put_account(account("omar", "olga@example.com"))
        .await
        .unwrap());
    assert_eq!(
        store
            .account_by_email("olga@example.com".into())
            .await
            .unwrap()
            .map(|a| a.operator_id),
        Some("omar".into())
    );
}

async fn failures_lock_the_account_until_a_success(store: Arc<dyn Store>) {
    store
        .put_account(account("olga", "olga@example.com"))
        .await
        .unwrap();
    let fail = |now| store.sign_in_failed("olga".into(), 3, 60_000, now);
    // Counted, not locked before the threshold.
    assert_eq!(
        fail(1_000).await.unwrap(),
        Failure {
            failed_count: 1,
            locked_until: 0
        }
    );
    assert_eq!(
        fail(2_000).await.unwrap(),
        Failure {
            failed_count: 2,
            locked_until: 0
        }
    );
    // Locked at it.
    assert_eq!(
        fail(3_000).await.unwrap(),
        Failure {
            failed_count: 3,
            locked_until: 63_000
        }
    );
    // Each further failure locks again from its own time.
    assert_eq!(
        fail(10_000).await.unwrap(),
        Failure {
            failed_count: 4,
            locked_until: 70_000
        }
    );
    let stored = store.account("olga".into()).await.unwrap().unwrap();
    assert_eq!((stored.failed_count, stored.locked_until), (4, 70_000));

    // A success clears both.
    assert!(store.sign_in_succeeded("olga".into(), None).await.unwrap());
    let stored = store.account("olga".into()).await.unwrap().unwrap();
    assert_eq!((stored.failed_count, stored.locked_until), (0, 0));
    // And counting starts over.
    assert_eq!(
        fail(80_000).await.unwrap(),
        Failure {
            failed_count: 1,
            locked_until: 0
        }
    );

    // Nothing is recorded for an operator without an account.
    assert_eq!(
        store
            .sign_in_failed("nobody".into(), 3, 60_000, 1_000)
            .await
            .unwrap(),
        Failure {
            failed_count: 0,
            locked_until: 0
        }
    );
    assert!(!store
        .sign_in_succeeded("nobody".into(), None)
        .await
        .unwrap());
    assert_eq!(store.account("nobody".into()).await.unwrap(), None);
}

async fn a_totp_step_is_accepted_once(store: Arc<dyn Store>) {
    let mut olga = account("olga", "olga@example.com");
    olga.totp_secret = Some("JBSWY3DPEHPK3PXP".into());
    olga.totp_enabled = true;
    olga.totp_last_step = 100;
    store.put_account(olga).await.unwrap();
    // Not above the last accepted step: refused, and nothing changes (not even the failures).
    store
        .sign_in_failed("olga".into(), 5, 60_000, 1_000)
        .await
        .unwrap();
    for step in [100, 99, 0] {
        assert!(
            !store
                .sign_in_succeeded("olga".into(), Some(step))
                .await
                .unwrap(),
            "step {step}"
        );
    }
    let stored = store.account("olga".into()).await.unwrap().unwrap();
    assert_eq!((stored.totp_last_step, stored.failed_count), (100, 1));

    assert!(store
        .sign_in_succeeded("olga".into(), Some(101))
        .await
        .unwrap());
    let stored = store.account("olga".into()).await.unwrap().unwrap();
    assert_eq!((stored.totp_last_step, stored.failed_count), (101, 0));
    // The same code again is a replay.
    assert!(!store
        .sign_in_succeeded("olga".into(), Some(101))
        .await
        .unwrap());
    // Without a code, the step is kept.
    assert!(store.sign_in_succeeded("olga".into(), None).await.unwrap());
    assert_eq!(
        store
            .account("olga".into())
            .await
            .unwrap()
            .unwrap()
            .totp_last_step,
        101
    );
}

async fn concurrent_sign_ins_decide_once(store: Arc<dyn Store>) {
    store
        .put_account(account("olga", "olga@example.com"))
        .await
        .unwrap();
    // One code submitted many times at once (another node, a double click): one success.
    let tries: Vec<_> = (0..8)
        .map(|_| tokio::spawn(store.sign_in_succeeded("olga".into(), Some(500))))
        .collect();
    let mut accepted = 0;
    for t in tries {
        accepted += usize::from(t.await.unwrap().unwrap());
    }
    assert_eq!(accepted, 1);
    // Failures at once are each counted.
    let tries: Vec<_> = (0..10)
        .map(|_| tokio::spawn(store.sign_in_failed("olga".into(), 100, 1_000, 1_000)))
        .collect();
    let mut counts = Vec::new();
    for t in tries {
        counts.push(t.await.unwrap().unwrap().failed_count);
    }
    counts.sort();
    assert_eq!(counts, (1..=10).collect::<Vec<u32>>());
    // One reset token used at once: once.
    store
        .create_reset("hash".into(), "olga".into(), 10_000)
        .await
        .unwrap();
    let tries: Vec<_> = (0..8)
        .map(|_| tokio::spawn(store.use_reset("hash".into(), 5_000)))
        .collect();
    let mut used = 0;
    for t in tries {
        used += usize::from(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(used, 1);
}

async fn sessions_are_found_until_they_expire(store: Arc<dyn Store>) {
    store
        .create_session(session("s1", "olga", 1_000, 100_000))
        .await
        .unwrap();
    store
        .create_session(session("s2", "olga", 2_000, 200_000))
        .await
        .unwrap();
    store
        .create_session(session("s3", "omar", 3_000, 200_000))
        .await
        .unwrap();
    assert_eq!(
        store.session("s1".into(), 1_000).await.unwrap(),
        Some(session("s1", "olga", 1_000, 100_000))
    );
    assert_eq!(store.session("nope".into(), 1_000).await.unwrap(), None);

    // Used within a minute: `last_seen` stays.
    let seen = |now| store.session("s1".into(), now);
    assert_eq!(seen(31_000).await.unwrap().unwrap().last_seen, 1_000);
    assert_eq!(
        seen(1_000 + LAST_SEEN_STEP_MS)
            .await
            .unwrap()
            .unwrap()
            .last_seen,
        1_000
    );
    // Older than a minute: it moves, and is stored.
    assert_eq!(seen(61_001).await.unwrap().unwrap().last_seen, 61_001);
    assert_eq!(seen(62_000).await.unwrap().unwrap().last_seen, 61_001);
    assert_eq!(seen(130_000).await.unwrap(), None, "expired");

    // Expired at `expires_at`.
    assert!(store.session("s2".into(), 199_999).await.unwrap().is_some());
    assert_eq!(store.session("s2".into(), 200_000).await.unwrap(), None);

    // An operator's unexpired sessions, newest first.
    let ids = |list: Vec<Session>| list.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.sessions_of("olga".into(), 62_500).await.unwrap()),
        ["s2", "s1"]
    );
    let listed = store.sessions_of("olga".into(), 62_500).await.unwrap();
    assert_eq!(listed[1].last_seen, 61_001);
    assert_eq!(listed[1].csrf_token, "csrf-s1");
    assert_eq!(
        ids(store.sessions_of("olga".into(), 100_000).await.unwrap()),
        ["s2"]
    );
    assert!(store
        .sessions_of("olga".into(), 200_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        ids(store.sessions_of("omar".into(), 62_500).await.unwrap()),
        ["s3"]
    );
}

async fn sessions_end_for_their_operator(store: Arc<dyn Store>) {
    for (id, operator, at) in [
        ("s1", "olga", 1_000),
        ("s2", "olga", 2_000),
        ("s3", "omar", 3_000),
        ("s4", "olga", 4_000),
        ("s5", "omar", 5_000),
    ] {
        store
            .create_session(session(id, operator, at, 1_000_000))
            .await
            .unwrap();
    }
    // Not another operator's.
    assert!(!store
        .delete_session(Some("omar".into()), "s1".into())
        .await
        .unwrap());
    assert!(store.session("s1".into(), 5_000).await.unwrap().is_some());
    // Their own, once.
    assert!(store
        .delete_session(Some("olga".into()), "s1".into())
        .await
        .unwrap());
    assert!(!store
        .delete_session(Some("olga".into()), "s1".into())
        .await
        .unwrap());
    assert_eq!(store.session("s1".into(), 5_000).await.unwrap(), None);
    // Anyone's, without an operator (an admin).
    assert!(store.delete_session(None, "s3".into()).await.unwrap());
    assert_eq!(store.session("s3".into(), 5_000).await.unwrap(), None);
    // All of one operator's, and only theirs.
    assert_eq!(store.delete_sessions_of("olga".into()).await.unwrap(), 2);
    assert!(store
        .sessions_of("olga".into(), 5_000)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.delete_sessions_of("olga".into()).await.unwrap(), 0);
    assert!(store.session("s5".into(), 5_000).await.unwrap().is_some());
}

async fn reset_tokens_are_used_once_before_they_expire(store: Arc<dyn Store>) {
    store
        .create_reset("h1".into(), "olga".into(), 10_000)
        .await
        .unwrap();
    store
        .create_reset("h2".into(), "omar".into(), 10_000)
        .await
        .unwrap();
    assert_eq!(
        store.use_reset("h1".into(), 9_999).await.unwrap(),
        Some("olga".into())
    );
    assert_eq!(store.use_reset("h1".into(), 9_999).await.unwrap(), None);
    // Expired at `expires_at`, and later.
    assert_eq!(store.use_reset("h2".into(), 10_000).await.unwrap(), None);
    assert_eq!(store.use_reset("h2".into(), 20_000).await.unwrap(), None);
    assert_eq!(store.use_reset("nope".into(), 1).await.unwrap(), None);
}

async fn the_audit_log_pages_in_id_order(store: Arc<dyn Store>) {
    let mut stored = Vec::new();
    for n in 0..5 {
        let written = store.audit(entry(n)).await.unwrap();
        assert_eq!(
            AuditEntry {
                id: 0,
                ..written.clone()
            },
            entry(n)
        );
        stored.push(written);
    }
    for pair in stored.windows(2) {
        assert!(
            pair[0].id < pair[1].id,
            "{} then {}",
            pair[0].id,
            pair[1].id
        );
    }
    assert_eq!(store.audit_since(0, 100).await.unwrap(), stored);
    assert_eq!(store.audit_since(0, 2).await.unwrap(), stored[..2]);
    assert_eq!(
        store.audit_since(stored[1].id, 2).await.unwrap(),
        stored[2..4]
    );
    assert_eq!(
        store.audit_since(stored[3].id, 2).await.unwrap(),
        stored[4..]
    );
    assert!(store.audit_since(stored[4].id, 2).await.unwrap().is_empty());
    assert!(store.audit_since(0, 0).await.unwrap().is_empty());
}

store_tests!(
    accounts_are_found_by_id_and_by_email,
    an_email_belongs_to_one_account,
    failures_lock_the_account_until_a_success,
    a_totp_step_is_accepted_once,
    concurrent_sign_ins_decide_once,
    sessions_are_found_until_they_expire,
    sessions_end_for_their_operator,
    reset_tokens_are_used_once_before_they_expire,
    the_audit_log_pages_in_id_order,
);
