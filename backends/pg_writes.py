"""Bulk, idempotent inserts: ``COPY`` into a session temp table, then ``INSERT … ON CONFLICT DO NOTHING``."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

COLUMNS = {
    "checkpoints": (
        "thread_id",
        "checkpoint_ns",
        "checkpoint_id",
        "parent_checkpoint_id",
        "type",
        "checkpoint",
        "metadata",
    ),
    "checkpoint_blobs": ("thread_id", "checkpoint_ns", "channel", "version", "type", "blob"),
    "checkpoint_writes": (
        "thread_id",
        "checkpoint_ns",
        "checkpoint_id",
        "task_id",
        "task_path",
        "idx",
        "channel",
        "type",
        "blob",
    ),
}


def stage_and_insert(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]]) -> int:
    """Insert ``rows`` into ``table`` unless their primary key exists; returns how many were new."""
    if not rows:
        return 0
    stage = sql.Identifier(f"ckpt_stage_{table}")
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
    conn.execute(
        sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS").format(
            stage, sql.Identifier(table)
        )
    )
    with conn.cursor() as cur:
        with cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns)) as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                sql.Identifier(table), columns, columns, stage
            )
        )
        inserted = cur.rowcount
        cur.execute(sql.SQL("TRUNCATE {}").format(stage))
    return inserted
