"""The three methods ``BaseCheckpointSaver`` declares and the official savers lack, over a ckpt ``Store``.

``copy_thread`` and ``delete_for_runs`` are :mod:`ckpt.backends.ops.threads`; ``prune`` is ckpt's
prune planner (:func:`ckpt.backends.ops.retention.plan_thread` with a :class:`Policy`, so the newest
checkpoint of every namespace stays with its pending writes and interrupts, a namespace that uses a
DeltaChannel keeps its history, and a subgraph call's namespace follows the root checkpoint it
started from) and the store's guarded delete, under the store's ``prune`` lock (a ``ckpt prune``
cron run and a saver's ``prune`` never delete at the same time).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ckpt.backends.core.base import CheckpointHeader, CheckpointKey, Selection, Store
from ckpt.backends.core.errors import IntegrityError, NotFoundError
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.locks import check_held
from ckpt.backends.core.policy import Policy
from ckpt.backends.ops import threads
from ckpt.backends.ops.retention import plan_thread

STRATEGIES = ("keep_latest", "delete")
"""``BaseCheckpointSaver.prune``'s strategies (langgraph-checkpoint 4.3)."""
BATCH = 5000
"""Checkpoints per delete transaction (as ``ckpt prune``)."""

_DELETE = Policy(delete_idle=0.0, min_idle=0.0)


def thread_list(thread_ids: Sequence[str], strategy: str) -> list[str]:
    """The arguments of ``prune`` checked as ``PostgresSaver.prune`` checks them."""
    if isinstance(thread_ids, str):
        raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
    if strategy not in STRATEGIES:
        raise ValueError(f"Unknown prune strategy: {strategy!r}")
    return list(dict.fromkeys(str(t) for t in thread_ids))


def prune(store: Store, thread_ids: Sequence[str], strategy: str, keep_last: int = 1) -> int:
    """Prune each thread by ``strategy``; returns how many checkpoints were deleted.

    ``"keep_latest"`` is ``ckpt prune --keep-last 1`` on exactly these threads, with no idle
    time (the caller named them), plus the saver contract's rule for a per-call subgraph namespace
    that records no root checkpoint (``ckpt prune`` leaves such a namespace whole): its newest
    checkpoint stays, unless it uses a DeltaChannel. ``keep_last`` (``RedisSaver.prune``'s option)
    keeps that many newest instead of one. ``"delete"`` deletes every checkpoint of the
    threads with their writes (and PostgreSQL blobs, Redis registries and latest pointers).
    """
    ids = thread_list(thread_ids, strategy)
    if not ids:
        return 0
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    policy = Policy(keep_last=keep_last, min_idle=0.0) if strategy == "keep_latest" else _DELETE
    deleted = 0
    with store.lock("prune"):
        for thread_id in ids:
            headers = list(store.headers(Selection(thread_id=thread_id)))
            if not headers:
                continue
            # ``now`` at infinity: no thread is "written within --min-idle"; the caller named it.
            plan = plan_thread(thread_id, headers, policy, math.inf)
            doomed = plan.delete + (_older_in_rootless_calls(headers, keep_last) if strategy == "keep_latest" else [])
            deleted += _delete(store, list(dict.fromkeys(doomed)))
    return deleted


def _older_in_rootless_calls(headers: list[CheckpointHeader], keep: int) -> list[CheckpointKey]:
    """All but the ``keep`` newest checkpoints of each per-call subgraph namespace (``node:task_id``) that
    records no root checkpoint (``metadata.parents[""]``) and uses no DeltaChannel."""
    by_ns: dict[str, list[CheckpointHeader]] = {}
    for header in headers:
        if ":" in header.key.checkpoint_ns:
            by_ns.setdefault(header.key.checkpoint_ns, []).append(header)
    doomed: list[CheckpointKey] = []
    for group in by_ns.values():
        metadata = [h.metadata or {} for h in group]
        if any(_root(m) is not None for m in metadata) or any("counters_since_delta_snapshot" in m for m in metadata):
            continue
        doomed.extend(h.key for h in sorted(group, key=lambda h: h.key.checkpoint_id, reverse=True)[keep:])
    return doomed


def _root(metadata: dict[str, object]) -> str | None:
    parents = metadata.get("parents")
    root = parents.get("") if isinstance(parents, dict) else None
    return root if isinstance(root, str) else None


def _delete(store: Store, keys: list[CheckpointKey]) -> int:
    deleted = 0
    for batch in batched(keys, BATCH):
        check_held()  # a lock lost meanwhile stops before the next batch
        deleted += store.delete(batch)
    return deleted


def copy_thread(store: Store, source_thread_id: str, target_thread_id: str) -> None:
    """``BaseCheckpointSaver.copy_thread``: the whole thread (every namespace, the parent chain,
    pending writes) under the new id (:func:`ckpt.backends.ops.threads.copy_thread`)."""
    threads.copy_thread(store, str(source_thread_id), str(target_thread_id))


def run_list(run_ids: Sequence[str]) -> list[str]:
    if isinstance(run_ids, str):
        raise TypeError("run_ids must be a sequence of run IDs, not a str")
    return list(dict.fromkeys(str(r) for r in run_ids))


def delete_for_runs(store: Store, run_ids: Sequence[str]) -> None:
    """``BaseCheckpointSaver.delete_for_runs``: the checkpoints (and their writes) of these runs,
    then a residue scan (:func:`ckpt.backends.ops.threads.delete`); raises when anything is left."""
    ids = run_list(run_ids)
    if not ids:
        return
    found = []
    for run_id in ids:  # the contract: a run with no checkpoint here is no error
        try:
            threads.plan_delete(store, run_ids=[run_id])
        except NotFoundError:
            continue
        found.append(run_id)
    if not found:
        return
    report = threads.delete(store, threads.plan_delete(store, run_ids=found))
    if not report.clean:
        left = ", ".join(f"{kind} {n}" for kind, n in report.residue.items() if n)
        late = f"; late writes: {', '.join(report.late_writes)}" if report.late_writes else ""
        raise IntegrityError(f"delete_for_runs left residue ({left or 'none'}){late}")
