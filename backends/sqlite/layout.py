"""Which SQLite files are langgraph-checkpoint-sqlite stores (spec §3.1, §3.4), and the DDL to make one.

A file is a store when its ``checkpoints`` and ``writes`` tables have every column the saver
reads and writes; ``writes.task_path`` may be missing (savers before 3.1.2, still read and
written as they are). Anything else (no tables, an unrelated schema, a table that lost a
column) is refused with :class:`NotAStoreError`, before anything is read or changed.
"""

from __future__ import annotations

import sqlite3

from ckpt.backends.core.errors import NotAStoreError

# The DDL of langgraph-checkpoint-sqlite 3.1.2 `setup()`, verbatim.
SCHEMA_3_1_2 = """
CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint BLOB,
    metadata BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);
CREATE TABLE IF NOT EXISTS writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);
"""
ADD_TASK_PATH = "ALTER TABLE writes ADD COLUMN task_path TEXT NOT NULL DEFAULT ''"
"""What the saver's own ``setup()`` runs on a file from before 3.1.2."""

_KEY = ("thread_id", "checkpoint_ns", "checkpoint_id")
REQUIRED = {
    "checkpoints": {*_KEY, "parent_checkpoint_id", "type", "checkpoint", "metadata"},
    "writes": {*_KEY, "task_id", "idx", "channel", "type", "value"},
}
"""Columns every known layout has (1.0 to 3.1.2); 3.1.2 adds ``writes.task_path``."""


def table_columns(conn: sqlite3.Connection, path: str) -> dict[str, set[str]]:
    """Each table's column names; a file that is not a SQLite database is refused."""
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: {c[1] for c in conn.execute(f'PRAGMA table_info("{n}")')} for n in names}
    except sqlite3.DatabaseError as exc:
        raise NotAStoreError(f"{path} is not a SQLite database ({exc})") from exc


def check_layout(path: str, columns: dict[str, set[str]]) -> bool:
    """Refuse what is not a known saver layout; returns whether ``writes`` has ``task_path``."""
    checkpoints, writes = columns.get("checkpoints"), columns.get("writes")
    if not checkpoints or not writes:
        raise NotAStoreError(f"{path} has no LangGraph checkpoint tables (checkpoints, writes)")
    if "thread_ts" in checkpoints or "checkpoint_id" not in checkpoints:
        raise NotAStoreError(
            f"{path} uses the pre-1.0 SqliteSaver layout (thread_ts, pickle), which ckpt does not read"
        )
    for table, needed in REQUIRED.items():
        missing = sorted(needed - columns[table])
        if missing:
            raise NotAStoreError(
                f"{path}: table {table} lacks column(s) {', '.join(missing)}; "
                "not a langgraph-checkpoint-sqlite layout, nothing was changed"
            )
    return "task_path" in writes
