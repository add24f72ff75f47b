//! The in-memory store's [`UploadStore`]: bytes in memory, the same rules as the durable stores.

use std::collections::HashMap;

use protocol::frames::MessageKind;

use super::MemoryStore;
use crate::store::uploads::{
    self as rules, plan_chunk, plan_create, ChunkPlan, Created, Decision, NewUpload, StorageUsage,
    Upload, UploadStore, Usage,
};
use crate::store::{Pending, StoreError};

/// An upload with its bytes.
pub(super) struct File {
    pub upload: Upload,
    bytes: Vec<u8>,
    thumb: Option<Vec<u8>>,
}

#[derive(Default)]
pub(super) struct UploadState {
    pub files: HashMap<String, File>,
    /// Upload id → the kinds of the messages naming it.
    pub naming: HashMap<String, Vec<MessageKind>>,
}

impl super::State {
    /// Forgets the uploads of an erased conversation.
    pub(super) fn erase_uploads(&mut self, conversation: &str) {
        let uploads = &mut self.uploads;
        let gone: Vec<String> = uploads
            .files
            .values()
            .filter(|f| f.upload.conversation == conversation)
            .map(|f| f.upload.id.clone())
            .collect();
        for id in gone {
            uploads.files.remove(&id);
            uploads.naming.remove(&id);
        }
    }
}

impl UploadStore for MemoryStore {
    fn create_upload(&self, new: NewUpload) -> Pending<Created> {
        let mut state = self.lock();
        let participant = state
            .conversations
            .get(&new.conversation)
            .is_some_and(|c| c.participants.iter().any(|p| p.user_id == new.uploader));
        if !participant {
            return Self::ready(Err(StoreError::NotFound));
        }
        let existing = state.uploads.files.get(&new.id).map(|f| f.upload.clone());
        let created = plan_create(existing, &new);
        if let Ok(Created::New(upload)) = &created {
            state.uploads.files.insert(
                upload.id.clone(),
                File {
                    upload: upload.clone(),
                    bytes: Vec::new(),
                    thumb: None,
                },
            );
        }
        Self::ready(created)
    }

    fn upload(&self, id: String) -> Pending<Option<Upload>> {
        Self::ready(Ok(self
            .lock()
            .uploads
            .files
            .get(&id)
            .map(|f| f.upload.clone())))
    }

    fn write_chunk(&self, id: String, offset: u64, bytes: bytes::Bytes) -> Pending<Upload> {
        let mut state = self.lock();
        let Some(file) = state.uploads.files.get_mut(&id) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        match plan_chunk(&file.upload, offset, bytes.len() as u64) {
            Ok(ChunkPlan::Nothing) => {}
            Ok(ChunkPlan::Write(end)) => {
                file.bytes.extend_from_slice(&bytes);
                file.upload.offset = end;
            }
            Err(err) => return Self::ready(Err(err)),
        }
        Self::ready(Ok(file.upload.clone()))
    }

    fn upload_content(&self, id: String) -> Pending<Vec<u8>> {
        let state = self.lock();
        Self::ready(
            state
                .uploads
                .files
                .get(&id)
                .map(|f| f.bytes.clone())
                .ok_or(StoreError::NotFound),
        )
    }

    fn upload_range(&self, id: String, start: u64, end: u64) -> Pending<Vec<u8>> {
        let state = self.lock();
        let Some(file) = state.uploads.files.get(&id) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        let size = file.bytes.len() as u64;
        let (start, end) = (start.min(size) as usize, end.min(size) as usize);
        Self::ready(Ok(file.bytes[start..end].to_vec()))
    }

    fn decide_upload(&self, id: String, decision: Decision) -> Pending<Upload> {
        let mut state = self.lock();
        let Some(file) = state.uploads.files.get_mut(&id) else {
            return Self::ready(Err(StoreError::NotFound));
        };
        if file.upload.awaits_decision() {
            match decision {
                Decision::Complete {
                    content,
                    replaced,
                    thumb,
                } => {
                    if let Some(bytes) = replaced {
                        file.bytes = bytes;
                    }
                    file.thumb = thumb;
                    file.upload.content = Some(content);
                    file.upload.state = rules::UploadState::Complete;
                }
                Decision::Refused => {
                    file.bytes = Vec::new();
                    file.upload.state = rules::UploadState::Refused;
                }
            }
        }
        Self::ready(Ok(file.upload.clone()))
    }

    fn upload_thumb(&self, id: String) -> Pending<Option<Vec<u8>>> {
        let state = self.lock();
        Self::ready(Ok(state
            .uploads
            .files
            .get(&id)
            .and_then(|f| f.thumb.clone())))
    }

    fn delete_upload(&self, id: String) -> Pending<bool> {
        let mut state = self.lock();
        if state.uploads.naming.contains_key(&id) {
            return Self::ready(Err(StoreError::IdConflict));
        }
        Self::ready(Ok(state.uploads.files.remove(&id).is_some()))
    }

    fn expire_uploads(&self, before: u64) -> Pending<u64> {
        let mut state = self.lock();
        let uploads = &mut state.uploads;
        let stale: Vec<String> = uploads
            .files
            .values()
            .filter(|f| f.upload.created_at < before && !uploads.naming.contains_key(&f.upload.id))
            .map(|f| f.upload.id.clone())
            .collect();
        for id in &stale {
            uploads.files.remove(id);
        }
        Self::ready(Ok(stale.len() as u64))
    }

    fn upload_usage(&self, user: String, minute_start: u64, day_start: u64) -> Pending<Usage> {
        let state = self.lock();
        let mut usage = Usage::default();
        for file in state.uploads.files.values() {
            let u = &file.upload;
            if u.uploader != user || u.created_at < day_start {
                continue;
            }
            usage.bytes_in_day += u.length;
            usage.created_in_minute += u64::from(u.created_at >= minute_start);
            usage.oldest_in_day = Some(
                usage
                    .oldest_in_day
                    .map_or(u.created_at, |o| o.min(u.created_at)),
            );
        }
        Self::ready(Ok(usage))
    }

    fn naming_kinds(&self, upload: String) -> Pending<Vec<MessageKind>> {
        let state = self.lock();
        Self::ready(Ok(state
            .uploads
            .naming
            .get(&upload)
            .cloned()
            .unwrap_or_default()))
    }

    fn storage_usage(&self) -> Pending<StorageUsage> {
        let state = self.lock();
        let mut usage = StorageUsage {
            uploads: state.uploads.files.len() as u64,
            ..StorageUsage::default()
        };
        let mut per_conversation: HashMap<&str, u64> = HashMap::new();
        for file in state.uploads.files.values() {
            let Some(content) = &file.upload.content else {
                continue;
            };
            usage.bytes += content.size;
            if state.uploads.naming.contains_key(&file.upload.id) {
                *per_conversation
                    .entry(&file.upload.conversation)
                    .or_default() += content.size;
            }
        }
        usage.per_conversation = per_conversation.into_values().collect();
        Self::ready(Ok(usage))
    }
}
