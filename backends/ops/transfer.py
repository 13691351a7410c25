"""Copying records between any two stores: the one mechanism behind export, import and migrate."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ckpt.backends.core.base import CheckpointHeader, CheckpointRecord, CopiedRows, Selection, Store, WriteReport
from ckpt.backends.core.collector import fewer_collections
from ckpt.backends.core.errors import CorruptRecordError, NotAStoreError, StoreNotFoundError, UsageError
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.merge import attach
from ckpt.backends.core.resources import available_memory, usable_cores
from ckpt.backends.core.shards import Shard
from ckpt.backends.core.urls import redact, scheme_of
from ckpt.backends.ops.pairing import OutOfOrder, by_thread, can_merge, checked, one_thread
from ckpt.backends.ops.sends import LANGGRAPH, finds, for_target

if TYPE_CHECKING:  # multiprocessing is imported only when --jobs asks for it
    from concurrent.futures import Future
    from multiprocessing import Queue
    from multiprocessing.synchronize import Event

T = TypeVar("T")
Progress = Callable[[int, int], None]
"""Called after each batch with (checkpoints, bytes) just copied."""
Opener = Callable[..., Store]

DEFAULT_BATCH = 2000
"""Checkpoints per write transaction (2,000 measured 17% faster than 500 into PostgreSQL)."""
AUTO_JOBS_SCHEMES = ("postgresql", "postgres")
"""Targets ``--jobs`` defaults to parallel for: measured on PostgreSQL (bench/results/migrate.md)."""
AUTO_JOBS_MIN_CHECKPOINTS = 20_000
"""Below this, starting worker processes (~1 s) costs more than it saves."""
AUTO_JOBS_MAX = 2
"""Each worker adds ~90 MB (its own imports and batch): two keep a copy under 300 MB peak RSS."""
WORKER_BYTES = 90 << 20
"""Memory a worker process adds (its own imports and batch), measured at the default batch size."""
CHUNKS_PER_JOB = 4
"""Thread ranges per worker: a worker that finishes early takes the next range (load balance)."""


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
) -> CopyReport:
    """Stream ``selection`` from ``source`` into ``target`` in batches; idempotent.

    ``source.validate()`` runs first (unless the caller already did: ``validated``), so
    malformed input fails before anything is written. Each batch is one transaction on the
    target (for stores that have them). With ``skip_bad`` a record the target cannot take
    is reported in ``CopyReport.skipped`` and the rest of its batch is still written.
    Where the target's driver copies the source's stored rows as they are
    (``Store.rows_from``, e.g. PostgreSQL to PostgreSQL) it does, unless ``as_rows`` is false:
    then every record is decoded and written as from any other store.
    """
    if not validated:
        source.validate()
    target.begin_copy(source.kind, source.layout(), redact(source_url))
    report = CopyReport()
    rows = target.rows_from(source, selection, batch_size) if as_rows else None
    with fewer_collections():
        skipped = report.skipped if skip_bad else None  # bad records are named there (`skip_bad`)
        if rows is None:
            rows = _decoded_batches(source.records(selection), source, target, batch_size, skipped)
        for done in rows:
            _count_batch(report, done, progress)
            if done.left:  # checkpoints the driver could not copy as rows: decoded, as from any store
                left = (record for key in done.left if (record := source.get(key)) is not None)
                for decoded in _decoded_batches(left, source, target, batch_size, skipped):
                    _count_batch(report, decoded, progress)
    report.losses = target.conversion_losses()
    report.skipped += [f"read: {problem}" for problem in source.read_problems()]
    return report


def _count_batch(report: CopyReport, done: CopiedRows, progress: Progress | None) -> None:
    report.add(done)
    report.checkpoints_read += done.checkpoints_read
    report.bytes_read += done.bytes_read
    if progress is not None:
        progress(done.checkpoints_read, done.bytes_read)


def _decoded_batches(
    records: Iterator[CheckpointRecord], source: Store, target: Store, batch_size: int, skipped: list[str] | None
) -> Iterator[CopiedRows]:
    """The copy every pair of stores has: ``source``'s records, converted where the target's saver
    needs it, written a batch (one transaction) at a time."""
    if finds(target) != LANGGRAPH:  # a target whose saver finds Sends both ways (JSONL) takes them as they are
        records = for_target(records, source, target)
    for batch in batched(records, batch_size):
        done = _write_batch(target, batch, skipped)
        done.checkpoints_read = len(batch)
        done.bytes_read = sum(record.size for record in batch)
        yield done


def _write_batch(target: Store, batch: list[CheckpointRecord], skipped: list[str] | None) -> CopiedRows:
    """One batch, one transaction; with ``skipped`` (``skip_bad``) a batch that holds a record the
    target refuses is written again a record at a time, each refused one named there."""
    done = CopiedRows()
    try:
        done.add(target.write(batch))
        return done
    except CorruptRecordError:
        if skipped is None:
            raise
    # The batch's transaction rolled back: write one record at a time to isolate the bad ones.
    for record in batch:
        try:
            done.add(target.write([record]))
        except CorruptRecordError as exc:
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
    """Copy between two stores by URL; ``jobs > 1`` copies ranges of threads in worker processes.

    Workers are spawned: a script calling this with ``jobs > 1`` needs the usual
    ``if __name__ == "__main__":`` guard.
    """
    jobs = cap_jobs(jobs)[0]
    if jobs > 1:
        return _copy_in_parallel(source_url, target_url, open_store, selection, jobs, batch_size, progress, skip_bad)
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


def auto_jobs(target_url: str, checkpoints: int | None, source_url: str | None = None) -> int:
    """``--jobs`` when not given: 2 workers (1 on one core) for big copies into PostgreSQL or out of
    a store that samples its own thread ranges (PostgreSQL: ``thread_bounds``), else 1.

    Measured on 100k checkpoints into PostgreSQL: client (read, split, COPY formatting) and
    server (parsing, TOAST compression, indexes) each take about half the CPU and take turns
    on one connection; two workers keep both cores busy. Out of PostgreSQL into SQLite (issue
    #24): reading and assembling the saver's rows is the Python half, and two workers took
    10.3-11.3 s against 14.4-17.1 s for one, though their SQLite writes take turns on its lock.
    Out of Redis every range needs a list of every thread: with one range per worker
    (``range_count``) two workers took the same time as one at 100k and 0.83x at 1M, so an
    explicit ``--jobs 2`` pays on big Redis stores and the default stays 1. A JSONL file has one
    writer.
    """
    if (checkpoints or 0) < AUTO_JOBS_MIN_CHECKPOINTS or scheme_of(target_url) == "jsonl":
        return 1
    if scheme_of(target_url) not in AUTO_JOBS_SCHEMES and not _splits_itself(source_url):
        return 1
    return max(1, min(AUTO_JOBS_MAX, usable_cores()))


def _splits_itself(source_url: str | None) -> bool:
    """The source's driver samples thread ranges from its index (no list of every thread)."""
    if source_url is None:
        return False
    from ckpt.backends import store_class

    return issubclass(store_class(source_url), _SampledBounds)


def cap_jobs(jobs: int) -> tuple[int, str | None]:
    """``jobs`` worker processes, capped at the cores and at what free memory allows (each worker
    adds ~90 MB): the number to start, and why it is fewer than asked for (``None`` when it is not).
    More processes than cores only take turns, and past free memory they swap. In a container
    (a Kubernetes pod) the cores and memory are its cgroup limits (``core.resources``)."""
    cores = usable_cores()
    memory = available_memory()
    fits = max(1, memory // WORKER_BYTES) if memory is not None else None
    capped = max(1, min(jobs, cores, fits if fits is not None else jobs))
    if capped >= jobs:
        return jobs, None
    if capped == cores:
        return capped, f"the number of cores ({cores})"
    return capped, f"what free memory allows ({(memory or 0) >> 20} MiB free, ~{WORKER_BYTES >> 20} MB a worker)"


def _copy_in_parallel(
    source_url: str,
    target_url: str,
    open_store: Opener,
    selection: Selection,
    jobs: int,
    batch_size: int,
    progress: Progress | None,
    skip_bad: bool,
) -> CopyReport:
    """``jobs`` worker processes, each copying contiguous ranges of thread ids in normal batches.

    Processes, not threads: splitting checkpoints is CPU-bound Python, and each worker has its
    own connections, so the client work of one worker overlaps the server work of another on
    different cores. Ranges are disjoint (strictly increasing bounds), so two workers never
    insert the same keys and cannot deadlock on them; each range goes in the usual batches,
    one transaction each, so a kill leaves whole batches and a rerun completes the copy.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with open_store(target_url, write=True) as probe:
        if probe.kind == "jsonl":
            raise UsageError("--jobs needs a database target; a JSONL file is written by one writer")
    with open_store(source_url) as source:
        source.validate()
        ranges = list(thread_ranges(source, selection, range_count(source, jobs)))
    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    events: Queue[tuple[int, int]] = context.Queue()
    stop = context.Event()
    total = CopyReport()
    with ProcessPoolExecutor(
        min(jobs, len(ranges)), mp_context=context, initializer=_init_worker, initargs=(events, stop, os.getpid())
    ) as pool:
        futures = [
            pool.submit(_copy_range, source_url, target_url, open_store, part, batch_size, skip_bad)
            for part in (replace(selection, thread_from=lo, thread_to=hi) for lo, hi in ranges)
        ]
        try:
            _relay_progress(futures, events, progress)
        finally:
            stop.set()  # after an error or Ctrl-C: running ranges stop after their current batch
            for future in futures:
                future.cancel()  # ranges not started never start
        errors = [e for f in futures if f.done() and not f.cancelled() and (e := f.exception()) is not None]
        if errors:
            raise min(errors, key=lambda e: isinstance(e, _Stopped))  # the cause, not its echoes
        for future in futures:
            total.merge(future.result())
    return total


def range_count(source: Store, jobs: int) -> int:
    """How many thread ranges ``jobs`` workers share: ``CHUNKS_PER_JOB`` each where a range costs
    its share (an early worker takes the next range), one each where every range costs a pass
    over the whole source (a Redis listing aggregate, a JSONL file read through)."""
    return jobs * (CHUNKS_PER_JOB if source.ranges_read_by_index else 1)


@runtime_checkable
class _SampledBounds(Protocol):
    def thread_bounds(self, selection: Selection, parts: int) -> list[str]: ...


def thread_ranges(source: Store, selection: Selection, parts: int) -> Iterator[tuple[str | None, str | None]]:
    """Up to ``parts`` half-open thread-id ranges holding about equal numbers of checkpoints.

    The first range is open below and the last open above, so together they cover every
    thread id whatever the source lists; the counts only balance the work. Bounds compare in
    the source's own order: a store that samples them from its index (PostgreSQL, in its
    collation) gives them without a list of every thread; others are walked thread by thread.
    """
    if isinstance(source, _SampledBounds):
        bounds = source.thread_bounds(selection, parts)
        yield from zip([None, *bounds], [*bounds, None])
        return
    expected = source.count(selection)
    summaries = source.threads(selection, details=False)
    if expected is None:
        listed = list(summaries)  # stores that cannot count cheaply: the summaries are small
        expected, summaries = sum(s.checkpoints for s in listed), iter(listed)
    share = max(1, -(-expected // max(1, parts)))
    low: str | None = None
    done = 0
    for summary in summaries:
        if done >= share and summary.thread_id != low:  # threads come once each, in the store's order
            yield low, summary.thread_id
            low, done = summary.thread_id, 0
        done += summary.checkpoints
    yield low, None


class _Stopped(Exception):
    """Another worker failed or the user pressed Ctrl-C: this worker stops between batches."""


_events: Queue[tuple[int, int]] | None = None
_stop: Event | None = None
_parent = 0


def _init_worker(events: Queue[tuple[int, int]], stop: Event, parent: int) -> None:
    global _events, _stop, _parent
    _events, _stop, _parent = events, stop, parent
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform == "linux":  # killed with the parent, even by kill -9: no orphan keeps writing
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)  # the parent died before prctl took effect


def _worker_progress(checkpoints: int, size: int) -> None:
    if os.getppid() != _parent:
        os._exit(1)  # orphaned (platforms without PR_SET_PDEATHSIG): stop between batches
    if _stop is not None and _stop.is_set():
        raise _Stopped
    if _events is not None:
        _events.put((checkpoints, size))


def _copy_range(
    source_url: str, target_url: str, open_store: Opener, part: Selection, batch_size: int, skip_bad: bool
) -> CopyReport:
    with open_store(source_url) as source, open_store(target_url, write=True) as target:
        return copy_records(
            source, target, part, source_url=source_url, batch_size=batch_size, skip_bad=skip_bad,
            progress=_worker_progress, validated=True,
        )  # fmt: skip


def _relay_progress(
    futures: list[Future[CopyReport]], events: Queue[tuple[int, int]], progress: Progress | None
) -> None:
    """Pass the workers' per-batch progress to ``progress`` (the bar) until all ranges are done."""
    from concurrent.futures import FIRST_EXCEPTION, wait

    relayed = 0
    pending = set(futures)
    while pending:
        _, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
        if any(f.done() and f.exception() is not None for f in futures):
            _drain(events, progress)
            return
        relayed += _drain(events, progress)
    # A worker's result can arrive before its queue's feeder thread has flushed the last events:
    # wait for them (bounded), so the bar and a caller's tally end at the real total.
    expected = sum(f.result().checkpoints_read for f in futures)
    relayed += _drain(events, progress, until=expected - relayed, patience=FLUSH_PATIENCE)


FLUSH_PATIENCE = 10.0
"""Seconds to wait for the workers' last progress events once every range is done."""


def _drain(events: Queue[tuple[int, int]], progress: Progress | None, until: int = 0, patience: float = 0.0) -> int:
    """Relay queued events; with ``until``, keep waiting (up to ``patience`` s) for that many checkpoints."""
    import queue
    import time

    relayed = 0
    deadline = time.monotonic() + patience
    while True:
        try:
            if relayed < until and time.monotonic() < deadline:
                checkpoints, size = events.get(timeout=0.1)
            else:
                checkpoints, size = events.get_nowait()
        except queue.Empty:
            if relayed < until and time.monotonic() < deadline:
                continue
            return relayed
        relayed += checkpoints
        if progress is not None:
            progress(checkpoints, size)
