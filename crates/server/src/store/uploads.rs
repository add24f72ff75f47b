//! Uploads: the files a message may carry, stored before the message names them.
//!
//! An upload is created under the device's id (idempotent like a message), receives its bytes in
//! order from a durable offset (resumable after any cut), is then decided once — `complete` with
//! the type found in its content, or `refused` — and stays immutable. A message names complete
//! uploads ([`check_attachments`], part of the ledger's append plan); the names are written with
//! the message, in its transaction, so a named upload is never collected.
//!
//! The rules live here as pure functions ([`plan_create`], [`plan_chunk`], [`may_download`]);
//! the stores read the facts, ask, and write — bytes in files under the data directory (SQLite),
//! in rows every node shares (PostgreSQL) or in memory.

use protocol::frames::{Attachment, MessageKind};
use protocol::Role;

use super::{Pending, StoreError};

/// Where an upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadState {
    /// Bytes are arriving; `offset` says how many are durable.
    Receiving,
    /// Every byte arrived and the content is an allowed type: messages may name it.
    Complete,
    /// Every byte arrived but the content is not an allowed type; its bytes are gone.
    Refused,
}

impl UploadState {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            UploadState::Receiving => "receiving",
            UploadState::Complete => "complete",
            UploadState::Refused => "refused",
        }
    }

    /// The state a stored name stands for.
    pub fn parse(text: &str) -> Result<Self, super::decode::Corrupt> {
        match text {
            "receiving" => Ok(UploadState::Receiving),
            "complete" => Ok(UploadState::Complete),
            "refused" => Ok(UploadState::Refused),
            other => Err(super::decode::Corrupt(format!(
                "unknown upload state {other:?}"
            ))),
        }
    }
}

/// An upload to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    /// The device's id, canonical lowercase UUID.
    pub id: String,
    /// Who uploads: only they see it until a message names it.
    pub uploader: String,
    /// The conversation it is for; the uploader must be a participant.
    pub conversation: String,
    /// The file name as the user knows it (shown, never used to store or to decide the type).
    pub name: String,
    /// The type the device declared (informational).
    pub declared_type: Option<String>,
    /// Bytes the file has.
    pub length: u64,
    /// When, ms since the epoch.
    pub now: u64,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Its id.
    pub id: String,
    /// Who uploads it.
    pub uploader: String,
    /// Its conversation.
    pub conversation: String,
    /// The file name given at creation.
    pub name: String,
    /// The type the device declared.
    pub declared_type: Option<String>,
    /// Bytes the file has.
    pub length: u64,
    /// Bytes stored and durable.
    pub offset: u64,
    /// Where it is.
    pub state: UploadState,
    /// Once decided: what was found (complete uploads only).
    pub content: Option<Content>,
    /// When it was created, ms since the epoch.
    pub created_at: u64,
}

/// What the server found in a complete upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The type found in the bytes.
    pub content_type: String,
    /// Bytes as stored (images lose their metadata).
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Pixels, for images.
    pub width: Option<u32>,
    /// Pixels, for images.
    pub height: Option<u32>,
    /// Whether a thumbnail is stored.
    pub thumb: bool,
}

impl Upload {
    /// The description a message carries, for a complete upload.
    pub fn attachment(&self) -> Option<Attachment> {
        let content = self.content.as_ref()?;
        (self.state == UploadState::Complete).then(|| Attachment {
            id: self.id.clone(),
            name: self.name.clone(),
            content_type: content.content_type.clone(),
            size: content.size,
            sha256: content.sha256.clone(),
            width: content.width,
            height: content.height,
            thumb: content.thumb,
        })
    }

    /// Whether every byte is stored but the content is not decided yet (a finish was cut short).
    pub fn awaits_decision(&self) -> bool {
        self.state == UploadState::Receiving && self.offset == self.length
    }
}

/// How a complete upload is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: what was found, the content to store instead when metadata was removed, and the
    /// thumbnail.
    Complete {
        /// The description.
        content: Content,
        /// Replacement bytes (metadata removed), if any.
        replaced: Option<Vec<u8>>,
        /// A JPEG thumbnail, if one was made.
        thumb: Option<Vec<u8>>,
    },
    /// Not an allowed type: the bytes are removed.
    Refused,
}

/// The outcome of a create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// A new upload.
    New(Upload),
    /// The same upload again (same uploader, conversation, length and name).
    Existing(Upload),
}

/// Storage's usage, for the metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageUsage {
    /// Uploads stored (any state).
    pub uploads: u64,
    /// Bytes of complete uploads.
    pub bytes: u64,
    /// Bytes of complete, named uploads per conversation that has any (no ids: for a histogram).
    pub per_conversation: Vec<u64>,
    /// Bytes of the database's tables and indexes in use (`None`: the store keeps no files).
    /// With SQLite, pages in use, counted through the WAL, whether checkpointed or not; with
    /// PostgreSQL, the relations of the store's schema, TOAST included.
    pub database_bytes: Option<u64>,
}

/// A user's recent uploading, for the budget and the rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Uploads created since the minute's start.
    pub created_in_minute: u64,
    /// Bytes (declared lengths) of uploads created since the day's start.
    pub bytes_in_day: u64,
    /// When the oldest upload counted in `bytes_in_day` was created (it leaves the window first).
    pub oldest_in_day: Option<u64>,
}

/// Uploads in storage. Every rule is decided by the pure functions of this module.
pub trait UploadStore: Send + Sync + 'static {
    /// Creates an upload, or answers the same one again ([`plan_create`]). `NotFound` when the
    /// uploader is not a participant of the conversation.
    fn create_upload(&self, new: NewUpload) -> Pending<Created>;

    /// One upload, any uploader.
    fn upload(&self, id: String) -> Pending<Option<Upload>>;

    /// Appends `bytes` at `offset` ([`plan_chunk`]), durably, and answers the upload after.
    fn write_chunk(&self, id: String, offset: u64, bytes: bytes::Bytes) -> Pending<Upload>;

    /// Every stored byte of an upload.
    fn upload_content(&self, id: String) -> Pending<Vec<u8>>;

    /// Bytes `start..end` of a complete upload (clamped to its size).
    fn upload_range(&self, id: String, start: u64, end: u64) -> Pending<Vec<u8>>;

    /// Decides an upload whose bytes are all stored. Answers it as stored after (a second
    /// decision of a decided upload changes nothing).
    fn decide_upload(&self, id: String, decision: Decision) -> Pending<Upload>;

    /// The thumbnail of a complete upload.
    fn upload_thumb(&self, id: String) -> Pending<Option<Vec<u8>>>;

    /// Removes an upload no message names. `Ok(false)` when there is none; `IdConflict` when a
    /// message names it.
    fn delete_upload(&self, id: String) -> Pending<bool>;

    /// Removes every upload created before `before` (ms) that no message names; answers how
    /// many.
    fn expire_uploads(&self, before: u64) -> Pending<u64>;

    /// A user's uploads created since `minute_start` and since `day_start`.
    fn upload_usage(&self, user: String, minute_start: u64, day_start: u64) -> Pending<Usage>;

    /// The kinds of the messages naming `upload` (empty when none does).
    fn naming_kinds(&self, upload: String) -> Pending<Vec<MessageKind>>;

    /// Storage's usage, for the metrics.
    fn storage_usage(&self) -> Pending<StorageUsage>;
}

/// Locks that keep two chunks of one upload from being written at once in this process.
/// Striped: a few dozen mutexes for every upload, so nothing grows with the number of uploads.
pub struct UploadLocks(Vec<std::sync::Arc<tokio::sync::Mutex<()>>>);

impl Default for UploadLocks {
    fn default() -> Self {
        UploadLocks((0..64).map(|_| Default::default()).collect())
    }
}

impl UploadLocks {
    /// The lock of `id`'s stripe.
    pub fn get(&self, id: &str) -> std::sync::Arc<tokio::sync::Mutex<()>> {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        self.0[(hasher.finish() % self.0.len() as u64) as usize].clone()
    }
}

/// Why a create is refused, or which upload answers it.
pub fn plan_create(existing: Option<Upload>, new: &NewUpload) -> Result<Created, StoreError> {
    match existing {
        None => Ok(Created::New(Upload {
            id: new.id.clone(),
            uploader: new.uploader.clone(),
            conversation: new.conversation.clone(),
            name: new.name.clone(),
            declared_type: new.declared_type.clone(),
            length: new.length,
            offset: 0,
            state: UploadState::Receiving,
            content: None,
            created_at: new.now,
        })),
        // The same upload created again (a retry whose answer was lost): answered as it is now.
        Some(upload)
            if upload.uploader == new.uploader
                && upload.conversation == new.conversation
                && upload.length == new.length
                && upload.name == new.name =>
        {
            Ok(Created::Existing(upload))
        }
        Some(_) => Err(StoreError::IdConflict),
    }
}

/// What a chunk does to an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkPlan {
    /// Write the bytes at the upload's offset; the offset becomes this.
    Write(u64),
    /// Nothing to write: an empty chunk at the current offset (a probe, or the repeat of a last
    /// chunk whose answer was lost).
    Nothing,
}

/// Plans a chunk of `len` bytes at `offset`: only at the stored offset (`OffsetMismatch` with
/// it otherwise), only while receiving, and never past the declared length.
pub fn plan_chunk(upload: &Upload, offset: u64, len: u64) -> Result<ChunkPlan, StoreError> {
    if offset != upload.offset {
        return Err(StoreError::OffsetMismatch(upload.offset));
    }
    if len == 0 {
        return Ok(ChunkPlan::Nothing);
    }
    if upload.state != UploadState::Receiving {
        return Err(StoreError::OffsetMismatch(upload.offset));
    }
    match offset.checked_add(len) {
        Some(end) if end <= upload.length => Ok(ChunkPlan::Write(end)),
        _ => Err(StoreError::UploadOverrun {
            length: upload.length,
        }),
    }
}

/// The descriptions of the uploads a message names, in its order, or why it cannot name them:
/// each must be the sender's, for the message's conversation and complete. A missing, foreign
/// or refused upload is [`StoreError::AttachmentNotFound`] (permanent); one still receiving is
/// [`StoreError::AttachmentPending`] (transient: finish it, send again). `found` holds what the
/// store read for the names, in any order.
pub fn check_attachments(
    names: &[String],
    sender: &str,
    conversation: &str,
    found: &[Upload],
) -> Result<Vec<Attachment>, StoreError> {
    let mut pending = false;
    let mut attachments = Vec::with_capacity(names.len());
    for name in names {
        let upload = found
            .iter()
            .find(|u| &u.id == name)
            .filter(|u| u.uploader == sender && u.conversation == conversation)
            .ok_or(StoreError::AttachmentNotFound)?;
        match upload.state {
            UploadState::Refused => return Err(StoreError::AttachmentNotFound),
            UploadState::Receiving => pending = true,
            UploadState::Complete => {
                attachments.push(upload.attachment().ok_or(StoreError::AttachmentNotFound)?)
            }
        }
    }
    if pending {
        return Err(StoreError::AttachmentPending);
    }
    Ok(attachments)
}

/// Whether `user` may download `upload`: its uploader may; otherwise a participant of its
/// conversation who can see one of the messages naming it — notes' files only for operators.
/// `participant_role` is the user's role in the upload's conversation (`None`: not a
/// participant), already capped by the token's role.
pub fn may_download(
    upload: &Upload,
    user: &str,
    participant_role: Option<Role>,
    naming_kinds: &[MessageKind],
) -> bool {
    if upload.state != UploadState::Complete {
        return false;
    }
    let Some(role) = participant_role else {
        return false;
    };
    if upload.uploader == user {
        return true;
    }
    naming_kinds
        .iter()
        .any(|kind| *kind != MessageKind::Note || role == Role::Operator)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(id: &str) -> NewUpload {
        NewUpload {
            id: id.into(),
            uploader: "alice".into(),
            conversation: "c1".into(),
            name: "lock.jpg".into(),
            declared_type: Some("image/jpeg".into()),
            length: 10,
            now: 5,
        }
    }

    fn created(id: &str) -> Upload {
        match plan_create(None, &new(id)).unwrap() {
            Created::New(upload) => upload,
            other => panic!("{other:?}"),
        }
    }

    fn complete(mut upload: Upload) -> Upload {
        upload.offset = upload.length;
        upload.state = UploadState::Complete;
        upload.content = Some(Content {
            content_type: "image/jpeg".into(),
            size: 9,
            sha256: "ab".into(),
            width: Some(4),
            height: Some(3),
            thumb: true,
        });
        upload
    }

    #[test]
    fn the_same_create_again_is_the_same_upload_and_anything_else_a_conflict() {
        let upload = created("u1");
        assert_eq!(upload.offset, 0);
        assert_eq!(
            plan_create(Some(upload.clone()), &new("u1")).unwrap(),
            Created::Existing(upload.clone())
        );
        for change in [
            |n: &mut NewUpload| n.uploader = "mallory".into(),
            |n: &mut NewUpload| n.conversation = "c2".into(),
            |n: &mut NewUpload| n.length = 11,
            |n: &mut NewUpload| n.name = "other.jpg".into(),
        ] {
            let mut other = new("u1");
            change(&mut other);
            assert_eq!(
                plan_create(Some(upload.clone()), &other),
                Err(StoreError::IdConflict)
            );
        }
    }

    #[test]
    fn chunks_go_only_at_the_stored_offset_and_never_past_the_length() {
        let mut upload = created("u1");
        assert_eq!(plan_chunk(&upload, 0, 4), Ok(ChunkPlan::Write(4)));
        upload.offset = 4;
        assert_eq!(
            plan_chunk(&upload, 0, 4),
            Err(StoreError::OffsetMismatch(4))
        );
        assert_eq!(
            plan_chunk(&upload, 6, 4),
            Err(StoreError::OffsetMismatch(4))
        );
        assert_eq!(plan_chunk(&upload, 4, 0), Ok(ChunkPlan::Nothing));
        assert_eq!(
            plan_chunk(&upload, 4, 7),
            Err(StoreError::UploadOverrun { length: 10 })
        );
        assert_eq!(plan_chunk(&upload, 4, 6), Ok(ChunkPlan::Write(10)));
        let done = complete(upload);
        assert_eq!(plan_chunk(&done, 10, 0), Ok(ChunkPlan::Nothing));
        assert_eq!(
            plan_chunk(&done, 10, 1),
            Err(StoreError::OffsetMismatch(10))
        );
    }

    #[test]
    fn a_message_names_only_the_senders_complete_uploads_of_its_conversation() {
        let done = complete(created("u1"));
        let receiving = created("u2");
        let mut foreign = complete(created("u3"));
        foreign.uploader = "bob".into();
        let mut elsewhere = complete(created("u4"));
        elsewhere.conversation = "c2".into();
        let mut refused = created("u5");
        refused.state = UploadState::Refused;
        let found = [done, receiving, foreign, elsewhere, refused];
        let check = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            check_attachments(&names, "alice", "c1", &found)
        };
        let ok = check(&["u1"]).unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].id, "u1");
        assert_eq!(ok[0].size, 9);
        assert_eq!(check(&["u1", "u2"]), Err(StoreError::AttachmentPending));
        for bad in ["u3", "u4", "u5", "missing"] {
            assert_eq!(check(&["u1", bad]), Err(StoreError::AttachmentNotFound));
            // Not found wins over pending: resending cannot help.
            assert_eq!(check(&["u2", bad]), Err(StoreError::AttachmentNotFound));
        }
    }

    #[test]
    fn downloads_are_for_the_uploader_and_those_who_see_a_naming_message() {
        let done = complete(created("u1"));
        let text = [MessageKind::Text];
        let note = [MessageKind::Note];
        assert!(may_download(&done, "alice", Some(Role::Client), &[]));
        assert!(!may_download(&done, "alice", None, &text));
        assert!(!may_download(&done, "bob", Some(Role::Client), &[]));
        assert!(may_download(&done, "bob", Some(Role::Client), &text));
        assert!(!may_download(&done, "bob", Some(Role::Client), &note));
        assert!(may_download(&done, "olga", Some(Role::Operator), &note));
        assert!(!may_download(&done, "olga", None, &note));
        let receiving = created("u2");
        assert!(!may_download(
            &receiving,
            "alice",
            Some(Role::Client),
            &text
        ));
    }
}
