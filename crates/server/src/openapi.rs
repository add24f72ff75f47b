//! `GET /v1/openapi.json`: the HTTP API described as OpenAPI 3.1, built from the code — the
//! operation table below and the JSON Schemas derived from the request and response types
//! themselves (`schemars`), so a changed type changes the document. `tests/openapi.rs` calls
//! every operation and checks each answer against the schema documented for its status.

use std::sync::{Arc, OnceLock};

use axum::extract::State;

use protocol::api::{
    AssignBody, ConversationList, ConversationView, CreateConversation, CreateWebhook, Inbox,
    LinkSession, MessagePage, MintToken, Operator, OperatorList, ParticipantSpec, Problem, PushKey,
    PushSubscriptionBody, PushSubscriptionList, PushSubscriptionView, PutOperator, ReceiptBody,
    RedeemLink, SendMessage, StatusBody, TokenResponse, UpsertConversation,
};
use protocol::frames::{Message, ParticipantState};
use protocol::{ids, limits, ErrorCode};
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::store::{EventRecord, Webhook};
use crate::{AppState, Config};

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Auth {
    None,
    Admin,
    User,
    AdminOrOperator,
    AdminOrUser,
}

/// One operation. Adding a route to the document is adding a row to [`operations`]: path
/// parameters are described from their names ([`path_parameter`]), and the errors every operation
/// of its kind can answer are added by [`build`]: with auth, `unauthorized`, `token_invalid`,
/// `token_expired` and `forbidden`; with a body, `bad_request` and `frame_too_large`; with path or
/// query parameters, `bad_request` and the parameters' own codes. `errors` lists the rest.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    request: Option<Value>,
    /// Query parameters, from [`query`].
    query: Vec<Value>,
    /// (status, description, body schema).
    responses: Vec<(u16, &'static str, Option<Value>)>,
    errors: &'static [ErrorCode],
}

/// A conversation id's schema (what `protocol::ids::check_conversation_id` accepts).
fn conversation_id() -> Value {
    json!({"type": "string", "pattern": ids::CONVERSATION_ID_PATTERN, "minLength": 1, "maxLength": limits::CONVERSATION_ID_BYTES_MAX})
}

/// A user id's schema (what `protocol::ids::check_user_id` accepts).
fn user_id() -> Value {
    json!({"type": "string", "pattern": ids::USER_ID_PATTERN, "minLength": 1, "maxLength": limits::USER_ID_BYTES_MAX})
}

/// The schema of path parameter `name` of `path`, and the code its rejection carries. Every name
/// a route uses must be known here, so no parameter goes undescribed.
fn path_parameter(path: &str, name: &str) -> (Value, ErrorCode) {
    match name {
        "id" if path.starts_with("/v1/conversations/") => {
            (conversation_id(), ErrorCode::InvalidConversationId)
        }
        "id" if path.starts_with("/v1/webhooks/") => (
            json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": ids::NUMBER_MAX}),
            ErrorCode::BadRequest,
        ),
        "id" if path.starts_with("/v1/operators/") || path.starts_with("/v1/users/") => {
            (user_id(), ErrorCode::InvalidUserId)
        }
        "user_id" | "operator_id" => (user_id(), ErrorCode::InvalidUserId),
        "id" if path.starts_with("/v1/uploads/") => (
            json!({"type": "string", "pattern": ids::MESSAGE_ID_PATTERN, "minLength": 36, "maxLength": 36}),
            ErrorCode::InvalidId,
        ),
        "id" if path.starts_with("/v1/attachments/") => (
            json!({"type": "string", "pattern": ids::MESSAGE_ID_PATTERN, "minLength": 36, "maxLength": 36}),
            ErrorCode::NotFound,
        ),
        "id" if path.starts_with("/v1/canned/") => (
            json!({"type": "string", "pattern": crate::canned::ID_PATTERN}),
            ErrorCode::BadRequest,
        ),
        "id" if path.starts_with("/v1/push/subscriptions/") => (
            json!({"type": "string", "pattern": "^[0-9a-f]{24}$"}),
            ErrorCode::BadRequest,
        ),
        _ => panic!("path parameter `{name}` of {path} has no schema in openapi::path_parameter"),
    }
}

/// An optional query parameter.
fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

/// An integer query parameter in `min..=max` (answered `invalid_cursor` otherwise).
fn number(name: &str, description: &str, min: u64, max: u64, default: u64) -> Value {
    query(
        name,
        description,
        json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max, "default": default}),
    )
}

/// A `$ref` to `T`'s schema, registering it in the generator.
fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    serde_json::to_value(generator.subschema_for::<T>()).expect("schemas serialise")
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn operations(g: &mut SchemaGenerator) -> Vec<Op> {
    let link_query = vec![
        query("u", "A signed link's user.", user_id()),
        query(
            "r",
            "A signed link's role.",
            json!({"type": "string", "enum": ["client", "operator"]}),
        ),
        query(
            "exp",
            "A signed link's expiry, seconds since the epoch.",
            json!({"type": "integer", "minimum": 0, "maximum": ids::NUMBER_MAX}),
        ),
        query(
            "sig",
            "A signed link's signature (base64url of an HMAC-SHA256).",
            json!({"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"}),
        ),
    ];
    use Auth::*;
    use ErrorCode as E;
    let text = Some(json!({"type": "string"}));
    let events = object(
        json!({"events": {"type": "array", "items": schema::<EventRecord>(g)}}),
        &["events"],
    );
    let webhooks = object(
        json!({"webhooks": {"type": "array", "items": schema::<Webhook>(g)}}),
        &["webhooks"],
    );
    let created_webhook = json!({"allOf": [schema::<Webhook>(g), object(json!({"secret": {"type": "string"}}), &["secret"])]});
    let after = |what: &str| number("after", what, 0, ids::NUMBER_MAX, 0);
    let page_limit = number(
        "limit",
        "At most this many messages.",
        1,
        limits::PAGE_LIMIT_MAX.into(),
        limits::PAGE_LIMIT_DEFAULT.into(),
    );
    let events_limit = number(
        "limit",
        "At most this many events.",
        1,
        crate::operators::EVENTS_LIMIT_MAX,
        crate::operators::EVENTS_LIMIT_DEFAULT,
    );
    let view = query(
        "view",
        "Which conversations: assigned to the caller, unassigned, or all (needs scope `all`).",
        json!({"type": "string", "enum": ["mine", "unassigned", "all"], "default": "mine"}),
    );
    let inbox_status = query(
        "status",
        "Only conversations with this status (default: every status).",
        json!({"type": "string", "enum": ["open", "pending", "resolved"]}),
    );
    let mut assignee_schema = user_id();
    assignee_schema["description"] =
        json!("An operator id, or `none` for unassigned conversations.");
    let inbox_assignee = query(
        "assignee",
        "Only conversations assigned to this operator, or unassigned ones with `none` (default: any).",
        assignee_schema,
    );
    let search_query = vec![
        json!({"name": "q", "in": "query", "required": true, "description": "Words to find, each as the start of a word (case and accents ignored); every word must match.", "schema": {"type": "string", "minLength": 1, "maxLength": crate::search::QUERY_CHARS_MAX, "pattern": "\\S"}}),
        number(
            "limit",
            "At most this many results.",
            1,
            crate::search::LIMIT_MAX,
            crate::search::LIMIT_DEFAULT,
        ),
        query("conversation", "Only this conversation.", conversation_id()),
    ];
    vec![
        Op { method: "get", path: "/healthz", summary: "The process is up.", auth: None, request: Option::None, query: vec![], responses: vec![(200, "ok", text.clone())], errors: &[] },
        Op { method: "get", path: "/readyz", summary: "Storage answers within 1 s (read path and writer); 503 otherwise and while shutting down.", auth: None, request: Option::None, query: vec![], responses: vec![(200, "ready", text.clone())], errors: &[E::Unavailable, E::ShuttingDown] },
        Op { method: "get", path: "/metrics", summary: "Prometheus metrics (text exposition format).", auth: None, request: Option::None, query: vec![], responses: vec![(200, "metrics", text)], errors: &[] },
        Op { method: "get", path: "/v1/openapi.json", summary: "This document.", auth: None, request: Option::None, query: vec![], responses: vec![(200, "the OpenAPI document", Some(json!({"type": "object"})))], errors: &[] },
        Op { method: "post", path: "/v1/tokens", summary: "Mint a user token (JWT, HS256).", auth: Admin, request: Some(schema::<MintToken>(g)), query: vec![], responses: vec![(200, "the token", Some(schema::<TokenResponse>(g)))], errors: &[E::InvalidUserId, E::InvalidTtl, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations", summary: "Create a conversation (repeating it is not an error).", auth: Admin, request: Some(schema::<CreateConversation>(g)), query: vec![], responses: vec![(201, "created", Some(schema::<ConversationView>(g))), (200, "already there (missing participants added)", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidConversationId, E::InvalidUserId, E::TooManyParticipants, E::ParticipantConflict, E::Unavailable] },
        Op { method: "get", path: "/v1/conversations", summary: "The caller's conversations with cursors and unread counts.", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the list", Some(schema::<ConversationList>(g)))], errors: &[E::Unavailable] },
        Op { method: "put", path: "/v1/conversations/{id}", summary: "Create or update a booking's conversation (participants, metadata, closed), idempotently.", auth: Admin, request: Some(schema::<UpsertConversation>(g)), query: vec![], responses: vec![(201, "created", Some(schema::<ConversationView>(g))), (200, "updated", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidUserId, E::ParticipantConflict, E::TooManyParticipants, E::Unavailable] },
        Op { method: "get", path: "/v1/conversations/{id}", summary: "A conversation (admin, or a participant).", auth: AdminOrUser, request: Option::None, query: vec![], responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/participants", summary: "Add a participant.", auth: Admin, request: Some(schema::<ParticipantSpec>(g)), query: vec![], responses: vec![(201, "added", Some(schema::<ConversationView>(g))), (200, "already there", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidUserId, E::NotFound, E::ParticipantConflict, E::TooManyParticipants, E::Unavailable] },
        Op { method: "delete", path: "/v1/conversations/{id}", summary: "Erase a conversation: its messages, participants, events, pending notifications and files. Devices receive `left`.", auth: Admin, request: Option::None, query: vec![], responses: vec![(204, "erased", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "delete", path: "/v1/conversations/{id}/participants/{user_id}", summary: "Remove a participant.", auth: Admin, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/messages", summary: "Send a message; idempotent by its id.", auth: User, request: Some(schema::<SendMessage>(g)), query: vec![], responses: vec![(201, "stored now", Some(schema::<Message>(g))), (200, "stored before under this id", Some(schema::<Message>(g)))], errors: &[E::InvalidId, E::EmptyMessage, E::MessageTooLarge, E::NotFound, E::IdConflict, E::ConversationClosed, E::Forbidden, E::AttachmentPending, E::AttachmentNotFound, E::RateLimited, E::Unavailable] },
        Op { method: "get", path: "/v1/conversations/{id}/messages", summary: "Messages with seq > after, ascending.", auth: User, request: Option::None, query: vec![after("Messages with a seq above this one (at most the conversation's last seq)."), page_limit], responses: vec![(200, "a page", Some(schema::<MessagePage>(g)))], errors: &[E::InvalidCursor, E::CursorOutOfRange, E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/receipts", summary: "Move the caller's delivered/read cursors forward.", auth: User, request: Some(schema::<ReceiptBody>(g)), query: vec![], responses: vec![(200, "the cursors now", Some(schema::<ParticipantState>(g)))], errors: &[E::InvalidCursor, E::CursorOutOfRange, E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/close", summary: "Close to new messages.", auth: Admin, request: Option::None, query: vec![], responses: vec![(200, "closed", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/assign", summary: "Assign, transfer (with a note) or unassign.", auth: AdminOrOperator, request: Some(schema::<AssignBody>(g)), query: vec![], responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidUserId, E::NotFound, E::ParticipantConflict, E::TooManyParticipants, E::UnknownOperator, E::Unavailable] },
        Op { method: "post", path: "/v1/conversations/{id}/status", summary: "Set open, pending or resolved.", auth: AdminOrOperator, request: Some(schema::<StatusBody>(g)), query: vec![], responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/inbox", summary: "The operator inbox.", auth: User, request: Option::None, query: vec![view, inbox_status, inbox_assignee], responses: vec![(200, "the inbox", Some(schema::<Inbox>(g)))], errors: &[E::InvalidUserId, E::Unavailable] },
        Op { method: "get", path: "/v1/search", summary: "Search messages and private notes of the conversations the caller may read (operators), newest first.", auth: User, request: Option::None, query: search_query, responses: vec![(200, "the results", Some(schema::<crate::search::SearchResults>(g)))], errors: &[E::InvalidCursor, E::InvalidConversationId, E::Unavailable] },
        Op { method: "get", path: "/v1/canned", summary: "Saved replies every operator shares, by shortcut (operators).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the replies", Some(schema::<crate::canned::CannedList>(g)))], errors: &[E::Unavailable] },
        Op { method: "post", path: "/v1/canned", summary: "Save a reply (operators).", auth: User, request: Some(schema::<crate::canned::CannedBody>(g)), query: vec![], responses: vec![(201, "saved", Some(schema::<crate::store::canned::CannedReply>(g)))], errors: &[E::ShortcutTaken, E::Unavailable] },
        Op { method: "put", path: "/v1/canned/{id}", summary: "Change a saved reply's shortcut, title and body (operators).", auth: User, request: Some(schema::<crate::canned::CannedBody>(g)), query: vec![], responses: vec![(200, "changed", Some(schema::<crate::store::canned::CannedReply>(g)))], errors: &[E::NotFound, E::ShortcutTaken, E::Unavailable] },
        Op { method: "delete", path: "/v1/canned/{id}", summary: "Remove a saved reply (operators).", auth: User, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/widget", summary: "What the chat widget shows guests (welcome, business hours and time zone, usual reply time) and the message limits (any user).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the settings", Some(schema::<crate::widget::WidgetSettings>(g)))], errors: &[] },
        Op { method: "put", path: "/v1/uploads/{id}", summary: "Create an upload under the device's id, or answer the same one again (protocol §14).", auth: User, request: Some(schema::<protocol::api::CreateUpload>(g)), query: vec![], responses: vec![(201, "created", Some(schema::<protocol::api::UploadView>(g))), (200, "the same upload, as it is now", Some(schema::<protocol::api::UploadView>(g)))], errors: &[E::InvalidConversationId, E::NotFound, E::IdConflict, E::AttachmentTooLarge, E::RateLimited, E::UploadQuota, E::Unavailable] },
        Op { method: "head", path: "/v1/uploads/{id}", summary: "The offset to resume from (`Upload-Offset`, `Upload-Length` headers).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the upload's offset and length, in headers", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/uploads/{id}", summary: "One of the caller's uploads.", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the upload", Some(schema::<protocol::api::UploadView>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "patch", path: "/v1/uploads/{id}", summary: "Append bytes at `Upload-Offset` (body `application/offset+octet-stream`, at most 8 MiB).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the upload after the chunk", Some(schema::<protocol::api::UploadView>(g)))], errors: &[E::NotFound, E::OffsetMismatch, E::UnsupportedType, E::FrameTooLarge, E::Unavailable] },
        Op { method: "delete", path: "/v1/uploads/{id}", summary: "Remove an upload no message names.", auth: User, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::IdConflict, E::Unavailable] },
        Op { method: "get", path: "/v1/attachments/{id}", summary: "A file a message carries (token, or a signed link's `u`, `r`, `exp`, `sig`); one byte `Range` answers 206.", auth: User, request: Option::None, query: link_query.clone(), responses: vec![(200, "the file", Some(json!({"type": "string", "format": "binary"}))), (206, "the range asked for", Some(json!({"type": "string", "format": "binary"}))), (304, "not modified (If-None-Match)", Option::None)], errors: &[E::NotFound, E::RangeNotSatisfiable, E::Unavailable] },
        Op { method: "get", path: "/v1/attachments/{id}/thumb", summary: "A JPEG thumbnail of an image attachment (token, or a signed link).", auth: User, request: Option::None, query: link_query, responses: vec![(200, "the thumbnail", Some(json!({"type": "string", "format": "binary"})))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/attachments/{id}/link", summary: "Signed links to a file and its thumbnail, for clients that cannot send headers (an img src).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the links", Some(schema::<protocol::api::AttachmentLink>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/events", summary: "Business events with id > after, in order.", auth: Admin, request: Option::None, query: vec![after("Events with an id above this one."), events_limit], responses: vec![(200, "events", Some(events))], errors: &[E::InvalidCursor, E::Unavailable] },
        Op { method: "get", path: "/v1/operators", summary: "The operator directory (admin, or an operator: the console's transfer picker).", auth: AdminOrOperator, request: Option::None, query: vec![], responses: vec![(200, "the directory, by id", Some(schema::<OperatorList>(g)))], errors: &[E::UnknownOperator, E::Unavailable] },
        Op { method: "get", path: "/v1/operators/{id}", summary: "One operator of the directory.", auth: Admin, request: Option::None, query: vec![], responses: vec![(200, "the operator", Some(schema::<Operator>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "put", path: "/v1/operators/{id}", summary: "Create or replace an operator of the directory (`active: false` disables).", auth: Admin, request: Some(schema::<PutOperator>(g)), query: vec![], responses: vec![(201, "created", Some(schema::<Operator>(g))), (200, "replaced", Some(schema::<Operator>(g)))], errors: &[E::Unavailable] },
        Op { method: "delete", path: "/v1/operators/{id}", summary: "Remove an operator from the directory.", auth: Admin, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "get", path: "/v1/conversations/{id}/operators", summary: "The conversation's operators as the directory names them (a participant).", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the operators", Some(schema::<OperatorList>(g)))], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/users/{id}/revoke", summary: "Revoke every token of a user issued until now, and close the user's connections.", auth: Admin, request: Option::None, query: vec![], responses: vec![(200, "revoked", Some(json!({"type": "object", "required": ["user_id", "revoked_at"], "properties": {"user_id": {"type": "string"}, "revoked_at": {"type": "integer", "minimum": 0}}})))], errors: &[E::Unavailable] },
        Op { method: "get", path: "/v1/push/key", summary: "The server's VAPID public key (the applicationServerKey to subscribe with).", auth: None, request: Option::None, query: vec![], responses: vec![(200, "the key", Some(schema::<PushKey>(g)))], errors: &[] },
        Op { method: "post", path: "/v1/push/subscriptions", summary: "Register the caller's browser push subscription (PushSubscription.toJSON()); the same endpoint again renews it.", auth: User, request: Some(schema::<PushSubscriptionBody>(g)), query: vec![], responses: vec![(201, "registered", Some(schema::<PushSubscriptionView>(g))), (200, "renewed", Some(schema::<PushSubscriptionView>(g)))], errors: &[E::InvalidSubscription, E::Unavailable] },
        Op { method: "get", path: "/v1/push/subscriptions", summary: "The caller's push subscriptions.", auth: User, request: Option::None, query: vec![], responses: vec![(200, "the subscriptions", Some(schema::<PushSubscriptionList>(g)))], errors: &[E::Unavailable] },
        Op { method: "delete", path: "/v1/push/subscriptions/{id}", summary: "Remove one of the caller's push subscriptions.", auth: User, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/links/redeem", summary: "Use a link from an email or a push once: a fresh client token for its conversation.", auth: None, request: Some(schema::<RedeemLink>(g)), query: vec![], responses: vec![(200, "a client session", Some(schema::<LinkSession>(g)))], errors: &[E::TokenInvalid, E::LinkUsed, E::LinkExpired, E::Unavailable] },
        Op { method: "post", path: "/v1/webhooks", summary: "Add a webhook endpoint (the secret is returned once).", auth: Admin, request: Some(schema::<CreateWebhook>(g)), query: vec![], responses: vec![(201, "created", Some(created_webhook))], errors: &[E::Unavailable] },
        Op { method: "get", path: "/v1/webhooks", summary: "Webhook endpoints and their delivery state.", auth: Admin, request: Option::None, query: vec![], responses: vec![(200, "endpoints", Some(webhooks))], errors: &[E::Unavailable] },
        Op { method: "delete", path: "/v1/webhooks/{id}", summary: "Remove an endpoint.", auth: Admin, request: Option::None, query: vec![], responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound, E::Unavailable] },
        Op { method: "post", path: "/v1/webhooks/{id}/enable", summary: "Re-enable a disabled endpoint; delivery resumes where it stopped.", auth: Admin, request: Option::None, query: vec![], responses: vec![(200, "the endpoint", Some(schema::<Webhook>(g)))], errors: &[E::NotFound, E::Unavailable] },
    ]
}

/// The document for a server with `config`: the generated part is built once; the limits a
/// server may configure (`message_chars_max`) are filled in from `config`.
pub fn document(config: &Config) -> Value {
    static BASE: OnceLock<Value> = OnceLock::new();
    let mut document = BASE.get_or_init(build).clone();
    let body = &mut document["components"]["schemas"]["SendMessage"]["properties"]["body"];
    assert!(body.is_object(), "SendMessage has a body");
    // Characters, as a JSON Schema counts them (the server also refuses more than
    // `message_bytes_max` bytes: 413 `message_too_large`).
    body["maxLength"] = json!(config.message_chars_max());
    document
}

fn build() -> Value {
    let mut settings = schemars::generate::SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    let mut generator = SchemaGenerator::new(settings);
    let problem = schema::<Problem>(&mut generator);
    let mut paths = Map::new();
    for op in operations(&mut generator) {
        let mut responses = Map::new();
        for (status, description, body) in &op.responses {
            let mut response = json!({"description": description});
            if let Some(body) = body {
                let media = if op.path == "/metrics" || op.path.ends_with("z") {
                    "text/plain"
                } else if op.path.ends_with("/thumb") {
                    "image/jpeg"
                } else if op.path == "/v1/attachments/{id}" {
                    // The type found in the file's content (`attachment_types`).
                    "*/*"
                } else {
                    "application/json"
                };
                response["content"] = json!({media: {"schema": body}});
            }
            responses.insert(status.to_string(), response);
        }
        let mut parameters = Vec::new();
        let mut errors: Vec<ErrorCode> = op.errors.to_vec();
        for name in op
            .path
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
        {
            let (schema, code) = path_parameter(op.path, name);
            parameters
                .push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
            errors.extend([ErrorCode::BadRequest, code]);
        }
        if !op.query.is_empty() {
            parameters.extend(op.query.iter().cloned());
            errors.push(ErrorCode::BadRequest);
        }
        if op.method == "patch" && op.path == "/v1/uploads/{id}" {
            parameters.push(json!({"name": "Upload-Offset", "in": "header", "required": true, "description": "The byte offset this chunk starts at: the upload's stored offset.", "schema": {"type": "integer", "minimum": 0, "maximum": ids::NUMBER_MAX}}));
            errors.push(ErrorCode::BadRequest);
        }
        if op.request.is_some() {
            errors.extend([ErrorCode::BadRequest, ErrorCode::FrameTooLarge]);
        }
        if !matches!(op.auth, Auth::None) {
            errors.extend([
                ErrorCode::Unauthorized,
                ErrorCode::TokenInvalid,
                ErrorCode::TokenExpired,
                ErrorCode::Forbidden,
            ]);
        }
        let mut seen = std::collections::HashSet::new();
        errors.retain(|code| seen.insert(*code));
        let mut statuses: Vec<u16> = errors.iter().map(|e| e.http_status()).collect();
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            let codes: Vec<String> = errors
                .iter()
                .filter(|e| e.http_status() == status)
                .map(|e| format!("`{}`", e.as_str()))
                .collect();
            let description = format!("a problem document; code {}", codes.join(", "));
            responses.insert(status.to_string(), json!({"description": description, "content": {"application/problem+json": {"schema": problem}}}));
        }
        let security = match op.auth {
            Auth::None => json!([]),
            Auth::Admin => json!([{"admin": []}]),
            Auth::User => json!([{"user": []}]),
            Auth::AdminOrOperator | Auth::AdminOrUser => json!([{"admin": []}, {"user": []}]),
        };
        let mut operation =
            json!({"summary": op.summary, "security": security, "responses": responses});
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(request) = op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": request}}});
        } else if op.method == "patch" && op.path == "/v1/uploads/{id}" {
            operation["requestBody"] = json!({"required": true, "content": {"application/offset+octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        }
        let entry = paths.entry(op.path.to_owned()).or_insert_with(|| json!({}));
        entry[op.method] = operation;
    }
    let schemas =
        serde_json::to_value(generator.take_definitions(true)).expect("schemas serialise");
    json!({
        "openapi": "3.1.0",
        "info": {"title": "surechat", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Real-time chat where no message is lost, duplicated or reordered. The WebSocket protocol at /v1/ws is described in docs/protocol.md."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "The admin key."},
                "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "A user token (HS256; claims sub, role, exp)."}
            }
        }
    })
}

/// `GET /v1/openapi.json`.
pub async fn serve(State(app): State<Arc<AppState>>) -> axum::Json<Value> {
    axum::Json(document(&app.config))
}
