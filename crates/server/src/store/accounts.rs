//! What storage keeps for operators signing in (see [`crate::signin`]): accounts (an operator of
//! the directory with an email, a role, a password hash, a second factor and a lockout state),
//! server-side sessions, single-use password reset tokens, and the audit log.
//!
//! Secrets are never stored as given: passwords as Argon2id PHC strings, session ids and reset
//! tokens as their SHA-256 (the browser holds the only copy of the token itself).

use serde::{Deserialize, Serialize};

use super::Pending;

/// How stale a session's `last_seen` may get before a lookup moves it: looking a session up on
/// every request must not write on every request.
pub const LAST_SEEN_STEP_MS: u64 = 60_000;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountRole {
    /// Manages operators, webhooks and settings, and works conversations.
    Admin,
    /// Works conversations.
    Agent,
}

impl AccountRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountRole::Admin => "admin",
            AccountRole::Agent => "agent",
        }
    }

    /// The role of a stored name.
    pub fn parse(text: &str) -> Option<AccountRole> {
        match text {
            "admin" => Some(AccountRole::Admin),
            "agent" => Some(AccountRole::Agent),
            _ => None,
        }
    }
}

/// An operator's sign-in account. Its `operator_id` is an operator of the directory (name,
/// avatar and the active flag live there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The operator (directory id, the `sub` of their tokens).
    pub operator_id: String,
    /// Sign-in address, stored lower-cased; unique.
    pub email: String,
    /// Admin or agent.
    pub role: AccountRole,
    /// Argon2id PHC string; `None` for an account that signs in only through single sign-on
    /// (or has not set a password yet).
    pub password_hash: Option<String>,
    /// The TOTP secret (base32), once enrolment started.
    pub totp_secret: Option<String>,
    /// Whether sign-in asks for a TOTP code (enrolment confirmed).
    pub totp_enabled: bool,
    /// The last TOTP time step accepted (a code is accepted once).
    pub totp_last_step: u64,
    /// Failed sign-ins since the last success.
    pub failed_count: u32,
    /// No sign-in before this, in milliseconds since the Unix epoch (0: not locked).
    pub locked_until: u64,
    /// Created, in milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the cookie's token: what identifies the session in storage and in the
    /// API (`DELETE /v1/sessions/{id}`); the token itself is only in the cookie.
    pub id: String,
    /// Whose.
    pub operator_id: String,
    /// The token every state-changing request must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Created, in milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Last used (at most a minute stale), in milliseconds since the Unix epoch.
    pub last_seen: u64,
    /// Ends at the latest, in milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// The browser's `User-Agent` when it signed in (for the sessions list).
    pub user_agent: String,
    /// How it signed in: `password`, `password+totp` or `oidc:<provider>`.
    pub method: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEntry {
    /// Ascending.
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub at: u64,
    /// Who did it: an operator id, `admin-key`, `system`, or the email tried in a failed
    /// sign-in.
    pub actor: String,
    /// What: `signin`, `signin_failed`, `locked`, `signout`, `session_revoked`, `account_created`,
    /// `role_changed`, `operator_disabled`, `operator_enabled`, `operator_deleted`, `password_changed`,
    /// `password_reset_requested`, `totp_enabled`, `totp_disabled`, `webhook_created`,
    /// `webhook_deleted`, `webhook_enabled`, `tokens_revoked`, `canned_created`, `canned_updated`,
    /// `canned_deleted`.
    pub action: String,
    /// The account, session or webhook acted on, if any.
    pub target: Option<String>,
    /// Details (never a password, hash, token or TOTP secret).
    pub detail: serde_json::Value,
    /// The client address, if known.
    pub ip: Option<String>,
}

/// What a failed sign-in did to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// Failures since the last success, this one included.
    pub failed_count: u32,
    /// Locked until then (0: not locked).
    pub locked_until: u64,
}

/// Storage for sign-in: see the module's documentation.
pub trait AccountStore: Send + Sync {
    /// Creates or replaces an account (by operator id); answers `false` and writes nothing when
    /// another operator's account already has this email.
    fn put_account(&self, account: Account) -> Pending<bool>;

    /// The account of an operator.
    fn account(&self, operator_id: String) -> Pending<Option<Account>>;

    /// The account with this email (compared lower-cased).
    fn account_by_email(&self, email: String) -> Pending<Option<Account>>;

    /// Every account, by operator id.
    fn accounts(&self) -> Pending<Vec<Account>>;

    /// Records a failed sign-in: counts it, and locks the account until `now + lock_ms` when the
    /// count reaches `lock_after` (then every further failure locks it again from `now`).
    fn sign_in_failed(
        &self,
        operator_id: String,
        lock_after: u32,
        lock_ms: u64,
        now: u64,
    ) -> Pending<Failure>;

    /// Records a successful sign-in: the failure count and lock are cleared; with a TOTP code,
    /// `totp_step` is stored as the last accepted step. Answers `false` (and changes nothing)
    /// when `totp_step` is not above the last accepted one: a code is accepted once.
    fn sign_in_succeeded(&self, operator_id: String, totp_step: Option<u64>) -> Pending<bool>;

    /// Stores a new session.
    fn create_session(&self, session: Session) -> Pending<()>;

    /// The session with this id if it is not expired at `now`; its `last_seen` moves to `now`
    /// when older than a minute ([`LAST_SEEN_STEP_MS`]).
    fn session(&self, id: String, now: u64) -> Pending<Option<Session>>;

    /// An operator's unexpired sessions, newest first.
    fn sessions_of(&self, operator_id: String, now: u64) -> Pending<Vec<Session>>;

    /// Ends a session (of this operator, if given); whether one ended.
    fn delete_session(&self, operator_id: Option<String>, id: String) -> Pending<bool>;

    /// Ends every session of an operator (disabled, password changed); how many.
    fn delete_sessions_of(&self, operator_id: String) -> Pending<u32>;

    /// Stores a password reset token's hash for an operator, valid until `expires_at`.
    fn create_reset(&self, token_hash: String, operator_id: String, expires_at: u64)
        -> Pending<()>;

    /// Uses a reset token once: the operator it was for, if it is unused and unexpired at `now`.
    fn use_reset(&self, token_hash: String, now: u64) -> Pending<Option<String>>;

    /// Appends to the audit log (`id` is assigned); answers the stored entry.
    fn audit(&self, entry: AuditEntry) -> Pending<AuditEntry>;

    /// Audit entries with `id > after`, ascending, at most `limit`.
    fn audit_since(&self, after: u64, limit: u32) -> Pending<Vec<AuditEntry>>;
}
