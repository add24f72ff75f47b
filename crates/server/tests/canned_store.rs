//! The [`CannedStore`] part of storage, the same cases on every backend: replies listed by
//! shortcut, shortcuts unique on create and on update, updates keep who created a reply and
//! when, unknown ids, removal.

mod common;

use std::sync::Arc;

use server::store::canned::{CannedReply, Saved};
use server::store::Store;

fn reply(id: &str, shortcut: &str) -> CannedReply {
    CannedReply {
        id: id.into(),
        shortcut: shortcut.into(),
        title: format!("Title of {shortcut}"),
        body: format!("Body of {shortcut} ✓"),
        created_by: "olga".into(),
        created_at: 1_000,
        updated_at: 1_000,
    }
}

async fn shortcuts(store: &dyn Store) -> Vec<String> {
    store
        .canned_replies()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.shortcut)
        .collect()
}

async fn replies_are_listed_by_shortcut_and_shortcuts_are_unique(store: Arc<dyn Store>) {
    let store = &*store;
    for (id, shortcut) in [
        ("a1", "wifi"),
        ("a2", "check-in"),
        ("a3", "b_2"),
        ("a4", "B"),
    ] {
        assert_eq!(
            store.create_canned(reply(id, shortcut)).await.unwrap(),
            Saved::Saved(reply(id, shortcut))
        );
    }
    assert_eq!(shortcuts(store).await, ["B", "b_2", "check-in", "wifi"]);
    assert_eq!(
        store.create_canned(reply("a5", "wifi")).await.unwrap(),
        Saved::ShortcutTaken
    );
    assert_eq!(
        store.canned_replies().await.unwrap().len(),
        4,
        "nothing added"
    );
    assert_eq!(
        store.canned_replies().await.unwrap()[3],
        reply("a1", "wifi")
    );
}

async fn updates_keep_the_origin_and_respect_shortcuts(store: Arc<dyn Store>) {
    let store = &*store;
    store.create_canned(reply("a1", "wifi")).await.unwrap();
    store.create_canned(reply("a2", "parking")).await.unwrap();
    let change = CannedReply {
        title: "Wi-Fi".into(),
        body: "The password is on the fridge.".into(),
        created_by: "someone-else".into(),
        created_at: 5,
        updated_at: 2_000,
        ..reply("a1", "wifi-code")
    };
    let expected = CannedReply {
        created_by: "olga".into(),
        created_at: 1_000,
        ..change.clone()
    };
    assert_eq!(
        store.update_canned(change.clone()).await.unwrap(),
        Saved::Saved(expected.clone())
    );
    assert_eq!(shortcuts(store).await, ["parking", "wifi-code"]);
    // Its own shortcut again is fine; another's is taken.
    assert!(matches!(
        store.update_canned(change.clone()).await.unwrap(),
        Saved::Saved(_)
    ));
    assert_eq!(
        store
            .update_canned(CannedReply {
                shortcut: "parking".into(),
                ..change.clone()
            })
            .await
            .unwrap(),
        Saved::ShortcutTaken
    );
    for shortcut in ["other", "parking"] {
        assert_eq!(
            store.update_canned(reply("nope", shortcut)).await.unwrap(),
            Saved::NotFound
        );
    }
    assert_eq!(shortcuts(store).await, ["parking", "wifi-code"]);
    assert!(store.delete_canned("a1".into()).await.unwrap());
    assert!(!store.delete_canned("a1".into()).await.unwrap());
    assert_eq!(shortcuts(store).await, ["parking"]);
    // A removed reply's shortcut is free again.
    assert!(matches!(
        store.create_canned(reply("a3", "wifi-code")).await.unwrap(),
        Saved::Saved(_)
    ));
}

store_tests!(
    replies_are_listed_by_shortcut_and_shortcuts_are_unique,
    updates_keep_the_origin_and_respect_shortcuts,
);
