"""The delete half of the PostgreSQL prune: spooled keys in temporary tables, removed in batches.

The plan left the doomed checkpoints in ``ckpt_doomed`` and the blobs they free in ``ckpt_freed``
(:mod:`ckpt.backends.pg_prune_blobs`). Batches are whole threads (about ``batch_size``
checkpoints), each one transaction of set-based statements joined to the spools by primary key:

1. threads that gained a checkpoint since the plan leave both spools (a writer came back: its
   thread is no longer idle, and a new checkpoint may share blobs with an old one);
2. the batch's writes, its checkpoints and its threads' freed blobs, in one statement.

A kill between batches leaves whole threads done and the rest untouched; a rerun plans again.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ckpt.backends.pg_prune import SESSION
from ckpt.backends.retention import PruneReport, ThreadPlan

_MOVED = "written during prune"

# The doomed rows, and one row per thread (its first) that carries the thread's status for the report.
INSERT_SPOOL = """
INSERT INTO ckpt_doomed (thread_id, checkpoint_ns, checkpoint_id, chained, doomed, newest, writes, bytes,
                         n_thread, regular, skipped, whole)
SELECT thread_id, checkpoint_ns, checkpoint_id, chained, doomed, newest, writes, bytes, n, regular, skipped, whole
FROM sized WHERE doomed OR first
ORDER BY thread_id, checkpoint_ns, checkpoint_id
"""

_KEYS = "x.thread_id = d.thread_id AND x.checkpoint_ns = d.checkpoint_ns AND x.checkpoint_id = d.checkpoint_id"
_BATCH = "d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed"
# The batch's keys are one contiguous stretch of the primary key (the spool is in key order), so
# a range condition lets the planner read just that stretch of each table's index.
_RANGE = "(x.thread_id, x.checkpoint_ns, x.checkpoint_id) BETWEEN (%(t0)s, %(n0)s, %(i0)s) AND (%(t1)s, %(n1)s, %(i1)s)"

# The batch's first and last keys. OFFSET 0: its rows are found by ``n`` first, then sorted (an index
# on thread_id must not drive the ORDER BY ... LIMIT: it scanned the spool from its start, 13 ms a batch).
_BOUNDS = """
WITH b AS (
  SELECT thread_id, checkpoint_ns, checkpoint_id FROM ckpt_doomed d WHERE d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed
  OFFSET 0
)
SELECT * FROM (SELECT * FROM b ORDER BY thread_id, checkpoint_ns, checkpoint_id LIMIT 1) first,
              (SELECT * FROM b ORDER BY thread_id DESC, checkpoint_ns DESC, checkpoint_id DESC LIMIT 1) last
"""
# The batch ends with the last doomed row of the thread its nominal end falls in: a thread's blobs
# go with its last doomed checkpoint, so a kill never leaves a doomed thread half-deleted across two
# batches. (Only doomed rows: a thread planned in Python has its status row among the SQL-planned
# threads and its doomed rows appended at the end of the spool.)
_THREAD_END = """
SELECT max(d.n) FROM ckpt_doomed d
WHERE d.doomed AND d.thread_id = (SELECT e.thread_id FROM ckpt_doomed e WHERE e.n <= %(hi)s AND e.doomed
                                  ORDER BY e.n DESC LIMIT 1)
"""
_DROP_MOVED = """
WITH moved AS (
  DELETE FROM ckpt_doomed d USING (
    SELECT t.thread_id FROM (SELECT DISTINCT thread_id, newest FROM ckpt_doomed d
                             WHERE d.n BETWEEN %(lo)s AND %(hi)s AND d.doomed) t
    WHERE (SELECT max(c.checkpoint_id COLLATE "C") FROM checkpoints c WHERE c.thread_id = t.thread_id) > t.newest
  ) m WHERE d.thread_id = m.thread_id
  RETURNING d.thread_id
), unfreed AS (
  DELETE FROM ckpt_freed f USING moved m WHERE f.thread_id = m.thread_id
)
SELECT DISTINCT thread_id FROM moved
"""
# One statement: the batch's writes, checkpoints, and the blobs the plan found its threads free.
_DELETE_BATCH = f"""
WITH writes AS (
  DELETE FROM checkpoint_writes x USING ckpt_doomed d WHERE {_BATCH} AND {_RANGE} AND {_KEYS}
), gone AS (
  DELETE FROM checkpoints x USING ckpt_doomed d WHERE {_BATCH} AND {_RANGE} AND {_KEYS} RETURNING 1
), blobs AS (
  DELETE FROM checkpoint_blobs b USING ckpt_freed f
  WHERE f.thread_id IN (SELECT d.thread_id FROM ckpt_doomed d WHERE {_BATCH})
    AND f.thread_id BETWEEN %(t0)s AND %(t1)s AND b.thread_id BETWEEN %(t0)s AND %(t1)s  -- index ranges
    AND b.thread_id = f.thread_id AND b.checkpoint_ns = f.checkpoint_ns AND b.channel = f.channel
    AND b.version = f.version
  RETURNING 1
)
SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM blobs)
"""


def create_spool(conn: psycopg.Connection[Any]) -> None:
    """Session temporary tables: gone with the connection, so a killed run leaves nothing behind."""
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_doomed")
    conn.execute(
        "CREATE TEMP TABLE ckpt_doomed (n bigserial, thread_id text, checkpoint_ns text, checkpoint_id text, "
        "chained bool, doomed bool, newest text, writes bigint, bytes bigint, n_thread bigint, regular bool, "
        "skipped text, whole bool)"
    )
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_freed")


def add_keys(
    conn: psycopg.Connection[Any], threads: list[tuple[ThreadPlan, str, list[tuple[str, str, str, str, int]]]]
) -> None:
    """Spool the keys of threads planned in Python (after the SQL-planned ones), with their newest
    id, and the blobs they free."""
    columns = "ckpt_doomed (thread_id, checkpoint_ns, checkpoint_id, newest, doomed)"
    with conn.transaction():
        with conn.cursor().copy(f"COPY {columns} FROM STDIN") as copy:
            for thread, newest, _ in threads:
                for key in thread.delete:
                    copy.write_row((key.thread_id, key.checkpoint_ns, key.checkpoint_id, newest, True))
        with conn.cursor().copy("COPY ckpt_freed FROM STDIN") as copy:
            for _, _, freed in threads:
                for row in freed:
                    copy.write_row(row)


def delete_spooled(conn: psycopg.Connection[Any], report: PruneReport, batch_size: int) -> PruneReport:
    """Delete the spooled keys, whole threads of about ``batch_size`` checkpoints per transaction;
    errors are reported, not raised."""
    report.dry_run = False
    conn.execute("CREATE INDEX ON ckpt_doomed (n)")
    conn.execute("CREATE INDEX ON ckpt_doomed (thread_id)")
    conn.execute("CREATE INDEX ON ckpt_freed (thread_id)")  # a batch's threads; joined by hash on the key
    conn.execute("ANALYZE ckpt_doomed")  # so the planner joins by primary key, not by scanning the tables
    conn.execute("ANALYZE ckpt_freed")
    row = conn.execute("SELECT min(n), max(n) FROM ckpt_doomed WHERE doomed").fetchone()
    if row is None or row[0] is None:
        return report
    lo, last = int(row[0]), int(row[1])
    while lo <= last:
        nominal = min(lo + batch_size - 1, last)
        end = conn.execute(_THREAD_END, {"hi": nominal}).fetchone()
        window: dict[str, Any] = {"lo": lo, "hi": max(int(end[0]) if end and end[0] is not None else 0, nominal)}
        try:
            _delete_batch(conn, window, report)
        except psycopg.Error as exc:  # reported: a cron run must say what it could not do
            report.errors.append(f"deleting spooled checkpoints {lo}..{window['hi']}: {exc}".strip())
        lo = window["hi"] + 1
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_doomed")
    conn.execute("DROP TABLE IF EXISTS pg_temp.ckpt_freed")
    return report


# Hash joins on the whole key: at 1M checkpoints the planner merged spool and table on thread_id
# alone and re-scanned each thread's rows per spool row (73,000 rows filtered for 4,000 writes).
_BATCH_SESSION = SESSION + "; SET LOCAL enable_mergejoin = off"


def _delete_batch(conn: psycopg.Connection[Any], window: dict[str, Any], report: PruneReport) -> None:
    with conn.transaction():
        conn.execute(_BATCH_SESSION)
        moved = {r[0] for r in conn.execute(_DROP_MOVED, window).fetchall()}
        ends = conn.execute(_BOUNDS, window).fetchone()  # no row: the batch's threads all moved
        row = None
        if ends is not None:
            bounds = dict(zip(("t0", "n0", "i0", "t1", "n1", "i1"), ends))
            row = conn.execute(_DELETE_BATCH, {**window, **bounds}).fetchone()
    if moved:
        report.skipped[_MOVED] = report.skipped.get(_MOVED, 0) + len(moved)
    if row:
        report.checkpoints_deleted += int(row[0])
        report.blobs_deleted = (report.blobs_deleted or 0) + int(row[1])
