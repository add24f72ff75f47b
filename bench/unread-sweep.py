#!/usr/bin/env python3
"""Times the `message.unread_timeout` check's query on a copy of a SQLite database whose every
message has been read: over the whole history (what each check did before it remembered where
the last one ended) and over its last 10 s (what a check walks now: the 5 s since the last check
and the 5 s margin).

Usage: bench/unread-sweep.py COPY_OF_SURECHAT_DB    (it marks every message read: use a copy)
"""
import sqlite3
import sys
import time

db = sqlite3.connect(sys.argv[1])
db.execute(
    "UPDATE participants SET"
    " read_seq = (SELECT last_seq FROM conversations WHERE id = conversation_id),"
    " delivered_seq = (SELECT last_seq FROM conversations WHERE id = conversation_id)"
)
db.commit()
messages, newest = db.execute("SELECT count(*), max(created_at) FROM messages").fetchone()
columns = ", ".join(
    f"m.{c}"
    for c in "conversation_id id seq sender_id sender_role body created_at kind data attachments".split()
)
# The query of `flag_unread` in crates/server/src/store/sqlite/write.rs.
query = f"""SELECT {columns} FROM messages m
 WHERE m.unread_flagged = 0 AND m.kind = 'text' AND m.created_at > ?1 AND m.created_at <= ?2
   AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.conversation_id = m.conversation_id
                   AND p.role <> m.sender_role AND p.read_seq >= m.seq)
 ORDER BY m.created_at LIMIT 1000"""
for label, after in [("whole history", 0), ("last 10 s", newest - 10_000)]:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        due = db.execute(query, (after, newest)).fetchall()
        best = min(best, time.perf_counter() - start)
    print(f"{label}: {len(due)} due of {messages} messages, {best * 1e3:.1f} ms (best of 5)")
