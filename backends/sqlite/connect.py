"""Opening SQLite files: read-only, for writing, or immutable on read-only media; sqlite3 errors as ckpt's."""

from __future__ import annotations

import os
import sqlite3
from contextlib import suppress
from urllib.parse import quote

from ckpt.backends.core.errors import (
    AccessDeniedError,
    BackendUnavailableError,
    CkptError,
    DataError,
    LockedError,
    StorageError,
    StoreNotFoundError,
)
from ckpt.backends.core.shards import shard_of


def connect(target: str, path: str, *, uri: bool = False) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(target, uri=uri, isolation_level=None, timeout=30, check_same_thread=False)
    except sqlite3.Error as exc:
        raise BackendUnavailableError(f"cannot open SQLite file {path}: {exc}") from exc
    conn.text_factory = str
    # --shard's test in SQL (backends/core/shards.py), so other shards' rows never reach Python
    conn.create_function("ckpt_shard", 2, shard_of, deterministic=True)
    return conn


IMMUTABLE_NOTE = "immutable=1 (read-only directory or media and no -wal file: nothing can change the file)"


def connect_existing(path: str, *, write: bool) -> tuple[sqlite3.Connection, bool]:
    """A connection to an existing file (neither mode creates one), and whether it is immutable.

    A WAL-mode file needs its ``-shm`` (and ``-wal``) beside it even to be read; on read-only media
    (or in a directory this user may not write) without a ``-wal`` file they cannot be made, and
    nothing can be writing the file: it is read with ``immutable=1`` (said on the ``ckpt`` logger
    and in ``layout()``). A write open there is refused up front (``AccessDeniedError``, exit 4)."""
    target = f"file:{quote(os.path.abspath(path))}"
    if write:
        check_writable(path)
        return connect(f"{target}?mode=rw", path, uri=True), False
    conn = connect(f"{target}?mode=ro", path, uri=True)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn, False
    except sqlite3.DatabaseError as exc:
        directory = os.path.dirname(os.path.abspath(path))
        if "unable to open" not in str(exc) or os.path.exists(f"{path}-wal") or os.access(directory, os.W_OK):
            return conn, False  # the layout check names the problem
    conn.close()
    import logging

    logging.getLogger("ckpt").warning("note: %s opened %s", path, IMMUTABLE_NOTE)
    return connect(f"{target}?mode=ro&immutable=1", path, uri=True), True


def check_writable(path: str) -> None:
    """Refuse a write open where SQLite could not write: a read-only file, or a directory (media)
    where its journal files cannot be created."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise AccessDeniedError(f"{path} is read-only for this user; nothing was changed")
    if not os.access(directory, os.W_OK):
        raise AccessDeniedError(
            f"{path} cannot be written: its directory {directory} is read-only (or on read-only media); "
            "nothing was changed"
        )


def remove_database(path: str) -> None:
    """A database file this run created, and its journal files (a failed first migrate)."""
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        with suppress(FileNotFoundError):
            os.unlink(name)


def translated(exc: BaseException, path: str) -> BaseException:
    """The error to raise for ``exc``: a ``CkptError`` already in its chain (a ``DataError`` whose
    cleanup failed too), else its root SQLite cause as one line (``cannot rollback - no transaction
    is active`` is the echo of a failed write, not the reason); unknown errors are left as they are."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, CkptError):
            return item
    errors = [e for e in chain if isinstance(e, sqlite3.Error)]
    for error in reversed(errors):  # the root cause first
        translated = sqlite_error(error, path)
        if translated is not None:
            return translated
    return exc


def sqlite_error(error: sqlite3.Error, path: str) -> CkptError | None:
    name = str(getattr(error, "sqlite_errorname", "") or "")
    text = str(error)
    lowered = text.lower()
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in lowered or "not a database" in lowered:
        return DataError(f"{path} is damaged: {text} (sqlite3 '{path}' .recover may save what is left)")
    if name.startswith("SQLITE_FULL") or "disk is full" in lowered:
        return StorageError(f"cannot write {path}: {text}")
    if name.startswith("SQLITE_IOERR") or "disk i/o error" in lowered:
        return StorageError(f"cannot read or write {path}: {text}")
    if name.startswith("SQLITE_READONLY") or "readonly database" in lowered:
        return AccessDeniedError(f"{path} cannot be written: {text}; nothing was changed")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in lowered:
        return LockedError(f"{path} is locked by another process: {text}")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open database" in lowered:
        return StorageError(f"cannot open {path}: {text}")
    return None


def connect_for_write(path: str) -> tuple[sqlite3.Connection, bool]:
    """A connection to ``path`` for an import or migrate, and whether this call made the file.

    The file is claimed with ``O_EXCL`` (an empty file is an empty SQLite database): of shards
    importing into one new file at once, exactly one made it, and only that one removes it again
    when it fails (``remove_database``); the others found it there."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreNotFoundError(f"no such directory for SQLite file: {directory}")
    check_writable(path)
    created = claim_new_file(path)
    try:
        return connect(path, path), created
    except BaseException:
        if created:
            remove_database(path)
        raise


def claim_new_file(path: str) -> bool:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:
        return False
    return True


def relax_sync(conn: sqlite3.Connection) -> bool:
    """``synchronous=NORMAL`` for a copy's batches when the file is in WAL mode (the saver's own
    mode); whether it was set. Each commit then skips its fsync (inserting 100k checkpoints in
    batches took 3.5 s instead of 4.35 s here, issue #24). WAL keeps the file consistent through a crash or power loss
    at any point, which may only lose the last batches, and a rerun of the copy writes them
    again; :func:`flush_wal` makes them durable when the copy ends. A rollback-journal file
    keeps ``FULL``: there ``NORMAL`` could corrupt it on power loss."""
    if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
        return False
    conn.execute("PRAGMA synchronous=NORMAL")
    return True


def flush_wal(path: str) -> None:
    """fsync the ``-wal`` file: every batch committed under ``relax_sync`` is on disk after it."""
    try:
        fd = os.open(f"{path}-wal", os.O_RDONLY)
    except FileNotFoundError:
        return  # checkpointed into the database and removed already (synced then)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
