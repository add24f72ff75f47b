//! `GET /v1/openapi.json`: the HTTP API described as OpenAPI 3.1, built from the code — the
//! operation table below and the JSON Schemas derived from the request and response types
//! themselves (`schemars`), so a changed type changes the document. `tests/openapi.rs` calls
//! every operation and checks each answer against the schema documented for its status.

use std::sync::OnceLock;

use protocol::api::{
    AssignBody, ConversationList, ConversationView, CreateConversation, CreateWebhook, Inbox,
    MessagePage, MintToken, Operator, OperatorList, ParticipantSpec, Problem, PutOperator,
    ReceiptBody, SendMessage, StatusBody, TokenResponse, UpsertConversation,
};
use protocol::frames::{Message, ParticipantState};
use protocol::ErrorCode;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::store::{EventRecord, Webhook};

/// Who may call an operation.
#[derive(Clone, Copy)]
enum Auth {
    None,
    Admin,
    User,
    AdminOrOperator,
    AdminOrUser,
}

/// One operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: Auth,
    request: Option<Value>,
    /// (status, description, body schema).
    responses: Vec<(u16, &'static str, Option<Value>)>,
    errors: &'static [ErrorCode],
}

/// A `$ref` to `T`'s schema, registering it in the generator.
fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    serde_json::to_value(generator.subschema_for::<T>()).expect("schemas serialise")
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required})
}

fn operations(g: &mut SchemaGenerator) -> Vec<Op> {
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
    vec![
        Op { method: "get", path: "/healthz", summary: "The process is up.", auth: None, request: Option::None, responses: vec![(200, "ok", text.clone())], errors: &[] },
        Op { method: "get", path: "/readyz", summary: "Storage answers (read path and writer); 503 while shutting down.", auth: None, request: Option::None, responses: vec![(200, "ready", text.clone())], errors: &[E::Unavailable, E::ShuttingDown] },
        Op { method: "get", path: "/metrics", summary: "Prometheus metrics (text exposition format).", auth: None, request: Option::None, responses: vec![(200, "metrics", text)], errors: &[] },
        Op { method: "get", path: "/v1/openapi.json", summary: "This document.", auth: None, request: Option::None, responses: vec![(200, "the OpenAPI document", Some(json!({"type": "object"})))], errors: &[] },
        Op { method: "post", path: "/v1/tokens", summary: "Mint a user token (JWT, HS256).", auth: Admin, request: Some(schema::<MintToken>(g)), responses: vec![(200, "the token", Some(schema::<TokenResponse>(g)))], errors: &[E::InvalidUserId, E::InvalidTtl, E::BadRequest] },
        Op { method: "post", path: "/v1/conversations", summary: "Create a conversation (repeating it is not an error).", auth: Admin, request: Some(schema::<CreateConversation>(g)), responses: vec![(201, "created", Some(schema::<ConversationView>(g))), (200, "already there (missing participants added)", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidConversationId, E::InvalidUserId, E::TooManyParticipants, E::ParticipantConflict] },
        Op { method: "get", path: "/v1/conversations", summary: "The caller's conversations with cursors and unread counts.", auth: User, request: Option::None, responses: vec![(200, "the list", Some(schema::<ConversationList>(g)))], errors: &[] },
        Op { method: "put", path: "/v1/conversations/{id}", summary: "Create or update a booking's conversation (participants, metadata, closed), idempotently.", auth: Admin, request: Some(schema::<UpsertConversation>(g)), responses: vec![(201, "created", Some(schema::<ConversationView>(g))), (200, "updated", Some(schema::<ConversationView>(g)))], errors: &[E::InvalidConversationId, E::ParticipantConflict, E::TooManyParticipants] },
        Op { method: "get", path: "/v1/conversations/{id}", summary: "A conversation (admin, or a participant).", auth: AdminOrUser, request: Option::None, responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound] },
        Op { method: "post", path: "/v1/conversations/{id}/participants", summary: "Add a participant.", auth: Admin, request: Some(schema::<ParticipantSpec>(g)), responses: vec![(201, "added", Some(schema::<ConversationView>(g))), (200, "already there", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::ParticipantConflict, E::TooManyParticipants] },
        Op { method: "delete", path: "/v1/conversations/{id}/participants/{user_id}", summary: "Remove a participant.", auth: Admin, request: Option::None, responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound] },
        Op { method: "post", path: "/v1/conversations/{id}/messages", summary: "Send a message; idempotent by its id.", auth: User, request: Some(schema::<SendMessage>(g)), responses: vec![(201, "stored now", Some(schema::<Message>(g))), (200, "stored before under this id", Some(schema::<Message>(g)))], errors: &[E::InvalidId, E::EmptyMessage, E::MessageTooLarge, E::NotFound, E::IdConflict, E::ConversationClosed, E::Forbidden] },
        Op { method: "get", path: "/v1/conversations/{id}/messages", summary: "Messages with seq > after, ascending (query: after, limit ≤ 1000).", auth: User, request: Option::None, responses: vec![(200, "a page", Some(schema::<MessagePage>(g)))], errors: &[E::InvalidCursor, E::CursorOutOfRange, E::NotFound] },
        Op { method: "post", path: "/v1/conversations/{id}/receipts", summary: "Move the caller's delivered/read cursors forward.", auth: User, request: Some(schema::<ReceiptBody>(g)), responses: vec![(200, "the cursors now", Some(schema::<ParticipantState>(g)))], errors: &[E::CursorOutOfRange, E::NotFound] },
        Op { method: "post", path: "/v1/conversations/{id}/close", summary: "Close to new messages.", auth: Admin, request: Option::None, responses: vec![(200, "closed", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound] },
        Op { method: "post", path: "/v1/conversations/{id}/assign", summary: "Assign, transfer (with a note) or unassign.", auth: AdminOrOperator, request: Some(schema::<AssignBody>(g)), responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::Forbidden, E::ParticipantConflict, E::UnknownOperator] },
        Op { method: "post", path: "/v1/conversations/{id}/status", summary: "Set open, pending or resolved.", auth: AdminOrOperator, request: Some(schema::<StatusBody>(g)), responses: vec![(200, "the conversation", Some(schema::<ConversationView>(g)))], errors: &[E::NotFound, E::Forbidden] },
        Op { method: "get", path: "/v1/inbox", summary: "The operator inbox (query: view = mine | unassigned | all).", auth: User, request: Option::None, responses: vec![(200, "the inbox", Some(schema::<Inbox>(g)))], errors: &[E::Forbidden, E::BadRequest] },
        Op { method: "get", path: "/v1/events", summary: "Business events with id > after, in order (query: after, limit ≤ 1000).", auth: Admin, request: Option::None, responses: vec![(200, "events", Some(events))], errors: &[E::InvalidCursor] },
        Op { method: "get", path: "/v1/operators", summary: "The operator directory (admin, or an operator: the console's transfer picker).", auth: AdminOrOperator, request: Option::None, responses: vec![(200, "the directory, by id", Some(schema::<OperatorList>(g)))], errors: &[E::UnknownOperator] },
        Op { method: "get", path: "/v1/operators/{id}", summary: "One operator of the directory.", auth: Admin, request: Option::None, responses: vec![(200, "the operator", Some(schema::<Operator>(g)))], errors: &[E::InvalidUserId, E::NotFound] },
        Op { method: "put", path: "/v1/operators/{id}", summary: "Create or replace an operator of the directory (`active: false` disables).", auth: Admin, request: Some(schema::<PutOperator>(g)), responses: vec![(201, "created", Some(schema::<Operator>(g))), (200, "replaced", Some(schema::<Operator>(g)))], errors: &[E::InvalidUserId, E::BadRequest] },
        Op { method: "delete", path: "/v1/operators/{id}", summary: "Remove an operator from the directory.", auth: Admin, request: Option::None, responses: vec![(204, "removed", Option::None)], errors: &[E::InvalidUserId, E::NotFound] },
        Op { method: "get", path: "/v1/conversations/{id}/operators", summary: "The conversation's operators as the directory names them (a participant).", auth: User, request: Option::None, responses: vec![(200, "the operators", Some(schema::<OperatorList>(g)))], errors: &[E::NotFound] },
        Op { method: "post", path: "/v1/webhooks", summary: "Add a webhook endpoint (the secret is returned once).", auth: Admin, request: Some(schema::<CreateWebhook>(g)), responses: vec![(201, "created", Some(created_webhook))], errors: &[E::BadRequest] },
        Op { method: "get", path: "/v1/webhooks", summary: "Webhook endpoints and their delivery state.", auth: Admin, request: Option::None, responses: vec![(200, "endpoints", Some(webhooks))], errors: &[] },
        Op { method: "delete", path: "/v1/webhooks/{id}", summary: "Remove an endpoint.", auth: Admin, request: Option::None, responses: vec![(204, "removed", Option::None)], errors: &[E::NotFound] },
        Op { method: "post", path: "/v1/webhooks/{id}/enable", summary: "Re-enable a disabled endpoint; delivery resumes where it stopped.", auth: Admin, request: Option::None, responses: vec![(200, "the endpoint", Some(schema::<Webhook>(g)))], errors: &[E::NotFound] },
    ]
}

/// The document (built once).
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
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
                } else {
                    "application/json"
                };
                response["content"] = json!({media: {"schema": body}});
            }
            responses.insert(status.to_string(), response);
        }
        let mut statuses: Vec<u16> = op.errors.iter().map(|e| e.http_status()).collect();
        if !matches!(op.auth, Auth::None) {
            statuses.extend([401, 403]);
        }
        statuses.sort_unstable();
        statuses.dedup();
        for status in statuses {
            let codes: Vec<&str> = op
                .errors
                .iter()
                .filter(|e| e.http_status() == status)
                .map(|e| e.as_str())
                .collect();
            let description = if codes.is_empty() {
                "rejected (see `code`)".to_owned()
            } else {
                format!("codes: {}", codes.join(", "))
            };
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
        let parameters: Vec<Value> = op
            .path
            .split('/')
            .filter_map(|part| part.strip_prefix('{').and_then(|p| p.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(request) = op.request {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": request}}});
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
pub async fn serve() -> axum::Json<Value> {
    axum::Json(document().clone())
}
