"""``ckpt upgrade`` for SQLite: the layout generations langgraph-checkpoint-sqlite has written.

Before 3.1 the ``writes`` table had no ``task_path`` column; today's ``SqliteSaver.setup()``
adds it, but only when the app calls ``setup()`` with write access, and ckpt's readers order
writes by it. Checkpoints themselves keep their bytes: only v<4 ones whose Sends live in the
parent's writes are rewritten (store-independent, :mod:`ckpt.backends.ops.upgrade`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.upgrade import LayoutUpgrade, UpgradeStep
from ckpt.backends.sqlite.rows import checkpoint_row

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]
"""The store's ``BEGIN IMMEDIATE … COMMIT`` (its connection is in autocommit mode)."""

ADD_TASK_PATH = "ALTER TABLE writes ADD COLUMN task_path TEXT NOT NULL DEFAULT ''"


def layout_upgrade(conn: sqlite3.Connection, has_task_path: bool, transaction: Transaction) -> LayoutUpgrade:
    if has_task_path:
        return LayoutUpgrade("langgraph-checkpoint-sqlite >=3.1 (writes.task_path)")
    rows = conn.execute("SELECT count(*) FROM writes").fetchone()[0]
    step = UpgradeStep(
        "add-task-path",
        "add writes.task_path (TEXT NOT NULL DEFAULT ''), as SqliteSaver.setup() of 3.1+ does",
        rows,
        lambda: _add_task_path(transaction, rows),
    )
    return LayoutUpgrade("langgraph-checkpoint-sqlite <3.1 (writes without task_path)", (step,))


def _add_task_path(transaction: Transaction, rows: int) -> int:
    with transaction() as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(writes)")}
        if "task_path" in columns:  # a rerun after the step was done
            return 0
        conn.execute(ADD_TASK_PATH)
    return rows


def replace_checkpoints(transaction: Transaction, records: Iterable[CheckpointRecord]) -> int:
    """Overwrite checkpoint rows in one transaction (``UPDATE`` keeps the row where it is)."""
    rows = [checkpoint_row(r) for r in records]
    with transaction() as conn:
        cursor = conn.executemany(
            "UPDATE checkpoints SET parent_checkpoint_id = ?, type = ?, checkpoint = ?, metadata = ? "
            "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
            [(*row[3:], *row[:3]) for row in rows],
        )
    return cursor.rowcount
