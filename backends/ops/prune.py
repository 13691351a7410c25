"""Prune and compact as library calls: locked, planned first, batched, guarded, reported.

``ckpt prune`` and ``ckpt compact`` are thin shells over :func:`prune` and :func:`compact`; a cron
job or a notebook calls them directly::

    import ckpt
    with ckpt.open("sqlite:///agent.db", write=True) as store:
        plan = ckpt.prune(store, ckpt.Policy(keep_last=5), min_idle="0s", dry_run=True, reasons=True)
        report = ckpt.prune(store, ckpt.Policy(keep_last=5))

A store that can carry out the prune itself offers it as a capability
(:meth:`~ckpt.backends.core.base.Store.server_prune`); otherwise the general planner
(:mod:`ckpt.backends.ops.retention`) plans from headers into a spool and :meth:`Store.delete`
deletes in batches. Every delete batch runs the store's integrity guard.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from ckpt.backends.core.base import Capability, Store
from ckpt.backends.core.errors import CkptError, ExitCode, UsageError
from ckpt.backends.core.ids import lowest_id_at
from ckpt.backends.core.policy import Policy, PruneReport, ServerPrune, ThreadPlan, parse_duration
from ckpt.backends.core.shards import shard_lock_name
from ckpt.backends.ops.retention import Spool, delete_spooled, plan_to_spool
from ckpt.backends.ops.retention import plan as plan_threads

BATCH = 5000
"""Checkpoints per delete transaction where ckpt plans in Python and deletes by key."""
SERVER_BATCH = 20000
"""Checkpoints per transaction of a store's own prune (PostgreSQL: each batch is planned and deleted
by one statement whose fixed cost is paid per batch; 20,000 measured ~10% faster than 5,000 at 1M)."""

Confirm = Callable[[PruneReport], bool]
"""Asked with the plan before anything is deleted; ``False`` aborts (nothing is deleted)."""


class Aborted(CkptError):
    """The confirmation said no: nothing was deleted."""

    exit_code = ExitCode.ABORTED


def prune(
    store: Store,
    policy: Policy,
    *,
    dry_run: bool = False,
    min_idle: str | float | None = None,
    reasons: bool = False,
    jobs: int | None = None,
    batch_size: int | None = None,
    confirm: Confirm | None = None,
    on_thread: Callable[[ThreadPlan], None] | None = None,
    now: float | None = None,
) -> PruneReport:
    """Plan a prune of ``store`` by ``policy`` and, unless ``dry_run``, carry it out.

    ``min_idle`` (``"5m"``, seconds) overrides the policy's. ``reasons`` makes each thread's plan
    (passed to ``on_thread``) list what it keeps and why; where the store has a prune of its own,
    the totals are still its plan's and the reasons come from the general planner. Without
    ``confirm`` and not ``dry_run``, a store's own prune plans and deletes batch by batch with no
    separate plan; with ``confirm``, the plan comes first and ``confirm(plan)`` decides. The
    returned report carries the plan's totals and, after a run, what was deleted and any failed
    batches (``errors``). Raises ``LockedError`` when another run holds the store's lock,
    ``IntegrityError`` when a batch's guard stopped the run, ``Aborted`` when ``confirm`` said no.
    """
    if min_idle is not None:
        policy = replace(policy, min_idle=parse_duration(min_idle, "--min-idle"))
    policy.validate()
    if not dry_run and Capability.DELETE not in store.capabilities:
        raise UsageError(f"{store.kind} stores do not support delete: nothing to prune (try --dry-run)")
    moment = now if now is not None else datetime.now(timezone.utc).timestamp()
    spool = Spool()
    server: ServerPrune | None = None
    try:
        with store.lock(shard_lock_name("prune", policy.shard)) if not dry_run else nullcontext():
            server = store.server_prune(policy, moment, jobs)
            if server is not None and not dry_run and confirm is None:
                return server.run(batch_size or SERVER_BATCH)  # nobody reads a plan first
            if server is not None and reasons:  # the store's totals (its blobs too), the general planner's reasons
                plan = server.plan(None)
                _reasons_only(store, policy, moment, on_thread)
            elif server is not None:
                plan = server.plan(on_thread)
            else:
                plan = plan_to_spool(store, policy, moment, spool, on_thread, reasons=reasons)
            if dry_run or plan.checkpoints_to_delete == 0:
                plan.dry_run = dry_run
                return plan
            if confirm is not None and not confirm(plan):
                raise Aborted("nothing deleted: the prune was not confirmed")
            if server is not None:  # planned again batch by batch, as deleted
                return server.run(batch_size or SERVER_BATCH)
            return delete_spooled(store, spool, plan, batch_size or BATCH)
    finally:
        if server is not None:
            server.close()
        spool.close()


def _reasons_only(store: Store, policy: Policy, now: float, on_thread: Callable[[ThreadPlan], None] | None) -> None:
    """Each thread's plan with what it keeps and why, from the general planner (the two planners
    agree checkpoint for checkpoint: tests/backends/test_pg_prune.py)."""
    if on_thread is not None:
        for thread in plan_threads(store, policy, now, reasons=True):
            on_thread(thread)


@dataclass
class CompactReport:
    """What ``compact`` removed (by kind; ``dry_run``: would remove) and the store's bytes around it."""

    removed: dict[str, int]
    bytes_before: int | None
    bytes_after: int | None
    """After a run, measured; after a dry run, an estimate (``bytes_after_estimated``) or ``None``
    when the store cannot estimate what compacting frees."""
    dry_run: bool
    bytes_after_estimated: bool = False

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compact(
    store: Store,
    *,
    min_idle: str | float = "5m",
    dry_run: bool = False,
    confirm: Callable[[], bool] | None = None,
) -> CompactReport:
    """Remove orphans older than ``min_idle`` (writes without a checkpoint, unreferenced blobs,
    stale keys) under the store's lock, then reclaim space the store's own way. A dry run
    estimates ``bytes_after`` (:meth:`Store.reclaimable_bytes`), or leaves it ``None``."""
    seconds = parse_duration(min_idle, "--min-idle")
    idle_before = lowest_id_at(datetime.now(timezone.utc).timestamp() - seconds)
    if not dry_run and Capability.DELETE not in store.capabilities:
        raise UsageError(f"{store.kind} stores do not support delete: nothing to compact")
    before = store.storage_bytes()
    if dry_run:
        removed = store.compact(idle_before, dry_run=True)
        freed = store.reclaimable_bytes(idle_before)
        after = before - freed if before is not None and freed is not None else None
        return CompactReport(removed, before, after, dry_run, bytes_after_estimated=after is not None)
    with store.lock("compact"):
        if confirm is not None and not confirm():
            raise Aborted("nothing changed: the compaction was not confirmed")
        removed = store.compact(idle_before)
    return CompactReport(removed, before, store.storage_bytes(), dry_run)
