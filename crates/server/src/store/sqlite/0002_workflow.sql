-- The operators' workflow: status, assignee, booking metadata, closing; message kinds (notes,
-- system entries); business events for webhooks, written in the transaction of their change.
ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE conversations ADD COLUMN assignee TEXT;
ALTER TABLE conversations ADD COLUMN metadata TEXT;
ALTER TABLE conversations ADD COLUMN closed INTEGER NOT NULL DEFAULT 0;

ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE messages ADD COLUMN data TEXT;
-- Set once `message.unread_timeout` was recorded for the message.
ALTER TABLE messages ADD COLUMN unread_flagged INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_unflagged ON messages (created_at) WHERE unread_flagged = 0 AND kind = 'text';

CREATE TABLE events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    type            TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'active',
    delivered_up_to INTEGER NOT NULL,
    failing_since   INTEGER NOT NULL DEFAULT 0,
    failures        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL
);

CREATE TABLE leases (
    name   TEXT    NOT NULL PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);
