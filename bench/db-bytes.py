#!/usr/bin/env python3
"""Where a SQLite data directory's bytes go: each table and index, in bytes per message.

Usage: bench/db-bytes.py DATA_DIR_OR_DB_FILE

Reads SQLite's dbstat table (pages of each b-tree, WAL included once checkpointed; run it on a
stopped server's files). Bytes per message divide by the rows of `messages`.
"""
import os
import sqlite3
import sys

path = sys.argv[1]
if os.path.isdir(path):
    path = os.path.join(path, "surechat.db")
db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
(messages,) = db.execute("SELECT count(*) FROM messages").fetchone()
rows = db.execute(
    "SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC"
).fetchall()
total = sum(size for _, size, _ in rows)
per = max(messages, 1)
print(f"{messages} messages, {total / 1e6:.1f} MB in pages, {total / per:.0f} bytes per message")
print(f"{'table or index':<40} {'MB':>8} {'B/msg':>8} {'payload B/msg':>14}")
for name, size, payload in rows:
    if size / per >= 0.5:
        print(f"{name:<40} {size / 1e6:8.2f} {size / per:8.1f} {payload / per:14.1f}")
