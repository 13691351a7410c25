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
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import groupby

from ckpt.backends.core.base import CheckpointHeader, CheckpointKey, Selection, Store
from ckpt.backends.core.errors import IntegrityError, UsageError
from ckpt.backends.core.ids import checkpoint_time

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d|w|y)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str, option: str) -> float:
    """``30d``, ``12h``, ``90m``, ``2w``, ``1y`` → seconds; anything else is a usage error."""
    match = _DURATION.match(text.strip())
    if not match:
        raise UsageError(f"{option}: cannot read duration {text!r}; use a number and s, m, h, d, w or y (e.g. 30d)")
    return float(match[1]) * _SECONDS[match[2]]


@dataclass(frozen=True)
class Policy:
    """What to keep (the union of the ``keep_*`` rules) and which idle threads to delete whole."""

    keep_last: int | None = None
    keep_within: float | None = None
    keep_daily: int | None = None
    keep_weekly: int | None = None
    delete_idle: float | None = None
    thread_glob: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()
    exempt: str | None = None
    min_idle: float = 300.0

    def validate(self) -> None:
        keeps = (self.keep_last, self.keep_within, self.keep_daily, self.keep_weekly)
        if all(k is None for k in keeps) and self.delete_idle is None:
            raise UsageError(
                "no retention rule: give --keep-last, --keep-within, --keep-daily, --keep-weekly or --delete-idle"
            )
        for name, value in (
            ("--keep-last", self.keep_last),
            ("--keep-daily", self.keep_daily),
            ("--keep-weekly", self.keep_weekly),
        ):
            if value is not None and value < 1:
                raise UsageError(f"{name} must be at least 1 (the newest checkpoint always stays)")

    @property
    def has_keep_rules(self) -> bool:
        return any(k is not None for k in (self.keep_last, self.keep_within, self.keep_daily, self.keep_weekly))


@dataclass
class ThreadPlan:
    """What pruning does to one thread."""

    thread_id: str
    checkpoints: int = 0
    delete: list[CheckpointKey] = field(default_factory=list)
    writes: int = 0
    bytes: int = 0
    whole_thread: bool = False
    skipped: str | None = None
    """Why the thread is left alone (active, exempt, metadata), if it is."""
    doomed: int = 0
    """How many checkpoints go: ``len(delete)``, or the count alone when the keys stay in the server."""
    blobs: int = 0
    blob_bytes: int = 0
    """Blobs the deleted checkpoints free, where the store plans them (PostgreSQL's server-side prune)."""


def plan(store: Store, policy: Policy, now: float | None = None) -> Iterator[ThreadPlan]:
    """One plan per selected thread, streamed; ``now`` fixed by the caller keeps two passes equal."""
    policy.validate()
    moment = now if now is not None else datetime.now(timezone.utc).timestamp()
    headers = store.headers(Selection(thread_glob=policy.thread_glob))
    for thread_id, group in groupby(headers, key=lambda h: h.key.thread_id):
        yield plan_thread(thread_id, list(group), policy, moment)


def plan_thread(thread_id: str, headers: list[CheckpointHeader], policy: Policy, now: float) -> ThreadPlan:
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
    if policy.delete_idle is not None and now - newest >= policy.delete_idle:
        doomed = headers
        result.whole_thread = True
    elif policy.has_keep_rules:
        doomed = _doomed(headers, policy, now)
    else:
        doomed = []
    result.delete = [h.key for h in doomed]
    result.doomed = len(doomed)
    result.writes = sum(h.writes_count for h in doomed)
    result.bytes = sum(h.size for h in doomed)
    return result


def _metadata_matches(headers: list[CheckpointHeader], wanted: tuple[tuple[str, str], ...]) -> bool:
    root = [h for h in headers if h.key.checkpoint_ns == ""] or headers
    metadata = max(root, key=lambda h: h.key.checkpoint_id).metadata or {}
    return all(str(metadata.get(k)) == v for k, v in wanted)


def _doomed(headers: list[CheckpointHeader], policy: Policy, now: float) -> list[CheckpointHeader]:
    by_ns: dict[str, list[CheckpointHeader]] = {}
    for header in headers:
        by_ns.setdefault(header.key.checkpoint_ns, []).append(header)
    doomed: list[CheckpointHeader] = []
    for ns, group in by_ns.items():
        if not _per_call(ns):
            doomed += _doomed_in_namespace(group, policy, now)
    deleted_ids = {h.key.checkpoint_id for h in doomed}
    root_ids = {h.key.checkpoint_id for h in by_ns.get("", [])}
    for ns, group in by_ns.items():
        if _per_call(ns):
            root = _root_of(group)
            # The subgraph call follows its root checkpoint: gone with it, or already gone
            # (an interrupted earlier prune). Without a recorded root it stays.
            if root is not None and (root in deleted_ids or root not in root_ids):
                doomed += group
    return doomed


def _per_call(ns: str) -> bool:
    return ":" in ns


def _root_of(group: list[CheckpointHeader]) -> str | None:
    for header in group:
        parents = (header.metadata or {}).get("parents")
        root = parents.get("") if isinstance(parents, dict) else None
        if isinstance(root, str):
            return root
    return None


def _doomed_in_namespace(group: list[CheckpointHeader], policy: Policy, now: float) -> list[CheckpointHeader]:
    if any("counters_since_delta_snapshot" in (h.metadata or {}) for h in group):
        return []  # DeltaChannel: state is rebuilt from ancestors; keep the chain
    newest_first = sorted(group, key=lambda h: h.key.checkpoint_id, reverse=True)
    keep = {newest_first[0].key.checkpoint_id}
    if policy.keep_last is not None:
        keep.update(h.key.checkpoint_id for h in newest_first[: policy.keep_last])
    if policy.keep_within is not None:
        keep.update(
            h.key.checkpoint_id
            for h in newest_first
            if now - (checkpoint_time(h.key.checkpoint_id) or 0) <= policy.keep_within
        )
    for count, bucket in ((policy.keep_daily, "%Y-%m-%d"), (policy.keep_weekly, "%G-W%V")):
        if count is not None:
            keep.update(_newest_per_bucket(newest_first, bucket, count))
    return [h for h in group if h.key.checkpoint_id not in keep]


def _newest_per_bucket(newest_first: list[CheckpointHeader], bucket: str, count: int) -> set[str]:
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
    return set(kept.values())


@dataclass
class PruneReport:
    """Totals of a prune plan, and of the run when it was carried out."""

    threads: int = 0
    threads_pruned: int = 0
    threads_deleted: int = 0
    checkpoints: int = 0
    checkpoints_to_delete: int = 0
    writes_to_delete: int = 0
    bytes_to_free: int = 0
    blobs_to_delete: int | None = None
    """PostgreSQL blobs the plan frees (their bytes are in ``bytes_to_free``); ``None`` where the
    store keeps no separate blobs or the plan cannot count them ahead (the general path)."""
    skipped: dict[str, int] = field(default_factory=dict)
    checkpoints_deleted: int = 0
    blobs_deleted: int | None = None
    jobs: int = 1
    """Connections that shared the work (PostgreSQL ``--jobs``)."""
    errors: list[str] = field(default_factory=list)
    dry_run: bool = True

    def count(self, thread: ThreadPlan) -> None:
        self.threads += 1
        self.checkpoints += thread.checkpoints
        if thread.skipped:
            self.skipped[thread.skipped] = self.skipped.get(thread.skipped, 0) + 1
            return
        if thread.doomed:
            self.threads_pruned += 1
            self.threads_deleted += 1 if thread.whole_thread else 0
        self.checkpoints_to_delete += thread.doomed
        self.writes_to_delete += thread.writes
        self.bytes_to_free += thread.bytes + thread.blob_bytes
        if self.blobs_to_delete is not None:
            self.blobs_to_delete += thread.blobs

    def as_json(self) -> dict[str, object]:
        return dict(self.__dict__)


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


def plan_to_spool(store: Store, policy: Policy, now: float, spool: Spool, on_thread: object = None) -> PruneReport:
    """Plan every thread, spool its deletions, and total them (nothing is deleted)."""
    report = PruneReport()
    for thread in plan(store, policy, now):
        report.count(thread)
        spool.add(thread.delete)
        if callable(on_thread):
            on_thread(thread)
    return report


def delete_spooled(store: Store, spool: Spool, report: PruneReport, batch_size: int = 500) -> PruneReport:
    """Delete the spooled keys in batches, each batch one transaction (or the store's atomic unit)."""
    from ckpt.backends.ops.transfer import batched

    report.dry_run = False
    for batch in batched(spool, batch_size):
        try:
            report.checkpoints_deleted += store.delete(batch)
        except IntegrityError:
            raise  # the guard rolled the batch back: stop, do not go on to the next one
        except Exception as exc:  # reported: a cron run must say what it could not do
            report.errors.append(f"deleting {len(batch)} checkpoints from {batch[0]}: {exc}")
    return report
