"""The official LangGraph savers, with the methods they lack implemented by ckpt.

``BaseCheckpointSaver`` (langgraph-checkpoint 4.x) declares ``copy_thread``, ``delete_for_runs`` and
``prune`` (and ``acopy_thread``, ``adelete_for_runs``, ``aprune``); the official savers do not have
them, or (Redis, PostgreSQL) have a ``prune`` of their own. These subclasses, under the official
names, implement all six with ckpt's drivers on the saver's own connection; every other method is
the official saver's, untouched, and ``from_conn_string`` yields the subclass::

    from ckpt.savers import SqliteSaver

    with SqliteSaver.from_conn_string("agent.db") as saver:
        graph = builder.compile(checkpointer=saver)
        ...
        saver.prune(["thread-1"], strategy="keep_latest")

Each class is imported on first use, so only its own saver package (and driver) must be installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ckpt.savers.mongodb import MongoDBSaver
    from ckpt.savers.postgres import AsyncPostgresSaver, PostgresSaver
    from ckpt.savers.redis import AsyncRedisSaver, RedisSaver
    from ckpt.savers.sqlite import AsyncSqliteSaver, SqliteSaver

__all__ = [
    "AsyncPostgresSaver",
    "AsyncRedisSaver",
    "AsyncSqliteSaver",
    "MongoDBSaver",
    "PostgresSaver",
    "RedisSaver",
    "SqliteSaver",
]

_MODULES = {
    "SqliteSaver": "sqlite",
    "AsyncSqliteSaver": "sqlite",
    "PostgresSaver": "postgres",
    "AsyncPostgresSaver": "postgres",
    "RedisSaver": "redis",
    "AsyncRedisSaver": "redis",
    "MongoDBSaver": "mongodb",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
