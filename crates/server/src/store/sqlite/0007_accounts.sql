-- Operators signing in: accounts, server-side sessions, single-use password reset tokens and the
-- audit log. Times are milliseconds since the Unix epoch. Secrets are stored only as hashes
-- (Argon2id for passwords, SHA-256 hex for session ids and reset tokens).
CREATE TABLE accounts (
    operator_id    TEXT    NOT NULL PRIMARY KEY,
    -- Lower-cased by the store before it is written or looked up.
    email          TEXT    NOT NULL UNIQUE,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash  TEXT,
    totp_secret    TEXT,
    totp_enabled   INTEGER NOT NULL DEFAULT 0,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    failed_count   INTEGER NOT NULL DEFAULT 0,
    locked_until   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE sessions (
    id          TEXT    NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL,
    csrf_token  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    user_agent  TEXT    NOT NULL,
    method      TEXT    NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_operator ON sessions (operator_id);

CREATE TABLE password_resets (
    token_hash  TEXT    NOT NULL PRIMARY KEY,
    operator_id TEXT    NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER
) WITHOUT ROWID;

-- AUTOINCREMENT: ids are never reused, so `audit_since` readers never miss or repeat a line.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT,
    detail TEXT    NOT NULL,
    ip     TEXT
);
