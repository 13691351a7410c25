"""SQLite: ``delete_thread`` by thread id and the residue scan behind ``ckpt delete`` (issue #22).

SqliteSaver files a thread in two tables only (spec §3): ``checkpoints`` and ``writes``. A thread
is deleted as its ``delete_thread`` does (both tables by ``thread_id``, orphan writes included), in
one transaction; the residue scan counts what either table still holds of the threads or keys.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from ckpt.backends.core.base import CheckpointKey

Transaction = Callable[[], AbstractContextManager[sqlite3.Connection]]


def delete_threads(transaction: Transaction, thread_ids: Sequence[str]) -> int:
    """Both tables by thread id, in one transaction; returns the checkpoints deleted."""
    rows = [(t,) for t in thread_ids]
    with transaction() as conn:
        before = conn.total_changes
        conn.executemany("DELETE FROM checkpoints WHERE thread_id = ?", rows)
        deleted = conn.total_changes - before
        conn.executemany("DELETE FROM writes WHERE thread_id = ?", rows)
    return deleted


def residue(conn: sqlite3.Connection, thread_ids: Sequence[str], keys: Sequence[CheckpointKey]) -> dict[str, int]:
    found = {"checkpoints": 0, "writes": 0}
    for thread_id in thread_ids:
        found["checkpoints"] += _count(conn, "SELECT count(*) FROM checkpoints WHERE thread_id = ?", (thread_id,))
        found["writes"] += _count(conn, "SELECT count(*) FROM writes WHERE thread_id = ?", (thread_id,))
    match = "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
    for key in keys:
        if key.thread_id in thread_ids:
            continue  # counted whole above
        row = (key.thread_id, key.checkpoint_ns, key.checkpoint_id)
        found["checkpoints"] += _count(conn, f"SELECT count(*) FROM checkpoints {match}", row)
        found["writes"] += _count(conn, f"SELECT count(*) FROM writes {match}", row)
    return found


def _count(conn: sqlite3.Connection, query: str, params: tuple[str, ...]) -> int:
    return int(conn.execute(query, params).fetchone()[0])
