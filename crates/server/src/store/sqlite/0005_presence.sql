-- Operators' presence as each node reports it (see the PostgreSQL migration of the same name;
-- with SQLite there is one node, and the table keeps both backends alike).
CREATE TABLE presence (
    node TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (node, user_id)
) WITHOUT ROWID;

-- Shared counters (round-robin's turn).
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
