-- The search index is kept by the writer once per batch, just before its commit, rather than by
-- a trigger on each insert. Each request of a batch runs in a savepoint of its own (so one that
-- fails does not roll back the others), and FTS5 writes out what it holds at every savepoint's
-- release: with the trigger, every message became an index segment of its own, merged again
-- later — a fifth of the writer's time in a profile. Outside the savepoints, a batch's messages
-- make one segment. Still in the transaction that stores them: a message is searchable from its
-- commit.
DROP TRIGGER messages_searchable;
