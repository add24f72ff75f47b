//! The operators' workflow over HTTP: booking-keyed upserts, closing, assignment and transfer,
//! status, the inbox; and the business backend's events API and webhook endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use protocol::api::{
    AssignBody, ConversationView, CreateWebhook, Inbox, InboxRow, StatusBody, UpsertConversation,
};
use protocol::frames::{ConversationStatus, MessageKind};
use protocol::ids::NUMBER_MAX;
use protocol::{ErrorCode, Role};
use serde_json::json;

use crate::error::ApiError;
use crate::http::{conversation_id, number_param, Admin, Body, Path, Query, User};
use crate::store::{ConversationChange, Webhook};
use crate::{now_ms, AppState};

/// Most rows of an inbox view.
const INBOX_ROWS_MAX: u32 = 1000;
/// Events of one `GET /v1/events` page, by default and at most.
pub(crate) const EVENTS_LIMIT_DEFAULT: u64 = 100;
pub(crate) const EVENTS_LIMIT_MAX: u64 = 1000;
/// Messages read back to find how long a client has been waiting.
const WAITING_WINDOW: u64 = 200;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/conversations/{id}/close", post(close))
        .route("/v1/conversations/{id}/assign", post(assign))
        .route("/v1/conversations/{id}/status", post(status))
        .route("/v1/inbox", get(inbox))
        .route("/v1/events", get(events))
        .route("/v1/webhooks", post(create_webhook).get(list_webhooks))
        .route("/v1/webhooks/{id}", axum::routing::delete(delete_webhook))
        .route("/v1/webhooks/{id}/enable", post(enable_webhook))
}

/// Who changes a conversation: the admin key, or an operator taking part in it (or with scope
/// `all`). Clients may not.
pub enum Actor {
    /// The integrator's backend.
    Admin,
    /// An operator.
    Operator(crate::auth::Claims),
}

impl FromRequestParts<Arc<AppState>> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        if Admin::from_request_parts(parts, app).await.is_ok() {
            return Ok(Actor::Admin);
        }
        let User(claims) = User::from_request_parts(parts, app).await?;
        if claims.role != Role::Operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "only operators and the admin key may do this",
            ));
        }
        Ok(Actor::Operator(claims))
    }
}

impl Actor {
    fn name(&self) -> String {
        match self {
            Actor::Admin => "admin".into(),
            Actor::Operator(claims) => claims.sub.clone(),
        }
    }

    /// Fails with 404 unless the actor may see the conversation.
    async fn check(&self, app: &AppState, conversation: &str) -> Result<(), ApiError> {
        conversation_id(conversation)?;
        let Actor::Operator(claims) = self else {
            return Ok(());
        };
        if claims.scope.as_deref() == Some("all") {
            return Ok(());
        }
        match app
            .store
            .participant(conversation.to_owned(), claims.sub.clone())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(ApiError::not_found()),
        }
    }
}

async fn change(
    app: &AppState,
    id: String,
    mut change: ConversationChange,
) -> Result<Json<ConversationView>, ApiError> {
    // An assignee joins as a participant: the limit holds on this path as on every other.
    change.participants_max = Some(app.config.participants_max);
    Ok(Json(
        app.store.change_conversation(id, change, now_ms()).await?,
    ))
}

/// `PUT /v1/conversations/{id}`: create or update, idempotently.
pub async fn upsert(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    Body(body): Body<UpsertConversation>,
) -> Result<Response, ApiError> {
    conversation_id(&id)?;
    crate::http::check_participants(&body.participants)?;
    let (_, created) = app
        .store
        .create_conversation(
            id.clone(),
            body.participants.clone(),
            app.config.participants_max,
            now_ms(),
        )
        .await?;
    crate::http::keep_contacts(&app, &body.participants).await?;
    let mut update = ConversationChange {
        metadata: body.metadata,
        closed: body.closed,
        by: "admin".into(),
        ..Default::default()
    };
    if created && app.config.round_robin {
        // Only active operators of the directory: one disabled while connected is passed over.
        let active: Vec<String> = app
            .store
            .operators()
            .await?
            .into_iter()
            .filter(|o| o.active)
            .map(|o| o.id)
            .collect();
        update.assignee = app
            .presence
            .next_available(|user| active.iter().any(|id| id == user))
            .await
            .map(Some);
        update.by = "round-robin".into();
    }
    let Json(view) = change(&app, id, update).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// `POST /v1/conversations/{id}/close`: no new messages (`conversation_closed`).
async fn close(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    conversation_id(&id)?;
    change(
        &app,
        id,
        ConversationChange {
            closed: Some(true),
            by: "admin".into(),
            ..Default::default()
        },
    )
    .await
}

/// `POST /v1/conversations/{id}/assign`: assign, transfer (with a note) or unassign.
async fn assign(
    State(app): State<Arc<AppState>>,
    actor: Actor,
    Path(id): Path<String>,
    Body(body): Body<AssignBody>,
) -> Result<Json<ConversationView>, ApiError> {
    actor.check(&app, &id).await?;
    // The store checks, in the change's transaction, that the assignee is an active operator
    // of the directory (`unknown_operator`) and not a client participant here.
    if let Some(operator) = &body.operator_id {
        protocol::ids::check_user_id(operator)
            .map_err(|code| ApiError::new(code, "invalid operator id"))?;
    }
    let update = ConversationChange {
        assignee: Some(body.operator_id),
        note: body.note,
        by: actor.name(),
        ..Default::default()
    };
    change(&app, id, update).await
}

/// `POST /v1/conversations/{id}/status`: `open`, `pending` or `resolved`.
async fn status(
    State(app): State<Arc<AppState>>,
    actor: Actor,
    Path(id): Path<String>,
    Body(body): Body<StatusBody>,
) -> Result<Json<ConversationView>, ApiError> {
    actor.check(&app, &id).await?;
    change(
        &app,
        id,
        ConversationChange {
            status: Some(body.status),
            by: actor.name(),
            ..Default::default()
        },
    )
    .await
}

/// `GET /v1/inbox?view=mine|unassigned|all&status=…&assignee=…` (operators).
async fn inbox(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Query(query): Query,
) -> Result<Json<Inbox>, ApiError> {
    if claims.role != Role::Operator {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the inbox is for operators",
        ));
    }
    let view = query.get("view").map_or("mine", String::as_str).to_owned();
    let sees_all = claims.scope.as_deref() == Some("all");
    if !matches!(view.as_str(), "mine" | "unassigned" | "all") {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "view must be mine, unassigned or all",
        ));
    }
    if view == "all" && !sees_all {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "view=all needs a token with scope `all`",
        ));
    }
    let status = match query.get("status").map(String::as_str) {
        None => None,
        Some("open") => Some(ConversationStatus::Open),
        Some("pending") => Some(ConversationStatus::Pending),
        Some("resolved") => Some(ConversationStatus::Resolved),
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "status must be open, pending or resolved",
            ))
        }
    };
    // `none`: unassigned; otherwise an operator id.
    let assignee = match query.get("assignee") {
        None => None,
        Some(none) if none == "none" => Some(None),
        Some(id) => {
            protocol::ids::check_user_id(id)
                .map_err(|code| ApiError::new(code, "assignee must be an operator id or `none`"))?;
            Some(Some(id.clone()))
        }
    };
    let mine = app.store.conversations_of(claims.sub.clone()).await?;
    let ids: Vec<String> = if sees_all {
        app.store.conversation_ids(INBOX_ROWS_MAX).await?
    } else {
        mine.iter().map(|c| c.id.clone()).collect()
    };
    let summaries: HashMap<&str, &protocol::api::ConversationSummary> =
        mine.iter().map(|s| (s.id.as_str(), s)).collect();
    let mut rows = Vec::new();
    for state in app.store.states(ids).await? {
        let keep = match view.as_str() {
            "mine" => state.assignee.as_deref() == Some(claims.sub.as_str()),
            "unassigned" => state.assignee.is_none(),
            _ => true,
        } && status.is_none_or(|s| s == state.status)
            && assignee.as_ref().is_none_or(|a| *a == state.assignee);
        if !keep {
            continue;
        }
        let after = state.last_seq.saturating_sub(WAITING_WINDOW);
        let tail = app
            .store
            .messages_since(state.id.clone(), after, WAITING_WINDOW as u32)
            .await?;
        let visible = |m: &&protocol::frames::Message| {
            matches!(m.kind, MessageKind::Text | MessageKind::Note)
        };
        let waiting_since = waiting_since(state.status, &tail);
        let (unread, last_message) = match summaries.get(state.id.as_str()) {
            Some(summary) => (summary.unread, summary.last_message.clone()),
            // Not a participant (scope `all`): nothing read yet.
            None => {
                let unread = tail
                    .iter()
                    .filter(|m| m.kind == MessageKind::Text && m.sender != claims.sub)
                    .count() as u64;
                (unread, tail.iter().rev().find(visible).cloned())
            }
        };
        rows.push(InboxRow {
            id: state.id,
            status: state.status,
            assignee: state.assignee,
            metadata: state.metadata,
            closed: state.closed,
            last_message,
            unread,
            waiting_since,
            last_seq: state.last_seq,
        });
    }
    // Longest waiting first; then the most recently active.
    rows.sort_by(|a, b| match (a.waiting_since, b.waiting_since) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => {
            let at = |r: &InboxRow| r.last_message.as_ref().map_or(0, |m| m.ts);
            at(b).cmp(&at(a)).then_with(|| a.id.cmp(&b.id))
        }
    });
    Ok(Json(Inbox {
        view,
        conversations: rows,
    }))
}

/// When the client started waiting for an answer: the time of the first client message after
/// the last operator message (text messages only: a private note or a status change answers
/// nobody). `None` when nobody waits: the conversation is resolved, its last text message is an
/// operator's, or it has none. `tail` holds the newest messages, ascending.
fn waiting_since(status: ConversationStatus, tail: &[protocol::frames::Message]) -> Option<u64> {
    if status == ConversationStatus::Resolved {
        return None;
    }
    tail.iter()
        .rev()
        .filter(|m| m.kind == MessageKind::Text)
        .take_while(|m| m.role == Role::Client)
        .last()
        .map(|m| m.ts)
}

/// `GET /v1/events?after=ID&limit=N` (admin): events a backend missed, in order.
async fn events(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Query(query): Query,
) -> Result<Response, ApiError> {
    let after = number_param(&query, "after", 0, 0, NUMBER_MAX)?;
    let limit = number_param(&query, "limit", EVENTS_LIMIT_DEFAULT, 1, EVENTS_LIMIT_MAX)?;
    let events = app.store.events_since(after, limit as u32).await?;
    Ok(Json(json!({ "events": events })).into_response())
}

/// Webhook ids are at most [`NUMBER_MAX`], like every number storage holds.
fn webhook_id(id: u64) -> Result<(), ApiError> {
    if id > NUMBER_MAX {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!("webhook ids are at most {NUMBER_MAX}"),
        ));
    }
    Ok(())
}

fn webhook_json(webhook: &Webhook, secret: bool) -> serde_json::Value {
    let mut value = serde_json::to_value(webhook).expect("webhooks serialise");
    if secret {
        value["secret"] = json!(webhook.secret);
    }
    value
}

/// `POST /v1/webhooks` (admin): the endpoint gets every event from now on; the secret is shown
/// once.
async fn create_webhook(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Body(body): Body<CreateWebhook>,
) -> Result<Response, ApiError> {
    crate::webhooks::destination::parse_url(&body.url)
        .map_err(|why| ApiError::new(ErrorCode::BadRequest, why))?;
    let secret = body.secret.unwrap_or_else(|| crate::auth::random_hex(32));
    // Characters, as the schema's `minLength` counts them (16 characters are at least 16 bytes).
    if secret.chars().count() < 16 {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a webhook secret must be at least 16 characters",
        ));
    }
    let webhook = app.store.create_webhook(body.url, secret, now_ms()).await?;
    crate::signin::audit(
        &app,
        &actor,
        "webhook_created",
        Some(&webhook.id.to_string()),
        json!({"url": webhook.url}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(webhook_json(&webhook, true))).into_response())
}

/// `GET /v1/webhooks` (admin): endpoints with their delivery state.
async fn list_webhooks(State(app): State<Arc<AppState>>, _: Admin) -> Result<Response, ApiError> {
    let webhooks: Vec<_> = app
        .store
        .webhooks()
        .await?
        .iter()
        .map(|w| webhook_json(w, false))
        .collect();
    Ok(Json(json!({ "webhooks": webhooks })).into_response())
}

async fn delete_webhook(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<u64>,
) -> Result<StatusCode, ApiError> {
    webhook_id(id)?;
    if app.store.delete_webhook(id).await? {
        crate::signin::audit(
            &app,
            &actor,
            "webhook_deleted",
            Some(&id.to_string()),
            json!({}),
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such webhook"))
    }
}

/// `POST /v1/webhooks/{id}/enable` (admin): deliveries resume where they stopped.
async fn enable_webhook(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    webhook_id(id)?;
    let Some(mut webhook) = app.store.webhooks().await?.into_iter().find(|w| w.id == id) else {
        return Err(ApiError::new(ErrorCode::NotFound, "no such webhook"));
    };
    webhook.state = "active".into();
    webhook.failures = 0;
    webhook.failing_since = 0;
    app.store.update_webhook(webhook.clone()).await?;
    crate::signin::audit(
        &app,
        &actor,
        "webhook_enabled",
        Some(&id.to_string()),
        json!({}),
    )
    .await;
    Ok(Json(webhook_json(&webhook, false)).into_response())
}
