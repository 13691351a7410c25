"""Thread-id ranges (what ``migrate --jobs`` gives each worker) select exactly their threads, in every store."""

from __future__ import annotations

from ckpt.backends import CheckpointRecord, Selection, open_store
from ckpt.backends.core.shards import Shard, split_shard
from ckpt.backends.ops.parallel import CHUNKS_PER_JOB, thread_ranges, worker_parts
from tests.contract.conftest import StoreFactory
from tests.contract.test_contract import _fill


def test_thread_ranges_are_half_open_and_cover_everything(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    url = new_store_url()
    _fill(url, official_records)
    every = [r.key for r in official_records]
    with open_store(url) as store:

        def keys(selection: Selection) -> list[object]:
            return [r.key for r in store.records(selection)]

        assert keys(Selection(thread_from="thread-2")) == [k for k in every if k.thread_id >= "thread-2"]
        assert keys(Selection(thread_to="thread-2")) == [k for k in every if k.thread_id == "thread-1"]
        middle = Selection(thread_from="thread-2", thread_to="thread-3")
        assert keys(middle) == [k for k in every if k.thread_id == "thread-2"]
        assert [h.key for h in store.headers(middle)] == keys(middle)
        assert [t.thread_id for t in store.threads(middle)] == ["thread-2"]
        assert [t.thread_id for t in store.threads(middle, details=False)] == ["thread-2"]
        counted = store.count(middle)
        assert counted is None or counted == len(keys(middle))
        assert keys(Selection(thread_from="thread-2 ", thread_to="thread-3")) == []  # "thread-2" < "thread-2 "
        ranges = list(thread_ranges(store, Selection(), 3))
        assert ranges[0][0] is None and ranges[-1][1] is None and len(ranges) >= 2
        parts = [keys(Selection(thread_from=low, thread_to=high)) for low, high in ranges]
    assert sorted(map(str, (k for part in parts for k in part))) == sorted(map(str, every))  # each key once


def test_a_parallel_copy_cuts_parts_by_what_a_part_costs(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    """Several ranges per worker where a range is read from an ordered index (an early worker takes
    the next); sets of threads from one listing where a set is read by a search (Redis: its TAG
    field has no order); one hash shard per worker where every part is a pass over the whole store
    (a JSONL file is read through, a Redis Cluster SCANs every node), planned without a pass of its
    own. Either way each checkpoint is in exactly one part, within a user's ``--shard`` too."""
    url = new_store_url()
    _fill(url, official_records)
    with open_store(url) as store:
        counts = getattr(store, "thread_counts", None)
        listed = counts is not None and counts(Selection()) is not None
        whole_pass = not listed and (store.kind.startswith("redis") or store.kind in ("jsonl", "couchbase"))
        parts = worker_parts(store, Selection(), 2)
        if listed:
            assert len(parts) >= 2 and all(p.threads for p in parts)
        elif whole_pass:
            assert [p.shard for p in parts] == [Shard(0, 2), Shard(1, 2)]
        else:
            assert len(parts) <= 2 * CHUNKS_PER_JOB and all(p.shard is None for p in parts)

        def keys(selection: Selection) -> list[str]:
            return sorted(str(r.key) for r in store.records(selection))

        assert sorted(k for p in parts for k in keys(p)) == keys(Selection())
        mine = Selection(shard=Shard(1, 2))
        assert sorted(k for p in worker_parts(store, mine, 3) for k in keys(p)) == keys(mine)


def test_a_shard_split_in_parts_is_the_shard() -> None:
    threads = [f"thread-{n}" for n in range(2000)]
    for shard in (None, Shard(0, 1), Shard(2, 5)):
        whole = [t for t in threads if shard is None or shard.holds(t)]
        parts = [split_shard(shard, part, 3) for part in range(3)]
        held = [[t for t in threads if p.holds(t)] for p in parts]
        assert sorted(t for h in held for t in h) == sorted(whole)  # covering, each thread once
        assert all(held)  # 2,000 ids: no part is empty


def test_a_set_of_threads_selects_exactly_those(
    new_store_url: StoreFactory, official_records: list[CheckpointRecord]
) -> None:
    """``Selection.threads`` (a ``--jobs`` worker's share where the parent listed the threads): every
    store yields exactly the records of those threads, with the other criteria too."""
    url = new_store_url()
    _fill(url, official_records)
    every = sorted(str(r.key) for r in official_records)
    with open_store(url) as store:

        def keys(selection: Selection) -> list[str]:
            return sorted(str(r.key) for r in store.records(selection))

        chosen = frozenset({"thread-1", "thread-3", "no such thread"})
        expected = sorted(str(r.key) for r in official_records if r.key.thread_id in chosen)
        assert expected and keys(Selection(threads=chosen)) == expected
        assert sorted(str(h.key) for h in store.headers(Selection(threads=chosen))) == expected
        listed = [t.thread_id for t in store.threads(Selection(threads=chosen), details=False)]
        assert listed == sorted(chosen - {"no such thread"})
        assert keys(Selection(threads=frozenset())) == []
        both = Selection(threads=chosen, thread_glob="*-3", checkpoint_ns="")
        assert keys(both) == sorted(str(r.key) for r in official_records if both.matches(r.key))
        assert keys(Selection(threads=frozenset(r.key.thread_id for r in official_records))) == every
