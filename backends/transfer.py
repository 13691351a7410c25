"""Copying records between any two stores: the one mechanism behind export, import and migrate."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any, TypeVar

from ckpt.backends.base import CheckpointRecord, Selection, Store, WriteReport
from ckpt.backends.errors import CorruptRecordError, NotAStoreError, StoreNotFoundError, UsageError
from ckpt.backends.merge import attach
from ckpt.backends.urls import redact

T = TypeVar("T")
Progress = Callable[[int, int], None]
"""Called after each batch with (checkpoints, bytes) just copied."""
Opener = Callable[..., Store]

DEFAULT_BATCH = 2000
"""Checkpoints per write transaction (2,000 measured 17% faster than 500 into PostgreSQL)."""


@dataclass
class CopyReport(WriteReport):
    """What a copy did, for people (summary line) and machines (``-o json``)."""

    checkpoints_read: int = 0
    bytes_read: int = 0
    skipped: list[str] = field(default_factory=list)
    """Records that could not be written (``skip_bad``), each as ``key: reason``."""
    losses: dict[str, int] = field(default_factory=dict)
    """Values the target's layout could not keep exactly, by kind (e.g. Redis JSON)."""

    def merge(self, other: CopyReport) -> None:
        self.add(other)
        self.checkpoints_read += other.checkpoints_read
        self.bytes_read += other.bytes_read
        self.skipped += other.skipped
        for kind, count in other.losses.items():
            self.losses[kind] = self.losses.get(kind, 0) + count

    def as_json(self) -> dict[str, Any]:
        return {
            "checkpoints_read": self.checkpoints_read,
            "bytes_read": self.bytes_read,
            "checkpoints_written": self.checkpoints_written,
            "checkpoints_skipped": self.checkpoints_skipped,
            "writes_written": self.writes_written,
            "writes_skipped": self.writes_skipped,
            "bad_records": self.skipped,
            "lossy_conversions": self.losses,
        }


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def copy_records(
    source: Store,
    target: Store,
    selection: Selection = Selection(),
    *,
    source_url: str = "",
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    validated: bool = False,
    skip_bad: bool = False,
) -> CopyReport:
    """Stream ``selection`` from ``source`` into ``target`` in batches; idempotent.

    ``source.validate()`` runs first (unless the caller already did: ``validated``), so
    malformed input fails before anything is written. Each batch is one transaction on the
    target (for stores that have them). With ``skip_bad`` a record the target cannot take
    is reported in ``CopyReport.skipped`` and the rest of its batch is still written.
    """
    if not validated:
        source.validate()
    target.begin_copy(source.kind, source.layout(), redact(source_url))
    report = CopyReport()
    for batch in batched(source.records(selection), batch_size):
        size = sum(record.size for record in batch)
        report.add(_write_batch(target, batch, report, skip_bad))
        report.checkpoints_read += len(batch)
        report.bytes_read += size
        if progress is not None:
            progress(len(batch), size)
    report.losses = target.conversion_losses()
    report.skipped += [f"read: {problem}" for problem in source.read_problems()]
    return report


def _write_batch(target: Store, batch: list[CheckpointRecord], report: CopyReport, skip_bad: bool) -> WriteReport:
    try:
        return target.write(batch)
    except CorruptRecordError:
        if not skip_bad:
            raise
    # The batch's transaction rolled back: write one record at a time to isolate the bad ones.
    done = WriteReport()
    for record in batch:
        try:
            done.add(target.write([record]))
        except CorruptRecordError as exc:
            report.skipped.append(str(exc))
    return done


@dataclass
class CopyPlan:
    """What a copy would do (``--dry-run``): nothing is written to plan it."""

    threads: int = 0
    checkpoints: int = 0
    writes: int = 0
    bytes: int = 0
    already_present: int = 0

    @property
    def to_copy(self) -> int:
        return self.checkpoints - self.already_present

    def as_json(self) -> dict[str, Any]:
        return {**self.__dict__, "to_copy": self.to_copy}


def plan_copy(source: Store, target_url: str, open_store: Opener, selection: Selection = Selection()) -> CopyPlan:
    """Count what ``selection`` holds and how much of it the target already has (headers only)."""
    plan = CopyPlan()
    last_thread = None
    target = _open_if_exists(target_url, open_store)
    try:
        present = target.headers(selection) if target is not None else iter(())
        for header, found in attach(source.headers(selection), present, lambda h: h.key_tuple, lambda h: h.key_tuple):
            plan.checkpoints += 1
            plan.writes += header.writes_count
            plan.bytes += header.size
            plan.already_present += 1 if found else 0
            if header.key.thread_id != last_thread:
                plan.threads, last_thread = plan.threads + 1, header.key.thread_id
    finally:
        if target is not None:
            target.close()
    return plan


def _open_if_exists(url: str, open_store: Opener) -> Store | None:
    try:
        return open_store(url)
    except (StoreNotFoundError, NotAStoreError):
        return None  # a target that does not exist yet holds nothing


def migrate(
    source_url: str,
    target_url: str,
    open_store: Opener,
    selection: Selection = Selection(),
    *,
    jobs: int = 1,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    skip_bad: bool = False,
) -> CopyReport:
    """Copy between two stores by URL; ``jobs > 1`` copies threads in parallel, one connection pair each."""
    if jobs <= 1:
        with open_store(source_url) as source, open_store(target_url, write=True) as target:
            return copy_records(
                source,
                target,
                selection,
                source_url=source_url,
                batch_size=batch_size,
                progress=progress,
                skip_bad=skip_bad,
            )
    return _parallel(source_url, target_url, open_store, selection, jobs, batch_size, progress, skip_bad)


def _parallel(
    source_url: str,
    target_url: str,
    open_store: Opener,
    selection: Selection,
    jobs: int,
    batch_size: int,
    progress: Progress | None,
    skip_bad: bool,
) -> CopyReport:
    with open_store(target_url, write=True) as probe:
        if probe.kind == "jsonl":
            raise UsageError("--jobs needs a database target; a JSONL file is written by one writer")
    work: queue.Queue[str | None] = queue.Queue(maxsize=jobs * 4)  # bounded: thread ids stream, never pile up
    reports: list[CopyReport] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            with open_store(source_url) as source, open_store(target_url, write=True) as target:
                while (thread_id := work.get()) is not None:
                    one = replace(selection, thread_id=thread_id)
                    report = copy_records(
                        source, target, one, source_url=source_url, batch_size=batch_size, skip_bad=skip_bad,
                        progress=progress, validated=True,
                    )  # fmt: skip
                    with lock:
                        reports.append(report)
        except BaseException as exc:  # surfaced in the caller's thread
            errors.append(exc)
            while work.get() is not None:  # drain so the producer never blocks
                pass

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(jobs)]
    for w in workers:
        w.start()
    with open_store(source_url) as source:
        source.validate()
        for summary in source.threads(selection):
            work.put(summary.thread_id)
    for _ in workers:
        work.put(None)
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    total = CopyReport()
    for report in reports:
        total.merge(report)
    return total
