"""One ``GROUP BY thread_id`` over a large SQLite file, read as two thread-id ranges at once.

``ckpt list`` on a big store is one aggregate scan of the primary-key index (count, first and last
id per thread); on one core it costs about twice the bare ``count(*)`` scan. When a core is idle,
a forked child process scans the upper half of the thread ids while this process reads (and the
caller prints) the lower half; the child leaves its rows in an unlinked temporary file, which this
process reads once its own half is done, so rows still come out in thread order and memory stays
flat. A process, not a thread: the sqlite3 module takes the GIL back for every row it returns, so
two threads mostly waited on each other (measured: slower than one query).

The two halves are two read transactions, so a listing taken while a writer commits may see the
lower half before and the upper half after that commit; each thread's row is one consistent read.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from typing import IO, Any

from .errors import DataError

MIN_FILE_BYTES = 64 << 20
"""Below this the whole scan takes a few milliseconds: a fork would cost more than it saves."""
READERS_ENV = "CKPT_SQLITE_READERS"
"""``1`` or ``2`` forces one or two readers (benchmarks, tests); unset or anything else: decide here."""

_BATCH = 5000
_ROWS, _ERROR = b"R", b"E"
_HEAD = 9  # one kind byte and an 8-byte little-endian length


def worth_two_readers(path: str) -> bool:
    """Two readers only where they can help and forking is safe.

    Linux (fork is cheap and well-behaved), a file of at least 64 MiB, at least two cores with one
    idle (1-minute load average <= cores - 1: under load the halves compete for one core and the
    listing got slower), and no other thread in this process (a lock held by another thread at the
    fork would stay held in the child forever).
    """
    forced = os.environ.get(READERS_ENV, "")
    if forced in ("1", "2"):
        return forced == "2" and _can_fork()
    if not _can_fork():
        return False
    try:
        if os.path.getsize(path) < MIN_FILE_BYTES:
            return False
    except OSError:
        return False
    cores = len(os.sched_getaffinity(0))
    return cores >= 2 and os.getloadavg()[0] <= cores - 1


def _can_fork() -> bool:
    return sys.platform.startswith("linux") and threading.active_count() == 1


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


Rows = Callable[[str, Sequence[Any]], Iterator[tuple[Any, ...]]]
"""``rows(condition, params)``: the query's rows with ``condition`` added to its WHERE clause."""


def two_ranges(lower_rows: Rows, upper_rows: Rows, params: Sequence[Any], split: str) -> Iterator[tuple[Any, ...]]:
    """Rows of ``lower_rows("thread_id < ?")``, then those of ``upper_rows("thread_id >= ?")``,
    which a forked child reads meanwhile. ``upper_rows`` runs in the child only: it must open its
    own connection (a connection must never be used on both sides of a fork).

    A failure in the child is raised here as :class:`DataError` with the child's message.
    """
    with tempfile.TemporaryFile(prefix="ckpt-list-") as spool:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; its output is checked by the parent
            _child(spool, upper_rows, [*params, split])
        try:
            yield from lower_rows("thread_id < ?", [*params, split])
            status = _wait(pid)
            pid = 0
            yield from _spooled(spool, status)
        finally:
            if pid:  # the caller stopped early, or the lower half failed: the child's work is not wanted
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait(pid)


def _child(spool: IO[bytes], upper_rows: Rows, params: Sequence[Any]) -> None:  # pragma: no cover
    code = 0
    fd = spool.fileno()
    try:
        batch: list[tuple[Any, ...]] = []
        for row in upper_rows("thread_id >= ?", params):
            batch.append(row)
            if len(batch) == _BATCH:
                _frame(fd, _ROWS, marshal.dumps(batch))
                batch = []
        if batch:
            _frame(fd, _ROWS, marshal.dumps(batch))
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent, nothing raised here
        with suppress(BaseException):
            _frame(fd, _ERROR, (str(exc) or type(exc).__name__).encode("utf-8", "replace"))
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of buffers inherited from the parent


def _frame(fd: int, kind: bytes, payload: bytes) -> None:
    data = kind + len(payload).to_bytes(8, "little") + payload
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _spooled(spool: IO[bytes], exit_code: int) -> Iterator[tuple[Any, ...]]:
    """The child's rows; nothing of them when it failed (no half listing before the error)."""
    if exit_code != 0:
        message = next((p for kind, p in _frames(spool) if kind == _ERROR), b"")
        detail = message.decode("utf-8", "replace") or f"exit code {exit_code}"
        raise DataError(f"the reader of the upper thread-id range failed: {detail}")
    for kind, payload in _frames(spool):
        if kind == _ROWS:
            yield from marshal.loads(payload)


def _frames(spool: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    spool.seek(0)
    while len(head := spool.read(_HEAD)) == _HEAD:
        size = int.from_bytes(head[1:], "little")
        payload = spool.read(size)
        if len(payload) < size:
            return
        yield head[:1], payload
