//! The [`UploadStore`] part of storage, the same cases on every backend: chunks only at the
//! stored offset, a decision kept once, unnamed uploads collected and named ones kept, files
//! private and removed with their uploads.

mod common;

use std::io::Write;
use std::sync::Arc;

use protocol::frames::MessageKind;
use protocol::Role;
use server::store::uploads::{Content, Created, Decision, NewUpload, UploadState};
use server::store::{AppendRequest, Store, StoreError};

async fn conversation(store: &dyn Store) {
    store
        .create_conversation(
            "c1".into(),
            vec![
                protocol::api::ParticipantSpec {
                    user_id: "ana".into(),
                    role: Role::Client,
                    email: None,
                },
                protocol::api::ParticipantSpec {
                    user_id: "olga".into(),
                    role: Role::Operator,
                    email: None,
                },
            ],
            32,
            1,
        )
        .await
        .unwrap();
}

fn new(id: &str, now: u64) -> NewUpload {
    NewUpload {
        id: id.into(),
        uploader: "ana".into(),
        conversation: "c1".into(),
        name: "scan.pdf".into(),
        declared_type: None,
        length: 6,
        now,
    }
}

fn complete(bytes: &[u8]) -> Decision {
    Decision::Complete {
        content: Content {
            content_type: "application/pdf".into(),
            size: bytes.len() as u64,
            sha256: "00".into(),
            width: None,
            height: None,
            thumb: false,
        },
        replaced: None,
        thumb: None,
    }
}

/// Creates and fills an upload, then decides it complete.
async fn stored(store: &dyn Store, id: &str, now: u64) {
    store.create_upload(new(id, now)).await.unwrap();
    store
        .write_chunk(id.into(), 0, bytes::Bytes::from_static(b"%PDF-1"))
        .await
        .unwrap();
    let decided = store
        .decide_upload(id.into(), complete(b"%PDF-1"))
        .await
        .unwrap();
    assert_eq!(decided.state, UploadState::Complete);
}

fn id(n: u8) -> String {
    format!("00000000-0000-4000-8000-0000000000{n:02x}")
}

async fn chunks_go_at_the_stored_offset_and_decisions_are_kept(store: Arc<dyn Store>) {
    let store = &*store;
    conversation(store).await;
    let first = store.create_upload(new(&id(1), 10)).await.unwrap();
    assert!(matches!(first, Created::New(_)));
    assert!(matches!(
        store.create_upload(new(&id(1), 11)).await.unwrap(),
        Created::Existing(_)
    ));
    let mut stranger = new(&id(2), 10);
    stranger.uploader = "mallory".into();
    assert_eq!(
        store.create_upload(stranger).await,
        Err(StoreError::NotFound)
    );
    let chunk = |offset, bytes: &'static [u8]| {
        store.write_chunk(id(1), offset, bytes::Bytes::from_static(bytes))
    };
    assert_eq!(chunk(0, b"%PD").await.unwrap().offset, 3);
    assert_eq!(chunk(0, b"%PD").await, Err(StoreError::OffsetMismatch(3)));
    assert_eq!(
        chunk(3, b"F-1.7").await,
        Err(StoreError::UploadOverrun { length: 6 })
    );
    assert_eq!(chunk(3, b"F-1").await.unwrap().offset, 6);
    assert_eq!(store.upload_content(id(1)).await.unwrap(), b"%PDF-1");
    // Replaced content (metadata removed) is what is stored and served after the decision.
    let decision = Decision::Complete {
        content: Content {
            content_type: "application/pdf".into(),
            size: 4,
            sha256: "ab".into(),
            width: None,
            height: None,
            thumb: true,
        },
        replaced: Some(b"%PDF".to_vec()),
        thumb: Some(vec![1, 2, 3]),
    };
    let decided = store.decide_upload(id(1), decision).await.unwrap();
    assert_eq!(decided.content.as_ref().unwrap().size, 4);
    // A second decision changes nothing.
    let again = store.decide_upload(id(1), Decision::Refused).await.unwrap();
    assert_eq!(again.state, UploadState::Complete);
    assert_eq!(store.upload_content(id(1)).await.unwrap(), b"%PDF");
    assert_eq!(store.upload_range(id(1), 1, 3).await.unwrap(), b"PD");
    assert_eq!(store.upload_range(id(1), 2, 99).await.unwrap(), b"DF");
    assert_eq!(
        store.upload_thumb(id(1)).await.unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(
        store
            .write_chunk(id(1), 6, bytes::Bytes::from_static(b"x"))
            .await,
        Err(StoreError::OffsetMismatch(6))
    );
    // Refused: nothing of it is served.
    store.create_upload(new(&id(3), 10)).await.unwrap();
    store
        .write_chunk(id(3), 0, bytes::Bytes::from_static(b"<html>"))
        .await
        .unwrap();
    let refused = store.decide_upload(id(3), Decision::Refused).await.unwrap();
    assert_eq!(refused.state, UploadState::Refused);
    assert_eq!(store.upload_thumb(id(3)).await.unwrap(), None);
}

async fn unnamed_uploads_are_collected_and_named_ones_kept(store: Arc<dyn Store>) {
    let store = &*store;
    conversation(store).await;
    for (n, now) in [(1, 100), (2, 100), (3, 5_000)] {
        stored(store, &id(n), now).await;
    }
    store.create_upload(new(&id(4), 100)).await.unwrap();
    let appended = store
        .append(AppendRequest {
            conversation: "c1".into(),
            id: id(50),
            sender: "ana".into(),
            role: Role::Client,
            body: String::new(),
            ts: 200,
            kind: MessageKind::Text,
            after: None,
            attachments: vec![id(1)],
        })
        .await
        .unwrap();
    assert_eq!(appended.message.attachments[0].id, id(1));
    assert_eq!(
        store.naming_kinds(id(1)).await.unwrap(),
        vec![MessageKind::Text]
    );
    assert!(store.naming_kinds(id(2)).await.unwrap().is_empty());
    // Before 1000: 2 (unnamed) and 4 (never finished) go; 1 is named; 3 is young.
    assert_eq!(store.expire_uploads(1_000).await.unwrap(), 2);
    assert!(store.upload(id(1)).await.unwrap().is_some());
    assert!(store.upload(id(2)).await.unwrap().is_none());
    assert!(store.upload(id(3)).await.unwrap().is_some());
    assert!(store.upload(id(4)).await.unwrap().is_none());
    // A message naming a collected upload is refused; the named one stays usable.
    let naming = |n: u8, message: u8| AppendRequest {
        conversation: "c1".into(),
        id: id(message),
        sender: "ana".into(),
        role: Role::Client,
        body: "again".into(),
        ts: 300,
        kind: MessageKind::Text,
        after: None,
        attachments: vec![id(n)],
    };
    assert_eq!(
        store.append(naming(2, 51)).await.unwrap_err(),
        StoreError::AttachmentNotFound
    );
    assert!(store.append(naming(1, 52)).await.is_ok());
    // Removing: a named upload refuses, an unnamed one goes.
    assert_eq!(
        store.delete_upload(id(1)).await,
        Err(StoreError::IdConflict)
    );
    assert_eq!(store.delete_upload(id(3)).await, Ok(true));
    assert_eq!(store.delete_upload(id(3)).await, Ok(false));
    let usage = store.storage_usage().await.unwrap();
    assert_eq!(usage.uploads, 1);
    assert_eq!(usage.per_conversation, vec![6]);
}

async fn erasing_a_conversation_takes_its_files_along(store: Arc<dyn Store>) {
    let store = &*store;
    conversation(store).await;
    stored(store, &id(1), 100).await;
    store
        .append(AppendRequest {
            conversation: "c1".into(),
            id: id(50),
            sender: "ana".into(),
            role: Role::Client,
            body: "the lock".into(),
            ts: 200,
            kind: MessageKind::Text,
            after: None,
            attachments: vec![id(1)],
        })
        .await
        .unwrap();
    assert!(store.erase_conversation("c1".into()).await.unwrap());
    assert!(!store.erase_conversation("c1".into()).await.unwrap());
    assert!(store.conversation("c1".into()).await.unwrap().is_none());
    assert!(store.upload(id(1)).await.unwrap().is_none());
    assert!(store.naming_kinds(id(1)).await.unwrap().is_empty());
    assert!(store
        .messages_since("c1".into(), 0, 10)
        .await
        .unwrap()
        .is_empty());
    // The ids are free again: a new conversation under the same id starts empty.
    conversation(store).await;
    let again = store.conversation("c1".into()).await.unwrap().unwrap();
    assert_eq!(again.last_seq, 0);
    let search = server::store::search::SearchQuery {
        terms: vec!["lock".into()],
        participant: None,
        conversation: None,
        include_notes: true,
        limit: 10,
    };
    assert!(store.search(search).await.unwrap().is_empty());
    let reused = store
        .append(AppendRequest {
            conversation: "c1".into(),
            id: id(50),
            sender: "ana".into(),
            role: Role::Client,
            body: "the lock again".into(),
            ts: 300,
            kind: MessageKind::Text,
            after: None,
            attachments: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(reused.message.seq, 1);
}

store_tests!(
    chunks_go_at_the_stored_offset_and_decisions_are_kept,
    unnamed_uploads_are_collected_and_named_ones_kept,
    erasing_a_conversation_takes_its_files_along,
);

/// With SQLite, bytes are files under `<data>/uploads/`, private, named by the server, and gone
/// with their upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_are_private_server_named_and_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (store, _keep) = common::Backend::Sqlite.store(dir.path()).await;
    conversation(&*store).await;
    let mut sneaky = new(&id(1), 100);
    sneaky.name = "../../etc/passwd".into();
    store.create_upload(sneaky).await.unwrap();
    store
        .write_chunk(id(1), 0, bytes::Bytes::from_static(b"%PD"))
        .await
        .unwrap();
    let files = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path().join("uploads"))
            .map(|entries| entries.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    };
    let listed = files();
    assert_eq!(listed.len(), 1);
    let name = listed[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(
        name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit()),
        "{name}"
    );
    let mode = std::fs::metadata(&listed[0]).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(dir.path().join("uploads"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "the uploads directory is private");
    // A crash after the bytes but before the offset: the stray tail is dropped by the next chunk.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&listed[0])
        .unwrap()
        .write_all(b"GARBAGE")
        .unwrap();
    assert_eq!(store.upload_content(id(1)).await.unwrap(), b"%PD");
    store
        .write_chunk(id(1), 3, bytes::Bytes::from_static(b"F-1"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&listed[0]).unwrap(), b"%PDF-1");
    assert_eq!(store.expire_uploads(1_000).await.unwrap(), 1);
    assert!(files().is_empty(), "the file went with its upload");
    // Erasing the conversation removes the files of its messages too.
    stored(&*store, &id(2), 100).await;
    assert_eq!(files().len(), 1);
    assert!(store.erase_conversation("c1".into()).await.unwrap());
    assert!(files().is_empty(), "the file went with its conversation");
}
