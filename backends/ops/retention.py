"""Retention: which checkpoints a restic-style policy deletes, decided from headers only.

Planning streams the store's headers one thread at a time, so memory holds one thread. The
rules that are always on (spec §8 rules 6-8):

* the newest checkpoint of every kept thread and namespace stays (it is what resumes, with any
  unresolved interrupt and its pending writes);
* a namespace that uses a DeltaChannel (metadata ``counters_since_delta_snapshot``) keeps its
  whole history: its state is rebuilt by walking ancestors back to a snapshot;
* per-call subgraph namespaces (``node:task_id``) follow their root checkpoint
  (``metadata.parents[""]``): deleted when it is, kept otherwise;
* threads written within ``min_idle`` seconds are skipped: a running graph may be writing them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from itertools import groupby

from ckpt.backends.core.base import CheckpointHeader, CheckpointKey, Selection, Store
from ckpt.backends.core.errors import IntegrityError
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.locks import check_held
from ckpt.backends.core.policy import Kept, Policy, PruneReport, ThreadPlan, parse_duration

__all__ = ["Kept", "Policy", "PruneReport", "Spool", "ThreadPlan", "parse_duration", "plan", "plan_thread"]


def plan(store: Store, policy: Policy, now: float | None = None, *, reasons: bool = False) -> Iterator[ThreadPlan]:
    """One plan per selected thread, streamed; ``now`` fixed by the caller keeps two passes equal.
    With ``reasons``, each plan lists what it keeps and why (``ThreadPlan.kept``)."""
    policy.validate()
    moment = now if now is not None else datetime.now(timezone.utc).timestamp()
    headers = store.headers(Selection(thread_glob=policy.thread_glob, shard=policy.shard))
    for thread_id, group in groupby(headers, key=lambda h: h.key.thread_id):
        yield plan_thread(thread_id, list(group), policy, moment, reasons=reasons)


def plan_thread(
    thread_id: str, headers: list[CheckpointHeader], policy: Policy, now: float, *, reasons: bool = False
) -> ThreadPlan:
    result = ThreadPlan(thread_id, checkpoints=len(headers))
    newest = max((checkpoint_time(h.key.checkpoint_id) or 0.0) for h in headers)
    if policy.exempt and fnmatch.fnmatchcase(thread_id, policy.exempt):
        result.skipped = "exempt"
    elif now - newest < policy.min_idle:
        result.skipped = "written within --min-idle"
    elif policy.metadata and not _metadata_matches(headers, policy.metadata):
        result.skipped = "metadata does not match"
    if result.skipped:
        return result
    why: dict[tuple[str, str], list[str]] = {}
    if policy.delete_idle is not None and now - newest >= policy.delete_idle:
        doomed = headers
        result.whole_thread = True
    elif policy.has_keep_rules:
        why = _kept(headers, policy, now)
        doomed = [h for h in headers if (h.key.checkpoint_ns, h.key.checkpoint_id) not in why]
    else:
        doomed = []
        why = {(h.key.checkpoint_ns, h.key.checkpoint_id): ["no keep rule"] for h in headers}
    result.delete = [h.key for h in doomed]
    result.doomed = len(doomed)
    result.writes = sum(h.writes_count for h in doomed)
    result.bytes = sum(h.size for h in doomed)
    if reasons:
        result.kept = [Kept(ns, cid, tuple(r)) for (ns, cid), r in sorted(why.items())]
    return result


def _metadata_matches(headers: list[CheckpointHeader], wanted: tuple[tuple[str, str], ...]) -> bool:
    root = [h for h in headers if h.key.checkpoint_ns == ""] or headers
    metadata = max(root, key=lambda h: h.key.checkpoint_id).metadata or {}
    return all(str(metadata.get(k)) == v for k, v in wanted)


def _kept(headers: list[CheckpointHeader], policy: Policy, now: float) -> dict[tuple[str, str], list[str]]:
    """Every checkpoint the rules keep, ``(ns, id) -> reasons``; the rest is deleted."""
    by_ns: dict[str, list[CheckpointHeader]] = {}
    for header in headers:
        by_ns.setdefault(header.key.checkpoint_ns, []).append(header)
    kept: dict[tuple[str, str], list[str]] = {}
    for ns, group in by_ns.items():
        if not _per_call(ns):
            kept.update(((ns, cid), r) for cid, r in _kept_in_namespace(group, policy, now).items())
    kept_roots = {cid for ns, cid in kept if ns == ""}
    for ns, group in by_ns.items():
        if _per_call(ns):
            root = _root_of(group)
            # The subgraph call follows its root checkpoint: gone with it, or already gone
            # (an interrupted earlier prune). Without a recorded root it stays.
            if root is None:
                reason = "subgraph without a recorded root"
            elif root in kept_roots:
                reason = f"subgraph of kept {root}"
            else:
                continue
            kept.update(((ns, h.key.checkpoint_id), [reason]) for h in group)
    return kept


def _per_call(ns: str) -> bool:
    return ":" in ns


def _root_of(group: list[CheckpointHeader]) -> str | None:
    for header in group:
        parents = (header.metadata or {}).get("parents")
        root = parents.get("") if isinstance(parents, dict) else None
        if isinstance(root, str):
            return root
    return None


def _kept_in_namespace(group: list[CheckpointHeader], policy: Policy, now: float) -> dict[str, list[str]]:
    if any("counters_since_delta_snapshot" in (h.metadata or {}) for h in group):
        # DeltaChannel: state is rebuilt from ancestors; keep the chain
        return {h.key.checkpoint_id: ["DeltaChannel history"] for h in group}
    newest_first = sorted(group, key=lambda h: h.key.checkpoint_id, reverse=True)
    keep: dict[str, list[str]] = {newest_first[0].key.checkpoint_id: ["newest"]}

    def add(ids: Iterable[str], reason: str) -> None:
        for cid in ids:
            keep.setdefault(cid, []).append(reason)

    if policy.keep_last is not None:
        add((h.key.checkpoint_id for h in newest_first[: policy.keep_last]), f"last {policy.keep_last}")
    if policy.keep_within is not None:
        within = policy.keep_within
        add(
            (h.key.checkpoint_id for h in newest_first if now - (checkpoint_time(h.key.checkpoint_id) or 0) <= within),
            f"within {_span(within)}",
        )
    for count, bucket, name in ((policy.keep_daily, "%Y-%m-%d", "daily"), (policy.keep_weekly, "%G-W%V", "weekly")):
        if count is not None:
            add(_newest_per_bucket(newest_first, bucket, count), name)
    return keep


def _span(seconds: float) -> str:
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _newest_per_bucket(newest_first: list[CheckpointHeader], bucket: str, count: int) -> list[str]:
    """restic's --keep-daily/--keep-weekly: the newest checkpoint of each of the last ``count`` buckets."""
    kept: dict[str, str] = {}
    for header in newest_first:
        at = checkpoint_time(header.key.checkpoint_id)
        if at is None:
            continue
        label = datetime.fromtimestamp(at, timezone.utc).strftime(bucket)
        if label not in kept:
            if len(kept) == count:
                break
            kept[label] = header.key.checkpoint_id
    return list(kept.values())


class Spool:
    """The keys a plan deletes, spooled to a temporary file: planning and deleting never overlap
    on one connection, and a plan of ten million keys costs disk, not memory."""

    def __init__(self) -> None:
        import tempfile

        self._file = tempfile.TemporaryFile("w+b")  # noqa: SIM115 - closed by close()

    def add(self, keys: list[CheckpointKey]) -> None:
        import orjson

        for key in keys:
            self._file.write(orjson.dumps([key.thread_id, key.checkpoint_ns, key.checkpoint_id]) + b"\n")

    def __iter__(self) -> Iterator[CheckpointKey]:
        import orjson

        self._file.seek(0)
        for line in self._file:
            thread_id, ns, checkpoint_id = orjson.loads(line)
            yield CheckpointKey(thread_id, ns, checkpoint_id)

    def close(self) -> None:
        self._file.close()


def plan_to_spool(
    store: Store,
    policy: Policy,
    now: float,
    spool: Spool,
    on_thread: Callable[[ThreadPlan], None] | None = None,
    *,
    reasons: bool = False,
) -> PruneReport:
    """Plan every thread, spool its deletions, and total them (nothing is deleted)."""
    report = PruneReport()
    for thread in plan(store, policy, now, reasons=reasons):
        report.count(thread)
        spool.add(thread.delete)
        if on_thread is not None:
            on_thread(thread)
    return report


def delete_spooled(store: Store, spool: Spool, report: PruneReport, batch_size: int = 500) -> PruneReport:
    """Delete the spooled keys in batches, each batch one transaction (or the store's atomic unit)."""
    from ckpt.backends.core.iterate import batched

    report.dry_run = False
    for batch in batched(spool, batch_size):
        check_held()  # a lock lost meanwhile (its expiry passed unrenewed) stops before the next batch
        try:
            report.checkpoints_deleted += store.delete(batch)
        except IntegrityError:
            raise  # the guard rolled the batch back: stop, do not go on to the next one
        except Exception as exc:  # reported: a cron run must say what it could not do
            report.errors.append(f"deleting {len(batch)} checkpoints from {batch[0]}: {exc}")
    return report
