"""Copies split across worker processes (``migrate --jobs``): how many workers, each's thread ranges.

Processes, not threads: splitting checkpoints is CPU-bound Python, and each worker has its own
connections. Every worker runs :func:`ckpt.backends.ops.transfer.copy_records` on its ranges.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ckpt.backends.core.base import Selection, Store
from ckpt.backends.core.errors import UsageError
from ckpt.backends.core.resources import available_memory, usable_cores
from ckpt.backends.core.shards import split_shard
from ckpt.backends.core.urls import scheme_of
from ckpt.backends.ops.transfer import DEFAULT_BATCH, CopyReport, Opener, Progress, copy_records

if TYPE_CHECKING:  # multiprocessing is imported only when --jobs asks for it
    from concurrent.futures import Future
    from multiprocessing import Queue
    from multiprocessing.synchronize import Event

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
    with open_store(source_url) as source:
        source.validate()  # before the target is opened for writing, which may create it
        with open_store(target_url, write=True) as target:
            return copy_records(
                source,
                target,
                selection,
                source_url=source_url,
                batch_size=batch_size,
                progress=progress,
                skip_bad=skip_bad,
                validated=True,
            )


def auto_jobs(target_url: str, checkpoints: int | None, source_url: str | None = None) -> int:
    """``--jobs`` when not given: 2 workers (1 on one core) for big copies into PostgreSQL or out of
    a store that samples its own thread ranges (PostgreSQL: ``thread_bounds``), else 1.

    Measured on 100k checkpoints into PostgreSQL: client (read, split, COPY formatting) and
    server (parsing, TOAST compression, indexes) each take about half the CPU and take turns
    on one connection; two workers keep both cores busy. Out of PostgreSQL into SQLite (issue
    #24): reading and assembling the saver's rows is the Python half, and two workers took
    10.3-11.3 s against 14.4-17.1 s for one, though their SQLite writes take turns on its lock.
    Out of Redis into SQLite, measured when each worker listed every thread for its hash shard,
    two workers took the same time as one at 100k and 0.83x at 1M, so the default stays 1 (into
    PostgreSQL: 2; the parent now lists once and hands out sets of threads, ``listed_parts``).
    A JSONL file has one writer, and so has a Redis server (``Store.one_writer``): out of PostgreSQL into Redis one
    worker, which builds a batch while the last is sent, took 12.4-14.9 s against 15.4-15.7 s.
    """
    if (checkpoints or 0) < AUTO_JOBS_MIN_CHECKPOINTS or scheme_of(target_url) == "jsonl":
        return 1
    if _one_writer(target_url):
        return 1
    if scheme_of(target_url) not in AUTO_JOBS_SCHEMES and not _splits_itself(source_url):
        return 1
    return max(1, min(AUTO_JOBS_MAX, usable_cores()))


def _one_writer(target_url: str) -> bool:
    from ckpt.backends import store_class

    return store_class(target_url).one_writer


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
    """``jobs`` worker processes, each copying parts of the threads (``worker_parts``: contiguous
    ranges of thread ids, sets of them, or hash shards) in normal batches.

    Processes, not threads: splitting checkpoints is CPU-bound Python, and each worker has its
    own connections, so the client work of one worker overlaps the server work of another on
    different cores. Parts are disjoint (ranges by strictly increasing bounds, shards by hash), so
    two workers never insert the same keys and cannot deadlock on them; each part goes in the usual
    batches, one transaction each, so a kill leaves whole batches and a rerun completes the copy.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # no fork of a process holding connections
    events: Queue[tuple[int, int]] = context.Queue()
    stop = context.Event()
    total = CopyReport()
    initargs = (events, stop, os.getpid(), (source_url, target_url))
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=initargs) as pool:
        # Start the workers now (a spawned pool starts one per task submitted): their start-up
        # (~0.4 s of imports each) overlaps the checks of both stores below.
        for _ in range(jobs):
            pool.submit(_started)
        # refused: leaving the pool waits for the workers to start and stop (their queues live until then)
        parts = _checked_parts(source_url, target_url, open_store, selection, jobs)
        futures = [
            pool.submit(_copy_range, source_url, target_url, open_store, part, batch_size, skip_bad) for part in parts
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


def _checked_parts(
    source_url: str, target_url: str, open_store: Opener, selection: Selection, jobs: int
) -> list[Selection]:
    """The parts the workers copy, once both stores are found fit for it: the source first, so
    that a source refused leaves no new target behind (opening one for writing may create it)."""
    with open_store(source_url) as source:
        source.validate()
        parts = worker_parts(source, selection, jobs)
    with open_store(target_url, write=True) as probe:
        if probe.kind == "jsonl":
            raise UsageError("--jobs needs a database target; a JSONL file is written by one writer")
    return parts


def worker_parts(source: Store, selection: Selection, jobs: int) -> list[Selection]:
    """The parts of ``selection`` that ``jobs`` workers share, a task each.

    ``CHUNKS_PER_JOB`` parts per worker where a part costs about its share (an early worker takes
    the next one): thread ranges where a range is read from an ordered index, sets of threads from
    one listing where the driver reads a set by a search (Redis: ``listed_parts``). Where every
    part costs a pass over the whole source anyway (a JSONL file read through, a Redis Cluster's
    SCAN, a Redis store past ``MAX_LISTED_THREADS``), one hash shard of the threads per worker
    (``core.shards``, within the user's ``--shard`` if any): disjoint and covering like ranges,
    and planned without a pass of its own.
    """
    if isinstance(source, _CountsThreads):
        listed = listed_parts(source, selection, jobs * CHUNKS_PER_JOB)
        if listed is not None:
            return listed
    if not source.ranges_read_by_index:
        return [replace(selection, shard=split_shard(selection.shard, part, jobs)) for part in range(jobs)]
    ranges = thread_ranges(source, selection, jobs * CHUNKS_PER_JOB)
    return [replace(selection, thread_from=low, thread_to=high) for low, high in ranges]


MAX_LISTED_THREADS = 100_000
"""Threads a parent holds to hand out as sets (~10 MB); past it, each worker lists its hash shard."""


@runtime_checkable
class _CountsThreads(Protocol):
    def thread_counts(self, selection: Selection) -> Iterator[tuple[str, int]] | None: ...


def listed_parts(source: _CountsThreads, selection: Selection, parts: int) -> list[Selection] | None:
    """Up to ``parts`` sets of threads in the store's order, of about equal numbers of checkpoints,
    from one listing (``thread_counts``: a driver that reads a set of threads by a search, not a
    pass over the store); ``None`` where it cannot list or past ``MAX_LISTED_THREADS`` threads.

    Measured on Redis → PostgreSQL with two workers at 100k checkpoints: each worker listing
    every thread for its hash shard ran two aggregates of ~0.2 s one after the other on the
    server's one thread while the workers waited; the parent's one listing runs while the
    workers start, and several parts a worker even out their ends."""
    counts = source.thread_counts(selection)
    if counts is None:
        return None
    listed: list[tuple[str, int]] = []
    for thread_id, checkpoints in counts:
        if len(listed) == MAX_LISTED_THREADS:
            return None
        listed.append((thread_id, checkpoints))
    share = max(1, -(-sum(n for _, n in listed) // max(1, parts)))
    cut: list[Selection] = []
    taken: list[str] = []
    done = 0
    for thread_id, checkpoints in listed:
        taken.append(thread_id)
        done += checkpoints
        if done >= share:
            cut.append(replace(selection, threads=frozenset(taken)))
            taken, done = [], 0
    if taken or not cut:
        cut.append(replace(selection, threads=frozenset(taken)))
    return cut


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


def _init_worker(events: Queue[tuple[int, int]], stop: Event, parent: int, urls: tuple[str, ...] = ()) -> None:
    """Each worker's start: progress and stop channels, death with the parent, and the drivers of
    ``urls`` imported (while the parent still checks the stores; an error there is the parent's to report)."""
    global _events, _stop, _parent
    _events, _stop, _parent = events, stop, parent
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if sys.platform == "linux":  # killed with the parent, even by kill -9: no orphan keeps writing
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)  # the parent died before prctl took effect
    from ckpt.backends import store_class

    for url in urls:
        with suppress(Exception):
            store_class(url)


def _started() -> None:
    """A worker's first task: none (submitting it starts the worker)."""


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
    # The parent opened and checked both stores before it handed out the parts.
    with open_store(source_url, reopen=True) as source, open_store(target_url, write=True, reopen=True) as target:
        return copy_records(
            source, target, part, source_url=source_url, batch_size=batch_size, skip_bad=skip_bad,
            progress=_worker_progress, validated=True, overlap=False,
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
