//! The operator directory: the operators the server knows (id, display name, avatar, active).
//! Only an active operator of the directory may use an operator token, be assigned a
//! conversation or receive a transfer, so a client's id can never become an operator by a typo
//! or on purpose; clients see operators by their display names.
//!
//! Routes: `GET /v1/operators` (admin, or any operator: the console's transfer picker),
//! `GET|PUT|DELETE /v1/operators/{id}` (admin), and `GET /v1/conversations/{id}/operators`
//! (a participant: the names of the conversation's operators, for the client page).

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use protocol::api::{Operator, OperatorList, PutOperator};
use protocol::ids::check_user_id;
use protocol::{ErrorCode, Role};

use crate::auth::Claims;
use crate::error::ApiError;
use crate::http::{conversation_id, Admin, Body, User};
use crate::store::StoreError;
use crate::AppState;

/// Longest display name, in characters.
pub const NAME_CHARS_MAX: usize = 100;
/// Longest avatar URL, in bytes.
pub const AVATAR_URL_BYTES_MAX: usize = 2048;

/// The routes of this module.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/operators", get(list))
        .route(
            "/v1/operators/{id}",
            get(read).put(put).delete(delete_operator),
        )
        .route("/v1/conversations/{id}/operators", get(of_conversation))
}

/// Whether the holder of `claims` may act with the token's role: a client always; an operator
/// only when active in the directory — or, with `operators_auto_register`, an unknown one, who
/// is added to it on first use (named by the id). Called at `hello` and by every user route.
pub async fn admit(app: &AppState, claims: &Claims) -> Result<(), (ErrorCode, String)> {
    if claims.role != Role::Operator {
        return Ok(());
    }
    let unavailable = |err: StoreError| (err.code(), err.to_string());
    match app
        .store
        .operator(claims.sub.clone())
        .await
        .map_err(unavailable)?
    {
        Some(operator) if operator.active => Ok(()),
        Some(_) => Err((
            ErrorCode::UnknownOperator,
            format!("operator `{}` is disabled", claims.sub),
        )),
        None if app.config.operators_auto_register => {
            let operator = Operator {
                id: claims.sub.clone(),
                name: claims.sub.clone(),
                avatar_url: None,
                active: true,
            };
            app.store
                .put_operator(operator)
                .await
                .map_err(unavailable)?;
            tracing::info!(operator = %claims.sub, "operator registered on first use");
            Ok(())
        }
        None => Err((
            ErrorCode::UnknownOperator,
            format!(
                "`{}` is not in the operator directory",
                crate::validate::truncate(&claims.sub)
            ),
        )),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    check_user_id(id).map_err(|code| ApiError::new(code, "invalid operator id"))
}

/// The admin key, or an operator's token (read-only routes).
struct AdminOrOperator;

impl FromRequestParts<Arc<AppState>> for AdminOrOperator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        if Admin::from_request_parts(parts, app).await.is_ok() {
            return Ok(AdminOrOperator);
        }
        let User(claims) = User::from_request_parts(parts, app).await?;
        if claims.role != Role::Operator {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "the operator directory is for operators and the admin key",
            ));
        }
        Ok(AdminOrOperator)
    }
}

/// `GET /v1/operators`: the whole directory (admin, or an operator).
async fn list(
    State(app): State<Arc<AppState>>,
    _: AdminOrOperator,
) -> Result<Json<OperatorList>, ApiError> {
    Ok(Json(OperatorList {
        operators: app.store.operators().await?,
    }))
}

/// `GET /v1/operators/{id}` (admin).
async fn read(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Operator>, ApiError> {
    check_id(&id)?;
    app.store
        .operator(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such operator"))
}

/// `PUT /v1/operators/{id}` (admin): creates (201) or replaces (200) the entry.
async fn put(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(body): Body<PutOperator>,
) -> Result<Response, ApiError> {
    let operator = entry(id, body).map_err(|(code, detail)| ApiError::new(code, detail))?;
    let was_active = app
        .store
        .operator(operator.id.clone())
        .await?
        .map(|o| o.active);
    let created = app.store.put_operator(operator.clone()).await?;
    set_active(&app, &actor, &operator.id, was_active, operator.active).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(operator)).into_response())
}

/// What follows an operator's active flag changing: disabled means signed out now, not at the
/// next reconnect (the tokens issued so far are revoked, which closes the live connections with
/// 4401 on every node, and the console sessions end); both ways go to the audit log.
pub async fn set_active(
    app: &AppState,
    actor: &str,
    id: &str,
    was: Option<bool>,
    now: bool,
) -> Result<(), ApiError> {
    if !now {
        app.store
            .revoke_tokens(id.to_owned(), crate::now_s())
            .await?;
        app.store.delete_sessions_of(id.to_owned()).await?;
    }
    if was.is_some_and(|was| was != now) {
        let action = if now {
            "operator_enabled"
        } else {
            "operator_disabled"
        };
        crate::signin::audit(app, actor, action, Some(id), serde_json::json!({})).await;
    }
    Ok(())
}

/// Checks a directory entry as `PUT /v1/operators/{id}` and `surechat operator add` take it.
pub fn entry(id: String, body: PutOperator) -> Result<Operator, (ErrorCode, String)> {
    check_user_id(&id).map_err(|code| (code, "invalid operator id".to_owned()))?;
    // Counted as given (the document's limit), stored trimmed.
    let name = body.name.trim().to_owned();
    if name.is_empty() || body.name.chars().count() > NAME_CHARS_MAX {
        return Err((
            ErrorCode::BadRequest,
            format!("`name` must have 1 to {NAME_CHARS_MAX} characters"),
        ));
    }
    if let Some(url) = &body.avatar_url {
        let web = url.starts_with("https://") || url.starts_with("http://");
        if !web || url.len() > AVATAR_URL_BYTES_MAX || !url.bytes().all(|b| b.is_ascii_graphic()) {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "`avatar_url` must be an http(s) URL of at most {AVATAR_URL_BYTES_MAX} bytes"
                ),
            ));
        }
    }
    Ok(Operator {
        id,
        name,
        avatar_url: body.avatar_url,
        active: body.active.unwrap_or(true),
    })
}

/// `DELETE /v1/operators/{id}` (admin). The operator's participant rows stay; they can no
/// longer connect or be assigned.
async fn delete_operator(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    if app.store.delete_operator(id.clone()).await? {
        // As for a disabled operator: their live connections close now.
        set_active(&app, &actor, &id, None, false).await?;
        crate::signin::audit(
            &app,
            &actor,
            "operator_deleted",
            Some(&id),
            serde_json::json!({}),
        )
        .await;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such operator"))
    }
}

/// `GET /v1/conversations/{id}/operators` (a participant): the directory entries of the
/// conversation's operators, so a client page shows names, never ids.
async fn of_conversation(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(id): Path<String>,
) -> Result<Json<OperatorList>, ApiError> {
    conversation_id(&id)?;
    if app
        .store
        .participant(id.clone(), claims.sub.clone())
        .await?
        .is_none()
    {
        return Err(ApiError::not_found());
    }
    let view = app
        .store
        .conversation(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut operators = Vec::new();
    for p in view
        .participants
        .iter()
        .filter(|p| p.role == Role::Operator)
    {
        if let Some(operator) = app.store.operator(p.user_id.clone()).await? {
            operators.push(operator);
        }
    }
    Ok(Json(OperatorList { operators }))
}
