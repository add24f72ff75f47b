-- Attachments: uploads, their bytes in chunk rows every node reads (so an upload started on one
-- node finishes on another), and the messages naming them. Times are ms since the Unix epoch.
ALTER TABLE messages ADD COLUMN attachments TEXT;

CREATE TABLE uploads (
    id              TEXT    NOT NULL PRIMARY KEY,
    uploader        TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    declared_type   TEXT,
    length          BIGINT  NOT NULL,
    "offset"        BIGINT  NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL,
    content_type    TEXT,
    size            BIGINT,
    sha256          TEXT,
    width           INTEGER,
    height          INTEGER,
    thumb           BYTEA,
    -- Which generation of chunks holds the content: 0 as uploaded, 1 once metadata was removed.
    version         SMALLINT NOT NULL DEFAULT 0,
    -- Set in the transaction of the first message naming it: such an upload is never collected
    -- (the collector's DELETE rechecks this column after waiting for that transaction's lock).
    named           BOOLEAN NOT NULL DEFAULT false,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX uploads_by_uploader ON uploads (uploader, created_at);
CREATE INDEX uploads_by_age ON uploads (created_at);

CREATE TABLE upload_chunks (
    upload_id TEXT   NOT NULL REFERENCES uploads (id) ON DELETE CASCADE,
    version   SMALLINT NOT NULL,
    start     BIGINT NOT NULL,
    data      BYTEA  NOT NULL,
    PRIMARY KEY (upload_id, version, start)
);

CREATE TABLE message_attachments (
    upload_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (upload_id, message_id)
);
