"""The PostgresSaver schema: its migrations verbatim, and detection of what a database holds."""

from __future__ import annotations

from typing import Any

# langgraph-checkpoint-postgres 3.2.0 `MIGRATIONS`, verbatim; the index is the version `v`.
MIGRATIONS = [
    """CREATE TABLE IF NOT EXISTS checkpoint_migrations (
    v INTEGER PRIMARY KEY
);""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    type TEXT,
    checkpoint JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id)
);""",
    """CREATE TABLE IF NOT EXISTS checkpoint_blobs (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL,
    version TEXT NOT NULL,
    type TEXT NOT NULL,
    blob BYTEA,
    PRIMARY KEY (thread_id, checkpoint_ns, channel, version)
);""",
    """CREATE TABLE IF NOT EXISTS checkpoint_writes (
    thread_id TEXT NOT NULL,
    checkpoint_ns TEXT NOT NULL DEFAULT '',
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    type TEXT,
    blob BYTEA NOT NULL,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx)
);""",
    "ALTER TABLE checkpoint_blobs ALTER COLUMN blob DROP not null;",
    "SELECT 1;",
    """
    CREATE INDEX CONCURRENTLY IF NOT EXISTS checkpoints_thread_id_idx ON checkpoints(thread_id);
    """,
    """
    CREATE INDEX CONCURRENTLY IF NOT EXISTS checkpoint_blobs_thread_id_idx ON checkpoint_blobs(thread_id);
    """,
    """
    CREATE INDEX CONCURRENTLY IF NOT EXISTS checkpoint_writes_thread_id_idx ON checkpoint_writes(thread_id);
    """,
    """ALTER TABLE checkpoint_writes ADD COLUMN IF NOT EXISTS task_path TEXT NOT NULL DEFAULT '';""",
]
LATEST_VERSION = len(MIGRATIONS) - 1
TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations")


def describe(columns: dict[str, set[str]], migration: int | None) -> dict[str, Any]:
    """The layout found, as reported by ``layout()`` and in export headers."""
    writes = columns.get("checkpoint_writes", set())
    drift = []
    if migration != LATEST_VERSION:
        drift.append(
            f"checkpoint_migrations is at {migration}; PostgresSaver 3.2.0 setup() runs up to {LATEST_VERSION}"
        )
    return {
        "saver": "langgraph-checkpoint-postgres",
        "drift": drift,
        "migration": migration,
        "version": ">=2.0 (migration 9, task_path)"
        if migration == LATEST_VERSION
        else f"older (migration {migration})",
        "task_path": "task_path" in writes,
    }


def is_shallow(columns: dict[str, set[str]]) -> bool:
    """ShallowPostgresSaver uses the same table names without checkpoint_id/version columns (spec §4.5)."""
    return "checkpoints" in columns and "checkpoint_id" not in columns["checkpoints"]
