//! Stable, machine-readable error codes. Every rejection over HTTP (`application/problem+json`,
//! field `code`) and over WebSocket (`error` frame, field `code`) carries one of these. Codes are
//! part of the public interface: add new ones, never rename.

use serde::{Deserialize, Serialize};

/// Every error code of the protocol and the HTTP API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No credentials were given, or they are not of the kind the route needs.
    Unauthorized,
    /// The token's signature, format or claims are invalid.
    TokenInvalid,
    /// The token has expired: get a fresh one. Not a failure of any message.
    TokenExpired,
    /// The credentials are valid but do not allow this (a user token on an admin route).
    Forbidden,
    /// No such conversation, or the user is not one of its participants (the two look the same).
    NotFound,
    /// The request body is not valid JSON or lacks a required field; or a path or query parameter
    /// is outside its documented domain.
    BadRequest,
    /// The HTTP method is not one the route answers (the `Allow` header lists those it does).
    MethodNotAllowed,
    /// A WebSocket frame is not valid JSON or lacks a required field.
    MalformedFrame,
    /// A WebSocket frame has a `type` this protocol version does not know.
    UnknownFrame,
    /// A frame other than `hello` came before `hello`, or `hello` came twice.
    HelloRequired,
    /// The `hello` frame names a protocol version this server does not speak.
    VersionUnsupported,
    /// A message id is not a hyphenated UUID.
    InvalidId,
    /// A conversation id is empty, too long, or has characters outside `[A-Za-z0-9-_.:@]`.
    InvalidConversationId,
    /// A user id is empty, too long, or has characters outside `[A-Za-z0-9-_.:@]`.
    InvalidUserId,
    /// A role is not `client` or `operator`.
    InvalidRole,
    /// A `seq`, `after` or `limit` is not a valid number for this request.
    InvalidCursor,
    /// A cursor points past the last `seq` of the conversation.
    CursorOutOfRange,
    /// A message body is larger than the configured limit.
    MessageTooLarge,
    /// A message body is empty.
    EmptyMessage,
    /// A WebSocket frame or HTTP body is larger than the server parses.
    FrameTooLarge,
    /// A conversation would have more participants than the configured limit.
    TooManyParticipants,
    /// The user is already a participant with another role.
    ParticipantConflict,
    /// The message id is already used by a different message (other body, sender or conversation).
    IdConflict,
    /// The user id is not an active operator of the operator directory: an operator token for
    /// it, an assignment or a transfer to it is refused.
    UnknownOperator,
    /// A token's requested lifetime is zero or longer than allowed.
    InvalidTtl,
    /// The conversation is closed to new messages.
    ConversationClosed,
    /// An earlier message this connection sent to the conversation was not stored (it was
    /// refused or failed), so this one was not stored either, to keep FIFO per sender. Transient:
    /// resend the earlier message, then this one.
    OutOfOrder,
    /// Too many requests; retry after the time given. Transient.
    RateLimited,
    /// Too many simultaneous connections for this user.
    TooManyConnections,
    /// Storage is unreachable. Transient: retry with backoff.
    Unavailable,
    /// The server is shutting down. Transient: reconnect with backoff.
    ShuttingDown,
    /// An unexpected server error, logged on the server. Transient: retry with backoff.
    Internal,
    /// A link from an email was already used: each link opens the conversation once.
    LinkUsed,
    /// A link from an email is past its lifetime (`email_link_ttl_ms`).
    LinkExpired,
    /// A push subscription is not usable: an endpoint the server may not reach, or keys that
    /// are not a P-256 public key and a 16-byte secret.
    InvalidSubscription,
    /// The email and password (or the single sign-on answer) do not match an active account. Deliberately the same for an unknown email and a wrong password.
    SigninFailed,
    /// The account has a second factor: send the 6-digit code from the authenticator app with the password (`totp`). Also a wrong or reused code.
    TotpRequired,
    /// Too many failed sign-ins: the account is locked for a while (`signin_lock_ms`); `Retry-After` says how long.
    AccountLocked,
    /// A state-changing request signed in by the session cookie lacks the session's `X-CSRF-Token` header (or it is wrong).
    CsrfFailed,
    /// A new password is under 12 characters, one repeated character, or among the most common passwords.
    WeakPassword,
    /// Another operator's account has this email.
    EmailTaken,
    /// Another saved reply has this shortcut.
    ShortcutTaken,
    /// An attachment's upload is not complete yet: finish it, then send the message again. Transient.
    AttachmentPending,
    /// No complete upload of this sender in this conversation has this id (or it was refused or removed).
    AttachmentNotFound,
    /// A file is larger than `attachment_bytes_max`.
    AttachmentTooLarge,
    /// A file's content is not one of the allowed types (`attachment_types`), whatever its name or declared type.
    UnsupportedType,
    /// An upload chunk's `Upload-Offset` is not the stored offset; resume from the offset given.
    OffsetMismatch,
    /// The user uploaded `upload_bytes_per_day` in the last 24 hours; retry after the time given. Transient.
    UploadQuota,
    /// A download's `Range` lies past the end of the file.
    RangeNotSatisfiable,
}

impl ErrorCode {
    /// Every code, for documentation checks and exhaustive tests.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Unauthorized,
        ErrorCode::TokenInvalid,
        ErrorCode::TokenExpired,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::BadRequest,
        ErrorCode::MethodNotAllowed,
        ErrorCode::MalformedFrame,
        ErrorCode::UnknownFrame,
        ErrorCode::HelloRequired,
        ErrorCode::VersionUnsupported,
        ErrorCode::InvalidId,
        ErrorCode::InvalidConversationId,
        ErrorCode::InvalidUserId,
        ErrorCode::InvalidRole,
        ErrorCode::InvalidCursor,
        ErrorCode::CursorOutOfRange,
        ErrorCode::MessageTooLarge,
        ErrorCode::EmptyMessage,
        ErrorCode::FrameTooLarge,
        ErrorCode::TooManyParticipants,
        ErrorCode::ParticipantConflict,
        ErrorCode::IdConflict,
        ErrorCode::UnknownOperator,
        ErrorCode::InvalidTtl,
        ErrorCode::ConversationClosed,
        ErrorCode::OutOfOrder,
        ErrorCode::RateLimited,
        ErrorCode::TooManyConnections,
        ErrorCode::Unavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::Internal,
        ErrorCode::LinkUsed,
        ErrorCode::LinkExpired,
        ErrorCode::InvalidSubscription,
        ErrorCode::SigninFailed,
        ErrorCode::TotpRequired,
        ErrorCode::AccountLocked,
        ErrorCode::CsrfFailed,
        ErrorCode::WeakPassword,
        ErrorCode::EmailTaken,
        ErrorCode::ShortcutTaken,
        ErrorCode::AttachmentPending,
        ErrorCode::AttachmentNotFound,
        ErrorCode::AttachmentTooLarge,
        ErrorCode::UnsupportedType,
        ErrorCode::OffsetMismatch,
        ErrorCode::UploadQuota,
        ErrorCode::RangeNotSatisfiable,
    ];

    /// The wire name, e.g. `message_too_large`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenInvalid => "token_invalid",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::UnknownFrame => "unknown_frame",
            ErrorCode::HelloRequired => "hello_required",
            ErrorCode::VersionUnsupported => "version_unsupported",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::InvalidConversationId => "invalid_conversation_id",
            ErrorCode::InvalidUserId => "invalid_user_id",
            ErrorCode::InvalidRole => "invalid_role",
            ErrorCode::InvalidCursor => "invalid_cursor",
            ErrorCode::CursorOutOfRange => "cursor_out_of_range",
            ErrorCode::MessageTooLarge => "message_too_large",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::TooManyParticipants => "too_many_participants",
            ErrorCode::ParticipantConflict => "participant_conflict",
            ErrorCode::IdConflict => "id_conflict",
            ErrorCode::UnknownOperator => "unknown_operator",
            ErrorCode::InvalidTtl => "invalid_ttl",
            ErrorCode::ConversationClosed => "conversation_closed",
            ErrorCode::OutOfOrder => "out_of_order",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Internal => "internal",
            ErrorCode::LinkUsed => "link_used",
            ErrorCode::LinkExpired => "link_expired",
            ErrorCode::InvalidSubscription => "invalid_subscription",
            ErrorCode::SigninFailed => "signin_failed",
            ErrorCode::TotpRequired => "totp_required",
            ErrorCode::AccountLocked => "account_locked",
            ErrorCode::CsrfFailed => "csrf_failed",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::ShortcutTaken => "shortcut_taken",
            ErrorCode::AttachmentPending => "attachment_pending",
            ErrorCode::AttachmentNotFound => "attachment_not_found",
            ErrorCode::AttachmentTooLarge => "attachment_too_large",
            ErrorCode::UnsupportedType => "unsupported_type",
            ErrorCode::OffsetMismatch => "offset_mismatch",
            ErrorCode::UploadQuota => "upload_quota",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
        }
    }

    /// The HTTP status that carries this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized
            | ErrorCode::TokenInvalid
            | ErrorCode::TokenExpired
            | ErrorCode::SigninFailed
            | ErrorCode::TotpRequired => 401,
            ErrorCode::Forbidden | ErrorCode::CsrfFailed => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::IdConflict
            | ErrorCode::ParticipantConflict
            | ErrorCode::TooManyParticipants
            | ErrorCode::OutOfOrder
            | ErrorCode::ConversationClosed
            | ErrorCode::EmailTaken
            | ErrorCode::ShortcutTaken
            | ErrorCode::AttachmentPending
            | ErrorCode::OffsetMismatch => 409,
            ErrorCode::AttachmentNotFound => 404,
            ErrorCode::UnsupportedType => 415,
            ErrorCode::RangeNotSatisfiable => 416,
            ErrorCode::MessageTooLarge
            | ErrorCode::FrameTooLarge
            | ErrorCode::AttachmentTooLarge => 413,
            ErrorCode::UnknownOperator => 422,
            ErrorCode::RateLimited
            | ErrorCode::TooManyConnections
            | ErrorCode::AccountLocked
            | ErrorCode::UploadQuota => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable | ErrorCode::ShuttingDown => 503,
            ErrorCode::LinkUsed | ErrorCode::LinkExpired => 410,
            ErrorCode::BadRequest
            | ErrorCode::InvalidSubscription
            | ErrorCode::WeakPassword
            | ErrorCode::MalformedFrame
            | ErrorCode::UnknownFrame
            | ErrorCode::HelloRequired
            | ErrorCode::VersionUnsupported
            | ErrorCode::InvalidId
            | ErrorCode::InvalidConversationId
            | ErrorCode::InvalidUserId
            | ErrorCode::InvalidRole
            | ErrorCode::InvalidCursor
            | ErrorCode::CursorOutOfRange
            | ErrorCode::EmptyMessage
            | ErrorCode::InvalidTtl => 400,
        }
    }

    /// Whether retrying the same request unchanged can never succeed. A message rejected with a
    /// permanent code becomes `failed`; a transient one stays in the outbox and is retried.
    /// `token_expired` is not permanent: the device gets a fresh token and carries on.
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            ErrorCode::TokenExpired
                | ErrorCode::OutOfOrder
                | ErrorCode::AttachmentPending
                | ErrorCode::UploadQuota
                | ErrorCode::RateLimited
                | ErrorCode::TooManyConnections
                | ErrorCode::AccountLocked
                | ErrorCode::Unavailable
                | ErrorCode::ShuttingDown
                | ErrorCode::Internal
        )
    }

    /// A short human title, used as the problem+json `title`.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "Missing or unusable credentials",
            ErrorCode::TokenInvalid => "Invalid token",
            ErrorCode::TokenExpired => "Token expired",
            ErrorCode::Forbidden => "Not allowed",
            ErrorCode::NotFound => "Not found",
            ErrorCode::BadRequest => "Bad request",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::MalformedFrame => "Malformed frame",
            ErrorCode::UnknownFrame => "Unknown frame type",
            ErrorCode::HelloRequired => "Expected exactly one hello first",
            ErrorCode::VersionUnsupported => "Unsupported protocol version",
            ErrorCode::InvalidId => "Invalid message id",
            ErrorCode::InvalidConversationId => "Invalid conversation id",
            ErrorCode::InvalidUserId => "Invalid user id",
            ErrorCode::InvalidRole => "Invalid role",
            ErrorCode::InvalidCursor => "Invalid cursor or limit",
            ErrorCode::CursorOutOfRange => "Cursor out of range",
            ErrorCode::MessageTooLarge => "Message too large",
            ErrorCode::EmptyMessage => "Empty message",
            ErrorCode::FrameTooLarge => "Frame too large",
            ErrorCode::TooManyParticipants => "Too many participants",
            ErrorCode::ParticipantConflict => "Participant has another role",
            ErrorCode::IdConflict => "Message id already used",
            ErrorCode::UnknownOperator => "Not an active operator",
            ErrorCode::InvalidTtl => "Invalid token lifetime",
            ErrorCode::ConversationClosed => "Conversation closed",
            ErrorCode::OutOfOrder => "An earlier message was not stored",
            ErrorCode::RateLimited => "Rate limited",
            ErrorCode::TooManyConnections => "Too many connections",
            ErrorCode::Unavailable => "Storage unavailable",
            ErrorCode::ShuttingDown => "Server shutting down",
            ErrorCode::Internal => "Internal error",
            ErrorCode::LinkUsed => "Link already used",
            ErrorCode::LinkExpired => "Link expired",
            ErrorCode::InvalidSubscription => "Invalid push subscription",
            ErrorCode::SigninFailed => "Sign-in failed",
            ErrorCode::TotpRequired => "Second factor required",
            ErrorCode::AccountLocked => "Account locked",
            ErrorCode::CsrfFailed => "Missing or wrong CSRF token",
            ErrorCode::WeakPassword => "Password too weak",
            ErrorCode::EmailTaken => "Email already used",
            ErrorCode::ShortcutTaken => "Shortcut already used",
            ErrorCode::AttachmentPending => "Attachment not uploaded yet",
            ErrorCode::AttachmentNotFound => "Attachment not found",
            ErrorCode::AttachmentTooLarge => "Attachment too large",
            ErrorCode::UnsupportedType => "Unsupported file type",
            ErrorCode::OffsetMismatch => "Upload offset mismatch",
            ErrorCode::UploadQuota => "Upload quota reached",
            ErrorCode::RangeNotSatisfiable => "Range not satisfiable",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *code);
        }
    }
}
