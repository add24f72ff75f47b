-- Full-text search of message bodies (operators' search, `GET /v1/search`). Messages have no
-- integer rowid (WITHOUT ROWID), which FTS5 needs to point at a row: `message_search_rows` gives
-- each message one, and the FTS5 table indexes the bodies under it without keeping a second copy
-- (contentless: bodies are read from `messages`). Tokens are case-folded with accents removed.
CREATE TABLE message_search_rows (
    id              INTEGER PRIMARY KEY,
    conversation_id TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    UNIQUE (conversation_id, seq)
);

CREATE VIRTUAL TABLE message_search USING fts5 (
    body,
    content = '',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Messages stored before this migration.
INSERT INTO message_search_rows (conversation_id, seq)
    SELECT conversation_id, seq FROM messages ORDER BY conversation_id, seq;
INSERT INTO message_search (rowid, body)
    SELECT r.id, m.body FROM message_search_rows r
    JOIN messages m ON m.conversation_id = r.conversation_id AND m.seq = r.seq;

-- Every message from now on, in the transaction that stores it. Messages are never updated or
-- deleted, so inserting is all there is to keep in step.
CREATE TRIGGER messages_searchable AFTER INSERT ON messages BEGIN
    INSERT INTO message_search_rows (conversation_id, seq) VALUES (new.conversation_id, new.seq);
    INSERT INTO message_search (rowid, body)
        VALUES ((SELECT id FROM message_search_rows
                 WHERE conversation_id = new.conversation_id AND seq = new.seq), new.body);
END;
