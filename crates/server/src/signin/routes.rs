//! The session routes: sign in and out, the console's tokens, one's own sessions, password
//! change and reset, and the second factor.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    audit, console_token, password, random_token, set_cookie, token_hash, totp, SignedIn,
    SESSION_COOKIE,
};
use crate::error::ApiError;
use crate::http::{Body, Path};
use crate::store::accounts::{Account, Session};
use crate::{now_ms, now_s, AppState};

/// The routes, merged into the HTTP API.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/session", post(sign_in).get(current).delete(sign_out))
        .route("/v1/session/token", post(token))
        .route("/v1/session/password", post(change_password))
        .route("/v1/session/totp", post(totp_start).delete(totp_disable))
        .route("/v1/session/totp/confirm", post(totp_confirm))
        .route("/v1/sessions", get(my_sessions))
        .route("/v1/sessions/{id}", delete(end_session))
        .route("/v1/password-reset", post(reset_request))
        .route("/v1/password-reset/complete", post(reset_complete))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    email: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
}

fn failed() -> ApiError {
    ApiError::new(ErrorCode::SigninFailed, "wrong email or password")
}

fn locked(until: u64, now: u64) -> Response {
    let wait_s = until.saturating_sub(now).div_ceil(1000).max(1);
    let mut response = ApiError::new(
        ErrorCode::AccountLocked,
        format!("too many failed sign-ins; try again in {wait_s} s"),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, wait_s.into());
    response
}

/// Counts a failed sign-in of a known account, and locks it at the threshold.
async fn count_failure(app: &AppState, account: &Account, why: &str) -> Option<u64> {
    let now = now_ms();
    let failure = app
        .store
        .sign_in_failed(
            account.operator_id.clone(),
            app.config.signin_lock_after,
            app.config.signin_lock_ms,
            now,
        )
        .await
        .ok()?;
    audit(
        app,
        &account.email,
        "signin_failed",
        Some(&account.operator_id),
        json!({"why": why, "failed_count": failure.failed_count}),
    )
    .await;
    if failure.locked_until > now {
        audit(
            app,
            "system",
            "locked",
            Some(&account.operator_id),
            json!({"until": failure.locked_until}),
        )
        .await;
        return Some(failure.locked_until);
    }
    None
}

/// Starts a session for `account`: stores it and answers with the cookie and the CSRF token.
pub(crate) async fn start_session(
    app: &AppState,
    account: &Account,
    method: &str,
    user_agent: &str,
) -> Result<(String, Session), ApiError> {
    let token = random_token();
    let now = now_ms();
    let session = Session {
        id: token_hash(&token),
        operator_id: account.operator_id.clone(),
        csrf_token: random_token(),
        created_at: now,
        last_seen: now,
        expires_at: now + app.config.session_ttl_ms,
        user_agent: user_agent.chars().take(200).collect(),
        method: method.to_owned(),
    };
    app.store.create_session(session.clone()).await?;
    audit(
        app,
        &account.operator_id,
        "signin",
        Some(&session.id),
        json!({"method": method}),
    )
    .await;
    let cookie = set_cookie(
        &app.config,
        SESSION_COOKIE,
        &token,
        "Strict",
        app.config.session_ttl_ms / 1000,
    );
    Ok((cookie, session))
}

fn describe(account: &Account, session: &Session, name: Option<String>) -> Value {
    json!({
        "operator_id": account.operator_id,
        "name": name,
        "email": account.email,
        "role": account.role,
        "totp_enabled": account.totp_enabled,
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at,
        "method": session.method,
    })
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Refuses a body that is not declared JSON: an HTML form on another site can post
/// `text/plain` that happens to parse as JSON (signing a victim in to the attacker's account,
/// or sending reset emails in bulk), but it cannot send `application/json` without CORS.
fn json_only(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if json {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::BadRequest,
            "send the body as application/json",
        ))
    }
}

/// Lets one sign-in per account run at a time on this node: a burst of guesses sent at once would
/// otherwise all be checked before the failure count locks the account.
struct Gate<'a> {
    app: &'a AppState,
    email: String,
}

impl<'a> Gate<'a> {
    fn enter(app: &'a AppState, email: &str) -> Option<Gate<'a>> {
        let mut busy = app.signing_in.lock().unwrap_or_else(|p| p.into_inner());
        busy.insert(email.to_owned()).then(|| Gate {
            app,
            email: email.to_owned(),
        })
    }
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        let mut busy = self
            .app
            .signing_in
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        busy.remove(&self.email);
    }
}

/// `POST /v1/session`: email, password and (when enabled) a TOTP code.
async fn sign_in(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<SignInBody>,
) -> Result<Response, ApiError> {
    json_only(&headers)?;
    let email = body.email.trim().to_lowercase();
    let Some(_gate) = Gate::enter(&app, &email) else {
        let mut busy = ApiError::new(
            ErrorCode::RateLimited,
            "a sign-in for this account is under way; try again",
        );
        busy.retry_after_ms = Some(1_000);
        return Err(busy);
    };
    let account = app.store.account_by_email(email.clone()).await?;
    let now = now_ms();
    if let Some(account) = &account {
        if account.locked_until > now {
            return Ok(locked(account.locked_until, now));
        }
    }
    let hash = account.as_ref().and_then(|a| a.password_hash.clone());
    let given = body.password.clone();
    let matches = tokio::task::spawn_blocking(move || match hash {
        Some(hash) => password::verify(&given, &hash),
        None => {
            // The same time as a real check: the answer's delay tells nothing.
            password::dummy_verify(&given);
            false
        }
    })
    .await
    .unwrap_or(false);
    let Some(account) = account else {
        audit(
            &app,
            &email,
            "signin_failed",
            None,
            json!({"why": "unknown email"}),
        )
        .await;
        return Err(failed());
    };
    let active = app
        .store
        .operator(account.operator_id.clone())
        .await?
        .is_some_and(|o| o.active);
    if !matches || !active {
        let why = if matches {
            "operator disabled"
        } else {
            "wrong password"
        };
        if let Some(until) = count_failure(&app, &account, why).await {
            return Ok(locked(until, now_ms()));
        }
        return Err(failed());
    }
    let step = if account.totp_enabled {
        let Some(code) = body.totp.as_deref().filter(|c| !c.trim().is_empty()) else {
            return Err(ApiError::new(
                ErrorCode::TotpRequired,
                "enter the 6-digit code from your authenticator app",
            ));
        };
        let secret = account.totp_secret.clone().unwrap_or_default();
        match totp::verify(&secret, code.trim(), now_s(), account.totp_last_step) {
            Some(step) => Some(step),
            None => {
                if let Some(until) = count_failure(&app, &account, "wrong code").await {
                    return Ok(locked(until, now_ms()));
                }
                return Err(ApiError::new(
                    ErrorCode::TotpRequired,
                    "that code is not valid; enter the current one",
                ));
            }
        }
    } else {
        None
    };
    // Locked meanwhile (guesses through another node): the lock holds, even for the right one.
    if let Some(now_locked) = app.store.account(account.operator_id.clone()).await? {
        if now_locked.locked_until > now_ms() {
            return Ok(locked(now_locked.locked_until, now_ms()));
        }
    }
    if !app
        .store
        .sign_in_succeeded(account.operator_id.clone(), step)
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::TotpRequired,
            "that code was used already; wait for the next one",
        ));
    }
    let method = if step.is_some() {
        "password+totp"
    } else {
        "password"
    };
    let (cookie, session) = start_session(&app, &account, method, &user_agent(&headers)).await?;
    let name = app
        .store
        .operator(account.operator_id.clone())
        .await?
        .map(|o| o.name);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(describe(&account, &session, name)),
    )
        .into_response())
}

/// `GET /v1/session`: who is signed in, and the CSRF token for the state-changing calls.
async fn current(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Json<Value>, ApiError> {
    let name = app
        .store
        .operator(signed.account.operator_id.clone())
        .await?
        .map(|o| o.name);
    Ok(Json(describe(&signed.account, &signed.session, name)))
}

/// `DELETE /v1/session`: signs out; the console's connections close (its tokens are revoked;
/// the operator's other signed-in browsers get new tokens from their own sessions).
async fn sign_out(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Response, ApiError> {
    let operator = signed.account.operator_id.clone();
    app.store
        .delete_session(Some(operator.clone()), signed.session.id.clone())
        .await?;
    app.store.revoke_tokens(operator.clone(), now_s()).await?;
    audit(
        &app,
        &operator,
        "signout",
        Some(&signed.session.id),
        json!({}),
    )
    .await;
    let cookie = set_cookie(&app.config, SESSION_COOKIE, "", "Strict", 0);
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response())
}

/// `POST /v1/session/token`: a short operator token for the console (CSRF-checked, so another
/// site cannot mint one with the cookie).
async fn token(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Json<Value>, ApiError> {
    let (token, expires_at) = console_token(&app, &signed.account).await?;
    Ok(Json(
        json!({"token": token, "expires_at": expires_at, "user_id": signed.account.operator_id}),
    ))
}

fn session_view(session: &Session, current: &str) -> Value {
    json!({
        "id": session.id,
        "created_at": session.created_at,
        "last_seen": session.last_seen,
        "expires_at": session.expires_at,
        "user_agent": session.user_agent,
        "method": session.method,
        "current": session.id == current,
    })
}

/// `GET /v1/sessions`: the caller's signed-in browsers.
async fn my_sessions(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Json<Value>, ApiError> {
    let sessions = app
        .store
        .sessions_of(signed.account.operator_id.clone(), now_ms())
        .await?;
    let views: Vec<Value> = sessions
        .iter()
        .map(|s| session_view(s, &signed.session.id))
        .collect();
    Ok(Json(json!({ "sessions": views })))
}

/// `DELETE /v1/sessions/{id}`: signs one of the caller's browsers out.
async fn end_session(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let operator = signed.account.operator_id.clone();
    if !app
        .store
        .delete_session(Some(operator.clone()), id.clone())
        .await?
    {
        return Err(ApiError::new(ErrorCode::NotFound, "no such session"));
    }
    app.store.revoke_tokens(operator.clone(), now_s()).await?;
    audit(
        &app,
        &operator,
        "session_revoked",
        Some(&id),
        json!({"by": operator}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current: String,
    new: String,
}

/// Hashes a new password that passes the policy (off the async threads: Argon2id is slow on
/// purpose).
pub(crate) async fn new_hash(password: String) -> Result<String, ApiError> {
    password::check_policy(&password)
        .map_err(|why| ApiError::new(ErrorCode::WeakPassword, why.to_string()))?;
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "hashing failed"))?
        .map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))
}

/// `POST /v1/session/password`: the current password and a new one. Other sessions end.
async fn change_password(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    Body(body): Body<PasswordChange>,
) -> Result<Response, ApiError> {
    let mut account = signed.account;
    let hash = account.password_hash.clone();
    let current = body.current.clone();
    let ok =
        tokio::task::spawn_blocking(move || hash.is_some_and(|h| password::verify(&current, &h)))
            .await
            .unwrap_or(false);
    if !ok {
        // Counted like a failed sign-in: a stolen session cannot guess the password freely.
        if let Some(until) = count_failure(&app, &account, "wrong current password").await {
            return Ok(locked(until, now_ms()));
        }
        return Err(failed());
    }
    account.password_hash = Some(new_hash(body.new).await?);
    app.store.put_account(account.clone()).await?;
    end_other_sessions(&app, &account.operator_id, Some(&signed.session.id)).await?;
    // Whoever held a token from an old session is out too (this browser gets a new one).
    app.store
        .revoke_tokens(account.operator_id.clone(), now_s())
        .await?;
    audit(
        &app,
        &account.operator_id,
        "password_changed",
        Some(&account.operator_id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Ends an operator's sessions but `keep`.
async fn end_other_sessions(
    app: &AppState,
    operator: &str,
    keep: Option<&str>,
) -> Result<(), ApiError> {
    for session in app.store.sessions_of(operator.to_owned(), now_ms()).await? {
        if Some(session.id.as_str()) != keep {
            app.store.delete_session(None, session.id).await?;
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Code {
    code: String,
}

/// `POST /v1/session/totp`: starts enrolment: a new secret (shown once, as text and as an
/// `otpauth://` URL for a QR code); sign-in asks for codes once confirmed.
async fn totp_start(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
) -> Result<Json<Value>, ApiError> {
    let mut account = signed.account;
    if account.totp_enabled {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "a second factor is already on; turn it off first",
        ));
    }
    let secret = totp::new_secret();
    account.totp_secret = Some(secret.clone());
    app.store.put_account(account.clone()).await?;
    let url = totp::otpauth_url(&secret, &account.email, "surechat");
    Ok(Json(json!({"secret": secret, "otpauth_url": url})))
}

/// `POST /v1/session/totp/confirm`: a code from the app proves it holds the secret; from now on
/// sign-in asks for one.
async fn totp_confirm(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    Body(body): Body<Code>,
) -> Result<StatusCode, ApiError> {
    let mut account = signed.account;
    let secret = account
        .totp_secret
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "start enrolment first"))?;
    let step = totp::verify(&secret, body.code.trim(), now_s(), account.totp_last_step)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::TotpRequired,
                "that code is not valid; enter the current one",
            )
        })?;
    account.totp_enabled = true;
    account.totp_last_step = step;
    app.store.put_account(account.clone()).await?;
    audit(
        &app,
        &account.operator_id,
        "totp_enabled",
        Some(&account.operator_id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/session/totp` with a current code: the second factor is off.
async fn totp_disable(
    State(app): State<Arc<AppState>>,
    signed: SignedIn,
    Body(body): Body<Code>,
) -> Result<StatusCode, ApiError> {
    let mut account = signed.account;
    let secret = account.totp_secret.clone().unwrap_or_default();
    if !account.totp_enabled
        || totp::verify(&secret, body.code.trim(), now_s(), account.totp_last_step).is_none()
    {
        return Err(ApiError::new(
            ErrorCode::TotpRequired,
            "enter a current code to turn the second factor off",
        ));
    }
    account.totp_enabled = false;
    account.totp_secret = None;
    app.store.put_account(account.clone()).await?;
    audit(
        &app,
        &account.operator_id,
        "totp_disabled",
        Some(&account.operator_id),
        json!({}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    email: String,
}

/// `POST /v1/password-reset`: emails a reset link if the address has an account (the answer is
/// the same either way, so it tells nobody which addresses do).
async fn reset_request(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    json_only(&headers)?;
    let email = body.email.trim().to_lowercase();
    // Sent in the background: the answer comes as fast for an address with an account as for
    // one without.
    tokio::spawn(async move {
        if let Ok(Some(account)) = app.store.account_by_email(email).await {
            if let Err(err) = super::admin::send_reset(&app, &account).await {
                tracing::warn!(detail = %err.detail, "cannot send a password reset email");
            }
        }
    });
    Ok(StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResetComplete {
    token: String,
    password: String,
}

/// `POST /v1/password-reset/complete`: a reset link's token (once) and the new password. Every
/// session of the account ends, and a lock is lifted.
async fn reset_complete(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Body(body): Body<ResetComplete>,
) -> Result<StatusCode, ApiError> {
    json_only(&headers)?;
    let hash = new_hash(body.password).await?;
    let operator = app
        .store
        .use_reset(token_hash(&body.token), now_ms())
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::LinkExpired,
                "this reset link was used or has expired; ask for a new one",
            )
        })?;
    let mut account = app
        .store
        .account(operator.clone())
        .await?
        .ok_or_else(ApiError::not_found)?;
    account.password_hash = Some(hash);
    account.failed_count = 0;
    account.locked_until = 0;
    app.store.put_account(account).await?;
    end_other_sessions(&app, &operator, None).await?;
    app.store.revoke_tokens(operator.clone(), now_s()).await?;
    audit(
        &app,
        &operator,
        "password_changed",
        Some(&operator),
        json!({"via": "reset"}),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
