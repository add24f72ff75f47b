//! What admins do with accounts (the admin key, or an admin signed in to the console): add,
//! change and disable operators' accounts, send a password reset, see and end sessions, read the
//! audit log.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use protocol::api::{Operator, PutOperator};
use protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, random_token, routes::new_hash, token_hash};
use crate::error::ApiError;
use crate::http::{Admin, Body, Path, Query};
use crate::store::accounts::{Account, AccountRole};
use crate::{now_ms, now_s, AppState};

/// The routes, merged into the HTTP API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/accounts", get(list))
        .route("/v1/accounts/{id}", put(put_account))
        .route("/v1/accounts/{id}/reset", post(reset))
        .route(
            "/v1/accounts/{id}/sessions",
            get(sessions).delete(end_sessions),
        )
        .route("/v1/accounts/{id}/sessions/{session}", delete(end_session))
        .route("/v1/audit", get(audit_log))
}

/// An account as admins see it (never the hash or the TOTP secret).
pub fn view(account: &Account, operator: Option<&Operator>) -> Value {
    json!({
        "operator_id": account.operator_id,
        "email": account.email,
        "name": operator.map(|o| o.name.clone()),
        "role": account.role,
        "active": operator.is_some_and(|o| o.active),
        "password_set": account.password_hash.is_some(),
        "totp_enabled": account.totp_enabled,
        "locked_until": account.locked_until,
        "created_at": account.created_at,
    })
}

async fn list(State(app): State<Arc<AppState>>, _: Admin) -> Result<Json<Value>, ApiError> {
    let operators = app.store.operators().await?;
    let accounts: Vec<Value> = app
        .store
        .accounts()
        .await?
        .iter()
        .map(|a| view(a, operators.iter().find(|o| o.id == a.operator_id)))
        .collect();
    Ok(Json(json!({ "accounts": accounts })))
}

/// `PUT /v1/accounts/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutAccount {
    /// Sign-in address.
    pub email: String,
    /// The name clients and other operators see.
    pub name: String,
    /// `admin` or `agent`.
    pub role: AccountRole,
    /// Whether the operator may sign in and work (default true).
    #[serde(default)]
    pub active: Option<bool>,
    /// An initial or new password (absent: unchanged; a new account without one signs in by
    /// single sign-on or after a reset).
    #[serde(default)]
    pub password: Option<String>,
    /// A picture of the operator.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// Creates or changes an account and its directory entry; answers the view and whether it is
/// new. Used by the route, single sign-on's provisioning and `surechat operator add`.
pub async fn upsert(
    app: &AppState,
    actor: &str,
    id: String,
    body: PutAccount,
) -> Result<(Value, bool), ApiError> {
    let email = body.email.trim().to_lowercase();
    crate::validate::email(&email)
        .map_err(|why| ApiError::new(ErrorCode::BadRequest, format!("invalid email: {why}")))?;
    let active = body.active.unwrap_or(true);
    let operator = crate::directory::entry(
        id.clone(),
        PutOperator {
            name: body.name,
            avatar_url: body.avatar_url,
            active: Some(active),
        },
    )
    .map_err(|(code, detail)| ApiError::new(code, detail))?;
    let password_hash = match body.password {
        Some(password) => Some(new_hash(password).await?),
        None => None,
    };
    let existing = app.store.account(id.clone()).await?;
    let created = existing.is_none();
    let account = match existing.clone() {
        Some(mut account) => {
            account.email = email;
            account.role = body.role;
            if password_hash.is_some() {
                account.password_hash = password_hash.clone();
            }
            account
        }
        None => Account {
            operator_id: id.clone(),
            email,
            role: body.role,
            password_hash: password_hash.clone(),
            totp_secret: None,
            totp_enabled: false,
            totp_last_step: 0,
            failed_count: 0,
            locked_until: 0,
            created_at: now_ms(),
        },
    };
    if !app.store.put_account(account.clone()).await? {
        return Err(ApiError::new(
            ErrorCode::EmailTaken,
            "another operator's account has this email",
        ));
    }
    let was_active = app.store.operator(id.clone()).await?.map(|o| o.active);
    app.store.put_operator(operator.clone()).await?;
    crate::directory::set_active(app, actor, &id, was_active, active).await?;
    match &existing {
        None => {
            audit(
                app,
                actor,
                "account_created",
                Some(&id),
                json!({"role": account.role, "email": account.email}),
            )
            .await
        }
        Some(before) if before.role != account.role => {
            audit(
                app,
                actor,
                "role_changed",
                Some(&id),
                json!({"from": before.role, "to": account.role}),
            )
            .await
        }
        Some(_) => {}
    }
    if password_hash.is_some() && !created {
        // A password set by an admin ends the operator's sessions and tokens: whoever had it is
        // out.
        app.store.delete_sessions_of(id.clone()).await?;
        app.store.revoke_tokens(id.clone(), now_s()).await?;
        audit(
            app,
            actor,
            "password_changed",
            Some(&id),
            json!({"by": actor}),
        )
        .await;
    }
    Ok((view(&account, Some(&operator)), created))
}

async fn put_account(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Body(body): Body<PutAccount>,
) -> Result<Response, ApiError> {
    let (view, created) = upsert(&app, &actor, id, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

/// Makes a reset token for `account`, emails its link when email is configured, and answers the
/// link (for the admin or the command line to hand over when there is no email).
pub async fn send_reset(app: &AppState, account: &Account) -> Result<(String, bool), ApiError> {
    let token = random_token();
    let expires_at = now_ms() + app.config.password_reset_ttl_ms;
    app.store
        .create_reset(token_hash(&token), account.operator_id.clone(), expires_at)
        .await?;
    let link = format!(
        "{}/web/console/reset.html#token={token}",
        crate::reach::public_url(app)
    );
    audit(
        app,
        "system",
        "password_reset_requested",
        Some(&account.operator_id),
        json!({}),
    )
    .await;
    let sent = crate::reach::send_now(
        app,
        &account.email,
        "Reset your surechat password",
        &format!(
            "Hello,\n\nSomeone asked to reset the password of your surechat account ({}).\nSet a new password here (the link works once, for {} minutes):\n\n{link}\n\nIf it was not you, ignore this email: your password is unchanged.\n",
            account.email,
            app.config.password_reset_ttl_ms / 60_000
        ),
    )
    .await;
    Ok((link, sent))
}

async fn reset(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = app
        .store
        .account(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let (link, sent) = send_reset(&app, &account).await?;
    Ok(Json(json!({"link": link, "emailed": sent})))
}

async fn sessions(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let sessions: Vec<Value> = app
        .store
        .sessions_of(id, now_ms())
        .await?
        .iter()
        .map(|s| json!({"id": s.id, "created_at": s.created_at, "last_seen": s.last_seen, "expires_at": s.expires_at, "user_agent": s.user_agent, "method": s.method}))
        .collect();
    Ok(Json(json!({ "sessions": sessions })))
}

async fn end_sessions(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let ended = app.store.delete_sessions_of(id.clone()).await?;
    app.store.revoke_tokens(id.clone(), now_s()).await?;
    audit(
        &app,
        &actor,
        "session_revoked",
        Some(&id),
        json!({"all": true, "count": ended}),
    )
    .await;
    Ok(Json(json!({ "ended": ended })))
}

async fn end_session(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path((id, session)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !app
        .store
        .delete_session(Some(id.clone()), session.clone())
        .await?
    {
        return Err(ApiError::new(ErrorCode::NotFound, "no such session"));
    }
    app.store.revoke_tokens(id.clone(), now_s()).await?;
    audit(
        &app,
        &actor,
        "session_revoked",
        Some(&session),
        json!({"operator": id}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/audit?after=ID&limit=N`.
async fn audit_log(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Query(query): Query,
) -> Result<Json<Value>, ApiError> {
    let number = |name: &str, default: u64, max: u64| -> Result<u64, ApiError> {
        match query.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidCursor,
                        format!("`{name}` must be an integer 0 … {max}"),
                    )
                }),
        }
    };
    let after = number("after", 0, protocol::ids::NUMBER_MAX)?;
    let limit = number("limit", 100, 1000)?.max(1) as u32;
    let entries = app.store.audit_since(after, limit).await?;
    Ok(Json(json!({ "entries": entries })))
}
