"""Retention policies and prune reports: the types a prune is planned, carried out and reported in.

They belong to the contract because a driver may carry out a prune itself
(:meth:`ckpt.backends.core.base.Store.server_prune`); the general planner over any store is
:mod:`ckpt.backends.ops.retention`. Durations are read here, once, for every option that takes one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ckpt.backends.core.base import CheckpointKey
from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.shards import Shard

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: str | float | int, option: str = "duration") -> float:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w``, ``1y`` (or ``0``, or a number of seconds) → seconds;
    anything else is a usage error naming ``option``."""
    if isinstance(text, (int, float)):
        return float(text)
    if text.strip() == "0":
        return 0.0
    seconds = duration_seconds(text)
    if seconds is None:
        raise UsageError(f"{option}: cannot read duration {text!r}; use a number and s, m, h, d, w or y (e.g. 30d)")
    return seconds


def duration_seconds(text: str) -> float | None:
    """``30d`` → seconds, or ``None`` when ``text`` is not a number and a unit (the one grammar of
    ages and durations: ``--keep-within``, ``--min-idle``, ``--since 7d``)."""
    match = _DURATION.match(text.strip())
    return float(match[1]) * _SECONDS[match[2]] if match else None


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
    shard: Shard | None = None
    """``--shard K/N``: only the threads of that shard (``core.shards``)."""

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


@dataclass(frozen=True)
class Kept:
    """One checkpoint a plan keeps, and why (``--dry-run -o json`` prints these)."""

    checkpoint_ns: str
    checkpoint_id: str
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"checkpoint_ns": self.checkpoint_ns, "checkpoint_id": self.checkpoint_id, "reasons": list(self.reasons)}


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
    kept: list[Kept] = field(default_factory=list)
    """What the plan keeps and why, when reasons were asked for (the general planner only)."""

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "thread_id": self.thread_id,
            "checkpoints": self.checkpoints,
            "delete": self.doomed,
            "writes": self.writes,
            "bytes": self.bytes,
            "whole_thread": self.whole_thread,
            "skipped": self.skipped,
        }
        if self.kept:
            body["kept"] = [k.as_json() for k in self.kept]
        return body


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


class ServerPrune(Protocol):
    """A prune the store carries out itself: a plan that changes nothing, and a run that plans and
    deletes batch by batch (its report carries both what it planned and what it deleted)."""

    def plan(self, on_thread: Callable[[ThreadPlan], None] | None = None) -> PruneReport: ...

    def run(self, batch_size: int) -> PruneReport: ...

    def close(self) -> None: ...
