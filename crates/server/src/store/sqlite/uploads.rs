//! [`UploadStore`] on SQLite: an upload's row in the database, its bytes in a file under
//! `<data>/uploads/` named by the server (`file`), mode 0600.
//!
//! Durability order: a chunk's bytes are written and fsync'd at the stored offset first, then the
//! row's offset moves in the writer's transaction. A crash between the two leaves bytes past the
//! stored offset; the next chunk truncates the file to the offset before writing, so the file
//! never holds bytes the row does not vouch for. Chunks of one upload take a lock, so two
//! requests for the same offset never write at once (the second then finds the offset moved).

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use protocol::frames::MessageKind;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};

use super::{read, SqliteStore};
use crate::store::decode;
use crate::store::uploads::{
    plan_chunk, plan_create, ChunkPlan, Content, Created, Decision, NewUpload, StorageUsage,
    Upload, UploadState, UploadStore, Usage,
};
use crate::store::{Pending, StoreError};

/// The columns [`upload`] reads, in order.
const COLUMNS: &str =
    "id, uploader, conversation_id, name, declared_type, length, \"offset\", state, \
     content_type, size, sha256, width, height, thumb IS NOT NULL, created_at, file";

fn upload(row: &Row<'_>) -> rusqlite::Result<(Upload, String)> {
    let state: String = row.get(7)?;
    let state = UploadState::parse(&state).map_err(|err| read::corrupt(7, err))?;
    let content = match (state, row.get::<_, Option<String>>(8)?) {
        (UploadState::Complete, Some(content_type)) => Some(Content {
            content_type,
            size: row.get(9)?,
            sha256: row.get(10)?,
            width: row.get(11)?,
            height: row.get(12)?,
            thumb: row.get(13)?,
        }),
        _ => None,
    };
    Ok((
        Upload {
            id: row.get(0)?,
            uploader: row.get(1)?,
            conversation: row.get(2)?,
            name: row.get(3)?,
            declared_type: row.get(4)?,
            length: row.get(5)?,
            offset: row.get(6)?,
            state,
            content,
            created_at: row.get(14)?,
        },
        row.get(15)?,
    ))
}

fn find(conn: &Connection, id: &str) -> rusqlite::Result<Option<(Upload, String)>> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM uploads WHERE id = ?1"))?
        .query_row(params![id], upload)
        .optional()
}

/// The uploads among `ids` that exist, for an append's facts (in the writer's transaction, so
/// what it reads cannot change before the message commits).
pub(super) fn named(tx: &Transaction<'_>, ids: &[String]) -> rusqlite::Result<Vec<Upload>> {
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some((upload, _)) = find(tx, id)? {
            found.push(upload);
        }
    }
    Ok(found)
}

/// A fresh name for an upload's file: 128 random bits, never anything the user chose.
fn file_name() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn io_error(err: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("upload file: {err}"))
}

/// Writes `bytes` at `offset` of the file (creating it 0600), dropping anything past `offset`
/// first, and fsyncs.
fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.set_len(offset)?;
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Replaces the file's content atomically (a new file, fsync'd, renamed over the old one).
fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let fresh = path.with_extension("new");
    let _ = std::fs::remove_file(&fresh);
    write_at(&fresh, 0, bytes)?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

pub(super) fn remove_files(dir: &Path, files: &[String]) {
    for file in files {
        match std::fs::remove_file(dir.join(file)) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::warn!(%err, file, "cannot remove an upload's file"),
        }
    }
}

impl SqliteStore {
    /// The directory of upload files.
    pub(super) fn uploads_dir(&self) -> PathBuf {
        self.path
            .parent()
            .expect("the database file is in the data directory")
            .join("uploads")
    }

    async fn blocking<T: Send + 'static>(
        work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| StoreError::Unavailable(format!("file task failed: {err}")))?
            .map_err(io_error)
    }

    fn find_upload(&self, id: String) -> Pending<Option<(Upload, String)>> {
        self.read(move |conn| find(conn, &id))
    }
}

impl UploadStore for SqliteStore {
    fn create_upload(&self, new: NewUpload) -> Pending<Created> {
        self.submit(move |tx, _| {
            let participant = tx
                .prepare_cached(
                    "SELECT 1 FROM participants WHERE conversation_id = ?1 AND user_id = ?2",
                )?
                .query_row(params![new.conversation, new.uploader], |_| Ok(()))
                .optional()?;
            if participant.is_none() {
                return Ok(Err(StoreError::NotFound));
            }
            let existing = find(tx, &new.id)?.map(|(upload, _)| upload);
            let created = match plan_create(existing, &new) {
                Ok(created) => created,
                Err(err) => return Ok(Err(err)),
            };
            if let Created::New(upload) = &created {
                tx.prepare_cached(
                    "INSERT INTO uploads (id, uploader, conversation_id, name, declared_type, length, \"offset\", state, file, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?8, ?9)",
                )?
                .execute(params![
                    upload.id,
                    upload.uploader,
                    upload.conversation,
                    upload.name,
                    upload.declared_type,
                    upload.length,
                    upload.state.as_str(),
                    file_name(),
                    upload.created_at
                ])?;
            }
            Ok(Ok(created))
        })
    }

    fn upload(&self, id: String) -> Pending<Option<Upload>> {
        let found = self.find_upload(id);
        Box::pin(async move { Ok(found.await?.map(|(upload, _)| upload)) })
    }

    fn write_chunk(&self, id: String, offset: u64, bytes: bytes::Bytes) -> Pending<Upload> {
        let lock = self.upload_locks.get(&id);
        let dir = self.uploads_dir();
        let found = self.find_upload(id.clone());
        let writer = self.writer.clone();
        let stats = self.stats.clone();
        Box::pin(async move {
            let _held = lock.lock().await;
            let (mut upload, file) = found.await?.ok_or(StoreError::NotFound)?;
            let end = match plan_chunk(&upload, offset, bytes.len() as u64)? {
                ChunkPlan::Nothing => return Ok(upload),
                ChunkPlan::Write(end) => end,
            };
            Self::blocking(move || {
                crate::config::create_private_dir(&dir)?;
                write_at(&dir.join(file), offset, &bytes)
            })
            .await?;
            let moved = super::submit_to(&writer, &stats, move |tx, _| {
                Ok(Ok(tx
                    .prepare_cached(
                        "UPDATE uploads SET \"offset\" = ?3 WHERE id = ?1 AND \"offset\" = ?2 AND state = 'receiving'",
                    )?
                    .execute(params![id, offset, end])?))
            })
            .await?;
            if moved != 1 {
                // Another node or process moved it (the lock covers this process only).
                return Err(StoreError::OffsetMismatch(offset));
            }
            upload.offset = end;
            Ok(upload)
        })
    }

    fn upload_content(&self, id: String) -> Pending<Vec<u8>> {
        let dir = self.uploads_dir();
        let found = self.find_upload(id);
        Box::pin(async move {
            let (upload, file) = found.await?.ok_or(StoreError::NotFound)?;
            Self::blocking(move || {
                let mut bytes = match std::fs::read(dir.join(file)) {
                    Ok(bytes) => bytes,
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                    Err(err) => return Err(err),
                };
                if upload.state == UploadState::Receiving {
                    // Only what the row vouches for.
                    bytes.truncate(upload.offset as usize);
                }
                Ok(bytes)
            })
            .await
        })
    }

    fn upload_range(&self, id: String, start: u64, end: u64) -> Pending<Vec<u8>> {
        let dir = self.uploads_dir();
        let found = self.find_upload(id);
        Box::pin(async move {
            let (upload, file) = found.await?.ok_or(StoreError::NotFound)?;
            let size = upload.content.map_or(0, |c| c.size);
            let (start, end) = (start.min(size), end.min(size));
            Self::blocking(move || {
                use std::io::Read;
                let mut file = std::fs::File::open(dir.join(file))?;
                file.seek(SeekFrom::Start(start))?;
                let mut bytes = vec![0; (end - start) as usize];
                file.read_exact(&mut bytes)?;
                Ok(bytes)
            })
            .await
        })
    }

    fn decide_upload(&self, id: String, decision: Decision) -> Pending<Upload> {
        let lock = self.upload_locks.get(&id);
        let dir = self.uploads_dir();
        let found = self.find_upload(id.clone());
        let writer = self.writer.clone();
        let stats = self.stats.clone();
        Box::pin(async move {
            let _held = lock.lock().await;
            let (upload, file) = found.await?.ok_or(StoreError::NotFound)?;
            if !upload.awaits_decision() {
                return Ok(upload);
            }
            let path = dir.join(&file);
            match decision {
                Decision::Complete {
                    content,
                    replaced,
                    thumb,
                } => {
                    if let Some(bytes) = replaced {
                        let path = path.clone();
                        Self::blocking(move || replace(&path, &bytes)).await?;
                    }
                    let stored = content.clone();
                    super::submit_to(&writer, &stats, move |tx, _| {
                        tx.prepare_cached(
                            "UPDATE uploads SET state = 'complete', content_type = ?2, size = ?3, sha256 = ?4,
                             width = ?5, height = ?6, thumb = ?7 WHERE id = ?1 AND state = 'receiving'",
                        )?
                        .execute(params![
                            id,
                            stored.content_type,
                            stored.size,
                            stored.sha256,
                            stored.width,
                            stored.height,
                            thumb
                        ])?;
                        Ok(Ok(()))
                    })
                    .await?;
                    Ok(Upload {
                        state: UploadState::Complete,
                        content: Some(content),
                        ..upload
                    })
                }
                Decision::Refused => {
                    super::submit_to(&writer, &stats, move |tx, _| {
                        tx.prepare_cached(
                            "UPDATE uploads SET state = 'refused' WHERE id = ?1 AND state = 'receiving'",
                        )?
                        .execute(params![id])?;
                        Ok(Ok(()))
                    })
                    .await?;
                    Self::blocking(move || {
                        remove_files(&dir, &[file]);
                        Ok(())
                    })
                    .await?;
                    Ok(Upload {
                        state: UploadState::Refused,
                        ..upload
                    })
                }
            }
        })
    }

    fn upload_thumb(&self, id: String) -> Pending<Option<Vec<u8>>> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT thumb FROM uploads WHERE id = ?1 AND state = 'complete'")?
                .query_row(params![id], |row| row.get::<_, Option<Vec<u8>>>(0))
                .optional()?
                .flatten())
        })
    }

    fn delete_upload(&self, id: String) -> Pending<bool> {
        let dir = self.uploads_dir();
        let removed = self.submit(move |tx, _| {
            let named = tx
                .prepare_cached("SELECT 1 FROM message_attachments WHERE upload_id = ?1 LIMIT 1")?
                .query_row(params![id], |_| Ok(()))
                .optional()?;
            if named.is_some() {
                return Ok(Err(StoreError::IdConflict));
            }
            Ok(Ok(tx
                .prepare_cached("DELETE FROM uploads WHERE id = ?1 RETURNING file")?
                .query_row(params![id], |row| row.get::<_, String>(0))
                .optional()?))
        });
        Box::pin(async move {
            let Some(file) = removed.await? else {
                return Ok(false);
            };
            Self::blocking(move || {
                remove_files(&dir, &[file]);
                Ok(())
            })
            .await?;
            Ok(true)
        })
    }

    fn expire_uploads(&self, before: u64) -> Pending<u64> {
        let dir = self.uploads_dir();
        // In the writer: an append naming one of these uploads is either committed before (and
        // then the upload is named, so kept) or runs after (and finds it gone).
        let removed = self.submit(move |tx, _| {
            let files: Vec<String> = tx
                .prepare_cached(
                    "DELETE FROM uploads WHERE id IN (
                       SELECT id FROM uploads u WHERE created_at < ?1
                       AND NOT EXISTS (SELECT 1 FROM message_attachments m WHERE m.upload_id = u.id)
                       LIMIT 1000)
                     RETURNING file",
                )?
                .query_map(params![before], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(Ok(files))
        });
        Box::pin(async move {
            let files = removed.await?;
            let count = files.len() as u64;
            Self::blocking(move || {
                remove_files(&dir, &files);
                Ok(())
            })
            .await?;
            Ok(count)
        })
    }

    fn upload_usage(&self, user: String, minute_start: u64, day_start: u64) -> Pending<Usage> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT COUNT(CASE WHEN created_at >= ?2 THEN 1 END), COALESCE(SUM(length), 0), MIN(created_at)
                 FROM uploads WHERE uploader = ?1 AND created_at >= ?3",
            )?
            .query_row(params![user, minute_start, day_start], |row| {
                Ok(Usage {
                    created_in_minute: row.get(0)?,
                    bytes_in_day: row.get(1)?,
                    oldest_in_day: row.get(2)?,
                })
            })
        })
    }

    fn naming_kinds(&self, upload: String) -> Pending<Vec<MessageKind>> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT kind FROM message_attachments WHERE upload_id = ?1")?
                .query_map(params![upload], |row| {
                    let kind: String = row.get(0)?;
                    decode::kind(&kind).map_err(|err| read::corrupt(0, err))
                })?
                .collect()
        })
    }

    fn storage_usage(&self) -> Pending<StorageUsage> {
        self.read(move |conn| {
            let (uploads, bytes) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(CASE WHEN state = 'complete' THEN size END), 0) FROM uploads",
                )?
                .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let per_conversation = conn
                .prepare_cached(
                    "SELECT SUM(size) FROM uploads u WHERE state = 'complete'
                     AND EXISTS (SELECT 1 FROM message_attachments m WHERE m.upload_id = u.id)
                     GROUP BY conversation_id",
                )?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let database_bytes: u64 = conn.query_row(
                "SELECT (c.page_count - f.freelist_count) * s.page_size
                 FROM pragma_page_count() c, pragma_freelist_count() f, pragma_page_size() s",
                [],
                |row| row.get(0),
            )?;
            Ok(StorageUsage {
                uploads,
                bytes,
                per_conversation,
                database_bytes: Some(database_bytes),
            })
        })
    }
}
