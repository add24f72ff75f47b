-- The operator directory: the only users who can be operators of a conversation (assignment,
-- transfer, operator tokens), with the names clients see instead of ids.
CREATE TABLE operators (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    avatar_url TEXT,
    active     BOOLEAN NOT NULL DEFAULT TRUE
);
