"""``PostgresSaver`` and ``AsyncPostgresSaver`` with ckpt's ``copy_thread``, ``delete_for_runs`` and
``prune``: on the saver's own psycopg connection (or one of its pool's), or, for the async saver,
on a synchronous connection to the same database as the same user with the same options."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, TypeVar

import psycopg
from langgraph.checkpoint.postgres import PostgresSaver as _PostgresSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver as _AsyncPostgresSaver
from psycopg.conninfo import make_conninfo
from psycopg.rows import tuple_row

from ckpt.backends.core.base import Store
from ckpt.backends.postgres.store import PostgresStore
from ckpt.savers._methods import AsyncMethods, SyncMethods

__all__ = ["AsyncPostgresSaver", "PostgresSaver"]

T = TypeVar("T")


class _BorrowedStore(PostgresStore):
    """A :class:`PostgresStore` on a connection it does not own (``PostgresStore.from_connection``)."""

    def close(self) -> None:
        """The owner closes its connection."""


class PostgresSaver(SyncMethods, _PostgresSaver):
    """The official ``PostgresSaver`` plus ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``."""

    @contextmanager
    def _ckpt_store(self) -> Iterator[Store]:
        with self.lock, _connection(self.conn) as conn:
            if self.pipe:
                self.pipe.sync()
            with _as_ckpt_needs(conn):
                yield _BorrowedStore.from_connection(conn)


class AsyncPostgresSaver(AsyncMethods, _AsyncPostgresSaver):
    """The official ``AsyncPostgresSaver`` plus ckpt's ``acopy_thread``, ``adelete_for_runs`` and
    ``aprune`` (and their sync forms). ckpt's driver is synchronous: it runs in a worker thread on a
    connection of its own, opened with the saver's connection parameters (server, database, user,
    password, options such as ``search_path``) and its schema, and closed after the call."""

    async def _ckpt_run(self, work: Callable[[Store], T]) -> T:
        async with _aconnection(self.conn) as aconn:
            cur = await aconn.execute("SELECT current_schema()")
            row: Any = await cur.fetchone()
            schema = str(row["current_schema"] if isinstance(row, dict) else row[0])
            dsn, password = aconn.info.dsn, aconn.info.password

        conninfo = make_conninfo(dsn, password=password) if password else dsn

        def run() -> T:
            with psycopg.connect(conninfo, autocommit=True) as conn:
                return work(_BorrowedStore.from_connection(conn, schema))

        return await asyncio.to_thread(run)


@contextmanager
def _connection(conn: Any) -> Iterator[psycopg.Connection[Any]]:
    """The saver's connection, or one of its pool's for the duration of the call."""
    if isinstance(conn, psycopg.Connection):
        yield conn
    else:  # psycopg_pool.ConnectionPool
        with conn.connection() as pooled:
            yield pooled


@asynccontextmanager
async def _aconnection(conn: Any) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    if isinstance(conn, psycopg.AsyncConnection):
        yield conn
    else:  # psycopg_pool.AsyncConnectionPool
        async with conn.connection() as pooled:
            yield pooled


@contextmanager
def _as_ckpt_needs(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Tuple rows and the store's ``search_path`` for the call; the saver's (``dict_row``, its
    path) afterwards."""
    factory = conn.row_factory
    conn.row_factory = tuple_row
    try:
        row = conn.execute("SELECT current_setting('search_path')").fetchone()
        try:
            yield
        finally:
            if row is not None:
                conn.execute("SELECT set_config('search_path', %s, false)", (row[0],))
    finally:
        conn.row_factory = factory
