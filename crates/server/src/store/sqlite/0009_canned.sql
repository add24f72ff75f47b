-- Saved replies operators insert by shortcut. Times are milliseconds since the Unix epoch.
CREATE TABLE canned_replies (
    id         TEXT    NOT NULL PRIMARY KEY,
    shortcut   TEXT    NOT NULL UNIQUE,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
