"""PostgreSQL prune where the server does the work: the plan in one SQL statement, set-based deletes.

The general path (:mod:`ckpt.backends.ops.retention`) streams every header to Python. Here the same
rules run in SQL: a ``row_number()`` per (thread, namespace) for ``--keep-last``, uuid6 id bounds
for ``--keep-within``, ``--min-idle`` and ``--delete-idle`` (an id's string order is its time
order), ``metadata ? 'counters_since_delta_snapshot'`` for DeltaChannel namespaces and
``metadata->'parents'->>''`` for subgraph roots. The plan is the general path's, row for row:

* a thread is "regular" when every checkpoint id is a lowercase uuid6 and every metadata is a
  JSON object; only then do the SQL rules equal the Python ones. Other threads (old id forms,
  legacy string metadata) are planned by :func:`plan_thread` from their headers;
* time bounds are found by bisecting the exact float expressions the general path uses.

A real run (:mod:`ckpt.backends.postgres.prune.batches`) plans and deletes together, a range of whole
threads at a time: one statement per batch evaluates these rules on the batch's rows and deletes
what they doom, its writes and the blobs it frees, so nothing is spooled and no batch acts on a
plan older than itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ckpt.backends.core.base import Selection
from ckpt.backends.core.policy import Policy, PruneReport, ThreadPlan
from ckpt.backends.ops.retention import plan_thread
from ckpt.backends.postgres.prune import blobs as pg_prune_blobs
from ckpt.backends.postgres.prune.batches import BatchQueue, run_batches
from ckpt.backends.postgres.prune.sql import _PLAN, SESSION, Range, bounds

if TYPE_CHECKING:
    from ckpt.backends.postgres.store import PostgresStore


class PostgresPrune:
    """Plan, or plan and carry out, a prune with the rules evaluated by the server."""

    def __init__(
        self,
        store: PostgresStore,
        policy: Policy,
        now: float,
        thread_range: Range = (None, None),
    ) -> None:
        self.store = store
        self.policy = policy
        self.now = now
        self.thread_range = thread_range
        self.params = {**bounds(policy, now), "from": thread_range[0], "to": thread_range[1]}

    def plan(self, on_thread: Callable[[ThreadPlan], None] | None = None) -> PruneReport:
        """What a run would delete now, thread by thread; nothing is changed."""
        report = PruneReport(blobs_to_delete=0, blobs_deleted=0)
        conn = self.store._conn
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            conn.execute(SESSION)
            with conn.cursor(name="ckpt_prune_plan") as cur:
                cur.itersize = 5000
                cur.execute(_PLAN, self.params)
                for row in cur:
                    thread = self.sql_plan(row) if row[2] else self.python_plan(row[0])
                    if thread is None:
                        continue
                    report.count(thread)
                    if on_thread is not None:
                        on_thread(thread)
        return report

    @staticmethod
    def sql_plan(row: tuple[Any, ...]) -> ThreadPlan:
        """A regular thread's plan from its per-thread row (``thread_id, n, regular, skipped,
        whole, doomed, writes, bytes, blobs, blob_bytes``)."""
        thread_id, n, _, skipped, whole, doomed, writes, size, blobs, blob_bytes = row
        plan = ThreadPlan(thread_id, checkpoints=int(n), skipped=skipped)
        if skipped is None:
            plan.doomed = int(doomed)
            plan.whole_thread = bool(whole) and plan.doomed > 0
            plan.writes = int(writes)
            plan.bytes = int(size)
            plan.blobs, plan.blob_bytes = int(blobs), int(blob_bytes)
        return plan

    def python_plan(self, thread_id: str) -> ThreadPlan | None:
        """The general path for one thread whose ids or metadata the SQL rules cannot read
        exactly, with the blobs its deletions free counted (``None``: the thread is gone or not
        selected)."""
        if not Selection(thread_glob=self.policy.thread_glob, shard=self.policy.shard).matches_thread(thread_id):
            return None
        headers = list(self.store.headers(Selection(thread_id=thread_id)))
        if not headers:
            return None
        plan = plan_thread(thread_id, headers, self.policy, self.now)
        freed = pg_prune_blobs.exact_in_python(self.store._conn, thread_id, plan.delete) if plan.delete else []
        plan.blobs, plan.blob_bytes = len(freed), sum(f[4] for f in freed)
        return plan

    def run(self, batch_size: int, queue: BatchQueue | None = None, *, from_back: bool = False) -> PruneReport:
        """Plan and delete, about ``batch_size`` checkpoints (whole threads) per transaction: this
        prune's thread range, or the batches of ``queue`` (shared with another job) from its front
        or its back."""
        return run_batches(self, batch_size, queue, from_back=from_back)

    def close(self) -> None:
        """Nothing to release: the store is the caller's."""
