"""One contract, every store: what is written is read back exactly, in key order, idempotently."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ckpt.backends import Capability, CheckpointKey, CheckpointRecord, Selection, open_store
from ckpt.backends.core.base import find_record
from ckpt.backends.core.iterate import batched
from ckpt.formats.semantic import semantic_form
from tests.contract.conftest import StoreFactory


def _same(store_url: str, got: list[CheckpointRecord], want: list[CheckpointRecord]) -> None:
    """Byte-exact stores must return the bytes; the others what the saver would load (spec §8)."""
    with open_store(store_url) as store:
        exact = Capability.BYTE_EXACT in store.capabilities
        stored = [store.stored_form(r) for r in want]
    if exact:
        assert got == want
    else:
        assert [semantic_form(r) for r in got] == [semantic_form(r) for r in stored]


def _fill(url: str, records: list[CheckpointRecord]) -> None:
    with open_store(url, write=True) as store:
        for batch in batched(records, 7):
            store.write(batch)


def test_written_records_read_back_exactly(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        got = list(store.records())
    _same(url, got, official_records)


def test_headers_agree_with_records(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        headers = list(store.headers())
        exact = Capability.BYTE_EXACT in store.capabilities
        stored = [store.stored_form(r) for r in official_records]
    assert [h.key for h in headers] == [r.key for r in official_records]
    for header, record in zip(headers, stored):
        assert header.parent_checkpoint_id == record.parent_checkpoint_id
        assert header.writes_bytes == sum(len(w.value.data) for w in record.writes)
        assert header.size == record.size if exact else header.checkpoint_bytes > 0
        assert header.writes_count == len(record.writes)
        assert header.metadata is not None and "step" in header.metadata


@pytest.mark.parametrize("details", [True, False], ids=["details", "list"])
def test_threads_summarise_headers(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord], details: bool
) -> None:
    """``details=False`` is ``ckpt list``'s server-side aggregate: the same counts and first/last ids
    over threads with several namespaces (subgraphs)."""
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        threads = list(store.threads(details=details))
        exact = Capability.BYTE_EXACT in store.capabilities
    assert [t.thread_id for t in threads] == ["thread-1", "thread-2", "thread-3"]
    assert any(
        len({r.key.checkpoint_ns for r in official_records if r.key.thread_id == t.thread_id}) > 1 for t in threads
    )
    for summary in threads:
        mine = [r for r in official_records if r.key.thread_id == summary.thread_id]
        assert summary.checkpoints == len(mine)
        if details:
            assert summary.bytes == sum(r.size for r in mine) if exact else summary.bytes > 0
            assert summary.namespaces == len({r.key.checkpoint_ns for r in mine})
        assert summary.first_checkpoint_id == min(r.key.checkpoint_id for r in mine)
        assert summary.last_checkpoint_id == max(r.key.checkpoint_id for r in mine)


def test_selection_filters(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        chosen = list(store.records(Selection(thread_glob="thread-[23]", checkpoint_ns="")))
        want = [r for r in official_records if r.key.thread_id != "thread-1" and r.key.checkpoint_ns == ""]
        _same(url, chosen, want)
        assert list(store.records(Selection(since=4102444800.0))) == []  # 2100-01-01
        assert len(list(store.records(Selection(until=4102444800.0)))) == len(official_records)


def test_latest_and_get(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    url = new_store_url()
    _fill(url, official_records)
    newest = max(
        (r for r in official_records if r.key.thread_id == "thread-2" and r.key.checkpoint_ns == ""),
        key=lambda r: r.key.checkpoint_id,
    )
    with open_store(url) as store:
        _same(url, [find_record(store, "thread-2")], [newest])
        _same(url, [store.get(newest.key)], [newest])  # type: ignore[list-item]
        assert store.get(CheckpointKey("thread-2", "", "nope")) is None
        assert store.latest("nobody") is None


def test_rewrite_is_idempotent(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url, write=True) as store:
        if url.endswith((".jsonl", ".jsonl.gz")):
            pytest.skip("a JSONL file is rewritten whole by each copy; idempotence is the target store's")
        report = store.write(official_records)
        assert report.checkpoints_written == 0 and report.writes_written == 0
        assert report.checkpoints_skipped == len(official_records)
    with open_store(url) as store:
        _same(url, list(store.records()), official_records)


def test_delete_removes_checkpoints_with_their_writes(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url, write=True) as store:
        if Capability.DELETE not in store.capabilities:
            pytest.skip(f"{store.kind} stores lack {Capability.DELETE.value}")
        doomed = [r.key for r in official_records if r.key.thread_id == "thread-1"]
        assert store.delete(doomed) == len(doomed)
        assert store.delete(doomed) == 0
        remaining = list(store.records())
    _same(url, remaining, [r for r in official_records if r.key.thread_id != "thread-1"])


def test_special_values_survive(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> None:
    """Odd but legal rows: unicode ids, nested namespaces, opaque write payloads, negative idx."""
    base = official_records[0]
    odd = replace(
        base,
        key=CheckpointKey("tëst/ü *[x]-1", "sub:1|inner:2", base.key.checkpoint_id),
        parent_checkpoint_id=None,
        writes=tuple(replace(w, idx=-4, value=replace(w.value, type="pickle")) for w in base.writes[:1]),
    )
    url = new_store_url()
    _fill(url, [odd])
    with open_store(url) as store:
        _same(url, list(store.records()), [odd])
        _same(url, [store.get(odd.key)], [odd])  # type: ignore[list-item]
