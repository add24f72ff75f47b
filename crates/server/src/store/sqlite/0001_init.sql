-- Conversations are keyed by the integrator's external id (e.g. a booking id). `last_seq` is the
-- seq of the newest message: the next message gets last_seq + 1 in the transaction that stores it.
CREATE TABLE conversations (
    id         TEXT    NOT NULL PRIMARY KEY,
    epoch      INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

-- Per participant, the cumulative receipt cursors (up-to markers, not one row per message).
CREATE TABLE participants (
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    user_id         TEXT    NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('client', 'operator')),
    delivered_seq   INTEGER NOT NULL DEFAULT 0,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    joined_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;

CREATE INDEX participants_by_user ON participants (user_id);

-- Messages, in seq order per conversation. `id` is the device's UUID: the idempotency key.
CREATE TABLE messages (
    conversation_id TEXT    NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    id              TEXT    NOT NULL UNIQUE,
    sender_id       TEXT    NOT NULL,
    sender_role     TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
