-- The operators' workflow: status, assignee, booking metadata, closing; message kinds (notes,
-- system entries); business events for webhooks, written in the transaction of their change.
ALTER TABLE conversations ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE conversations ADD COLUMN assignee TEXT;
ALTER TABLE conversations ADD COLUMN metadata TEXT;
ALTER TABLE conversations ADD COLUMN closed BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'text';
ALTER TABLE messages ADD COLUMN data TEXT;
ALTER TABLE messages ADD COLUMN unread_flagged BOOLEAN NOT NULL DEFAULT FALSE;
CREATE INDEX messages_unflagged ON messages (created_at) WHERE NOT unread_flagged AND kind = 'text';

CREATE TABLE events (
    id              BIGSERIAL PRIMARY KEY,
    type            TEXT   NOT NULL,
    conversation_id TEXT   NOT NULL,
    data            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL
);

CREATE TABLE webhooks (
    id              BIGSERIAL PRIMARY KEY,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'active',
    delivered_up_to BIGINT  NOT NULL,
    failing_since   BIGINT  NOT NULL DEFAULT 0,
    failures        BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL
);

CREATE TABLE leases (
    name   TEXT   NOT NULL PRIMARY KEY,
    holder TEXT   NOT NULL,
    until  BIGINT NOT NULL
);
