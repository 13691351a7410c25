"""``SqliteSaver`` and ``AsyncSqliteSaver`` with ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``,
on the saver's own ``sqlite3`` connection."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from langgraph.checkpoint.sqlite import SqliteSaver as _SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver as _AsyncSqliteSaver

from ckpt.backends.core.base import Store
from ckpt.backends.core.errors import LockedError
from ckpt.backends.sqlite.store import SqliteStore
from ckpt.savers._methods import AsyncMethods, SyncMethods

__all__ = ["AsyncSqliteSaver", "SqliteSaver"]

T = TypeVar("T")
_MEMORY_LOCKS: dict[int, threading.Lock] = {}
_MEMORY_GUARD = threading.Lock()


class _BorrowedStore(SqliteStore):
    """A :class:`SqliteStore` on a saver's connection (``SqliteStore.from_connection``)."""

    def close(self) -> None:
        """The saver closes its connection."""

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """The lock file beside the database, as ``ckpt prune`` takes it; an in-memory database,
        which no other process can open, is locked per connection within this process."""
        if self.path != ":memory:":
            with super().lock(name):
                yield
            return
        with _MEMORY_GUARD:
            lock = _MEMORY_LOCKS.setdefault(id(self._conn), threading.Lock())
        if not lock.acquire(blocking=False):
            raise LockedError(f"another ckpt {name} is running on this in-memory SQLite database")
        try:
            yield
        finally:
            lock.release()


class SqliteSaver(SyncMethods, _SqliteSaver):
    """The official ``SqliteSaver`` plus ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``."""

    @contextmanager
    def _ckpt_store(self) -> Iterator[Store]:
        self.setup()
        with self.lock:  # the saver's own lock: none of its calls shares the connection meanwhile
            yield _BorrowedStore.from_connection(self.conn)


class AsyncSqliteSaver(AsyncMethods, _AsyncSqliteSaver):
    """The official ``AsyncSqliteSaver`` plus ckpt's ``acopy_thread``, ``adelete_for_runs`` and ``aprune``
    (and their sync forms), run in the ``aiosqlite`` connection's own thread on its ``sqlite3`` connection."""

    async def _ckpt_run(self, work: Callable[[Store], T]) -> T:
        await self.setup()

        def run(conn: sqlite3.Connection) -> T:
            return work(_BorrowedStore.from_connection(conn))

        async with self.lock:
            # aiosqlite runs every call on its connection in one thread: so does this one
            result: T = await self.conn._execute(lambda: run(self.conn._conn))  # type: ignore[no-untyped-call]
            return result
