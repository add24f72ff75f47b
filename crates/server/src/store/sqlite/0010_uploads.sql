-- Attachments: uploads (their bytes are files under <data>/uploads/, named by `file`, never by
-- the user) and the messages naming them. Times are milliseconds since the Unix epoch.
ALTER TABLE messages ADD COLUMN attachments TEXT;

CREATE TABLE uploads (
    id            TEXT    NOT NULL PRIMARY KEY,
    uploader      TEXT    NOT NULL,
    conversation_id TEXT  NOT NULL,
    name          TEXT    NOT NULL,
    declared_type TEXT,
    length        INTEGER NOT NULL,
    "offset"      INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL,
    content_type  TEXT,
    size          INTEGER,
    sha256        TEXT,
    width         INTEGER,
    height        INTEGER,
    thumb         BLOB,
    file          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
);
CREATE INDEX uploads_by_uploader ON uploads (uploader, created_at);
CREATE INDEX uploads_by_age ON uploads (created_at);

-- Written in the transaction of the message, so a named upload is never collected.
CREATE TABLE message_attachments (
    upload_id       TEXT NOT NULL,
    message_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (upload_id, message_id)
) WITHOUT ROWID;
