"""``ckpt prune --jobs N`` on PostgreSQL: N connections, each planning and deleting a share of the threads.

A prune is server work (the plan's scans and windows, the deletes and their index and TOAST
upkeep), and one connection keeps one server core busy. Each job is a :class:`PostgresPrune` on a
connection of its own over a contiguous range of thread ids, split where the table's statistics
put the quantiles of ``thread_id`` (no scan: ``pg_stats``; one job when there are none yet). Jobs
run in threads of this process: psycopg waits for the server without holding the GIL, and nothing
but the server is busy. The jobs' plans (``--dry-run``, or the plan shown before the question)
run at once, as do their runs (batches of plan-and-delete); their reports are merged. The
advisory lock stays with the caller's connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Optional

from ckpt.backends.core.policy import Policy, PruneReport, ServerPrune, ThreadPlan
from ckpt.backends.postgres.prune.batches import BatchQueue
from ckpt.backends.postgres.prune.rules import PostgresPrune
from ckpt.backends.postgres.prune.sql import Range, supports

if TYPE_CHECKING:
    from ckpt.backends.postgres.store import PostgresStore

AUTO_MIN_CHECKPOINTS = 20_000
"""Below this a prune takes a second or two on one connection: not worth more connections."""
AUTO_JOBS = 2


def auto_jobs(store: PostgresStore) -> int:
    """``--jobs`` when not given: 2 for stores of at least 20,000 checkpoints (by the table's
    statistics, no count), else 1. The server's cores are not known from here; 2 was measured."""
    row = store._conn.execute(
        "SELECT reltuples FROM pg_class WHERE oid = to_regclass(format('%%I.checkpoints', %s::text))",
        (store.schema,),
    ).fetchone()
    return AUTO_JOBS if row is not None and row[0] is not None and row[0] >= AUTO_MIN_CHECKPOINTS else 1


def free_connections(store: PostgresStore) -> int | None:
    """Connections the server accepts beyond those open now (``max_connections`` less the reserved
    and the open ones), when the role may see them."""
    row = store._conn.execute(
        "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int "
        "- (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
    ).fetchone()
    return max(0, int(row[0])) if row is not None and row[0] is not None else None


def thread_bounds(store: PostgresStore) -> int:
    """How many thread ids the statistics know (the most a split can cut the threads into)."""
    row = store._conn.execute(_STATS, (store.schema,)).fetchone()
    return len({*(row[0] or []), *(row[1] or [])}) if row else 0


def split_points(store: PostgresStore, jobs: int) -> list[str]:
    """Up to ``jobs - 1`` thread ids cutting the threads into ranges of about equal size, from the
    statistics PostgreSQL keeps of ``checkpoints.thread_id`` (empty when it has none yet), in the
    column's own order: the jobs' ranges and their batches are index ranges of that column."""
    if jobs < 2:
        return []
    row = store._conn.execute(_STATS, (store.schema,)).fetchone()
    # Few threads: PostgreSQL keeps them as most common values instead of a histogram.
    known = list({*(row[0] or []), *(row[1] or [])}) if row else []
    if len(known) < jobs:
        return []
    collation = store._conn.execute(_COLLATION, (store.schema,)).fetchone()
    order = f" COLLATE {collation[0]}" if collation and collation[0] else ""
    bounds = [r[0] for r in store._conn.execute(f"SELECT v FROM unnest(%s::text[]) v ORDER BY v{order}", (known,))]
    return list(dict.fromkeys(bounds[len(bounds) * k // jobs] for k in range(1, jobs)))


_STATS = (
    "SELECT histogram_bounds::text::text[], most_common_vals::text::text[] FROM pg_stats "
    "WHERE schemaname = %s AND tablename = 'checkpoints' AND attname = 'thread_id'"
)
_COLLATION = """
SELECT format('%%I.%%I', n.nspname, c.collname) FROM pg_attribute a
JOIN pg_collation c ON c.oid = a.attcollation JOIN pg_namespace n ON n.oid = c.collnamespace
WHERE a.attrelid = to_regclass(format('%%I.checkpoints', %s::text)) AND a.attname = 'thread_id'
"""


def ranges(points: Sequence[str]) -> list[Range]:
    """The half-open ranges between the points, open at both ends: together they cover every id."""
    edges: list[Optional[str]] = [None, *points, None]
    return [(edges[k], edges[k + 1]) for k in range(len(edges) - 1)]


class ParallelPrune:
    """The plan-and-delete of :class:`PostgresPrune`, over ``len(jobs)`` connections at once."""

    def __init__(self, jobs: list[PostgresPrune], extra: list[PostgresStore]) -> None:
        self.jobs = jobs
        self.extra = extra  # the stores opened here (job 0 uses the caller's)

    @classmethod
    def open(
        cls, store: PostgresStore, policy: Policy, now: float, jobs: int, *, asked: bool = True
    ) -> PostgresPrune | ParallelPrune:
        """One :class:`PostgresPrune` when one job is asked for or the threads cannot be split.

        More jobs than the server has free connections for, or than the statistics have thread
        ranges, are not opened; a warning on the ``ckpt`` logger (stderr when logging is not
        configured) says how many are used and why, when ``asked`` (an explicit ``--jobs``)."""
        wanted, why = jobs, []
        free = free_connections(store) if jobs > 1 else None
        if free is not None and jobs - 1 > free:
            jobs = free + 1
            why.append(f"the server has {free} free connection(s)")
        parts = ranges(split_points(store, min(jobs, max(1, thread_bounds(store)))) if jobs > 1 else [])
        if len(parts) < jobs:
            why.append(f"the threads split into {len(parts)} range(s)")
        if asked and len(parts) < wanted:
            logging.getLogger("ckpt").warning(
                "warning: --jobs %d: using %d connection(s), as %s", wanted, len(parts), " and ".join(why)
            )
        if len(parts) < 2:
            return PostgresPrune(store, policy, now)
        extra: list[PostgresStore] = []
        try:
            for _ in parts[1:]:
                extra.append(type(store).open(store.url, write=store.writable))
        except BaseException:
            for opened in extra:
                opened.close()
            raise
        stores = [store, *extra]
        return cls([PostgresPrune(s, policy, now, part) for s, part in zip(stores, parts)], extra)

    def plan(self, on_thread: Callable[[ThreadPlan], None] | None = None) -> PruneReport:
        collected: list[list[ThreadPlan]] = [[] for _ in self.jobs]
        calls = [(job, rows.append if on_thread else None) for job, rows in zip(self.jobs, collected)]
        reports = self._each(lambda call: call[0].plan(call[1]), calls)
        if on_thread is not None:  # in the general path's order (the ranges follow the column's collation)
            for row in sorted((row for rows in collected for row in rows), key=lambda row: row.thread_id):
                on_thread(row)
        return merge(reports, PruneReport(blobs_to_delete=0, blobs_deleted=0, jobs=0))

    def run(self, batch_size: int) -> PruneReport:
        # Jobs in pairs, each pair sharing the ranges of both (one from the front, one from the
        # back); an odd last job keeps its own range. Together the ranges cover every id.
        ranges = [job.thread_range for job in self.jobs]
        calls: list[tuple[PostgresPrune, BatchQueue, bool]] = []
        for k in range(0, len(self.jobs), 2):
            pair = self.jobs[k : k + 2]
            queue = BatchQueue((ranges[k][0], ranges[k + len(pair) - 1][1]))
            calls += [(job, queue, side == 1) for side, job in enumerate(pair)]
        reports = self._each(lambda call: call[0].run(batch_size, call[1], from_back=call[2]), calls)
        return merge(reports, PruneReport(blobs_to_delete=0, blobs_deleted=0, jobs=0, dry_run=False))

    def close(self) -> None:
        for store in self.extra:
            store.close()

    def _each(self, work: Callable[[Any], PruneReport], items: Sequence[Any]) -> list[PruneReport]:
        with ThreadPoolExecutor(len(items), thread_name_prefix="ckpt-prune") as pool:
            return list(pool.map(work, items))  # the first error is raised once all have ended


def merge(reports: list[PruneReport], into: PruneReport) -> PruneReport:
    """The sum of the jobs' reports (counts add up, ``jobs`` too; ``skipped`` reasons add up per
    reason; errors are concatenated; flags are ``into``'s)."""
    for report in reports:
        for field in fields(PruneReport):
            mine, theirs = getattr(into, field.name), getattr(report, field.name)
            if isinstance(mine, bool) or theirs is None:
                continue
            if isinstance(mine, dict):
                for reason, count in theirs.items():
                    mine[reason] = mine.get(reason, 0) + count
            elif isinstance(mine, list):
                mine.extend(theirs)
            else:
                setattr(into, field.name, (mine or 0) + theirs)
    return into


def in_server(store: PostgresStore, policy: Policy, now: float, jobs: int | None = 1) -> ServerPrune | None:
    """The store's own plan-and-delete for this policy, if it has one (imports nothing heavy otherwise).

    Its plan is the general path's, checkpoint for checkpoint; policies it cannot evaluate
    exactly (``--keep-daily``, ``--keep-weekly``, ``--metadata``, globs with ``[...]``) get ``None``.
    ``jobs`` connections share the work (:mod:`ckpt.backends.postgres.prune.jobs`; ``None``: decide by size).
    Call ``close()`` on the result when done.
    """
    if not supports(policy):
        return None
    return ParallelPrune.open(store, policy, now, auto_jobs(store) if jobs is None else jobs, asked=jobs is not None)
