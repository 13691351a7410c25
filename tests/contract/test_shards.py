"""``--shard K/N`` in every store: the N shards' reads partition the store exactly (issue #23).

Each store applies ``Selection.shard`` its own way (a UDF in SQLite's query, MD5 in PostgreSQL's,
the thread list in Redis, a re-check in MongoDB and JSONL); all must agree with the one
definition in ``core.shards``, in records, headers, thread listings and counts.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from ckpt.backends import CheckpointKey, CheckpointRecord, Selection, open_store
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.shards import Shard, shard_of
from tests.contract.conftest import StoreFactory

# Thread ids a hash might treat differently from code points: non-ASCII, astral, punctuation
# (no ":": RedisSaver keys cannot hold it unambiguously, and ckpt refuses it there).
ODD_IDS = ["ü-thread", "日本-1", "emoji-😀", "with.dot", "with space", "UPPER", "a", "z" * 80]


def _many_threads(records: list[CheckpointRecord]) -> list[CheckpointRecord]:
    """The official records under enough thread ids that every shard of 3 gets some."""
    ids = [*ODD_IDS, *(f"thread-{i:02d}" for i in range(16))]
    by_thread: dict[str, list[CheckpointRecord]] = {}
    for record in records:
        by_thread.setdefault(record.key.thread_id, []).append(record)
    sources = list(by_thread.values())
    out = []
    for n, new_id in enumerate(ids):
        out += [replace(r, key=replace(r.key, thread_id=new_id)) for r in sources[n % len(sources)]]
    return sorted(out, key=lambda r: (r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id))


@pytest.fixture
def sharded_store(new_store_url: StoreFactory, official_records: list[CheckpointRecord]) -> tuple[str, list[str]]:
    records = _many_threads(official_records)
    url = new_store_url()
    with open_store(url, write=True) as store:
        for batch in batched(records, 50):
            store.write(batch)
    return url, sorted({r.key.thread_id for r in records})


def vars_of(key: CheckpointKey) -> tuple[str, str, str]:
    return (key.thread_id, key.checkpoint_ns, key.checkpoint_id)


@pytest.mark.parametrize("count", [1, 3, 7])
def test_shards_partition_every_read(sharded_store: tuple[str, list[str]], count: int) -> None:
    url, thread_ids = sharded_store
    with open_store(url) as store:
        everything = [vars_of(r.key) for r in store.records()]
        seen: list[tuple[str, str, str]] = []
        for index in range(count):
            part = Selection(shard=Shard(index, count))
            keys = [r.key for r in store.records(part)]
            assert all(shard_of(k.thread_id, count) == index for k in keys)
            assert [h.key for h in store.headers(part)] == keys
            listed = [t.thread_id for t in store.threads(part, details=False)]
            assert (
                listed == sorted({k.thread_id for k in keys}) == [t for t in thread_ids if shard_of(t, count) == index]
            )
            counted = store.count(part)
            assert counted is None or counted == len(keys)
            seen += [vars_of(k) for k in keys]
    assert sorted(seen) == sorted(everything)  # disjoint and covering
    assert len(seen) == len(everything)


def test_a_shard_combines_with_a_glob(sharded_store: tuple[str, list[str]]) -> None:
    url, thread_ids = sharded_store
    part = Selection(thread_glob="thread-*", shard=Shard(1, 3))
    with open_store(url) as store:
        listed = [t.thread_id for t in store.threads(part, details=False)]
        counted = store.count(part)
        records = list(store.records(part))
    want = [t for t in thread_ids if t.startswith("thread-") and shard_of(t, 3) == 1]
    assert listed == want
    assert sorted({r.key.thread_id for r in records}) == want
    assert counted is None or counted == len(records)
