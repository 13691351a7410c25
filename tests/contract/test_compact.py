"""Compact on every store that deletes: a clean store loses nothing, a rerun finds nothing more."""

from __future__ import annotations

import pytest

import ckpt
from ckpt.backends import Capability, CheckpointRecord, open_store
from tests.contract.conftest import StoreFactory
from tests.contract.test_contract import _fill, _same


def test_compact_keeps_every_record_and_a_rerun_removes_nothing(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        if Capability.DELETE not in store.capabilities:
            pytest.skip(f"{store.kind} stores do not delete")
    with ckpt.open(url, write=True, create=False) as store:
        planned = ckpt.compact(store, min_idle="0s", dry_run=True)
        done = ckpt.compact(store, min_idle="0s")
        again = ckpt.compact(store, min_idle="0s", dry_run=True)
    assert planned.dry_run and not done.dry_run
    assert done.removed == planned.removed  # what the dry run counted is what went
    assert sum(again.removed.values()) == 0
    with open_store(url) as store:
        got = list(store.records())
    _same(url, got, official_records)
