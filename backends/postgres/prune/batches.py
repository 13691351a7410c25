"""The PostgreSQL prune carried out: each batch of whole threads planned and deleted in one statement.

A batch is a range of thread ids holding about ``batch_size`` checkpoints, cut where the
``thread_id`` index puts it (one short index scan per batch, no scan of the table). One statement
per batch, in its own transaction, reads the range's checkpoints by the index, evaluates the
rules of :mod:`ckpt.backends.postgres.prune.rules` on them, plans the blobs the doomed checkpoints free
(:mod:`ckpt.backends.postgres.prune.blobs`) and deletes the doomed checkpoints, their writes and those
blobs, returning per thread what it planned and, for the batch, what it deleted. Nothing is
spooled; plan and delete see one snapshot, so no batch acts on a plan older than itself: a thread
a writer came back to is planned with what the writer wrote (and skipped by ``--min-idle`` when
that was recent).

Threads the SQL rules cannot read exactly (old id forms, legacy string metadata) are planned by
the general path right after the statement and deleted as the general path deletes them
(``PostgresStore.delete``: by key, with the blobs no remaining checkpoint references), in the same
transaction.

Versus planning everything first into temporary tables and deleting those keys in batches
(sessions 2-4): the whole-table plan's sort, its grouped pass over every write, the spool's
inserts and indexes and the per-batch "written meanwhile" checks are gone, and each batch deletes
rows whose pages its own plan has just read (bench/results/prune.md, session 5, in git history).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional, Protocol

import psycopg

from ckpt.backends.core.errors import IntegrityError
from ckpt.backends.ops.retention import PruneReport, ThreadPlan
from ckpt.backends.postgres.prune import blobs as pg_prune_blobs
from ckpt.backends.postgres.prune.sql import IN_RANGE, SESSION, rows

if TYPE_CHECKING:
    from ckpt.backends.postgres.prune.sql import Range
    from ckpt.backends.postgres.store import PostgresStore


class Planner(Protocol):
    """What a run needs of :class:`~ckpt.backends.postgres.prune.rules.PostgresPrune`."""

    store: PostgresStore
    params: dict[str, Any]
    thread_range: Range

    def sql_plan(self, row: tuple[Any, ...]) -> ThreadPlan: ...

    def python_plan(self, thread_id: str) -> ThreadPlan | None: ...


_KEYS = "x.thread_id = d.thread_id AND x.checkpoint_ns = d.checkpoint_ns AND x.checkpoint_id = d.checkpoint_id"
# The deletes join the doomed keys only: a DELETE carries each joined row whole (to recheck it if
# a concurrent update moved the target), so a narrow row is cheaper than ``planned``'s.
_DOOMED = "(SELECT row_ctid, thread_id, checkpoint_ns, checkpoint_id FROM planned WHERE doomed AND regular OFFSET 0) d"
_TOTAL = "SELECT count(*) AS n, coalesce(sum(bytes), 0) AS bytes FROM {0}"
_TOTALS_AT = 7  # the statement's columns from here on: checkpoints, writes, write bytes, blobs, blob bytes deleted
_VIOLATION_AT = 12  # and then what the integrity guard found, or NULL

# Per thread: its status and what it planned (checkpoint bytes); on every row, the batch's totals of
# what it deleted (summed per thread, they cost a hash aggregate over every deleted row, ~3M a run at
# 1M checkpoints, for a report that adds them up anyway). The deletes run to completion whatever the
# outer query reads; they see the statement's snapshot, as the plan does.
# Checkpoints are deleted where this statement read them (a TID scan on a page it has just read,
# not a primary-key descent per row, ~20 ms of a 5,000-checkpoint batch); the key is checked too.
# A row a concurrent upsert moved meanwhile fails the ctid test and stays: the batch then falls
# short of its plan and runs again by key (``_deleted``). Blobs are matched, like writes, on the batch's
# range read by the thread_id index: against per channel the range of versions it frees, not read
# first by the plan and fetched again by ctid (~210 -> ~83 ms of a warm 20,000-checkpoint batch).
_STATEMENT = f"""
WITH {rows(IN_RANGE.format(lo="lo", hi="hi", col="c.thread_id"))},
{pg_prune_blobs.ctes("planned")},
gone AS (
  DELETE FROM checkpoints x USING {_DOOMED} WHERE __AT__ {_KEYS}
  RETURNING 0 AS bytes
),
writes AS (  -- the batch's range read by the small thread_id index and hashed, not one probe per checkpoint
  DELETE FROM checkpoint_writes x USING {_DOOMED}
  WHERE {IN_RANGE.format(lo="lo", hi="hi", col="x.thread_id")} AND {_KEYS}
  RETURNING x.thread_id, x.checkpoint_ns, x.checkpoint_id, octet_length(x.blob) AS bytes
),
matched AS (  -- the batch's range read by the small thread_id index and hashed against the freed versions
  SELECT x.ctid AS blob_ctid, x.thread_id, x.checkpoint_ns, x.channel, x.version
  FROM checkpoint_blobs x JOIN targets f ON {pg_prune_blobs.MATCHES}
  WHERE {IN_RANGE.format(lo="lo", hi="hi", col="x.thread_id")}
),
still_named AS MATERIALIZED (  -- of those, what a remaining checkpoint references (a hashed set operation; none unless
             -- versions repeat along a chain, so the anti-join below scans an empty set)
  SELECT thread_id, checkpoint_ns, channel, version FROM matched
  INTERSECT SELECT thread_id, checkpoint_ns, channel, version FROM kept_refs
),
blobs AS (  -- deleted where they were read
  DELETE FROM checkpoint_blobs x
  USING (SELECT m.blob_ctid FROM matched m
         WHERE NOT EXISTS (SELECT 1 FROM still_named s WHERE s.thread_id = m.thread_id
                           AND s.checkpoint_ns = m.checkpoint_ns AND s.channel = m.channel AND s.version = m.version)
         __PLANT__) f
  WHERE x.ctid = f.blob_ctid
  RETURNING x.thread_id, x.checkpoint_ns, x.channel, x.version, octet_length(x.blob) AS bytes
),
guard AS (  -- the integrity guard: a deleted row that a remaining checkpoint still names stops the batch
  (SELECT format('blob %%s@%%s of thread %%L, ns %%L, which a kept checkpoint references',
                 channel, version, thread_id, checkpoint_ns) AS violation
   FROM (SELECT thread_id, checkpoint_ns, channel, version FROM blobs
         INTERSECT SELECT thread_id, checkpoint_ns, channel, version FROM kept_refs LIMIT 1) b)
  UNION ALL
  (SELECT format('pending writes of kept checkpoint %%s of thread %%L, ns %%L', checkpoint_id, thread_id, checkpoint_ns)
   FROM (SELECT thread_id, checkpoint_ns, checkpoint_id FROM writes
         INTERSECT SELECT thread_id, checkpoint_ns, checkpoint_id FROM planned WHERE NOT doomed LIMIT 1) w)
)
SELECT t.thread_id, t.n, t.regular, t.skipped, t.whole, t.doomed, t.bytes, g.n, w.n, w.bytes, b.n, b.bytes, v.violation
FROM (SELECT thread_id, max(n) AS n, bool_and(regular) AS regular, max(skipped) AS skipped, bool_or(whole) AS whole,
             count(*) FILTER (WHERE doomed) AS doomed, coalesce(sum(size) FILTER (WHERE doomed), 0) AS bytes
      FROM planned GROUP BY thread_id) t
CROSS JOIN ({_TOTAL.format("gone")}) g CROSS JOIN ({_TOTAL.format("writes")}) w CROSS JOIN ({_TOTAL.format("blobs")}) b
CROSS JOIN (SELECT min(violation) AS violation FROM guard) v
"""
PLANT = ""
"""Test hook only: SQL appended to the blob delete's ``ctid`` list (``UNION SELECT ctid FROM
checkpoint_blobs WHERE …``) so a test can plant a blob the guard must catch. Empty in every real run."""


def statement(*, by_key: bool) -> str:
    """The batch statement: checkpoints deleted where it read them (by ``ctid``), or by key."""
    at = "" if by_key else "x.ctid = d.row_ctid AND"
    return _STATEMENT.replace("__AT__", at).replace("__PLANT__", PLANT)


# Where the next batch starts: the thread of the checkpoint ``size`` places on in index order (a
# batch holds whole threads), or, when that is the batch's own first thread, the thread after it.
_NEXT = f"""
SELECT thread_id FROM checkpoints WHERE {IN_RANGE.format(lo="lo", hi="to", col="thread_id")}
ORDER BY thread_id OFFSET %(size)s LIMIT 1
"""
# Where a batch taken from the back starts: the thread of the checkpoint ``size`` places before
# the range's end, in index order (the batch holds all of that thread); none: the rest of the range.
_BEFORE = f"""
SELECT thread_id FROM checkpoints WHERE {IN_RANGE.format(lo="lo", hi="to", col="thread_id")}
ORDER BY thread_id DESC OFFSET %(size)s LIMIT 1
"""
_AFTER = (
    "SELECT min(thread_id) FROM checkpoints WHERE thread_id > %(lo)s AND (%(to)s::text IS NULL OR thread_id < %(to)s)"
)

# Hash joins on the whole key: at 1M checkpoints the planner merged by thread_id alone and
# re-scanned each thread's rows per doomed row.
_BATCH_SESSION = SESSION + "; SET LOCAL enable_mergejoin = off"


class BatchQueue:
    """The batches of one range of threads, taken from its front by one job and from its back
    by another, until the two meet.

    Two jobs sharing a range this way end together however their speeds differ (with a half
    each, one of two ended 1.6 s before the other in a 21 s prune), and each works far from the
    other until the end: handing out the batches in order to whichever job asked next cost ~1 s
    more than it saved (session 6, git show 52bc7f0:bench/results/prune.md). A batch's bound is found on the
    asking job's connection, under the queue's lock (one short index scan)."""

    def __init__(self, thread_range: Range) -> None:
        self._front, self._back = thread_range
        self._done = False
        self._lock = threading.Lock()

    def next(self, conn: psycopg.Connection[Any], size: int, *, from_back: bool = False) -> Range | None:
        """The next batch ``(lo, hi)`` from the front (or the back), or ``None`` once they have met."""
        with self._lock:
            if self._done:
                return None
            if from_back:
                row = conn.execute(_BEFORE, {"lo": self._front, "to": self._back, "size": size}).fetchone()
                lo = self._front if row is None else str(row[0])
                batch, self._back = (lo, self._back), lo
            else:
                hi = _batch_end(conn, self._front, self._back, size)
                batch, self._front = (self._front, hi), hi
            self._done = self._front == self._back  # they met
            return batch

    def stop(self) -> None:
        """No more batches for anyone: a job found damage, and its partner must not go on."""
        with self._lock:
            self._done = True


def run_batches(
    prune: Planner, batch_size: int, queue: BatchQueue | None = None, *, from_back: bool = False
) -> PruneReport:
    """Plan and delete batch by batch, from the front (or the back) of ``queue`` (shared with
    another job) or of the prune's own thread range; a failed batch is reported (its transaction
    rolled back) and the next one goes on."""
    conn = prune.store._conn
    report = PruneReport(blobs_to_delete=0, blobs_deleted=0, dry_run=False)
    batches = queue if queue is not None else BatchQueue(prune.thread_range)
    while (batch := batches.next(conn, batch_size, from_back=from_back)) is not None:
        lo, hi = batch
        try:
            with conn.transaction():
                conn.execute(_BATCH_SESSION)
                _batch(prune, {**prune.params, "lo": lo, "hi": hi}, report)
        except psycopg.Error as exc:  # reported: a cron run must say what it could not do
            report.errors.append(f"pruning threads from {lo!r} to {hi!r}: {exc}".strip())
        except IntegrityError:
            batches.stop()
            raise
    return report


def _batch_end(conn: psycopg.Connection[Any], lo: Optional[str], to: Optional[str], size: int) -> Optional[str]:
    """The first thread id after the batch starting at ``lo`` (``to`` when it reaches the end)."""
    row = conn.execute(_NEXT, {"lo": lo, "to": to, "size": size}).fetchone()
    if row is None:
        return to
    if row[0] == lo:  # one thread of more than ``size`` checkpoints: the batch is that thread
        after = conn.execute(_AFTER, {"lo": lo, "to": to}).fetchone()
        return to if after is None or after[0] is None else str(after[0])
    return str(row[0])


def _batch(prune: Planner, params: dict[str, Any], report: PruneReport) -> None:
    conn = prune.store._conn
    rows = _deleted(conn, params)
    irregular: list[str] = []
    for thread_id, n, regular, skipped, whole, doomed, size, *_ in rows:
        if not regular:
            irregular.append(thread_id)
            continue
        report.count(prune.sql_plan((thread_id, n, regular, skipped, whole, doomed, 0, size, 0, 0)))
    if rows:  # the batch's totals, the same on every row
        gone, writes, write_bytes, blobs, blob_bytes = (int(v) for v in rows[0][_TOTALS_AT:_VIOLATION_AT])
        report.writes_to_delete += writes
        report.bytes_to_free += write_bytes + blob_bytes
        report.blobs_to_delete = (report.blobs_to_delete or 0) + blobs
        report.blobs_deleted = (report.blobs_deleted or 0) + blobs
        report.checkpoints_deleted += gone
    for thread_id in irregular:  # after the statement: its deletes are visible here, these rows untouched
        planned = prune.python_plan(thread_id)
        if planned is None:
            continue
        report.count(planned)
        gone, blobs = prune.store.delete_counted(planned.delete)  # the general path's delete, in this transaction
        report.checkpoints_deleted += gone
        report.blobs_deleted = (report.blobs_deleted or 0) + blobs


def _deleted(conn: psycopg.Connection[Any], params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The batch statement's rows. When it deleted fewer checkpoints than its regular threads
    planned (a concurrent upsert moved a row after this statement read it), the statement is undone
    and run again deleting checkpoints by key, so no write or blob goes without its checkpoint."""
    with conn.transaction() as attempt:  # a savepoint
        rows = conn.execute(statement(by_key=False), params).fetchall()
        if not rows or rows[0][_TOTALS_AT] >= sum(row[5] for row in rows if row[2]):  # gone >= doomed
            return _guarded(rows, params)
        raise psycopg.Rollback(attempt)
    return _guarded(conn.execute(statement(by_key=True), params).fetchall(), params)


def _guarded(rows: list[tuple[Any, ...]], params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The rows, unless the guard found a deleted row that a kept checkpoint still names: then the
    batch's transaction is rolled back (the error leaves ``conn.transaction()``) and the prune stops."""
    if rows and rows[0][_VIOLATION_AT] is not None:
        raise IntegrityError(
            f"integrity guard: the batch of threads from {params['lo']!r} to {params['hi']!r} would have deleted "
            f"{rows[0][_VIOLATION_AT]}; it was rolled back and the prune stopped"
        )
    return rows
