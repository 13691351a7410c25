"""Bulk streams run with the cyclic collector's first generation raised, and put it back after."""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from ckpt.backends import open_store
from ckpt.backends.core.base import CheckpointRecord, WriteReport
from ckpt.backends.core.collector import BULK_THRESHOLD, fewer_collections
from ckpt.backends.ops.transfer import copy_records
from ckpt.backends.sqlite.store import SqliteStore
from tests.conftest import sqlite_url


@pytest.fixture
def default_threshold() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_the_threshold_is_raised_inside_and_restored_after(default_threshold: tuple[int, int, int]) -> None:
    with fewer_collections():
        assert gc.get_threshold() == (BULK_THRESHOLD, 10, 10)
        with fewer_collections(1_000):  # an inner block never lowers it
            assert gc.get_threshold()[0] == BULK_THRESHOLD
    assert gc.get_threshold() == default_threshold


def test_restored_after_a_failure_too(default_threshold: tuple[int, int, int]) -> None:
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("boom")
    assert gc.get_threshold() == default_threshold


def test_a_process_that_turned_collection_off_keeps_it_off(default_threshold: tuple[int, int, int]) -> None:
    gc.set_threshold(0)
    with fewer_collections():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold()[0] == 0


def test_a_copy_writes_its_batches_with_the_threshold_raised(
    official_db: Path, tmp_path: Path, default_threshold: tuple[int, int, int]
) -> None:
    seen: list[int] = []

    class Recording(SqliteStore):
        def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
            seen.append(gc.get_threshold()[0])
            return super().write(records)

    with (
        open_store(sqlite_url(official_db)) as source,
        Recording.open(sqlite_url(tmp_path / "t.db"), write=True) as target,
    ):
        report = copy_records(source, target, batch_size=2)
    assert report.checkpoints_written > 2 and seen and set(seen) == {BULK_THRESHOLD}
    assert gc.get_threshold() == default_threshold
