//! [`UploadStore`] on PostgreSQL: an upload's bytes in `upload_chunks` rows that every node
//! reads, so an upload started on one node finishes on another and any node serves it.
//!
//! Every write is one statement, atomic on its own, on a pooled connection (chunks never pass
//! through the message writer): a chunk's row and the offset it moves commit together, and only
//! if the offset was still the one the chunk starts at — two nodes writing the same offset end
//! with one chunk. Removing metadata writes the new content as chunk generation 1 first, then
//! switches to it while deleting generation 0, so a crash in between leaves the upload as
//! uploaded, to be decided again.

use protocol::frames::MessageKind;
use tokio_postgres::{GenericClient, Row};

use super::{Fault, PgStore};
use crate::store::decode;
use crate::store::uploads::{
    plan_chunk, plan_create, ChunkPlan, Content, Created, Decision, NewUpload, StorageUsage,
    Upload, UploadState, UploadStore, Usage,
};
use crate::store::{Pending, StoreError};

/// A read whose query answers a domain refusal as well as storage faults.
trait FlattenStore<T> {
    fn flatten_store(self) -> Pending<T>;
}

impl<T: Send + 'static> FlattenStore<T> for Pending<Result<T, StoreError>> {
    fn flatten_store(self) -> Pending<T> {
        Box::pin(async move { self.await? })
    }
}

/// The columns [`upload`] reads, in order.
const COLUMNS: &str =
    "id, uploader, conversation_id, name, declared_type, length, \"offset\", state, \
     content_type, size, sha256, width, height, thumb IS NOT NULL, created_at";

/// Rows of one chunk generation are at most this long, so a read of a range touches few rows.
const ROW_BYTES_MAX: usize = 1024 * 1024;

fn upload(row: &Row) -> Result<Upload, Fault> {
    let state = UploadState::parse(row.get(7))?;
    let content = match (state, row.get::<_, Option<String>>(8)) {
        (UploadState::Complete, Some(content_type)) => Some(Content {
            content_type,
            size: row.get::<_, i64>(9) as u64,
            sha256: row.get(10),
            width: row.get::<_, Option<i32>>(11).map(|v| v as u32),
            height: row.get::<_, Option<i32>>(12).map(|v| v as u32),
            thumb: row.get(13),
        }),
        _ => None,
    };
    Ok(Upload {
        id: row.get(0),
        uploader: row.get(1),
        conversation: row.get(2),
        name: row.get(3),
        declared_type: row.get(4),
        length: row.get::<_, i64>(5) as u64,
        offset: row.get::<_, i64>(6) as u64,
        state,
        content,
        created_at: row.get::<_, i64>(14) as u64,
    })
}

async fn find<C: GenericClient>(c: &C, id: &str) -> Result<Option<Upload>, Fault> {
    c.query_opt(
        &format!("SELECT {COLUMNS} FROM uploads WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(upload)
    .transpose()
}

/// The uploads among `ids` that exist, for an append's facts, read in the writer's transaction.
pub(super) async fn named<C: GenericClient>(c: &C, ids: &[String]) -> Result<Vec<Upload>, Fault> {
    let rows = c
        .query(
            &format!("SELECT {COLUMNS} FROM uploads WHERE id = ANY($1)"),
            &[&ids],
        )
        .await?;
    rows.iter().map(upload).collect()
}

/// The bytes of the current chunk generation from `start` to `end`.
async fn content<C: GenericClient>(
    c: &C,
    id: &str,
    start: u64,
    end: u64,
) -> Result<Vec<u8>, Fault> {
    let rows = c
        .query(
            "SELECT k.start, k.data FROM upload_chunks k JOIN uploads u ON u.id = k.upload_id AND k.version = u.version
             WHERE k.upload_id = $1 AND k.start < $3 AND k.start + length(k.data) > $2 AND k.start < u.\"offset\"
             ORDER BY k.start",
            &[&id, &(start as i64), &(end as i64)],
        )
        .await?;
    let wanted = end
        .saturating_sub(start)
        .min(protocol::limits::ATTACHMENT_BYTES_MAX);
    let mut bytes = Vec::with_capacity(wanted as usize);
    for row in rows {
        let at = row.get::<_, i64>(0) as u64;
        let data: &[u8] = row.get(1);
        let from = start.saturating_sub(at) as usize;
        let to = ((end - at) as usize).min(data.len());
        bytes.extend_from_slice(&data[from..to]);
    }
    Ok(bytes)
}

impl UploadStore for PgStore {
    fn create_upload(&self, new: NewUpload) -> Pending<Created> {
        self.read(move |c| async move {
            let participant = c
                .query_opt(
                    "SELECT 1 FROM participants WHERE conversation_id = $1 AND user_id = $2",
                    &[&new.conversation, &new.uploader],
                )
                .await?;
            if participant.is_none() {
                return Ok(Err(StoreError::NotFound));
            }
            let planned = match plan_create(None, &new) {
                Ok(Created::New(upload)) => upload,
                _ => unreachable!("a create without an existing upload is new"),
            };
            let inserted = c
                .execute(
                    "INSERT INTO uploads (id, uploader, conversation_id, name, declared_type, length, state, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                    &[
                        &planned.id,
                        &planned.uploader,
                        &planned.conversation,
                        &planned.name,
                        &planned.declared_type,
                        &(planned.length as i64),
                        &planned.state.as_str(),
                        &(planned.created_at as i64),
                    ],
                )
                .await?;
            if inserted == 1 {
                return Ok(Ok(Created::New(planned)));
            }
            // The id exists (a repeat, or another node's create): the rule decides which.
            let existing = find(&*c, &new.id).await?;
            Ok(plan_create(existing, &new))
        })
        .flatten_store()
    }

    fn upload(&self, id: String) -> Pending<Option<Upload>> {
        self.read(move |c| async move { find(&*c, &id).await })
    }

    fn write_chunk(&self, id: String, offset: u64, bytes: bytes::Bytes) -> Pending<Upload> {
        self.read(move |c| async move {
            let Some(mut upload) = find(&*c, &id).await? else {
                return Ok(Err(StoreError::NotFound));
            };
            let end = match plan_chunk(&upload, offset, bytes.len() as u64) {
                Ok(ChunkPlan::Nothing) => return Ok(Ok(upload)),
                Ok(ChunkPlan::Write(end)) => end,
                Err(err) => return Ok(Err(err)),
            };
            let data: &[u8] = &bytes;
            let written = c
                .execute(
                    "WITH moved AS (
                       UPDATE uploads SET \"offset\" = $3
                       WHERE id = $1 AND \"offset\" = $2 AND state = 'receiving' AND version = 0
                       RETURNING id)
                     INSERT INTO upload_chunks (upload_id, version, start, data)
                     SELECT id, 0, $2, $4 FROM moved",
                    &[&id, &(offset as i64), &(end as i64), &data],
                )
                .await?;
            if written != 1 {
                // Another request or node moved the offset first.
                let now = find(&*c, &id).await?.map_or(offset, |u| u.offset);
                return Ok(Err(StoreError::OffsetMismatch(now)));
            }
            upload.offset = end;
            Ok(Ok(upload))
        })
        .flatten_store()
    }

    fn upload_content(&self, id: String) -> Pending<Vec<u8>> {
        self.read(move |c| async move { content(&*c, &id, 0, u64::MAX >> 1).await })
    }

    fn upload_range(&self, id: String, start: u64, end: u64) -> Pending<Vec<u8>> {
        self.read(move |c| async move {
            let size = find(&*c, &id)
                .await?
                .and_then(|u| u.content)
                .map_or(0, |content| content.size);
            content(&*c, &id, start.min(size), end.min(size)).await
        })
    }

    fn decide_upload(&self, id: String, decision: Decision) -> Pending<Upload> {
        self.read(move |c| async move {
            let Some(upload) = find(&*c, &id).await? else {
                return Ok(Err(StoreError::NotFound));
            };
            if !upload.awaits_decision() {
                return Ok(Ok(upload));
            }
            match decision {
                Decision::Complete {
                    content,
                    replaced,
                    thumb,
                } => {
                    let version: i16 = if let Some(bytes) = &replaced {
                        for (index, piece) in bytes.chunks(ROW_BYTES_MAX).enumerate() {
                            c.execute(
                                "INSERT INTO upload_chunks (upload_id, version, start, data) VALUES ($1, 1, $2, $3)
                                 ON CONFLICT (upload_id, version, start) DO UPDATE SET data = excluded.data",
                                &[&id, &((index * ROW_BYTES_MAX) as i64), &piece],
                            )
                            .await?;
                        }
                        1
                    } else {
                        0
                    };
                    // Switches to the new generation and drops the old one, in one statement.
                    c.execute(
                        "WITH decided AS (
                           UPDATE uploads SET state = 'complete', content_type = $2, size = $3, sha256 = $4,
                             width = $5, height = $6, thumb = $7, version = $8, \"offset\" = GREATEST(\"offset\", $3)
                           WHERE id = $1 AND state = 'receiving' RETURNING id)
                         DELETE FROM upload_chunks WHERE upload_id IN (SELECT id FROM decided) AND version <> $8",
                        &[
                            &id,
                            &content.content_type,
                            &(content.size as i64),
                            &content.sha256,
                            &content.width.map(|v| v as i32),
                            &content.height.map(|v| v as i32),
                            &thumb,
                            &version,
                        ],
                    )
                    .await?;
                }
                Decision::Refused => {
                    c.execute(
                        "WITH refused AS (
                           UPDATE uploads SET state = 'refused' WHERE id = $1 AND state = 'receiving' RETURNING id)
                         DELETE FROM upload_chunks WHERE upload_id IN (SELECT id FROM refused)",
                        &[&id],
                    )
                    .await?;
                }
            }
            Ok(find(&*c, &id).await?.ok_or(StoreError::NotFound))
        })
        .flatten_store()
    }

    fn upload_thumb(&self, id: String) -> Pending<Option<Vec<u8>>> {
        self.read(move |c| async move {
            Ok(c.query_opt(
                "SELECT thumb FROM uploads WHERE id = $1 AND state = 'complete'",
                &[&id],
            )
            .await?
            .and_then(|row| row.get::<_, Option<Vec<u8>>>(0)))
        })
    }

    fn delete_upload(&self, id: String) -> Pending<bool> {
        self.read(move |c| async move {
            let deleted = c
                .execute("DELETE FROM uploads WHERE id = $1 AND NOT named", &[&id])
                .await?;
            if deleted == 1 {
                return Ok(Ok(true));
            }
            let exists = c
                .query_opt("SELECT 1 FROM uploads WHERE id = $1", &[&id])
                .await?
                .is_some();
            Ok(if exists {
                Err(StoreError::IdConflict)
            } else {
                Ok(false)
            })
        })
        .flatten_store()
    }

    fn expire_uploads(&self, before: u64) -> Pending<u64> {
        self.read(move |c| async move {
            // `NOT named` is rechecked on the row after any message transaction naming it
            // commits (that transaction updates the row), so a named upload is never removed.
            Ok(c.execute(
                "DELETE FROM uploads WHERE id IN (
                   SELECT id FROM uploads WHERE created_at < $1 AND NOT named LIMIT 1000)
                 AND NOT named",
                &[&(before as i64)],
            )
            .await?)
        })
    }

    fn upload_usage(&self, user: String, minute_start: u64, day_start: u64) -> Pending<Usage> {
        self.read(move |c| async move {
            let row = c
                .query_one(
                    "SELECT COUNT(*) FILTER (WHERE created_at >= $2), COALESCE(SUM(length), 0)::BIGINT, MIN(created_at)
                     FROM uploads WHERE uploader = $1 AND created_at >= $3",
                    &[&user, &(minute_start as i64), &(day_start as i64)],
                )
                .await?;
            Ok(Usage {
                created_in_minute: row.get::<_, i64>(0) as u64,
                bytes_in_day: row.get::<_, i64>(1) as u64,
                oldest_in_day: row.get::<_, Option<i64>>(2).map(|v| v as u64),
            })
        })
    }

    fn naming_kinds(&self, upload: String) -> Pending<Vec<MessageKind>> {
        self.read(move |c| async move {
            let rows = c
                .query(
                    "SELECT kind FROM message_attachments WHERE upload_id = $1",
                    &[&upload],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|row| decode::kind(row.get(0)))
                .collect::<Result<_, _>>()?)
        })
    }

    fn storage_usage(&self) -> Pending<StorageUsage> {
        self.read(move |c| async move {
            let row = c
                .query_one(
                    "SELECT COUNT(*), COALESCE(SUM(size) FILTER (WHERE state = 'complete'), 0)::BIGINT FROM uploads",
                    &[],
                )
                .await?;
            let per_conversation = c
                .query(
                    "SELECT SUM(size)::BIGINT FROM uploads WHERE state = 'complete' AND named GROUP BY conversation_id",
                    &[],
                )
                .await?
                .iter()
                .map(|row| row.get::<_, i64>(0) as u64)
                .collect();
            let database = c
                .query_one(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT
                     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')",
                    &[],
                )
                .await?;
            Ok(StorageUsage {
                uploads: row.get::<_, i64>(0) as u64,
                bytes: row.get::<_, i64>(1) as u64,
                per_conversation,
                database_bytes: Some(database.get::<_, i64>(0) as u64),
            })
        })
    }
}
