"""The contract suite runs once per store kind; later drivers join by adding a factory here.

Each factory returns the URL of an empty store that accepts writes. Servers are started by
``scripts/services.sh``; a kind whose server is not configured is skipped with the reason
(and fails instead under ``CKPT_REQUIRE_BACKENDS=1``, which CI sets).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ckpt.backends import CheckpointRecord, open_store
from tests.conftest import sqlite_url

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


@pytest.fixture(params=sorted(FACTORIES))
def new_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    name: str = request.param
    if name not in FACTORIES:
        if os.environ.get("CKPT_REQUIRE_BACKENDS"):
            pytest.fail(f"{name}: server not configured")
        pytest.skip(f"{name}: server not configured")
    return FACTORIES[name](tmp_path)


@pytest.fixture(scope="session")
def official_records(official_db: Path) -> list[CheckpointRecord]:
    with open_store(sqlite_url(official_db)) as store:
        return list(store.records())
