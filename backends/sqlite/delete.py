"""SQLite deletes by key (prune's general path, compact's orphan writes) and their integrity guard.

Each batch is one transaction: the batch's checkpoints go first; then the guard reads the table
as that left it and refuses to go on if any checkpoint remains whose key is among the writes
about to be deleted and that has writes: a kept checkpoint would lose its pending writes. It
raises :class:`IntegrityError` and the caller rolls the whole batch back. Only then do the writes
go, by the same keys the guard checked (an equality on the whole key, so every write row deleted
belongs to a checkpoint that no longer exists: deleted in this batch, or an orphan).

Why not ``DELETE ... RETURNING`` and a check of the rows returned: measured on 198k checkpoints
with 4 writes each, handing every deleted write row back to Python made prune's delete phase
1.5-1.8x slower; this check costs a keyed lookup per key and answers the same question.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from ckpt.backends.core.errors import IntegrityError

KeyRow = tuple[str, str, str]
"""``(thread_id, checkpoint_ns, checkpoint_id)``."""

_KEY = "thread_id, checkpoint_ns, checkpoint_id"
_MATCH = "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
_OWNED = """
SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id FROM temp.ckpt_doomed k
CROSS JOIN checkpoints c
  ON c.thread_id = k.thread_id AND c.checkpoint_ns = k.checkpoint_ns AND c.checkpoint_id = k.checkpoint_id
WHERE EXISTS (SELECT 1 FROM writes w WHERE w.thread_id = c.thread_id AND w.checkpoint_ns = c.checkpoint_ns
              AND w.checkpoint_id = c.checkpoint_id)
LIMIT 1
"""
# CROSS JOIN keeps SQLite to this order (keys, then a seek each); the writes are probed from the
# checkpoint row found, so in a sound batch, where none is found, each key costs one index seek.


@dataclass
class DeleteBatch:
    """What one transaction deletes: checkpoint rows by key, and the writes of keys."""

    checkpoints: list[KeyRow]
    writes: list[KeyRow] = field(default_factory=list)


def delete_batch(conn: sqlite3.Connection, batch: DeleteBatch) -> tuple[int, int]:
    """Delete the batch's checkpoints, guard, delete its writes; returns how many checkpoints and
    how many writes were deleted. Runs inside the caller's write transaction, which must roll
    back when this raises."""
    before = conn.total_changes
    conn.executemany(f"DELETE FROM checkpoints {_MATCH}", batch.checkpoints)
    checkpoints = conn.total_changes - before
    _guard(conn, batch.writes)
    before = conn.total_changes
    conn.executemany(f"DELETE FROM writes {_MATCH}", batch.writes)
    return checkpoints, conn.total_changes - before


def orphan_write_keys(conn: sqlite3.Connection, idle_before: str) -> list[KeyRow]:
    """Keys of writes older than ``idle_before`` whose checkpoint row does not exist."""
    return conn.execute(
        f"SELECT DISTINCT {_KEY} FROM writes w WHERE checkpoint_id < ? AND NOT EXISTS "
        "(SELECT 1 FROM checkpoints c WHERE c.thread_id = w.thread_id "
        "AND c.checkpoint_ns = w.checkpoint_ns AND c.checkpoint_id = w.checkpoint_id)",
        (idle_before,),
    ).fetchall()


def _guard(conn: sqlite3.Connection, write_keys: list[KeyRow]) -> None:
    """Raise when a checkpoint that remains has writes among those about to be deleted."""
    if not write_keys:
        return
    # A temp table lives in the connection's own temp database, never in the store's file.
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS ckpt_doomed ({_KEY}, PRIMARY KEY ({_KEY})) WITHOUT ROWID")
    conn.execute("DELETE FROM temp.ckpt_doomed")
    conn.executemany("INSERT OR IGNORE INTO temp.ckpt_doomed VALUES (?, ?, ?)", write_keys)
    row = conn.execute(_OWNED).fetchone()
    if row is not None:
        thread_id, ns, checkpoint_id = row
        raise IntegrityError(
            f"integrity guard: pending writes of kept checkpoint {checkpoint_id} (thread {thread_id!r}, "
            f"ns {ns!r}) were about to go; the batch was rolled back, nothing of it was deleted"
        )
