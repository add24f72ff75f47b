-- Reaching people who are not connected: push subscriptions, clients' email addresses, what each
-- person was last told of each conversation, the outbox of pushes and emails, and email links.
-- Times are milliseconds since the Unix epoch.
CREATE TABLE push_subscriptions (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    endpoint   TEXT    NOT NULL UNIQUE,
    p256dh     TEXT    NOT NULL,
    auth       TEXT    NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_by_user ON push_subscriptions (user_id);

-- From the booking upsert; `unsubscribed_at` set by the email's unsubscribe link.
CREATE TABLE contacts (
    user_id         TEXT    NOT NULL PRIMARY KEY,
    email           TEXT    NOT NULL,
    unsubscribed_at BIGINT
);

-- The newest seq each channel told a person of, per conversation, and when.
CREATE TABLE reach_marks (
    conversation_id TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('push', 'email')),
    up_to_seq       BIGINT NOT NULL,
    at              BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id, channel)
);

CREATE TABLE reach_outbox (
    id              BIGSERIAL PRIMARY KEY,
    channel         TEXT    NOT NULL CHECK (channel IN ('push', 'email')),
    conversation_id TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    first_seq       BIGINT NOT NULL,
    up_to_seq       BIGINT NOT NULL,
    target          TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'sent', 'cancelled', 'failed', 'gone')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_at         BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    settled_at      BIGINT
);
CREATE INDEX reach_outbox_due ON reach_outbox (next_at) WHERE state = 'pending';

CREATE TABLE email_links (
    id              TEXT    NOT NULL PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
