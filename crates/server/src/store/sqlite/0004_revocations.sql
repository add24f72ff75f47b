-- Token revocation: every token of a user issued at or before `revoked_at` (seconds since the
-- Unix epoch) is refused.
CREATE TABLE revocations (
    user_id TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
) WITHOUT ROWID;
