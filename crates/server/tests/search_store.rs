//! The [`SearchStore`] part of storage, the same cases on every backend: words found whole and by
//! prefix, case and accents ignored, every word required, newest first, and the filters (the
//! conversations a participant may read, one conversation, private notes).

mod common;

use std::sync::Arc;

use protocol::api::ParticipantSpec;
use protocol::frames::MessageKind;
use protocol::Role;
use server::store::search::{terms, SearchQuery};
use server::store::{AppendRequest, Store};

fn spec(user_id: &str, role: Role) -> ParticipantSpec {
    ParticipantSpec {
        user_id: user_id.into(),
        role,
        email: None,
    }
}

/// Conversation `c1` (ana, olga) and `c2` (ben, omar), with messages at increasing times.
async fn seed(store: &dyn Store) {
    for (id, client, operator) in [("c1", "ana", "olga"), ("c2", "ben", "omar")] {
        store
            .create_conversation(
                id.into(),
                vec![spec(client, Role::Client), spec(operator, Role::Operator)],
                10,
                1_000,
            )
            .await
            .unwrap();
    }
    let messages = [
        ("c1", "ana", MessageKind::Text, "Where do I park the car?"),
        ("c1", "olga", MessageKind::Text, "The parking code is 4411."),
        (
            "c1",
            "olga",
            MessageKind::Note,
            "Guest asked about PARKING twice",
        ),
        (
            "c2",
            "ben",
            MessageKind::Text,
            "Le café est à côté de l'hôtel ?",
        ),
        ("c2", "omar", MessageKind::Text, "Oui, le CAFÉ ouvre à 7h."),
    ];
    for (n, (conversation, sender, kind, body)) in messages.into_iter().enumerate() {
        let appended = store
            .append(AppendRequest {
                conversation: conversation.into(),
                id: uuid::Uuid::new_v4().to_string(),
                sender: sender.into(),
                role: if sender == "ana" || sender == "ben" {
                    Role::Client
                } else {
                    Role::Operator
                },
                body: body.into(),
                ts: 2_000 + n as u64,
                kind,
                after: None,
                attachments: Vec::new(),
            })
            .await
            .unwrap();
        assert!(appended.created);
    }
}

fn query(text: &str) -> SearchQuery {
    SearchQuery {
        terms: terms(text),
        participant: None,
        conversation: None,
        include_notes: true,
        limit: 20,
    }
}

async fn bodies(store: &dyn Store, query: SearchQuery) -> Vec<String> {
    store
        .search(query)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

async fn words_are_found_by_prefix_newest_first(store: Arc<dyn Store>) {
    seed(&*store).await;
    let store = &*store;
    assert_eq!(
        bodies(store, query("park")).await,
        [
            "Guest asked about PARKING twice",
            "The parking code is 4411.",
            "Where do I park the car?"
        ]
    );
    assert_eq!(
        bodies(store, query("Parking")).await,
        [
            "Guest asked about PARKING twice",
            "The parking code is 4411."
        ],
        "case is ignored; a longer word is not a prefix of a shorter one"
    );
    assert_eq!(
        bodies(store, query("4411")).await,
        ["The parking code is 4411."]
    );
    assert_eq!(
        bodies(store, query("parking code")).await,
        ["The parking code is 4411."],
        "every word must match"
    );
    assert_eq!(
        bodies(store, query("arking")).await,
        Vec::<String>::new(),
        "words start a match"
    );
    let found = store.search(query("where")).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        (
            found[0].conversation.as_str(),
            found[0].seq,
            found[0].sender.as_str(),
            found[0].ts
        ),
        ("c1", 1, "ana", 2_000)
    );
    let mut limited = query("park");
    limited.limit = 2;
    assert_eq!(bodies(store, limited).await.len(), 2);
}

async fn accents_are_ignored(store: Arc<dyn Store>) {
    seed(&*store).await;
    let store = &*store;
    let both = [
        "Oui, le CAFÉ ouvre à 7h.",
        "Le café est à côté de l'hôtel ?",
    ];
    assert_eq!(bodies(store, query("cafe")).await, both);
    assert_eq!(bodies(store, query("CAFÉ")).await, both);
    assert_eq!(bodies(store, query("hotel")).await, [both[1]]);
    assert_eq!(bodies(store, query("côte")).await, [both[1]]);
}

async fn query_syntax_is_never_an_operator(store: Arc<dyn Store>) {
    seed(&*store).await;
    let store = &*store;
    for text in [
        "\"",
        "AND (",
        "*",
        "park OR",
        "NEAR(park",
        "'",
        "\\",
        "-park",
        "park:*",
        "&|!",
    ] {
        let found = store.search(query(text)).await;
        assert!(found.is_ok(), "{text:?}: {found:?}");
    }
    assert_eq!(bodies(store, query("\"park\" (")).await.len(), 3);
    assert_eq!(bodies(store, query("\"")).await, Vec::<String>::new());
}

async fn filters_limit_what_is_searched(store: Arc<dyn Store>) {
    seed(&*store).await;
    let store = &*store;
    let mut olga = query("park");
    olga.participant = Some("olga".into());
    assert_eq!(bodies(store, olga.clone()).await.len(), 3);
    let mut omar = query("park");
    omar.participant = Some("omar".into());
    assert_eq!(
        bodies(store, omar).await,
        Vec::<String>::new(),
        "not omar's conversation"
    );
    let mut one = query("cafe");
    one.conversation = Some("c1".into());
    assert_eq!(bodies(store, one).await, Vec::<String>::new());
    let mut no_notes = olga;
    no_notes.include_notes = false;
    assert_eq!(
        bodies(store, no_notes).await,
        ["The parking code is 4411.", "Where do I park the car?"]
    );
}

/// Messages stored after a search are found by the next one (the index keeps in step).
async fn new_messages_are_found(store: Arc<dyn Store>) {
    seed(&*store).await;
    assert_eq!(bodies(&*store, query("towels")).await, Vec::<String>::new());
    store
        .append(AppendRequest {
            conversation: "c2".into(),
            id: uuid::Uuid::new_v4().to_string(),
            sender: "ben".into(),
            role: Role::Client,
            body: "Fresh towels, please".into(),
            ts: 9_000,
            kind: MessageKind::Text,
            after: None,
            attachments: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(
        bodies(&*store, query("towel")).await,
        ["Fresh towels, please"]
    );
}

store_tests!(
    words_are_found_by_prefix_newest_first,
    accents_are_ignored,
    query_syntax_is_never_an_operator,
    filters_limit_what_is_searched,
    new_messages_are_found,
);

/// Messages stored before the search index existed are indexed by its migration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_messages_stored_before_the_index_are_found() {
    use server::store::sqlite::{SqliteOptions, SqliteStore, DATABASE_FILE};
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
        seed(&store).await;
    }
    // Back to the schema before the index (0008): its tables and columns and those of later
    // migrations gone (0011 dropped its trigger already; the events that 0012's column named go
    // with it), and those migrations not applied.
    let conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    conn.execute_batch(
        "DROP TABLE message_search;
         DROP TABLE message_search_rows; DROP TABLE canned_replies;
         DROP TABLE uploads; DROP TABLE message_attachments;
         ALTER TABLE messages DROP COLUMN attachments;
         DELETE FROM events; ALTER TABLE events DROP COLUMN message_seq;
         PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(dir.path(), SqliteOptions::default()).unwrap();
    assert_eq!(bodies(&store, query("park")).await.len(), 3);
    assert_eq!(bodies(&store, query("hotel")).await.len(), 1);
}

/// The same on PostgreSQL: the generated column is computed for every row already stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_messages_stored_before_the_index_are_found() {
    use server::store::postgres::{PgOptions, PgStore};
    let schema = common::Schema::new().await;
    {
        let store = PgStore::connect(&schema.url, PgOptions::default())
            .await
            .unwrap();
        seed(&store).await;
    }
    let (client, connection) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE messages DROP COLUMN search; DROP TABLE canned_replies;
             DROP TABLE upload_chunks, uploads, message_attachments;
             ALTER TABLE messages DROP COLUMN attachments;
             DELETE FROM events; ALTER TABLE events DROP COLUMN message_seq;
             DELETE FROM surechat_migrations WHERE version >= 8;",
        )
        .await
        .unwrap();
    drop(client);
    driver.await.unwrap().unwrap();
    let store = PgStore::connect(&schema.url, PgOptions::default())
        .await
        .unwrap();
    assert_eq!(bodies(&store, query("park")).await.len(), 3);
    assert_eq!(bodies(&store, query("hotel")).await.len(), 1);
}
