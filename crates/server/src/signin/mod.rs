//! Operators sign in: accounts with a password (Argon2id) and an optional second factor (TOTP),
//! or single sign-on (OpenID Connect); a server-side session in an `HttpOnly` cookie; the console
//! gets short-lived operator tokens from its session; an audit log of what matters for security.
//!
//! - A session is a random token in the cookie `surechat_session` (`HttpOnly`, `SameSite=Strict`,
//!   `Secure` unless `cookie_secure` is off); storage keeps only its SHA-256. Every
//!   state-changing request authenticated by the cookie must carry the session's CSRF token in
//!   `X-CSRF-Token` ([`SignedIn`] checks it), and the cookie is never sent cross-site.
//! - Failed sign-ins are counted in storage (so every node sees them): `signin_lock_after` in a
//!   row lock the account for `signin_lock_ms`. An unknown email costs the same time as a wrong
//!   password and gets the same answer.
//! - Disabling an operator, changing their password or signing out revokes their tokens (their
//!   live connections close with 4401 on every node); a console whose session is gone cannot get
//!   a new token and shows the sign-in page.

pub mod admin;
pub mod oidc;
pub mod password;
pub mod routes;
pub mod sso;
pub mod totp;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use protocol::{ErrorCode, Role};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::ConfigError;
use crate::error::ApiError;
use crate::store::accounts::{Account, AccountRole, AuditEntry, Session};
use crate::{now_ms, now_s, AppState, Config};

/// The session cookie.
pub const SESSION_COOKIE: &str = "surechat_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// One single sign-on provider (`[[oidc]]` in the configuration file).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Short name, in URLs (`/v1/oidc/{name}/start`) and on the sign-in button: letters, digits,
    /// `-` and `_`.
    pub name: String,
    /// What the sign-in page's button says (default: the name).
    #[serde(default)]
    pub label: Option<String>,
    /// The issuer URL (its `/.well-known/openid-configuration` is read at the first use).
    pub issuer: String,
    /// The client id registered with the provider.
    pub client_id: String,
    /// The client secret (none: a public client, PKCE only).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Create an agent account for a verified email of an allowed domain that has none.
    #[serde(default)]
    pub auto_provision: bool,
    /// Domains whose addresses may be provisioned (e.g. `["corp.example"]`); required with
    /// `auto_provision`.
    #[serde(default)]
    pub allowed_domains: Vec<String>,
}

impl Config {
    /// Checks the sign-in settings; the error names the first bad key.
    pub(crate) fn validate_signin(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if self.console_token_ttl_s < 30 || self.console_token_ttl_s > 24 * 3600 {
            return invalid("console_token_ttl_s", "must be between 30 and 86400".into());
        }
        if self.session_ttl_ms < 60_000 {
            return invalid("session_ttl_ms", "must be at least 60000".into());
        }
        if self.signin_lock_after == 0 {
            return invalid("signin_lock_after", "must be at least 1".into());
        }
        let mut names = std::collections::HashSet::new();
        for provider in &self.oidc {
            let ok_name = !provider.name.is_empty()
                && provider
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok_name || !names.insert(provider.name.clone()) {
                return invalid(
                    "oidc",
                    format!(
                        "provider name `{}` must be unique letters, digits, - and _",
                        provider.name
                    ),
                );
            }
            if !(provider.issuer.starts_with("https://") || provider.issuer.starts_with("http://"))
            {
                return invalid("oidc", format!("{}: issuer must be a URL", provider.name));
            }
            if provider.auto_provision && provider.allowed_domains.is_empty() {
                return invalid(
                    "oidc",
                    format!("{}: auto_provision needs allowed_domains", provider.name),
                );
            }
        }
        Ok(())
    }
}

/// SHA-256 hex of a token: what storage keeps of session and reset tokens.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// 32 random bytes, base64url: session tokens, CSRF tokens, reset tokens (the same as single
/// sign-on's state and nonce).
pub use oidc::random_token;

/// The value of cookie `name` in the request, if sent.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly`, `Path=/`, the given `SameSite`, `Secure` per the config;
/// `max_age_s` 0 deletes it.
pub fn set_cookie(
    config: &Config,
    name: &str,
    value: &str,
    same_site: &str,
    max_age_s: u64,
) -> String {
    let secure = if config.cookie_secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}; Max-Age={max_age_s}{secure}")
}

/// A request signed in by the session cookie, with the session's CSRF token checked for every
/// method but GET and HEAD; the operator is active and has an account.
pub struct SignedIn {
    /// The session.
    pub session: Session,
    /// Its account.
    pub account: Account,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<AppState>) -> Result<Self, ApiError> {
        let unauthorized = || ApiError::new(ErrorCode::Unauthorized, "not signed in");
        let token = cookie(parts, SESSION_COOKIE).ok_or_else(unauthorized)?;
        let session = app
            .store
            .session(token_hash(token), now_ms())
            .await?
            .ok_or_else(unauthorized)?;
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(ApiError::new(
                    ErrorCode::CsrfFailed,
                    "send the session's CSRF token in X-CSRF-Token",
                ));
            }
        }
        let account = app
            .store
            .account(session.operator_id.clone())
            .await?
            .ok_or_else(unauthorized)?;
        let active = app
            .store
            .operator(session.operator_id.clone())
            .await?
            .is_some_and(|o| o.active);
        if !active {
            return Err(unauthorized());
        }
        Ok(SignedIn { session, account })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A short operator token for the console of a session (admins see every conversation).
pub async fn console_token(
    app: &AppState,
    account: &Account,
) -> Result<(String, u64), crate::store::StoreError> {
    let scope = (account.role == AccountRole::Admin).then_some("all");
    // As `POST /v1/tokens` does: a token minted in the second of a revocation (a sign-out
    // elsewhere) must not fall under it.
    let revoked = app
        .store
        .tokens_revoked_at(account.operator_id.clone())
        .await?;
    let now = revoked.map_or(now_s(), |at| now_s().max(at.saturating_add(1)));
    let ttl = app.config.console_token_ttl_s;
    let token = app
        .auth
        .mint_scoped(&account.operator_id, Role::Operator, scope, now, ttl);
    Ok((token, now + ttl))
}

/// How a failed sign-in's typed email is logged: as typed when it is an address, otherwise not
/// at all (someone may have typed their password into the email field).
pub fn typed_email(email: &str) -> String {
    if crate::validate::email(email).is_ok() {
        email.to_owned()
    } else {
        "(not an email address)".to_owned()
    }
}

/// Writes an audit entry; a failure to write is logged, never the caller's failure (the action
/// itself already happened).
pub async fn audit(app: &AppState, actor: &str, action: &str, target: Option<&str>, detail: Value) {
    let entry = AuditEntry {
        id: 0,
        at: now_ms(),
        actor: actor.to_owned(),
        action: action.to_owned(),
        target: target.map(str::to_owned),
        detail,
        ip: None,
    };
    if let Err(err) = app.store.audit(entry).await {
        tracing::error!(%err, action, "cannot write the audit log");
    }
}
