"""What the stores' ``Store.lock`` share: the TTL, tokens, the renewal thread, and the file lock.

A server lock (Redis, MongoDB, Couchbase) is a key or document holding a random *token* and an
expiry of ``lock_ttl()`` seconds: a holder killed with SIGKILL stops renewing it, and it lapses
after the TTL. While a block holds it, a daemon thread (:class:`Renewal`) extends the expiry every
TTL/3, by token (compare-and-renew), so a prune that runs for hours keeps it; the release deletes
it by token too (compare-and-delete), so a holder whose lock lapsed and was taken over never
deletes the new holder's.

A renewal that finds the token gone (or cannot reach the server for a whole TTL) marks the lock
*lost*: the block ending normally then raises ``LockedError``, and :func:`check_held` raises it at
once for code that wants to stop before its next batch.

SQLite's lock is :func:`file_lock`: ``flock`` (POSIX), ``msvcrt.locking`` (Windows), or else an
``O_CREAT | O_EXCL`` file holding the holder's pid, host and expiry. None of them leaves the lock
file behind once released, nor after a refused attempt.
"""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from ckpt.backends.core.errors import LockedError, UsageError

DEFAULT_TTL = 60.0
"""Seconds a lock outlives its last renewal (a dead holder's lock lapses after this)."""

TTL_ENV = "CKPT_LOCK_TTL"


def lock_ttl() -> float:
    """``CKPT_LOCK_TTL`` (seconds, a float; tests set it low), else :data:`DEFAULT_TTL`."""
    text = os.environ.get(TTL_ENV, "").strip()
    if not text:
        return DEFAULT_TTL
    try:
        ttl = float(text)
    except ValueError:
        ttl = math.nan
    if not math.isfinite(ttl) or ttl <= 0:
        raise UsageError(f"{TTL_ENV} takes a number of seconds above 0, got {text!r}")
    return ttl


def new_token() -> str:
    """A lock token: unique, and telling who holds the lock (``host:pid:random``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def holder_of(token: object) -> str:
    """``pid 123 on host`` from a token of :func:`new_token` (for the refusal message)."""
    if isinstance(token, bytes):
        token = token.decode(errors="replace")
    if not isinstance(token, str):
        return "unknown holder"
    parts = token.rsplit(":", 2)
    if len(parts) == 3 and parts[1].isdigit():
        return f"pid {parts[1]} on {parts[0]}"
    return "unknown holder"


# -- renewal ---------------------------------------------------------------------

_held: set[Renewal] = set()
_held_guard = threading.Lock()


class Renewal:
    """A daemon thread that calls ``renew()`` every ``ttl / 3`` seconds until stopped.

    ``renew`` extends the lock's expiry by token and returns False when the token is no longer
    there (the lock lapsed and someone took it over). Errors are retried at the next tick; once no
    renewal has succeeded for a whole TTL the lock has lapsed anyway, and is counted lost.
    """

    def __init__(self, renew: Callable[[], bool], ttl: float, what: str) -> None:
        """``what`` names the lock in messages: ``the prune lock (key ...)``."""
        self._renew = renew
        self._ttl = ttl
        self.what = what
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ckpt-lock-renewal {what}", daemon=True)

    def start(self) -> None:
        with _held_guard:
            _held.add(self)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()
        with _held_guard:
            _held.discard(self)

    def check(self) -> None:
        """Raise ``LockedError`` if the lock was lost while held."""
        if self.lost is not None:
            raise LockedError(
                f"{self.what} was lost while held ({self.lost}); stopped, as another ckpt may be running"
                " (what was done before stays done)"
            )

    def _run(self) -> None:
        interval = self._ttl / 3
        last_renewed = time.monotonic()
        while not self._stop.wait(interval):
            try:
                renewed = self._renew()
            except Exception as exc:  # the server is unreachable: try again at the next tick
                if time.monotonic() - last_renewed >= self._ttl:
                    self.lost = f"not renewed for {self._ttl:g} s: {exc.__class__.__name__}"
                    return
                continue
            if not renewed:
                self.lost = "its token is gone: it expired and may have been taken over"
                return
            last_renewed = time.monotonic()


def check_held() -> None:
    """Raise ``LockedError`` if a lock this process holds was lost (call it between batches)."""
    with _held_guard:
        held = list(_held)
    for renewal in held:
        renewal.check()


@contextmanager
def renewed(renew: Callable[[], bool], ttl: float, what: str) -> Iterator[Renewal]:
    """Keep a lock renewed for the block; a block that ends normally raises ``LockedError`` if
    the lock was lost meanwhile, or no longer holds its token at the end (the caller releases the
    lock by token around this)."""
    renewal = Renewal(renew, ttl, what)
    renewal.start()
    try:
        yield renewal
    finally:
        renewal.stop()
    if renewal.lost is None:  # one last look: taken over since the last renewal?
        with suppress(Exception):
            if not renew():
                renewal.lost = "its token is gone: it expired and may have been taken over"
    renewal.check()


# -- the file lock (SQLite) ------------------------------------------------------------


@contextmanager
def file_lock(path: str, refusal: str) -> Iterator[None]:
    """An exclusive lock on the file ``path``, taken without waiting; ``LockedError`` when held,
    saying ``refusal`` (``another ckpt prune is running on ...``) and the lock file.

    The file exists only while the lock is held (and after a holder was killed, until the next
    run takes and releases it): ``flock`` where there is ``fcntl``, ``msvcrt.locking`` on Windows,
    else an ``O_EXCL`` file with the holder's pid, host and expiry (:func:`_exclusive_lock`).
    """
    try:
        import fcntl
    except ImportError:
        if sys.platform == "win32":
            with _msvcrt_lock(path, refusal):
                yield
        else:
            with _exclusive_lock(path, refusal):
                yield
        return
    fd = _flock_acquire(fcntl, path, refusal)
    try:
        yield
    finally:
        # Unlinked while still locked: whoever opened this inode meanwhile finds, once it has the
        # flock, that the path no longer names it, and starts again on a new file.
        with suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


def _refused(refusal: str, path: str, holder: str = "") -> LockedError:
    return LockedError(f"{refusal} (lock file {path}{', held by ' + holder if holder else ''})")


def _same_file(fd: int, path: str) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _flock_acquire(fcntl: Any, path: str, refusal: str) -> int:
    """An fd on ``path`` holding ``flock(LOCK_EX)``, the path still naming that very inode."""
    for _ in range(50):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                # Held: by whoever holds this inode, who removes the file when done (a file this
                # attempt created is held by someone who opened it since, and will remove it).
                raise _refused(refusal, path) from None
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)  # the holder before us unlinked it on release: try the path again
    raise _refused(refusal, path, "the file kept being replaced")


@contextmanager
def _msvcrt_lock(path: str, refusal: str) -> Iterator[None]:  # pragma: no cover - Windows only
    """Windows: a byte-range lock on byte 0. A file open elsewhere cannot be unlinked there, so
    an unlink that succeeds proves nobody holds (or is about to lock) the file."""
    if sys.platform == "win32":
        import msvcrt

        fd = -1
        for _ in range(50):
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
            try:
                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            except OSError:
                os.close(fd)
                with suppress(OSError):
                    os.unlink(path)  # fails while the holder has it open, as it should
                raise _refused(refusal, path) from None
            if _same_file(fd, path):
                break
            os.close(fd)
        else:
            raise _refused(refusal, path, "the file kept being replaced")
        try:
            yield
        finally:
            os.lseek(fd, 0, os.SEEK_SET)
            with suppress(OSError):
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
            os.close(fd)
            with suppress(OSError):
                os.unlink(path)  # fails if someone opened it meanwhile: they remove it when done
    else:
        raise RuntimeError("msvcrt locks exist only on Windows")
        yield


def _read_lock_file(path: str, ttl: float) -> dict[str, Any] | None:
    """The lock file's content; one not written yet (or garbled) expires a TTL after its mtime."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        mtime = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
        if isinstance(info, dict) and isinstance(info.get("expires"), (int, float)):
            return info
    except ValueError:
        pass
    return {"token": None, "expires": mtime + ttl}


def _write_lock_file(path: str, token: str, ttl: float) -> None:
    """Replace the content at once (readers never see half of it)."""
    temporary = f"{path}.{uuid.uuid4().hex}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(_content(token, ttl), handle)
    os.replace(temporary, path)


def _content(token: str, ttl: float) -> dict[str, Any]:
    return {"token": token, "pid": os.getpid(), "host": socket.gethostname(), "expires": time.time() + ttl}


@contextmanager
def _exclusive_lock(path: str, refusal: str) -> Iterator[None]:
    """No ``flock`` nor ``msvcrt``: the file created with ``O_EXCL`` is the lock. It holds a token,
    pid, host and expiry, renewed every TTL/3; an expired one (its holder died) is taken over."""
    ttl, token = lock_ttl(), new_token()
    for _ in range(50):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(_content(token, ttl), handle)
            break
        info = _read_lock_file(path, ttl)
        if info is None:
            continue  # released meanwhile
        if info["expires"] > time.time():
            holder = f"pid {info['pid']} on {info['host']}" if "pid" in info else "being written"
            raise _refused(refusal, path, holder)
        # Expired: move it aside under a name of our own, then check that what moved is what was
        # judged expired (a new holder may have replaced it in between: that one is put back).
        aside = f"{path}.{uuid.uuid4().hex}.expired"
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        moved = _read_lock_file(aside, ttl)
        if moved is not None and moved.get("token") != info.get("token") and moved["expires"] > time.time():
            if not os.path.exists(path):
                os.rename(aside, path)
            with suppress(FileNotFoundError):
                os.unlink(aside)
            holder = f"pid {moved.get('pid')} on {moved.get('host')}"
            raise _refused(refusal, path, holder)
        with suppress(FileNotFoundError):
            os.unlink(aside)
    else:
        raise _refused(refusal, path, "the file kept being replaced")

    def renew() -> bool:
        info = _read_lock_file(path, ttl)
        if info is None or info.get("token") != token:
            return False
        _write_lock_file(path, token, ttl)
        return True

    try:
        with renewed(renew, ttl, f"the lock file {path}"):
            yield
    finally:
        info = _read_lock_file(path, ttl)
        if info is not None and info.get("token") == token:
            with suppress(FileNotFoundError):
                os.unlink(path)
