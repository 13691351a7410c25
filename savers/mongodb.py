"""``MongoDBSaver`` with ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``, on the saver's own
pymongo client and database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from langgraph.checkpoint.mongodb import MongoDBSaver as _MongoDBSaver
from pymongo import MongoClient
from pymongo.driver_info import DriverInfo

from ckpt.backends.core.base import Store
from ckpt.backends.mongodb.store import MongoStore
from ckpt.savers._methods import SyncMethods

__all__ = ["MongoDBSaver"]


class MongoDBSaver(SyncMethods, _MongoDBSaver):
    """The official ``MongoDBSaver`` plus ckpt's ``copy_thread``, ``delete_for_runs`` and ``prune``."""

    @contextmanager
    def _ckpt_store(self) -> Iterator[Store]:
        yield MongoStore.from_database(self.db, self.checkpoint_collection.name, self.writes_collection.name)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str | None = None,
        db_name: str = "checkpointing_db",
        checkpoint_collection_name: str = "checkpoints",
        writes_collection_name: str = "checkpoint_writes",
        ttl: int | None = None,
        **kwargs: Any,
    ) -> Iterator[MongoDBSaver]:
        """The official ``from_conn_string`` (which names ``MongoDBSaver`` itself), for this class."""
        from langgraph.checkpoint.mongodb.utils import DRIVER_METADATA

        driver: DriverInfo = DRIVER_METADATA
        client: MongoClient[Any] = MongoClient(conn_string, driver=driver)
        try:
            yield cls(client, db_name, checkpoint_collection_name, writes_collection_name, ttl, **kwargs)
        finally:
            client.close()
