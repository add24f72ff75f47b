//! The session's side of attachments: which file to upload when, what a driver's report of an
//! upload changes, and what a refusal does to its message. The driver only carries out the
//! orders ([`Action::Upload`]) over HTTP and reports back.
//!
//! **Invariant:** a message is sent only once all its files are complete on the server, and no
//! later message of its conversation is sent before it (they wait in the outbox, FIFO).

use std::time::{Duration, Instant};

use protocol::frames::Attachment;
use protocol::ErrorCode;

use super::files::{FileState, OutboxFile, UploadFailure, UploadOrder, UploadProgress};
use super::{Action, DeliveryStatus, Event, Session};

impl Session {
    /// Queues a message with files (the driver has already persisted it, files included, under
    /// `id`). It is sent once every file is uploaded; the messages after it in `conversation`
    /// wait behind it. Returns the id.
    pub fn send_with_files(
        &mut self,
        now: Instant,
        id: String,
        conversation: &str,
        body: &str,
        files: Vec<OutboxFile>,
        deadline: Option<Instant>,
    ) -> String {
        self.outbox.push(
            id.clone(),
            conversation.to_owned(),
            body.to_owned(),
            files,
            deadline,
        );
        self.events.push_back(Event::DeliveryStatus {
            conversation: conversation.to_owned(),
            id: id.clone(),
            status: DeliveryStatus::Sending,
        });
        self.flush(now);
        id
    }

    /// How far the files of outbox message `id` got; `None` if it has no files (or is not in
    /// the outbox).
    pub fn upload_progress(&self, id: &str) -> Option<UploadProgress> {
        let entry = self.outbox.get(id)?;
        if entry.files.is_empty() {
            return None;
        }
        let (sent, total) = entry.files.iter().fold((0, 0), |(sent, total), slot| {
            let done = if slot.is_done() {
                slot.file.length
            } else {
                slot.offset
            };
            (sent + done, total + slot.file.length)
        });
        Some(UploadProgress { sent, total })
    }

    /// The upload of attempt `attempt` holds `offset` bytes on the server now.
    pub fn handle_upload_progress(&mut self, now: Instant, attempt: u64, offset: u64) {
        let Some((conversation, id, slot)) = self.uploading(attempt) else {
            return;
        };
        slot.offset = offset.min(slot.file.length);
        // Bytes got through: the next failure is a new blip, retried fast.
        slot.attempts = 0;
        slot.resume = true;
        let event = Event::UploadProgress {
            conversation,
            id,
            upload_id: slot.file.upload_id.clone(),
            offset: slot.offset,
            length: slot.file.length,
        };
        self.events.push_back(event);
        self.flush(now);
    }

    /// The upload of attempt `attempt` is complete on the server. Once all files of its message
    /// are, the message is sent (and those waiting behind it follow).
    pub fn handle_upload_done(&mut self, now: Instant, attempt: u64) {
        let Some((conversation, id, slot)) = self.uploading(attempt) else {
            return;
        };
        slot.state = FileState::Done;
        slot.offset = slot.file.length;
        let event = Event::UploadProgress {
            conversation,
            id,
            upload_id: slot.file.upload_id.clone(),
            offset: slot.offset,
            length: slot.file.length,
        };
        self.events.push_back(event);
        self.flush(now);
    }

    /// The upload of attempt `attempt` stopped. A transient failure is tried again with backoff
    /// (or when the server said); a refusal fails the message, and its other uploads stop.
    pub fn handle_upload_failed(&mut self, now: Instant, attempt: u64, failure: UploadFailure) {
        let Some(attempts) = self.uploading(attempt).map(|(_, _, slot)| slot.attempts) else {
            return;
        };
        let unit = self.jitter.unit();
        let delay = match &failure {
            UploadFailure::Transient {
                retry_after_ms: Some(ms),
            } => Duration::from_millis(*ms),
            _ => self.config.backoff(attempts, unit),
        };
        let (_, id, slot) = self.uploading(attempt).expect("found above");
        slot.state = FileState::Waiting;
        slot.resume = true;
        match failure {
            UploadFailure::Transient { .. } => {
                slot.attempts = attempts.saturating_add(1);
                slot.not_before = Some(now + delay);
            }
            UploadFailure::Refused { code, message } => {
                self.fail_with_files(&id, code, &message);
            }
        }
        self.flush(now);
    }

    /// Fails outbox message `id` for good and stops its uploads.
    pub(super) fn fail_with_files(&mut self, id: &str, code: ErrorCode, message: &str) {
        let conversation = self.outbox.fail(id, code.as_str(), message);
        self.cancel_uploads(id);
        self.events.push_back(Event::DeliveryStatus {
            conversation,
            id: id.to_owned(),
            status: DeliveryStatus::Failed {
                code: code.as_str().to_owned(),
                message: message.to_owned(),
            },
        });
    }

    /// The server answered `attachment_pending` for message `id`: a file it names is not
    /// complete there after all. Every file of it is asked about again (a complete one answers
    /// at once) before the message goes again.
    pub(super) fn reupload(&mut self, id: &str) {
        if let Some(entry) = self.outbox.get_mut(id) {
            for slot in &mut entry.files {
                if slot.state == FileState::Done {
                    slot.again();
                }
            }
        }
    }

    /// Stops the uploads of message `id` in progress (they are started again when it is
    /// retried).
    pub(super) fn cancel_uploads(&mut self, id: &str) {
        let Some(entry) = self.outbox.get_mut(id) else {
            return;
        };
        for slot in &mut entry.files {
            if let FileState::Uploading { attempt } = slot.state {
                slot.state = FileState::Waiting;
                slot.resume = true;
                self.actions.push_back(Action::CancelUpload { attempt });
            }
        }
    }

    /// Stops every upload in progress (the app disconnected, the network went away, the token
    /// was refused); they start again from the server's offset when uploads may go on.
    pub(super) fn pause_uploads(&mut self) {
        let mut cancelled = Vec::new();
        for entry in self.outbox.entries_mut() {
            for slot in &mut entry.files {
                if let FileState::Uploading { attempt } = slot.state {
                    slot.again();
                    cancelled.push(attempt);
                }
            }
        }
        self.actions.extend(
            cancelled
                .into_iter()
                .map(|attempt| Action::CancelUpload { attempt }),
        );
    }

    /// Uploads may go on: the app wants to be connected, the network is there and the token
    /// is not known to be refused. (The WebSocket need not be open: uploads are HTTP.)
    fn may_upload(&self) -> bool {
        self.wanted && self.network_up && !self.expired
    }

    fn uploads_in_progress(&self) -> usize {
        self.outbox
            .entries()
            .flat_map(|e| e.files.iter())
            .filter(|f| matches!(f.state, FileState::Uploading { .. }))
            .count()
    }

    /// Orders the uploads that may start now: files of messages not failed, in outbox order,
    /// at most `uploads_max` at once.
    pub(super) fn start_uploads(&mut self, now: Instant) {
        if !self.may_upload() {
            return;
        }
        let mut room = self
            .config
            .uploads_max
            .saturating_sub(self.uploads_in_progress());
        let mut orders = Vec::new();
        for entry in self.outbox.entries_mut() {
            if room == 0 {
                break;
            }
            if entry.is_failed() {
                continue;
            }
            for slot in &mut entry.files {
                if room == 0 {
                    break;
                }
                let due = slot.not_before.is_none_or(|at| at <= now);
                if slot.state != FileState::Waiting || !due {
                    continue;
                }
                self.upload_attempt += 1;
                let attempt = self.upload_attempt;
                slot.state = FileState::Uploading { attempt };
                slot.not_before = None;
                room -= 1;
                orders.push(UploadOrder {
                    attempt,
                    message: entry.id.clone(),
                    conversation: entry.conversation.clone(),
                    file: slot.file.clone(),
                    resume: slot.resume,
                });
            }
        }
        self.actions.extend(orders.into_iter().map(Action::Upload));
    }

    /// When a waiting upload may be tried again, if one could start then.
    pub(super) fn next_upload_at(&self) -> Option<Instant> {
        if !self.may_upload() || self.uploads_in_progress() >= self.config.uploads_max {
            return None;
        }
        self.outbox
            .entries()
            .filter(|e| !e.is_failed())
            .flat_map(|e| e.files.iter())
            .filter(|f| f.state == FileState::Waiting)
            .filter_map(|f| f.not_before)
            .min()
    }

    /// The file of the upload in progress under `attempt`, with its message's conversation and
    /// id; `None` for a report of an attempt the session no longer waits for.
    fn uploading(&mut self, attempt: u64) -> Option<(String, String, &mut super::files::FileSlot)> {
        self.outbox.entries_mut().find_map(|entry| {
            let (conversation, id) = (entry.conversation.clone(), entry.id.clone());
            entry
                .files
                .iter_mut()
                .find(|f| f.state == FileState::Uploading { attempt })
                .map(|slot| (conversation, id, slot))
        })
    }
}

/// How an outbox file is shown before the server has it: its declared type (or
/// `application/octet-stream`), its length, no hash yet.
pub(super) fn pending_attachment(file: &OutboxFile) -> Attachment {
    Attachment {
        id: file.upload_id.clone(),
        name: file.name.clone(),
        content_type: file
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned()),
        size: file.length,
        sha256: String::new(),
        width: None,
        height: None,
        thumb: false,
    }
}
