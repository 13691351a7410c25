"""``copy_thread``, ``delete_for_runs`` and ``prune`` (and their ``a…`` forms) for the savers.

A saver subclass names how to get a ckpt ``Store`` on its own connection; these mixins do the rest
(:mod:`._ops`). Sync savers run the ``a…`` forms in a worker thread; async savers run the store,
which is synchronous, in a worker thread and bridge the sync forms to their event loop as the
official async savers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from ckpt.backends.core.base import Store
from ckpt.savers import _ops

T = TypeVar("T")


class SyncMethods:
    """The three methods on a sync saver: one borrowed store per call."""

    def _ckpt_store(self) -> AbstractContextManager[Store]:
        """A ckpt store on the saver's own connection, for the duration of one call."""
        raise NotImplementedError

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another (ckpt ``ops.threads.copy_thread``)."""
        with self._ckpt_store() as store:
            _ops.copy_thread(store, source_thread_id, target_thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints and writes of these runs (ckpt ``ops.threads.delete``, residue-checked)."""
        if not _ops.run_list(run_ids):
            return
        with self._ckpt_store() as store:
            _ops.delete_for_runs(store, run_ids)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune these threads: ``"keep_latest"`` keeps the newest checkpoint of each namespace (and
        what it needs: DeltaChannel history, a kept root's subgraph calls), ``"delete"`` all of them."""
        if not _ops.thread_list(thread_ids, strategy):
            return
        with self._ckpt_store() as store:
            _ops.prune(store, thread_ids, strategy)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)


class AsyncMethods:
    """The three methods on an async saver: the store works in a worker thread."""

    async def _ckpt_run(self, work: Callable[[Store], T]) -> T:
        """``work(store)`` with a ckpt store on the saver's connection (or a sibling of it), off the loop."""
        raise NotImplementedError

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint and write of a thread to another (ckpt ``ops.threads.copy_thread``)."""
        await self._ckpt_run(lambda store: _ops.copy_thread(store, source_thread_id, target_thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints and writes of these runs (ckpt ``ops.threads.delete``, residue-checked)."""
        if _ops.run_list(run_ids):
            await self._ckpt_run(lambda store: _ops.delete_for_runs(store, run_ids))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Prune these threads: ``"keep_latest"`` keeps the newest checkpoint of each namespace (and
        what it needs: DeltaChannel history, a kept root's subgraph calls), ``"delete"`` all of them."""
        if _ops.thread_list(thread_ids, strategy):
            await self._ckpt_run(lambda store: _ops.prune(store, thread_ids, strategy))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._bridge("acopy_thread", lambda: self.acopy_thread(source_thread_id, target_thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._bridge("adelete_for_runs", lambda: self.adelete_for_runs(run_ids))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._bridge("aprune", lambda: self.aprune(thread_ids, strategy=strategy))

    def _bridge(self, name: str, call: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run the ``a…`` form on the saver's loop from another thread, as the official async savers'
        sync methods do (refused on the loop's own thread, where it would deadlock)."""
        owner = type(self).__name__
        loop: asyncio.AbstractEventLoop | None = getattr(self, "loop", None)  # the official savers set it
        if loop is None:
            raise RuntimeError(f"{owner} must be set up (entered) before calling synchronous methods")
        try:
            if asyncio.get_running_loop() is loop:
                raise asyncio.InvalidStateError(
                    f"Synchronous calls to {owner} are only allowed from a different thread. From the main "
                    f"thread, use the async interface: `await checkpointer.{name}(...)`."
                )
        except RuntimeError:
            pass
        asyncio.run_coroutine_threadsafe(call(), loop).result()
