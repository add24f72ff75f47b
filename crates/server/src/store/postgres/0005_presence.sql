-- Operators' presence as each node reports it, for every node to read: a row per operator
-- connected to a node, renewed by that node's heartbeat and ignored once `expires_at` (ms since
-- the Unix epoch) has passed, so a node that dies takes its operators' presence with it.
CREATE TABLE presence (
    node TEXT NOT NULL,
    user_id TEXT NOT NULL,
    status TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (node, user_id)
);

-- Shared counters (round-robin's turn): one increment per use, whichever node asks.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
