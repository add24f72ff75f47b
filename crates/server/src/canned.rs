//! Saved replies over HTTP (`/v1/canned`): any operator lists, adds, changes and removes the
//! replies every operator shares. Changes are written to the audit log.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use protocol::{ErrorCode, Role};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::http::{Body, Path, User};
use crate::store::canned::{CannedReply, Saved};
use crate::{now_ms, AppState};

/// The JSON Schema `pattern` of a shortcut.
pub const SHORTCUT_PATTERN: &str = "^[a-z0-9_-]{1,32}$";
/// The JSON Schema `pattern` of a reply's id.
pub const ID_PATTERN: &str = "^[0-9a-f]{24}$";
/// Longest title and body, in characters.
pub const TITLE_CHARS_MAX: usize = 100;
pub const BODY_CHARS_MAX: usize = 4096;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/canned", get(list).post(create))
        .route("/v1/canned/{id}", put(update).delete(remove))
}

/// `POST /v1/canned` and `PUT /v1/canned/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CannedBody {
    /// 1 … 32 of `a-z`, `0-9`, `-` and `_`; unique among saved replies.
    #[schemars(regex(pattern = SHORTCUT_PATTERN))]
    pub shortcut: String,
    /// 1 … 100 characters, not only spaces.
    #[schemars(length(min = 1, max = 100), regex(pattern = r"\S"))]
    pub title: String,
    /// 1 … 4096 characters, not only spaces.
    #[schemars(length(min = 1, max = 4096), regex(pattern = r"\S"))]
    pub body: String,
}

/// `GET /v1/canned`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct CannedList {
    /// By shortcut.
    pub replies: Vec<CannedReply>,
}

fn operator(claims: &crate::auth::Claims) -> Result<(), ApiError> {
    if claims.role != Role::Operator {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "saved replies are for operators",
        ));
    }
    Ok(())
}

fn check(body: &CannedBody) -> Result<(), ApiError> {
    let bad = |why: &str| Err(ApiError::new(ErrorCode::BadRequest, why.to_owned()));
    let shortcut_ok = (1..=32).contains(&body.shortcut.len())
        && body
            .shortcut
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !shortcut_ok {
        return bad("shortcut must be 1 to 32 of a-z, 0-9, - and _");
    }
    let fits = |text: &str, max: usize| {
        (1..=max).contains(&text.chars().count()) && !crate::validate::blank(text)
    };
    if !fits(&body.title, TITLE_CHARS_MAX) {
        return bad("title must be 1 to 100 characters, not only spaces");
    }
    if !fits(&body.body, BODY_CHARS_MAX) {
        return bad("body must be 1 to 4096 characters, not only spaces");
    }
    Ok(())
}

fn id(id: &str) -> Result<(), ApiError> {
    if id.len() == 24 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::BadRequest, "not a saved reply id"))
    }
}

fn saved(outcome: Saved) -> Result<CannedReply, ApiError> {
    match outcome {
        Saved::Saved(reply) => Ok(reply),
        Saved::ShortcutTaken => Err(ApiError::new(
            ErrorCode::ShortcutTaken,
            "another saved reply has this shortcut",
        )),
        Saved::NotFound => Err(ApiError::new(ErrorCode::NotFound, "no such saved reply")),
    }
}

/// `GET /v1/canned` (operators).
async fn list(
    State(app): State<Arc<AppState>>,
    User(claims): User,
) -> Result<Json<CannedList>, ApiError> {
    operator(&claims)?;
    Ok(Json(CannedList {
        replies: app.store.canned_replies().await?,
    }))
}

/// `POST /v1/canned` (operators): 201 with the new reply.
async fn create(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Body(body): Body<CannedBody>,
) -> Result<(StatusCode, Json<CannedReply>), ApiError> {
    operator(&claims)?;
    check(&body)?;
    let now = now_ms();
    let reply = saved(
        app.store
            .create_canned(CannedReply {
                id: crate::auth::random_hex(12),
                shortcut: body.shortcut,
                title: body.title,
                body: body.body,
                created_by: claims.sub.clone(),
                created_at: now,
                updated_at: now,
            })
            .await?,
    )?;
    crate::signin::audit(
        &app,
        &claims.sub,
        "canned_created",
        Some(&reply.id),
        json!({"shortcut": reply.shortcut}),
    )
    .await;
    Ok((StatusCode::CREATED, Json(reply)))
}

/// `PUT /v1/canned/{id}` (operators): the reply as changed.
async fn update(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(reply_id): Path<String>,
    Body(body): Body<CannedBody>,
) -> Result<Json<CannedReply>, ApiError> {
    operator(&claims)?;
    id(&reply_id)?;
    check(&body)?;
    let reply = saved(
        app.store
            .update_canned(CannedReply {
                id: reply_id,
                shortcut: body.shortcut,
                title: body.title,
                body: body.body,
                created_by: String::new(),
                created_at: 0,
                updated_at: now_ms(),
            })
            .await?,
    )?;
    crate::signin::audit(
        &app,
        &claims.sub,
        "canned_updated",
        Some(&reply.id),
        json!({"shortcut": reply.shortcut}),
    )
    .await;
    Ok(Json(reply))
}

/// `DELETE /v1/canned/{id}` (operators).
async fn remove(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(reply_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    operator(&claims)?;
    id(&reply_id)?;
    if !app.store.delete_canned(reply_id.clone()).await? {
        return Err(ApiError::new(ErrorCode::NotFound, "no such saved reply"));
    }
    crate::signin::audit(
        &app,
        &claims.sub,
        "canned_deleted",
        Some(&reply_id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
