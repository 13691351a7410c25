"""``RedisSaver`` and ``AsyncRedisSaver`` with ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``:
on the saver's own redis client, or, for the async saver, on a synchronous client with the async
client's connection parameters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
from langgraph.checkpoint.redis import AsyncRedisSaver as _AsyncRedisSaver
from langgraph.checkpoint.redis import RedisSaver as _RedisSaver

from ckpt.backends.core.base import Store
from ckpt.backends.core.errors import UsageError
from ckpt.backends.redis.store import RedisStore
from ckpt.savers import _ops
from ckpt.savers._methods import AsyncMethods, SyncMethods

__all__ = ["AsyncRedisSaver", "RedisSaver"]

T = TypeVar("T")


class _BorrowedStore(RedisStore):
    """A :class:`RedisStore` on a client it does not own (``RedisStore.from_client``)."""

    def close(self) -> None:
        """The owner closes its client."""


class RedisSaver(SyncMethods, _RedisSaver):
    """The official ``RedisSaver`` plus ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``
    (its own ``prune`` is replaced)."""

    @contextmanager
    def _ckpt_store(self) -> Iterator[Store]:
        client: Any = self._redis
        if not isinstance(client, redis.Redis):
            raise UsageError(f"ckpt drives a standalone Redis client, not {type(client).__name__}")
        yield _BorrowedStore.from_client(client, self._checkpoint_prefix, self._checkpoint_write_prefix)

    def prune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
        keep_last: int | None = None,
        max_results: int = 10000,
    ) -> None:
        """ckpt's prune (:meth:`SyncMethods.prune`) with ``RedisSaver.prune``'s signature: ``keep_last``
        newest checkpoints stay in each namespace (default 1); ``max_results`` (the official saver's
        cap on one search) is accepted and has no use here, where every checkpoint is planned."""
        if not _ops.thread_list(thread_ids, strategy):
            return
        with self._ckpt_store() as store:
            _ops.prune(store, thread_ids, strategy, keep_last or 1)

    async def aprune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
        keep_last: int | None = None,
        max_results: int = 10000,
    ) -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy, keep_last=keep_last)


class AsyncRedisSaver(AsyncMethods, _AsyncRedisSaver):
    """The official ``AsyncRedisSaver`` plus ckpt's ``acopy_thread``, ``adelete_for_runs`` and
    ``aprune`` (and their sync forms; its own ``aprune`` is replaced). ckpt's driver is synchronous:
    it runs in a worker thread on a client of its own, made from the saver's client's connection
    parameters, and closed after the call."""

    async def _ckpt_run(self, work: Callable[[Store], T]) -> T:
        pool = getattr(self._redis, "connection_pool", None)
        if pool is None:
            raise UsageError(f"ckpt drives a standalone Redis client, not {type(self._redis).__name__}")
        kwargs = dict(pool.connection_kwargs)
        kwargs.pop("connection_class", None)
        prefix, write_prefix = self._checkpoint_prefix, self._checkpoint_write_prefix

        def run() -> T:
            client = redis.Redis(connection_pool=redis.ConnectionPool(**kwargs))
            try:
                return work(_BorrowedStore.from_client(client, prefix, write_prefix))
            finally:
                client.close()
                client.connection_pool.disconnect()

        return await asyncio.to_thread(run)

    async def aprune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
        keep_last: int | None = None,
        max_results: int = 10000,
    ) -> None:
        """ckpt's prune (:meth:`AsyncMethods.aprune`) with ``AsyncRedisSaver.aprune``'s signature:
        ``keep_last`` newest checkpoints stay in each namespace (default 1); ``max_results`` (the
        official saver's cap on one search) is accepted and has no use here."""
        if _ops.thread_list(thread_ids, strategy):
            await self._ckpt_run(lambda store: _ops.prune(store, thread_ids, strategy, keep_last or 1))

    def prune(
        self,
        thread_ids: Sequence[str],
        *,
        strategy: str = "keep_latest",
        keep_last: int | None = None,
        max_results: int = 10000,
    ) -> None:
        self._bridge("aprune", lambda: self.aprune(thread_ids, strategy=strategy, keep_last=keep_last))
