"""``Store.sized`` (what ``ckpt size`` reads) agrees with the full records, on every store and on
stores written by old saver releases (TEXT metadata and values in old SQLite layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckpt.backends import CheckpointRecord, Selection, open_store
from ckpt.backends.core.base import SizedCheckpoint
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.shards import Shard
from tests.conftest import sqlite_url
from tests.contract.conftest import StoreFactory
from tests.old_stores import FIXTURES_DIR


def _from_records(url: str, selection: Selection = Selection()) -> list[SizedCheckpoint]:
    with open_store(url) as store:
        return [SizedCheckpoint(r.key, r.checkpoint, r.size) for r in store.records(selection)]


def _sized(url: str, selection: Selection = Selection()) -> list[SizedCheckpoint]:
    with open_store(url) as store:
        return list(store.sized(selection))


def test_sized_is_the_records_sizes(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    url = new_store_url()
    with open_store(url, write=True) as store:
        for batch in batched(official_records, 7):
            store.write(batch)
    assert _sized(url) == _from_records(url) != []
    part = Selection(thread_glob="thread-[12]", shard=Shard(0, 2))
    assert _sized(url, part) == _from_records(url, part)


OLD_SQLITE = sorted(p for p in FIXTURES_DIR.glob("sqlite-*/store.sqlite"))


@pytest.mark.parametrize("path", OLD_SQLITE, ids=[p.parent.name for p in OLD_SQLITE])
def test_sized_on_old_sqlite_layouts(path: Path) -> None:
    url = sqlite_url(path)
    assert _sized(url) == _from_records(url) != []
