//! The HTTP API under `/v1` (JSON; errors as `application/problem+json`), health, readiness and
//! metrics. Admin routes take `Authorization: Bearer <admin key>`, user routes a user token. A user
//! sees only conversations they take part in; any other answers exactly like a missing one (404).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use protocol::api::{
    ConversationList, CreateConversation, MessagePage, MintToken, ParticipantSpec, ReceiptBody,
    SendMessage, TokenResponse,
};
use protocol::frames::MessageKind;
use protocol::ids::{check_conversation_id, check_user_id, NUMBER_MAX};
use protocol::limits::{FRAME_BYTES_MAX, PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, TOKEN_TTL_S_MAX};
use protocol::{ErrorCode, Role};
use serde::de::DeserializeOwned;

use crate::auth::Claims;
use crate::error::ApiError;
use crate::store::{AppendRequest, ReceiptRequest};
use crate::{now_ms, now_s, AppState};

/// Default lifetime of a token minted by `POST /v1/tokens`, in seconds (one day).
const TOKEN_TTL_S_DEFAULT: u64 = 24 * 3600;

/// The routes of the HTTP API (the WebSocket route is added by [`crate::app`]).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(crate::openapi::serve))
        .route("/v1/tokens", post(mint_token))
        .route(
            "/v1/conversations",
            post(create_conversation).get(my_conversations),
        )
        .route(
            "/v1/conversations/{id}",
            get(conversation)
                .put(crate::operators::upsert)
                .delete(erase_conversation),
        )
        .route("/v1/conversations/{id}/participants", post(add_participant))
        .route(
            "/v1/conversations/{id}/participants/{user_id}",
            delete(remove_participant),
        )
        .route(
            "/v1/conversations/{id}/messages",
            post(send_message).get(messages),
        )
        .route("/v1/conversations/{id}/receipts", post(receipts))
        .route("/v1/users/{id}/revoke", post(revoke_tokens))
        .merge(crate::operators::routes())
        .merge(crate::search::routes())
        .merge(crate::canned::routes())
        .merge(crate::attachments::routes())
        .merge(crate::widget::routes())
        .merge(crate::directory::routes())
        .merge(crate::reach::routes::routes())
        .merge(crate::signin::routes::routes())
        .merge(crate::signin::admin::routes())
        .merge(crate::signin::sso::routes())
}

/// Answers for what no route takes, as problem documents: an unknown path (404) and a method a
/// path does not answer (405). Applied last, so they cover every route of [`crate::app`].
pub fn fallbacks(router: Router<Arc<AppState>>) -> Router<Arc<AppState>> {
    router
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "no such route") })
        // The method router adds the `Allow` header listing the methods the path answers.
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::MethodNotAllowed,
                "this method is not allowed on this route (see the Allow header)",
            )
        })
}

/// Path parameters whose rejections (a segment that is not valid UTF-8 once decoded, a number
/// that does not parse) are problem documents with code `bad_request`.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|rejection| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("invalid path parameter: {}", rejection.body_text()),
                )
            })
    }
}

/// The query string as name → value (the last value of a repeated name wins); a query that does
/// not decode is a problem document with code `bad_request`.
pub struct Query(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(map)| Query(map))
            .map_err(|rejection| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("invalid query string: {}", rejection.body_text()),
                )
            })
    }
}

/// A numeric query parameter: `default` when absent, else an integer in `min..=max`, or
/// `invalid_cursor`. Every number a request carries is checked here, before it reaches storage
/// (which holds at most [`protocol::ids::NUMBER_MAX`]).
pub(crate) fn number_param(
    query: &HashMap<String, String>,
    name: &str,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ApiError> {
    let Some(text) = query.get(name) else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::new(
            ErrorCode::InvalidCursor,
            format!(
                "`{name}` must be an integer from {min} to {max}, not `{}`",
                crate::validate::truncate(text)
            ),
        )),
    }
}

/// The caller of an admin route: the admin key (`admin-key`), or the operator id of an admin
/// signed in to the console (cookie and CSRF token).
pub struct Admin(pub String);

/// The caller of a user route.
pub struct User(pub Claims);

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "missing `Authorization: Bearer …` header",
            )
        })?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the Authorization header must be `Bearer <token>`",
            )
        })
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none()
            && crate::signin::cookie(parts, crate::signin::SESSION_COOKIE).is_some()
        {
            let signed = crate::signin::SignedIn::from_request_parts(parts, app).await?;
            if signed.account.role != crate::store::accounts::AccountRole::Admin {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "this needs an admin account",
                ));
            }
            return Ok(Admin(signed.account.operator_id));
        }
        let key = bearer(parts)?;
        if app.auth.is_admin_key(key) {
            return Ok(Admin("admin-key".into()));
        }
        if app.auth.verify(key, now_s()).is_ok() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "this route needs the admin key, not a user token",
            ));
        }
        Err(ApiError::new(ErrorCode::Unauthorized, "invalid admin key"))
    }
}

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        let claims = app
            .authenticate(token)
            .await
            .map_err(|(code, detail)| ApiError::new(code, detail))?;
        crate::directory::admit(app, &claims)
            .await
            .map_err(|(code, detail)| ApiError::new(code, detail))?;
        Ok(User(claims))
    }
}

/// A JSON body whose rejections are problem documents with our codes.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _: &Arc<AppState>) -> Result<Self, ApiError> {
        let bytes = axum::body::to_bytes(request.into_body(), FRAME_BYTES_MAX)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::FrameTooLarge,
                    format!("request body is over the limit of {FRAME_BYTES_MAX} bytes"),
                )
            })?;
        // Every body is a JSON object: serde would also read a struct from an array of its
        // fields in order, which no client means and the schema does not allow.
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "the request body must be a JSON object",
            ));
        }
        serde_json::from_slice(&bytes).map(Body).map_err(|err| {
            ApiError::new(ErrorCode::BadRequest, format!("invalid JSON body: {err}"))
        })
    }
}

pub(crate) fn conversation_id(id: &str) -> Result<(), ApiError> {
    check_conversation_id(id).map_err(|code| {
        ApiError::new(
            code,
            format!(
                "invalid conversation id `{}`",
                crate::validate::truncate(id)
            ),
        )
    })
}

/// Fails with 404 unless the user is a participant; returns their state.
async fn require_participant(
    app: &AppState,
    conversation: &str,
    user: &Claims,
) -> Result<protocol::frames::ParticipantState, ApiError> {
    conversation_id(conversation)?;
    match app
        .store
        .participant(conversation.to_owned(), user.sub.clone())
        .await?
    {
        Some(p) => Ok(p),
        None => Err(ApiError::not_found()),
    }
}

async fn readyz(State(app): State<Arc<AppState>>) -> Result<&'static str, ApiError> {
    if app.shutdown.is_cancelled() {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the server is shutting down",
        ));
    }
    // Storage that does not answer is not ready either: a load balancer's probe must get an
    // answer, not wait as long as the database is away.
    match tokio::time::timeout(READY_PROBE_TIMEOUT, app.store.health()).await {
        Ok(answer) => answer?,
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                format!(
                    "storage did not answer within {} ms",
                    READY_PROBE_TIMEOUT.as_millis()
                ),
            ))
        }
    }
    Ok("ready\n")
}

/// How long `/readyz` and `/metrics` wait on storage to report readiness.
const READY_PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let ready = !app.shutdown.is_cancelled()
        && matches!(
            tokio::time::timeout(READY_PROBE_TIMEOUT, app.store.health()).await,
            Ok(Ok(()))
        );
    let attachments = tokio::time::timeout(READY_PROBE_TIMEOUT, app.store.storage_usage())
        .await
        .ok()
        .and_then(Result::ok);
    let text = app.metrics.render(&crate::metrics::Snapshot {
        ready,
        operators_available: app.presence.available(),
        writer: app.store.writer_stats(),
        attachments,
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Counts every HTTP error answer by its code (set by [`ApiError`] on the response).
pub async fn count_refusal(State(app): State<Arc<AppState>>, response: Response) -> Response {
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        app.metrics.refusal(*code, crate::metrics::Via::Http);
    }
    response
}

async fn mint_token(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Body(body): Body<MintToken>,
) -> Result<Json<TokenResponse>, ApiError> {
    check_user_id(&body.user_id).map_err(|code| ApiError::new(code, "invalid user id"))?;
    let ttl_s = body.ttl_s.unwrap_or(TOKEN_TTL_S_DEFAULT);
    if ttl_s == 0 || ttl_s > TOKEN_TTL_S_MAX {
        return Err(ApiError::new(
            ErrorCode::InvalidTtl,
            format!("ttl_s must be between 1 and {TOKEN_TTL_S_MAX}"),
        ));
    }
    // A token minted right after a revocation must not fall under it (it covers tokens issued
    // at or before its second).
    let revoked = app.store.tokens_revoked_at(body.user_id.clone()).await?;
    let now = revoked.map_or(now_s(), |at| now_s().max(at.saturating_add(1)));
    if body.scope.as_deref().is_some_and(|s| s != "all") {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "scope must be `all` or absent",
        ));
    }
    let token = app
        .auth
        .mint_scoped(&body.user_id, body.role, body.scope.as_deref(), now, ttl_s);
    Ok(Json(TokenResponse {
        token,
        expires_at: now + ttl_s,
    }))
}

/// `POST /v1/users/{id}/revoke` (admin): refuses every token of the user issued until now, over
/// HTTP and at `hello`, and closes the user's live connections with 4401 on every node.
async fn revoke_tokens(
    State(app): State<Arc<AppState>>,
    Admin(actor): Admin,
    Path(user_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_user_id(&user_id).map_err(|code| ApiError::new(code, "invalid user id"))?;
    let now = now_s();
    app.store.revoke_tokens(user_id.clone(), now).await?;
    crate::signin::audit(
        &app,
        &actor,
        "tokens_revoked",
        Some(&user_id),
        serde_json::json!({}),
    )
    .await;
    Ok(Json(
        serde_json::json!({ "user_id": user_id, "revoked_at": now }),
    ))
}

pub(crate) fn check_participants(participants: &[ParticipantSpec]) -> Result<(), ApiError> {
    for p in participants {
        check_user_id(&p.user_id).map_err(|code| {
            ApiError::new(
                code,
                format!(
                    "invalid user id `{}`",
                    crate::validate::truncate(&p.user_id)
                ),
            )
        })?;
        if let Some(email) = &p.email {
            crate::validate::email(email).map_err(|why| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("invalid email of `{}`: {why}", p.user_id),
                )
            })?;
        }
    }
    Ok(())
}

/// Keeps the email addresses given with participants (after they were added).
pub(crate) async fn keep_contacts(
    app: &AppState,
    participants: &[ParticipantSpec],
) -> Result<(), ApiError> {
    for p in participants {
        if let Some(email) = &p.email {
            app.store
                .put_contact(p.user_id.clone(), email.clone())
                .await?;
        }
    }
    Ok(())
}

async fn create_conversation(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Body(body): Body<CreateConversation>,
) -> Result<Response, ApiError> {
    conversation_id(&body.id)?;
    check_participants(&body.participants)?;
    let (view, created) = app
        .store
        .create_conversation(
            body.id,
            body.participants.clone(),
            app.config.participants_max,
            now_ms(),
        )
        .await?;
    keep_contacts(&app, &body.participants).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

async fn conversation(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    parts: Parts,
) -> Result<Response, ApiError> {
    conversation_id(&id)?;
    let mut parts = parts;
    if Admin::from_request_parts(&mut parts, &app).await.is_err() {
        let User(claims) = User::from_request_parts(&mut parts, &app).await?;
        require_participant(&app, &id, &claims).await?;
    }
    match app.store.conversation(id).await? {
        Some(view) => Ok(Json(view).into_response()),
        None => Err(ApiError::not_found()),
    }
}

async fn add_participant(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
    Body(spec): Body<ParticipantSpec>,
) -> Result<Response, ApiError> {
    conversation_id(&id)?;
    check_participants(std::slice::from_ref(&spec))?;
    let added = app
        .store
        .add_participant(
            id.clone(),
            spec.clone(),
            app.config.participants_max,
            now_ms(),
        )
        .await?;
    keep_contacts(&app, std::slice::from_ref(&spec)).await?;
    let view = app
        .store
        .conversation(id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view)).into_response())
}

async fn remove_participant(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    conversation_id(&id)?;
    check_user_id(&user_id).map_err(|code| {
        ApiError::new(
            code,
            format!("invalid user id `{}`", crate::validate::truncate(&user_id)),
        )
    })?;
    if app.store.remove_participant(id, user_id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(ErrorCode::NotFound, "no such participant"))
    }
}

/// `DELETE /v1/conversations/{id}` (admin): forgets the conversation and everything of it,
/// files included; its participants' devices receive `left`.
async fn erase_conversation(
    State(app): State<Arc<AppState>>,
    _: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    conversation_id(&id)?;
    if app.store.erase_conversation(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

async fn my_conversations(
    State(app): State<Arc<AppState>>,
    User(claims): User,
) -> Result<Json<ConversationList>, ApiError> {
    let mut conversations = app.store.conversations_of(claims.sub).await?;
    if claims.role == Role::Client {
        for summary in &mut conversations {
            as_client(&app, summary).await?;
        }
    }
    Ok(Json(ConversationList { conversations }))
}

/// A client token's view of a summary the store made from an operator participant row: the
/// last message a client may see, never a note.
async fn as_client(
    app: &AppState,
    summary: &mut protocol::api::ConversationSummary,
) -> Result<(), ApiError> {
    if summary.role == Role::Client {
        return Ok(());
    }
    summary.role = Role::Client;
    if summary
        .last_message
        .as_ref()
        .is_some_and(|m| m.kind == MessageKind::Note)
    {
        let window = u64::from(PAGE_LIMIT_MAX);
        let tail = app
            .store
            .messages_since(
                summary.id.clone(),
                summary.last_seq.saturating_sub(window),
                PAGE_LIMIT_MAX,
            )
            .await?;
        summary.last_message = tail.into_iter().rev().find(|m| m.kind == MessageKind::Text);
    }
    Ok(())
}

async fn send_message(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(conversation): Path<String>,
    Body(body): Body<SendMessage>,
) -> Result<Response, ApiError> {
    if body.kind == MessageKind::System {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "system entries are written by the server",
        ));
    }
    let (id, attachments) = crate::validate::message(
        &app.config,
        &body.id,
        &conversation,
        &body.body,
        &body.attachments,
    )
    .map_err(|(code, detail)| ApiError::new(code, detail))?;
    let started = std::time::Instant::now();
    // The same budget as the user's WebSocket sends: HTTP is no way around the rate limit.
    if let Err(wait) = app.send_budget.take(&claims.sub, started) {
        app.metrics.ack(ErrorCode::RateLimited.as_str());
        let mut error = ApiError::new(ErrorCode::RateLimited, "too many sends; retry later");
        error.retry_after_ms = Some(wait.as_millis() as u64 + 1);
        return Err(error);
    }
    let result = app
        .store
        .append(AppendRequest {
            conversation,
            id,
            sender: claims.sub,
            role: claims.role,
            body: body.body,
            ts: now_ms(),
            after: None,
            kind: body.kind,
            attachments,
        })
        .await;
    let appended = match result {
        Ok(appended) => appended,
        Err(err) => {
            app.metrics.ack(err.code().as_str());
            return Err(err.into());
        }
    };
    app.metrics.send_to_ack(started.elapsed());
    let status = if appended.created {
        app.metrics.messages_stored.fetch_add(1, Ordering::Relaxed);
        app.metrics.ack("stored");
        StatusCode::CREATED
    } else {
        app.metrics.ack("duplicate");
        StatusCode::OK
    };
    Ok((status, Json((*appended.message).clone())).into_response())
}

async fn messages(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(conversation): Path<String>,
    Query(query): Query,
) -> Result<Json<MessagePage>, ApiError> {
    let after = number_param(&query, "after", 0, 0, NUMBER_MAX)?;
    let limit = number_param(
        &query,
        "limit",
        PAGE_LIMIT_DEFAULT.into(),
        1,
        PAGE_LIMIT_MAX.into(),
    )?;
    let me = require_participant(&app, &conversation, &claims).await?;
    let view = app
        .store
        .conversation(conversation.clone())
        .await?
        .ok_or_else(ApiError::not_found)?;
    if after > view.last_seq {
        return Err(ApiError::new(
            ErrorCode::CursorOutOfRange,
            format!("`after` is {after} but the last seq is {}", view.last_seq),
        ));
    }
    let mut messages = app
        .store
        .messages_since(conversation.clone(), after, limit as u32)
        .await?;
    // Private notes are for operators: a client's history has gaps where they are. A client
    // token reads as a client whatever its participant row says.
    if crate::store::lesser(me.role, claims.role) == Role::Client {
        messages.retain(|m| m.kind != MessageKind::Note);
        for m in &mut messages {
            if let Some(shown) = crate::store::workflow::for_clients(m) {
                *m = shown;
            }
        }
    }
    Ok(Json(MessagePage {
        conversation,
        epoch: view.epoch,
        last_seq: view.last_seq,
        messages,
    }))
}

async fn receipts(
    State(app): State<Arc<AppState>>,
    User(claims): User,
    Path(conversation): Path<String>,
    Body(body): Body<ReceiptBody>,
) -> Result<Response, ApiError> {
    conversation_id(&conversation)?;
    if body
        .delivered
        .max(body.read)
        .is_some_and(|n| n > NUMBER_MAX)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidCursor,
            format!("`delivered` and `read` are at most {NUMBER_MAX}"),
        ));
    }
    let outcome = app
        .store
        .record_receipt(ReceiptRequest {
            conversation,
            user_id: claims.sub,
            role: claims.role,
            delivered: body.delivered,
            read: body.read,
        })
        .await?;
    if outcome.changed {
        app.metrics.receipts.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Json(outcome.state).into_response())
}
