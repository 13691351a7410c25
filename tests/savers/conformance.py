"""The official conformance suite's factories for every ``ckpt.savers`` class, on the real servers.

Each factory yields a fresh saver in a place no other test uses (a temporary SQLite file, a fresh
PostgreSQL schema, a fresh Redis key prefix with its own search indexes, a fresh MongoDB database)
and removes it afterwards. The suite drives savers through their ``a…`` methods; the sync savers
whose official class has no async forms (``SqliteSaver``, ``PostgresSaver``, ``RedisSaver``) are given the five
base ``a…`` methods as thin wrappers over their own sync methods in a worker thread (``_async``), so
the suite exercises the sync code.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.conformance.initializer import RegisteredCheckpointer

from tests.servers import mongo_database, postgres_schema, server_url

Factory = Callable[[], AsyncGenerator[BaseCheckpointSaver[Any], None]]


def _async(cls: type[Any]) -> type[Any]:
    """``cls`` with ``aput``/``aput_writes``/``aget_tuple``/``alist``/``adelete_thread`` running its
    sync methods in a worker thread (test harness only; the three ckpt methods are not touched)."""

    class Adapted(cls):  # type: ignore[misc, valid-type]
        async def aput(
            self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata, new: ChannelVersions
        ) -> RunnableConfig:
            return await asyncio.to_thread(self.put, config, checkpoint, metadata, new)

        async def aput_writes(
            self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
        ) -> None:
            await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

        async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
            return await asyncio.to_thread(self.get_tuple, config)

        async def alist(self, config: RunnableConfig | None, **kwargs: Any) -> AsyncIterator[CheckpointTuple]:
            for item in await asyncio.to_thread(lambda: list(self.list(config, **kwargs))):
                yield item

        async def adelete_thread(self, thread_id: str) -> None:
            await asyncio.to_thread(self.delete_thread, thread_id)

    Adapted.__name__ = cls.__name__
    return Adapted


async def sqlite() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import SqliteSaver

    with tempfile.TemporaryDirectory() as tmp, _async(SqliteSaver).from_conn_string(f"{tmp}/conformance.db") as saver:
        yield saver


async def async_sqlite() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import AsyncSqliteSaver

    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncSqliteSaver.from_conn_string(os.path.join(tmp, "conformance.db")) as saver:
            yield saver


async def postgres() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import PostgresSaver

    with postgres_schema() as (_, libpq_url), _async(PostgresSaver).from_conn_string(libpq_url) as saver:
        saver.setup()
        yield saver


async def async_postgres() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import AsyncPostgresSaver

    with postgres_schema() as (_, libpq_url):
        async with AsyncPostgresSaver.from_conn_string(libpq_url) as saver:
            await saver.setup()
            yield saver


async def redis() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import RedisSaver

    with (
        _redis_prefix() as (base, prefix),
        _async(RedisSaver).from_conn_string(
            base, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
        ) as saver,
    ):
        saver.setup()
        yield saver


async def async_redis() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import AsyncRedisSaver

    with _redis_prefix() as (base, prefix):
        async with AsyncRedisSaver.from_conn_string(
            base, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
        ) as saver:
            await saver.asetup()
            yield saver


async def mongodb() -> AsyncGenerator[BaseCheckpointSaver[Any], None]:
    from ckpt.savers import MongoDBSaver

    with mongo_database() as url:
        base, name = server_url("mongodb"), url.rsplit("/", 1)[1].split("?", 1)[0]
        with MongoDBSaver.from_conn_string(base, db_name=name) as saver:
            yield saver


class _redis_prefix:  # noqa: N801 - used as a context manager, like tests.servers.redis_prefix
    """``(server URL, key prefix)``: a prefix (and search indexes) no other test uses; its keys and
    indexes are dropped afterwards (never FLUSHALL: the server is shared)."""

    def __enter__(self) -> tuple[str, str]:
        self.base, self.prefix = server_url("redis"), f"cks{uuid.uuid4().hex[:10]}"
        return self.base, self.prefix

    def __exit__(self, *exc: object) -> None:
        import redis as redis_py

        client = redis_py.Redis.from_url(self.base)
        for index in (self.prefix, f"{self.prefix}_write"):
            with suppress(redis_py.ResponseError):
                client.execute_command("FT.DROPINDEX", index, "DD")
        for pattern in (f"{self.prefix}*", f"*:{self.prefix}*", f"ckpt_lock:{self.prefix}:*"):
            for key in client.scan_iter(match=pattern, count=1000):
                client.delete(key)
        client.close()


FACTORIES: dict[str, Factory] = {
    "SqliteSaver": sqlite,
    "AsyncSqliteSaver": async_sqlite,
    "PostgresSaver": postgres,
    "AsyncPostgresSaver": async_postgres,
    "RedisSaver": redis,
    "AsyncRedisSaver": async_redis,
    "MongoDBSaver": mongodb,
}


def registered(name: str) -> RegisteredCheckpointer:
    return RegisteredCheckpointer(name=name, factory=FACTORIES[name])


@asynccontextmanager
async def saver_of(name: str) -> AsyncIterator[BaseCheckpointSaver[Any]]:
    async with registered(name).create() as saver:
        yield saver
