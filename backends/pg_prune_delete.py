"""The delete half of the PostgreSQL prune: spooled keys in a temporary table, removed in batches.

Each batch is one transaction of set-based statements joined to ``ckpt_doomed`` by primary key:

1. threads that gained a checkpoint since the plan leave the spool (a writer came back: its
   thread is no longer idle, and a new checkpoint may share blobs with an old one);
2. the batch's writes, then its checkpoints;
3. the blobs those checkpoints referenced that no remaining checkpoint of their (thread, namespace) references.
   Only blobs a deleted checkpoint referenced are candidates, never unreferenced ones: those
   may belong to a checkpoint being written right now (``put`` sends blobs first, spec §8.8).

A kill between batches leaves whole batches done and the rest untouched; a rerun plans again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ckpt.backends.pg_prune import SESSION
from ckpt.backends.retention import PruneReport, ThreadPlan

_MOVED = "written during prune"

# The doomed rows, and one row per thread (its first) that carries the thread's status for the report.
INSERT_SPOOL = """
INSERT INTO ckpt_doomed (thread_id, checkpoint_ns, checkpoint_id, doomed, newest, writes, bytes,
                         n_thread, regular, skipped, whole)
SELECT thread_id, checkpoint_ns, checkpoint_id, doomed, newest, writes, bytes, n, regular, skipped, whole
FROM sized WHERE doomed OR first
ORDER BY thread_id, checkpoint_ns, checkpoint_id
"""

_KEYS = "x.thread_id = d.thread_id AND x.checkpoint_ns = d.checkpoint_ns AND x.checkpoint_id = d.checkpoint_id"
_BATCH = "d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed"
# The batch's keys are one contiguous stretch of the primary key (the spool is in key order), so
# a range condition lets the planner read just that stretch of each table's index.
_RANGE = "(x.thread_id, x.checkpoint_ns, x.checkpoint_id) BETWEEN (%(t0)s, %(n0)s, %(i0)s) AND (%(t1)s, %(n1)s, %(i1)s)"

_BOUNDS = """
SELECT thread_id, checkpoint_ns, checkpoint_id FROM ckpt_doomed d WHERE d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed
ORDER BY thread_id {0}, checkpoint_ns {0}, checkpoint_id {0} LIMIT 1
"""
_DROP_MOVED = """
DELETE FROM ckpt_doomed d USING (
  SELECT t.thread_id FROM (SELECT DISTINCT thread_id, newest FROM ckpt_doomed d
                           WHERE d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed) t
  WHERE (SELECT max(c.checkpoint_id COLLATE "C") FROM checkpoints c WHERE c.thread_id = t.thread_id) > t.newest
) m WHERE d.thread_id = m.thread_id
RETURNING d.thread_id
"""
# One statement: writes, checkpoints, then the blobs those checkpoints referenced that no other
# checkpoint of their (thread, namespace) does. Every part sees the statement's snapshot, in
# which the batch's checkpoints still exist: they are left out of "kept" by key.
_DELETE_BATCH = f"""
WITH writes AS (
  DELETE FROM checkpoint_writes x USING ckpt_doomed d WHERE {_BATCH} AND {_RANGE} AND {_KEYS}
), gone AS (
  DELETE FROM checkpoints x USING ckpt_doomed d WHERE {_BATCH} AND {_RANGE} AND {_KEYS}
  RETURNING x.thread_id, x.checkpoint_ns, x.checkpoint -> 'channel_versions' AS versions
), freed AS (
  SELECT g.thread_id, g.checkpoint_ns, e.key AS channel, e.value AS version
  FROM gone g, jsonb_each_text(g.versions) e
), kept AS (
  SELECT x.thread_id, x.checkpoint_ns, e.key, e.value
  FROM (SELECT DISTINCT thread_id, checkpoint_ns FROM gone) s
  JOIN checkpoints x ON x.thread_id = s.thread_id AND x.checkpoint_ns = s.checkpoint_ns,
  jsonb_each_text(x.checkpoint -> 'channel_versions') e
  WHERE NOT EXISTS (SELECT 1 FROM ckpt_doomed d WHERE {_BATCH} AND {_KEYS})
), blobs AS (
  DELETE FROM checkpoint_blobs b USING (SELECT * FROM freed EXCEPT SELECT * FROM kept) f
  WHERE b.thread_id = f.thread_id AND b.checkpoint_ns = f.checkpoint_ns AND b.channel = f.channel
    AND b.version = f.version
)
SELECT count(*) FROM gone
"""


def create_spool(conn: psycopg.Connection[Any]) -> None:
    """Session temporary tables: gone with the connection, so a killed run leaves nothing behind."""
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_doomed")
    conn.execute(
        "CREATE TEMP TABLE ckpt_doomed (n bigserial, thread_id text, checkpoint_ns text, checkpoint_id text, "
        "doomed bool, newest text, writes bigint, bytes bigint, n_thread bigint, regular bool, skipped text, "
        "whole bool)"
    )


def add_keys(conn: psycopg.Connection[Any], threads: list[tuple[ThreadPlan, str]]) -> None:
    """Spool the keys of threads planned in Python (after the SQL-planned ones), with their newest id."""
    columns = "ckpt_doomed (thread_id, checkpoint_ns, checkpoint_id, newest, doomed)"
    with conn.transaction(), conn.cursor().copy(f"COPY {columns} FROM STDIN") as copy:
        for thread, newest in threads:
            for key in thread.delete:
                copy.write_row((key.thread_id, key.checkpoint_ns, key.checkpoint_id, newest, True))


def delete_spooled(conn: psycopg.Connection[Any], report: PruneReport, batch_size: int) -> PruneReport:
    """Delete the spooled keys ``batch_size`` checkpoints per transaction; errors are reported, not raised."""
    report.dry_run = False
    conn.execute("CREATE INDEX ON ckpt_doomed (n)")
    conn.execute("ANALYZE ckpt_doomed")  # so the planner joins by primary key, not by scanning the tables
    row = conn.execute("SELECT min(n), max(n) FROM ckpt_doomed WHERE doomed").fetchone()
    if row is None or row[0] is None:
        return report
    lo, last = int(row[0]), int(row[1])
    while lo <= last:
        window: dict[str, Any] = {"lo": lo, "hi": lo + batch_size - 1}
        try:
            _delete_batch(conn, window, report)
        except psycopg.Error as exc:  # reported: a cron run must say what it could not do
            report.errors.append(f"deleting spooled checkpoints {lo}..{window['hi']}: {exc}".strip())
        lo += batch_size
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_doomed")
    return report


def _delete_batch(conn: psycopg.Connection[Any], window: dict[str, Any], report: PruneReport) -> None:
    with conn.transaction():
        conn.execute(SESSION)
        moved = {r[0] for r in conn.execute(_DROP_MOVED, window).fetchall()}
        first = conn.execute(_BOUNDS.format("ASC"), window).fetchone()
        last = conn.execute(_BOUNDS.format("DESC"), window).fetchone()
        row = None
        if first is not None and last is not None:
            bounds = dict(zip(("t0", "n0", "i0", "t1", "n1", "i1"), (*first, *last)))
            row = conn.execute(_DELETE_BATCH, {**window, **bounds}).fetchone()
    if moved:
        report.skipped[_MOVED] = report.skipped.get(_MOVED, 0) + len(moved)
    report.checkpoints_deleted += int(row[0]) if row else 0
