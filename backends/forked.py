"""Two halves of one read at once: the upper half in a forked child, results still in order.

A long read that can be cut in two (thread-id ranges, see ``Store.thread_split``) runs its upper
half in a forked child while this process runs the lower half. The child's items go to an unlinked
temporary file, read back once the lower half is done, so items come out in order and memory stays
flat however large the read. A process, not a thread: the stores' C modules take the GIL back for
every row they return, so two threads mostly waited on each other (measured slower than one).

Items must be what :mod:`marshal` carries (tuples, str, bytes, int, float, None, lists, dicts):
the child's own output, never stored data to be trusted.
"""

from __future__ import annotations

import marshal
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from typing import IO, Any, TypeVar

from . import errors
from .errors import CkptError, DataError

T = TypeVar("T")

_BATCH = 2000
_ITEMS, _ERROR = b"I", b"E"
_HEAD = 9  # one kind byte and an 8-byte little-endian length
_in_child = False


def can_fork() -> bool:
    """Linux (fork is cheap and well-behaved), no other thread in this process (a lock another
    thread held at the fork would stay held in the child forever), and not a child of ours."""
    return sys.platform.startswith("linux") and threading.active_count() == 1 and not _in_child


def idle_core() -> bool:
    """At least two cores, one of them idle right now: under load the halves compete for one
    core and the whole read gets slower than one process reading it all.

    "Right now" is the kernel's count of runnable tasks (``/proc/loadavg``, this one included):
    at most cores - 1. The 1-minute load average (the fallback elsewhere) lags: a shell loop or
    a benchmark that just ran keeps it near 1 on an idle machine.
    """
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        return False
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] <= cores - 1
    return running <= cores - 1


def in_two_processes(lower: Callable[[], Iterable[T]], upper: Callable[[], Iterable[T]]) -> Iterator[T]:
    """The items of ``lower()``, then those of ``upper()``, which a forked child produced meanwhile.

    ``upper`` runs in the child only and must open its own connections (a connection must never
    be used on both sides of a fork). A :class:`CkptError` in the child is raised here as the same
    class with the same message (other exceptions as :class:`DataError`), before any of the
    child's items. Closing the iterator early kills and reaps the child.
    """
    with tempfile.TemporaryFile(prefix="ckpt-half-") as spool:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child; its output is checked by the parent
            _child(spool, upper)
        try:
            yield from lower()
            status = _wait(pid)
            pid = 0
            yield from _spooled(spool, status)
        finally:
            if pid:  # the caller stopped early, or the lower half failed: the child's work is not wanted
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait(pid)


def _child(spool: IO[bytes], upper: Callable[[], Iterable[Any]]) -> None:  # pragma: no cover
    global _in_child
    _in_child = True
    code, fd = 0, spool.fileno()
    try:
        batch: list[Any] = []
        for item in upper():
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
    if exit_code != 0:
        raise _child_error(next((p for kind, p in _frames(spool) if kind == _ERROR), None), exit_code)
    for kind, payload in _frames(spool):
        if kind == _ITEMS:
            yield from marshal.loads(payload)


def _child_error(payload: bytes | None, exit_code: int) -> CkptError:
    if payload is None:
        return DataError(f"the reader of the second half ended with exit code {exit_code}")
    name, message = marshal.loads(payload)
    cls = getattr(errors, name, None) if name else None
    if isinstance(cls, type) and issubclass(cls, CkptError):
        return cls(message)
    return DataError(f"the reader of the second half failed: {message}")


def _frames(spool: IO[bytes]) -> Iterator[tuple[bytes, bytes]]:
    spool.seek(0)
    while len(head := spool.read(_HEAD)) == _HEAD:
        size = int.from_bytes(head[1:], "little")
        payload = spool.read(size)
        if len(payload) < size:
            return
        yield head[:1], payload
