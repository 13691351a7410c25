"""Every error ckpt raises on purpose, and the exit code each one maps to.

This is the one place where error classes meet exit codes; ``docs/cli.md`` documents the
table and a test keeps the two in step. Drivers translate their library's exceptions into
these classes at the driver edge, so the CLI never catches a driver's own exceptions.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit statuses (stable; scripts and cron jobs rely on them)."""

    OK = 0
    ERROR = 1
    """A failure not listed below, or a check that found differences/findings."""
    USAGE = 2
    """Bad flags or arguments, an unknown URL scheme, a bad option value."""
    NOT_FOUND = 3
    """The store file, thread or checkpoint does not exist."""
    UNAVAILABLE = 4
    """Server unreachable, authentication failed, or a driver extra is not installed."""
    DATA = 5
    """Stored or input data ckpt cannot read: not a checkpoint store, corrupt row, bad JSONL line."""
    LOCKED = 6
    """Another destructive ckpt run holds the store's lock; nothing was changed."""
    INTEGRITY = 7
    """A delete would have left a kept checkpoint without a value or pending write it names; its
    batch was rolled back (or, where the store has no transactions, nothing of it was deleted)."""
    ABORTED = 8
    """A confirmation was declined (``n`` at the prompt); nothing was changed."""
    INTERNAL = 70
    """A bug in ckpt: an exception that is not a ``CkptError`` (sysexits' EX_SOFTWARE)."""
    INTERRUPTED = 130
    """Ctrl-C."""


class CkptError(Exception):
    """Base class: a message for people and an exit code for scripts."""

    exit_code: ExitCode = ExitCode.ERROR


class UsageError(CkptError):
    """The command line asks for something that cannot be done."""

    exit_code = ExitCode.USAGE


class UnknownSchemeError(UsageError):
    """No driver is registered for the URL's scheme."""


class NotFoundError(CkptError):
    """Something named on the command line does not exist."""

    exit_code = ExitCode.NOT_FOUND


class StoreNotFoundError(NotFoundError):
    """The store (a file, a database) does not exist; read commands never create it."""


class ThreadNotFoundError(NotFoundError):
    """No checkpoint of that thread (and namespace) is in the store."""


class CheckpointNotFoundError(NotFoundError):
    """No checkpoint with that id is in the thread."""


class BackendUnavailableError(CkptError):
    """The store cannot be reached, refused us, or its driver is not installed."""

    exit_code = ExitCode.UNAVAILABLE


class AccessDeniedError(CkptError):
    """The store is there but this user may not change it (read-only role, read-only file)."""

    exit_code = ExitCode.UNAVAILABLE


class StorageError(CkptError):
    """The file system refused a file ckpt writes (an export, a replay timeline, a SQLite target):
    disk full or over quota, read-only file system, permission denied. Nothing partial is left."""

    exit_code = ExitCode.UNAVAILABLE

    @staticmethod
    def from_os_error(exc: OSError, doing: str) -> CkptError:
        """``exc`` (from ``doing``, e.g. ``"writing backup.jsonl"``) as the error to raise: a missing
        directory is ``StoreNotFoundError`` (3), everything else this class (4)."""
        import errno
        import os

        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        if exc.errno == errno.ENOENT:
            return StoreNotFoundError(f"{doing}: no such directory ({reason})")
        return StorageError(f"{doing}: {reason}")


class DataError(CkptError):
    """Stored or input data that ckpt cannot read."""

    exit_code = ExitCode.DATA


class LockedError(CkptError):
    """Another ckpt run holds the store's lock (cron fired twice); nothing was changed."""

    exit_code = ExitCode.LOCKED


class IntegrityError(CkptError):
    """The integrity guard stopped a delete: the message names the kept checkpoint and what it would lose."""

    exit_code = ExitCode.INTEGRITY


class NotAStoreError(DataError):
    """The target exists but is not a LangGraph checkpoint store ckpt can read."""


class CorruptRecordError(DataError):
    """One stored row cannot be decoded; the message names its key."""


class FormatError(DataError):
    """A JSONL export file is malformed; the message names the line."""
