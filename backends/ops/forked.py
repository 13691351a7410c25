"""One read cut into parts, shared by this process and a forked child; results still in order.

A long read that can be cut into parts (thread-id ranges, see ``Store.thread_splits``) is shared
between this process, which takes parts from the front and streams their items, and a forked
child, which takes parts from the back. Each side claims its next part only when it is done with
the last, so a side slowed down (another process on its core, a lopsided part) simply reads fewer
parts: neither waits long for the other. The child's items go to an unlinked temporary file, read
back once this process runs out of parts, so items come out in order and memory stays flat however
large the read. A process, not a thread: the stores' C modules take the GIL back for every row they
return, so two threads mostly waited on each other (measured slower than one).

Items must be what :mod:`marshal` carries (tuples, str, bytes, int, float, None, lists, dicts):
the child's own output, never stored data to be trusted.
"""

from __future__ import annotations

import fcntl
import marshal
import mmap
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, suppress
from typing import IO, Any, TypeVar

from ckpt.backends.core import errors
from ckpt.backends.core.errors import CkptError, DataError

T = TypeVar("T")

_BATCH = 2000
_ITEMS, _ERROR, _PART = b"I", b"E", b"P"
_HEAD = 9  # one kind byte and an 8-byte little-endian length
_in_child = False


def can_fork() -> bool:
    """Linux (fork is cheap and well-behaved), no other thread in this process (a lock another
    thread held at the fork would stay held in the child forever), and not a child of ours."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 and not _in_child


def idle_core() -> bool:
    """At least two cores, one of them idle right now: under load the two readers compete for
    one core and the whole read gets slower than one process reading it all.

    "Right now" is the kernel's count of runnable tasks (``/proc/loadavg``, this one included):
    at most cores - 1 in one of three looks a millisecond apart (a task that runs for an instant,
    a kernel worker or the shell's pipe reader, would otherwise cost the second reader: 1 run in
    30 of bench/bench_list.py). The 1-minute load average (the fallback elsewhere) lags: a shell
    loop or a benchmark that just ran keeps it near 1 on an idle machine.
    """
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        return False
    for look in range(3):
        running = _running()
        if running is None:
            return os.getloadavg()[0] <= cores - 1
        if running <= cores - 1:
            return True
        if look < 2:
            time.sleep(0.001)
    return False


def _running() -> int | None:
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


Reader = Callable[[int], Iterable[T]]
"""The items of one part, by its number."""


def in_parts(parts: int, here: Reader[T], there: Callable[[], AbstractContextManager[Reader[T]]]) -> Iterator[T]:
    """The items of parts ``0 … parts - 1``, in that order; this process reads parts from the
    front with ``here``, a forked child reads parts from the back with the reader ``there()`` gives it.

    ``there`` runs in the child only and must open its own connections (a connection must never
    be used on both sides of a fork); the context it returns is closed when the child is done.
    A :class:`CkptError` in the child is raised here as the same class with the same message
    (other exceptions as :class:`DataError`), after this process's parts and before any of the
    child's items. Closing the iterator early kills and reaps the child.
    """
    with tempfile.TemporaryFile(prefix="ckpt-parts-") as spool:
        claims = _Claims(parts, spool.fileno())
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; its output is checked by the parent
            _child(spool, claims, there)
        try:
            while (part := claims.front()) is not None:
                yield from here(part)
            status = _wait(pid)
            pid = 0
            yield from _spooled(spool, status)
        finally:
            claims.close()
            if pid:  # the caller stopped early, or a part failed here: the child's work is not wanted
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait(pid)


class _Claims:
    """The next part from the front (this process) or from the back (the child): two counters in
    memory shared across the fork, changed under a POSIX record lock (held per process, so the
    two processes exclude each other even on their shared descriptor)."""

    def __init__(self, parts: int, lock_fd: int) -> None:
        self._shared = mmap.mmap(-1, 16)  # anonymous and MAP_SHARED: one copy for both processes
        self._lock_fd = lock_fd
        self._set(0, parts)

    def front(self) -> int | None:
        return self._claim(from_front=True)

    def back(self) -> int | None:
        return self._claim(from_front=False)

    def close(self) -> None:
        self._shared.close()

    def _claim(self, *, from_front: bool) -> int | None:
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX, 1)
        try:
            first, end = int.from_bytes(self._shared[:8], "little"), int.from_bytes(self._shared[8:], "little")
            if first >= end:
                return None
            if from_front:
                self._set(first + 1, end)
                return first
            self._set(first, end - 1)
            return end - 1
        finally:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN, 1)

    def _set(self, first: int, end: int) -> None:
        self._shared[:] = first.to_bytes(8, "little") + end.to_bytes(8, "little")


def _child(
    spool: IO[bytes], claims: _Claims, there: Callable[[], AbstractContextManager[Reader[Any]]]
) -> None:  # pragma: no cover
    global _in_child
    _in_child = True
    code, fd = 0, spool.fileno()
    try:
        with there() as read:
            while (part := claims.back()) is not None:
                _frame(fd, _PART, part.to_bytes(8, "little"))
                batch: list[Any] = []
                for item in read(part):
                    batch.append(item)
                    if len(batch) == _BATCH:
                        _frame(fd, _ITEMS, marshal.dumps(batch))
                        batch = []
                if batch:
                    _frame(fd, _ITEMS, marshal.dumps(batch))
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent, nothing raised here
        with suppress(BaseException):
            name = type(exc).__name__ if isinstance(exc, CkptError) else ""
            _frame(fd, _ERROR, marshal.dumps((name, str(exc) or type(exc).__name__)))
        code = 1
    finally:
        os._exit(code)  # no atexit handlers, no flushing of buffers inherited from the parent


def _frame(fd: int, kind: bytes, payload: bytes) -> None:
    view = memoryview(kind + len(payload).to_bytes(8, "little") + payload)
    while view:
        view = view[os.write(fd, view) :]


def _wait(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _spooled(spool: IO[bytes], exit_code: int) -> Iterator[Any]:
    """The child's items, its parts in ascending order (it wrote them from the back)."""
    if exit_code != 0:
        raise _child_error(next((p for kind, p, _ in _frames(spool) if kind == _ERROR), None), exit_code)
    starts = sorted((int.from_bytes(p, "little"), at) for kind, p, at in _frames(spool) if kind == _PART)
    for _, at in starts:
        for kind, payload, _ in _frames(spool, at + _HEAD + 8):
            if kind == _PART:
                break
            if kind == _ITEMS:
                yield from marshal.loads(payload)


def _child_error(payload: bytes | None, exit_code: int) -> CkptError:
    if payload is None:
        return DataError(f"the second reader ended with exit code {exit_code}")
    name, message = marshal.loads(payload)
    cls = getattr(errors, name, None) if name else None
    if isinstance(cls, type) and issubclass(cls, CkptError):
        return cls(message)
    return DataError(f"the second reader failed: {message}")


def _frames(spool: IO[bytes], at: int = 0) -> Iterator[tuple[bytes, bytes, int]]:
    """``(kind, payload, offset of the frame)`` from ``at`` on; a frame cut short ends it."""
    spool.seek(at)
    while len(head := spool.read(_HEAD)) == _HEAD:
        size = int.from_bytes(head[1:], "little")
        payload = spool.read(size)
        if len(payload) < size:
            return
        yield head[:1], payload, at
        at += _HEAD + size
