"""Copying records between any two stores: the one mechanism behind export, import and migrate
(split across worker processes by :mod:`ckpt.backends.ops.parallel`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ckpt.backends.core.base import CheckpointHeader, CheckpointRecord, CopiedRows, Selection, Store, WriteReport
from ckpt.backends.core.collector import fewer_collections
from ckpt.backends.core.errors import CorruptRecordError, NotAStoreError, StoreNotFoundError
from ckpt.backends.core.iterate import batched, behind, called
from ckpt.backends.core.merge import attach
from ckpt.backends.core.shards import Shard
from ckpt.backends.core.urls import redact
from ckpt.backends.ops.pairing import OutOfOrder, by_thread, can_merge, checked, one_thread
from ckpt.backends.ops.sends import LANGGRAPH, finds, for_target

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
    decode_errors: list[str] = field(default_factory=list)
    """Checkpoints an export's readable view could not decode (their raw payloads were exported)."""
    shard: Shard | None = None
    """The ``--shard`` an export or import covered (``None``: every thread)."""

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
            **({"shard": self.shard.as_json()} if self.shard is not None else {}),
        }


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
    as_rows: bool = True,
    overlap: bool = True,
) -> CopyReport:
    """Stream ``selection`` from ``source`` into ``target`` in batches; idempotent.

    ``source.validate()`` runs first (unless the caller already did: ``validated``), so
    malformed input fails before anything is written. Each batch is one transaction on the
    target (for stores that have them). With ``skip_bad`` a record the target cannot take
    is reported in ``CopyReport.skipped`` and the rest of its batch is still written.
    Where the target's driver copies the source's stored rows as they are
    (``Store.rows_from``, e.g. PostgreSQL to PostgreSQL) it does, unless ``as_rows`` is false:
    then every record is decoded and written as from any other store. With ``overlap`` a target
    whose writes wait on its server (``Store.writes_wait_on_server``) is written in a thread while
    the next batch is read; ``--jobs`` workers go without (two processes already keep both cores
    busy: SQLite to PostgreSQL took 5.73 s either way, and the thread a batch more memory).
    """
    if not validated:
        source.validate()
    target.begin_copy(source.kind, source.layout(), redact(source_url))
    report = CopyReport()
    rows = target.rows_from(source, selection, batch_size) if as_rows else None
    with fewer_collections():
        skipped = report.skipped if skip_bad else None  # bad records are named there (`skip_bad`)
        if rows is None:
            rows = _decoded_batches(source.records(selection), source, target, batch_size, skipped, overlap)
        for done in rows:
            _count_batch(report, done, progress)
            if done.left or done.left_threads:  # what the driver could not copy as rows: decoded
                left = _left_records(source, selection, done)
                for decoded in _decoded_batches(left, source, target, batch_size, skipped, overlap):
                    _count_batch(report, decoded, progress)
    report.losses = target.conversion_losses()
    report.skipped += [f"read: {problem}" for problem in source.read_problems()]
    return report


def _left_records(source: Store, selection: Selection, done: CopiedRows) -> Iterator[CheckpointRecord]:
    """The records of what a rows copy handed back, as from any store."""
    yield from (record for key in done.left if (record := source.get(key)) is not None)
    for thread_id in done.left_threads:
        yield from source.records(replace(selection, thread_id=thread_id))


def _count_batch(report: CopyReport, done: CopiedRows, progress: Progress | None) -> None:
    report.add(done)
    report.checkpoints_read += done.checkpoints_read
    report.bytes_read += done.bytes_read
    if progress is not None:
        progress(done.checkpoints_read, done.bytes_read)


def _decoded_batches(
    records: Iterator[CheckpointRecord],
    source: Store,
    target: Store,
    batch_size: int,
    skipped: list[str] | None,
    overlap: bool = True,
) -> Iterator[CopiedRows]:
    """The copy every pair of stores has: ``source``'s records, converted where the target's saver
    needs it, written a batch (one transaction) at a time."""
    if finds(target) != LANGGRAPH:  # a target whose saver finds Sends both ways (JSONL) takes them as they are
        records = for_target(records, source, target)

    # Building a batch may change the target's conversion state (loss counts, caches): only one
    # thread builds at a time, this one, or the sender when it writes a bad batch record by record.
    building = threading.Lock()

    def prepared(batch: list[CheckpointRecord]) -> Callable[[], CopiedRows]:
        """The batch built for the target here; the call returned sends it (in a thread, maybe)."""
        try:
            with building:
                send: Callable[[], WriteReport] | None = target.prepared_write(batch)
        except CorruptRecordError:
            if skipped is None:
                raise
            send = None  # a record it cannot hold: one at a time, in the call

        def written() -> CopiedRows:
            done = _write_batch(target, batch, send, skipped, building)
            done.checkpoints_read = len(batch)
            done.bytes_read = sum(record.size for record in batch)
            return done

        return written

    calls = map(prepared, batched(records, batch_size))
    # a server's time on one batch overlaps reading and building the next (Store.writes_wait_on_server)
    yield from behind(called, calls) if overlap and target.writes_wait_on_server else map(called, calls)


def _write_batch(
    target: Store,
    batch: list[CheckpointRecord],
    send: Callable[[], WriteReport] | None,
    skipped: list[str] | None,
    building: threading.Lock,
) -> CopiedRows:
    """One batch, one transaction (``send``: the batch as ``prepared_write`` built it; ``None``:
    it could not be built); with ``skipped`` (``skip_bad``) a batch that holds a record the target
    refuses is written again a record at a time, each refused one named there."""
    done = CopiedRows()
    if send is not None:
        try:
            done.add(send())
            return done
        except CorruptRecordError:
            if skipped is None:
                raise
    # Nothing of the batch was written (its transaction rolled back): one record at a time isolates the bad ones.
    for record in batch:
        try:
            with building:
                done.add(target.write([record]))
        except CorruptRecordError as exc:
            if skipped is None:
                raise
            skipped.append(str(exc))
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
    target = _open_if_exists(target_url, open_store)
    try:
        if target is not None and can_merge(source, target):
            joined = attach(
                checked(source.headers(selection)), checked(target.headers(selection)), _key_tuple, _key_tuple
            )
            try:
                return _tally_plan((header, bool(found)) for header, found in joined)
            except OutOfOrder:
                pass  # a file in another order: looked up thread by thread instead
        return _tally_plan(_present_by_thread(source, target, selection))
    finally:
        if target is not None:
            target.close()


def _tally_plan(headers: Iterable[tuple[CheckpointHeader, bool]]) -> CopyPlan:
    plan = CopyPlan()
    last_thread = None
    for header, found in headers:
        plan.checkpoints += 1
        plan.writes += header.writes_count
        plan.bytes += header.size
        plan.already_present += 1 if found else 0
        if header.key.thread_id != last_thread:
            plan.threads, last_thread = plan.threads + 1, header.key.thread_id
    return plan


def _present_by_thread(
    source: Store, target: Store | None, selection: Selection
) -> Iterator[tuple[CheckpointHeader, bool]]:
    """Each source header and whether the target has its key, each source thread looked up in the
    target (:mod:`ckpt.backends.ops.pairing`): no key comparison, so any two orders."""
    if target is None:
        yield from ((header, False) for header in source.headers(selection))
        return
    pairs = by_thread(source.headers(selection), lambda t: target.headers(one_thread(selection, t)))
    yield from ((mine, theirs is not None) for mine, theirs in pairs if mine is not None)


def _key_tuple(header: CheckpointHeader) -> tuple[str, str, str]:
    return header.key_tuple


def _open_if_exists(url: str, open_store: Opener) -> Store | None:
    try:
        return open_store(url)
    except (StoreNotFoundError, NotAStoreError):
        return None  # a target that does not exist yet holds nothing
