"""The contract suite runs once per store kind; later drivers join by adding a factory here.

Each factory returns the URL of an empty store that accepts writes (server stores: a fresh
schema per call). Servers are started by ``scripts/services.sh``; a kind whose server is not
configured is skipped with the reason (and fails instead under ``CKPT_REQUIRE_BACKENDS=1``,
which CI sets): see ``tests/servers.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from ckpt.backends import CheckpointRecord, open_store
from tests.conftest import sqlite_url
from tests.servers import mongo_database, postgres_schema, redis_cluster_prefix, redis_prefix

StoreFactory = Callable[[], str]


def _sqlite(tmp_path: Path) -> StoreFactory:
    counter = iter(range(1000))
    return lambda: sqlite_url(tmp_path / f"store-{next(counter)}.db")


def _jsonl(suffix: str) -> Callable[[Path], StoreFactory]:
    def make(tmp_path: Path) -> StoreFactory:
        counter = iter(range(1000))
        return lambda: str(tmp_path / f"store-{next(counter)}{suffix}")

    return make


FACTORIES: dict[str, Callable[[Path], StoreFactory]] = {
    "sqlite": _sqlite,
    "jsonl": _jsonl(".jsonl"),
    "jsonl.gz": _jsonl(".jsonl.gz"),
}
SERVER_KINDS = ("postgres", "redis", "mongodb", "redis-cluster")


@pytest.fixture(params=sorted([*FACTORIES, *SERVER_KINDS]))
def new_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    name: str = request.param
    if name in FACTORIES:
        yield FACTORIES[name](tmp_path)
        return
    with ExitStack() as stack:

        def make() -> str:
            if name == "redis":
                return stack.enter_context(redis_prefix())
            if name == "redis-cluster":  # services.sh rcluster: RedisSaver's layout on a Redis Cluster
                return stack.enter_context(redis_cluster_prefix())
            if name == "mongodb":
                return stack.enter_context(mongo_database())
            return stack.enter_context(postgres_schema())[0]

        yield make


@pytest.fixture(scope="session")
def official_records(official_db: Path) -> list[CheckpointRecord]:
    with open_store(sqlite_url(official_db)) as store:
        return list(store.records())
