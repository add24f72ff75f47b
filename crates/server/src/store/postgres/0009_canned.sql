-- Saved replies operators insert by shortcut. Times are milliseconds since the Unix epoch. The
-- constraint is named: the store tells a taken shortcut from other failures by it.
CREATE TABLE canned_replies (
    id         TEXT   NOT NULL PRIMARY KEY,
    shortcut   TEXT   NOT NULL CONSTRAINT canned_shortcut_unique UNIQUE,
    title      TEXT   NOT NULL,
    body       TEXT   NOT NULL,
    created_by TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
