-- Operators signing in: accounts, server-side sessions, single-use password reset tokens and the
-- audit log. Times are milliseconds since the Unix epoch. Secrets are stored only as hashes
-- (Argon2id for passwords, SHA-256 hex for session ids and reset tokens).
CREATE TABLE accounts (
    operator_id    TEXT    NOT NULL PRIMARY KEY,
    -- Lower-cased by the store before it is written or looked up. The constraint is named: the
    -- store tells a taken email from other failures by it.
    email          TEXT    NOT NULL CONSTRAINT accounts_email_unique UNIQUE,
    role           TEXT    NOT NULL CHECK (role IN ('admin', 'agent')),
    password_hash  TEXT,
    totp_secret    TEXT,
    totp_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    totp_last_step BIGINT  NOT NULL DEFAULT 0,
    failed_count   BIGINT  NOT NULL DEFAULT 0,
    locked_until   BIGINT  NOT NULL DEFAULT 0,
    created_at     BIGINT  NOT NULL
);

CREATE TABLE sessions (
    id          TEXT   NOT NULL PRIMARY KEY,
    operator_id TEXT   NOT NULL,
    csrf_token  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    user_agent  TEXT   NOT NULL,
    method      TEXT   NOT NULL
);
CREATE INDEX sessions_by_operator ON sessions (operator_id);

CREATE TABLE password_resets (
    token_hash  TEXT   NOT NULL PRIMARY KEY,
    operator_id TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE audit_log (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    actor  TEXT   NOT NULL,
    action TEXT   NOT NULL,
    target TEXT,
    detail TEXT   NOT NULL,
    ip     TEXT
);
