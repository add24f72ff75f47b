//! Files of outbox messages: what the session knows of each (its upload id, name and length —
//! never its bytes, which stay with the driver's store) and where its upload is.
//!
//! A message with files is held in the outbox until every file is uploaded; until then it is
//! not sent, and the messages after it in its conversation wait behind it (FIFO per sender).

use std::time::Instant;

use protocol::ErrorCode;

/// A file of an outbox message, as the session knows it. The bytes stay with the driver (the
/// device's local store): the session only decides when they travel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFile {
    /// The upload id: a UUID generated on the device, the idempotency key of the upload.
    pub upload_id: String,
    /// The file's name as the user knows it (shown only).
    pub name: String,
    /// The type the device believes (informational: the server decides by content).
    pub content_type: Option<String>,
    /// Bytes in the file.
    pub length: u64,
}

/// What the driver must upload ([`super::Action::Upload`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadOrder {
    /// Identifies this try in the reports (`handle_upload_*`) and in
    /// [`super::Action::CancelUpload`].
    pub attempt: u64,
    /// The message the file belongs to.
    pub message: String,
    /// Its conversation.
    pub conversation: String,
    /// The file.
    pub file: OutboxFile,
    /// An earlier try may have created the upload on the server: ask its offset (`HEAD`)
    /// before creating it. Creating is idempotent either way; this only saves a step.
    pub resume: bool,
}

/// Why an upload did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadFailure {
    /// For now: the connection was cut, timed out, or the server could not take it
    /// (`unavailable`, `rate_limited`, `upload_quota`, …). Tried again with backoff, or after
    /// `retry_after_ms` when the server said.
    Transient {
        /// The server's `retry_after_ms`, if it gave one.
        retry_after_ms: Option<u64>,
    },
    /// For good: the server refused the file (`unsupported_type`, `attachment_too_large`,
    /// `attachment_not_found`, …). The message fails like one the server refused.
    Refused {
        /// The server's code.
        code: ErrorCode,
        /// Its human-readable reason.
        message: String,
    },
}

/// How far the files of one outbox message got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadProgress {
    /// Bytes the server holds, over all the message's files (as last reported).
    pub sent: u64,
    /// Bytes in all the message's files.
    pub total: u64,
}

/// Where one file's upload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileState {
    /// To be uploaded, not before `FileSlot::not_before`.
    Waiting,
    /// The driver is uploading it under this attempt.
    Uploading { attempt: u64 },
    /// Complete on the server.
    Done,
}

/// One file of an outbox entry and its upload.
#[derive(Debug, Clone)]
pub(crate) struct FileSlot {
    pub file: OutboxFile,
    pub state: FileState,
    /// Bytes the server holds, as last reported.
    pub offset: u64,
    /// Transient failures in a row, for the backoff.
    pub attempts: u32,
    /// Not to be tried again before this time.
    pub not_before: Option<Instant>,
    /// The upload may exist on the server already.
    pub resume: bool,
}

impl FileSlot {
    pub(crate) fn new(file: OutboxFile, resume: bool) -> Self {
        FileSlot {
            file,
            state: FileState::Waiting,
            offset: 0,
            attempts: 0,
            not_before: None,
            resume,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.state == FileState::Done
    }

    /// Back to waiting, to be tried at once (the upload may exist: ask before creating).
    pub(crate) fn again(&mut self) {
        self.state = FileState::Waiting;
        self.attempts = 0;
        self.not_before = None;
        self.resume = true;
    }
}
