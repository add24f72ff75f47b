-- The same shape as the SQLite schema. `last_seq` is incremented in the transaction that stores
-- the message; the row lock it takes is what keeps seq gap-free when several nodes write to one
-- conversation at once.
CREATE TABLE conversations (
    id         TEXT   NOT NULL PRIMARY KEY,
    epoch      BIGINT NOT NULL,
    last_seq   BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE participants (
    conversation_id TEXT   NOT NULL REFERENCES conversations (id),
    user_id         TEXT   NOT NULL,
    role            TEXT   NOT NULL CHECK (role IN ('client', 'operator')),
    delivered_seq   BIGINT NOT NULL DEFAULT 0,
    read_seq        BIGINT NOT NULL DEFAULT 0,
    joined_at       BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE INDEX participants_by_user ON participants (user_id);

CREATE TABLE messages (
    conversation_id TEXT   NOT NULL REFERENCES conversations (id),
    seq             BIGINT NOT NULL,
    id              TEXT   NOT NULL UNIQUE,
    sender_id       TEXT   NOT NULL,
    sender_role     TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
