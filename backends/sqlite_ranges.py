"""One GROUP BY thread_id query read as two thread-id ranges at once, for ``ckpt list``.

Python's sqlite3 releases the GIL while SQLite steps through a query, so a second read-only
connection in a thread scans the upper half of the primary-key index on another core while
this thread reads (and the caller prints) the lower half. Rows still come out in thread order.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import Any

_BATCH = 1000
_AHEAD = 64
"""Batches the upper range may read ahead of the caller: memory stays bounded (~64k rows)."""
_DONE = object()


def idle_core() -> bool:
    """Whether a second core is free: on a busy machine the two ranges compete for one core and
    the listing gets slower, not faster (measured: +25% wall time at a load average of 5 on 2 cores)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): do not guess
        return False
    return cores >= 2 and load <= cores - 1


def split_point(lower: str | None, upper: str | None, first_from: Callable[[str], str | None]) -> str | None:
    """A thread id ``s`` with ``lower < s <= upper`` near the middle of the stored ids, or ``None``.

    ``first_from(s)`` is the smallest stored id ``>= s`` (one index seek). Stepping with it
    from character to character finds which characters occur right after the common prefix
    of ``lower`` and ``upper`` (16 seeks for uuid ids); the split is at the median of those.
    It only has to be correct, not even: a lopsided split just gains less.
    """
    if lower is None or upper is None or lower >= upper:
        return None
    at = 0
    while at < len(lower) and lower[at] == upper[at]:
        at += 1
    prefix, seen = lower[:at], list[str]()
    probe: str | None = lower
    while probe is not None and len(seen) < _MAX_PROBES:
        found = first_from(probe)
        if found is None or not found.startswith(prefix):
            break
        if len(found) == at:  # the prefix itself is an id (lower is a prefix of upper)
            probe = prefix + "\x00"
            continue
        seen.append(found[at])
        probe = _after(prefix, found[at])
    middle = prefix + seen[len(seen) // 2] if len(seen) >= 2 else None
    return middle if middle is not None and lower < middle <= upper else None


_MAX_PROBES = 128


def _after(prefix: str, char: str) -> str | None:
    """The smallest string after every string that starts with ``prefix + char``."""
    code = ord(char) + 1
    if 0xD800 <= code <= 0xDFFF:  # lone surrogates cannot be bound as UTF-8 text
        code = 0xE000
    return prefix + chr(code) if code <= 0x10FFFF else None


def two_ranges(
    conn: sqlite3.Connection,
    connect: Callable[[], sqlite3.Connection],
    sql: Callable[[str], str],
    params: Sequence[Any],
    split: str,
) -> Iterator[tuple[Any, ...]]:
    """Rows of ``sql("thread_id < ?")`` read on ``conn``, then of ``sql("thread_id >= ?")``, which a
    thread reads meanwhile on ``connect()``. ``sql`` puts the condition into its WHERE clause."""
    batches: queue.Queue[object] = queue.Queue(_AHEAD)
    stop = threading.Event()

    def read_upper() -> None:
        try:
            other = connect()
            try:
                cursor = other.execute(sql("thread_id >= ?"), [*params, split])
                while not stop.is_set() and (batch := cursor.fetchmany(_BATCH)):
                    batches.put(batch)
            finally:
                other.close()
            batches.put(_DONE)
        except BaseException as exc:  # handed to the reader, which raises it
            batches.put(exc)

    worker = threading.Thread(target=read_upper, name="ckpt-list-upper-range", daemon=True)
    worker.start()
    try:
        cursor = conn.execute(sql("thread_id < ?"), [*params, split])
        while batch := cursor.fetchmany(_BATCH):
            yield from batch
        while (item := batches.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield from item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():  # the reader left early: unblock a put() on a full queue
            with suppress(queue.Empty):
                batches.get(timeout=0.05)
