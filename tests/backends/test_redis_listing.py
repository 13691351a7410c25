"""Issue #24: Redis ``threads(details=False)`` from one FT.AGGREGATE gives exactly what the records say.

Thread ids that differ only in case, hold unicode, spaces or punctuation (``:`` too, which only
RedisSaver writes: ckpt refuses it), in two namespaces; every Selection filter; TTLs on some keys;
and the plural index names of langgraph-checkpoint-redis <= 0.2. The oracle is the records this
test wrote, filtered by ``Selection.matches``; the payload path must agree with it too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from ckpt.backends import CheckpointRecord, Selection, open_store
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.redis import listing
from ckpt.backends.redis.schema import KeySpace
from tests.conftest import sqlite_url
from tests.servers import redis_prefix
from tests.support import command_calls

WRITTEN_BY_CKPT = ["Thread", "thread", "THREAD", "naïve ü", "日本 語", "a b", "a-b.c{d}", "{}", 'q"uote', "back\\slash"]
COLON = "x:y"
"""RedisSaver stores it (its keys become ambiguous); ckpt refuses to write it, so it is copied in raw."""
ODD_NS = "Odd, NS"
"""A namespace RedisSaver stores but its TAG never matches (``,`` is the separator): copied in raw too."""

Row = tuple[str, int, str | None, str | None]


@pytest.fixture
def store_url(official_db: Path) -> Iterator[tuple[str, list[CheckpointRecord]]]:
    with open_store(sqlite_url(official_db)) as source:
        template = [r for r in source.records() if r.key.thread_id == "thread-1"]
    records: list[CheckpointRecord] = []
    with redis_prefix() as url:
        with open_store(url, write=True) as store:
            for n, thread_id in enumerate(WRITTEN_BY_CKPT):
                mine = [replace(r, key=replace(r.key, thread_id=thread_id)) for r in template[: 3 + n % 8]]
                store.write(mine)
                records += mine
        records += _copy_raw(url, [r for r in records if r.key.thread_id == "a b"], COLON)
        root = [r for r in records if r.key.thread_id == "{}" and not r.key.checkpoint_ns]
        records += _copy_raw(url, root[:2], "{}", ODD_NS)
        yield url, records


def _copy_raw(
    url: str, records: list[CheckpointRecord], thread_id: str, ns: str | None = None
) -> list[CheckpointRecord]:
    """RedisSaver's documents of ``records`` again under ``thread_id`` (and namespace ``ns``), keyed
    as RedisSaver keys them."""
    prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
    keys = KeySpace(prefix, f"{prefix}_write")
    client: Any = redis.Redis.from_url(url.split("?")[0], decode_responses=True)
    copied = []
    for record in records:
        k = record.key
        new = replace(k, thread_id=thread_id, checkpoint_ns=k.checkpoint_ns if ns is None else ns)
        fields = {"thread_id": thread_id, "checkpoint_ns": new.checkpoint_ns or "__empty__"}
        doc = client.json().get(keys.checkpoint(k.thread_id, k.checkpoint_ns, k.checkpoint_id))
        client.json().set(keys.checkpoint(thread_id, new.checkpoint_ns, k.checkpoint_id), "$", {**doc, **fields})
        stem = keys.write_stem(k.thread_id, k.checkpoint_ns, k.checkpoint_id)
        for write_key in client.scan_iter(match=f"{stem}*"):
            write = client.json().get(write_key)
            new_stem = keys.write_stem(thread_id, new.checkpoint_ns, k.checkpoint_id)
            client.json().set(new_stem + write_key[len(stem) :], "$", {**write, **fields})
        copied.append(replace(record, key=new))
    client.close()
    return copied


def oracle(records: list[CheckpointRecord], selection: Selection) -> list[Row]:
    by_thread: dict[str, list[str]] = {}
    for record in records:
        if selection.matches(record.key):
            by_thread.setdefault(record.key.thread_id, []).append(record.key.checkpoint_id)
    return [(t, len(ids), min(ids), max(ids)) for t, ids in sorted(by_thread.items())]


def selections(records: list[CheckpointRecord]) -> list[Selection]:
    ids = sorted(r.key.checkpoint_id for r in records)
    middle = checkpoint_time(ids[len(ids) // 2])
    subgraph = next(r.key.checkpoint_ns for r in records if r.key.checkpoint_ns)
    return [
        Selection(),
        Selection(thread_glob="*hread*"),
        Selection(thread_id="thread"),
        Selection(thread_id=COLON),
        Selection(thread_id="{}"),
        Selection(checkpoint_ns=""),
        Selection(checkpoint_ns=subgraph, thread_glob="[a-z]*"),
        Selection(checkpoint_ns=ODD_NS),
        Selection(checkpoint_ns=ODD_NS.lower()),
        Selection(since=middle),
        Selection(until=middle, thread_glob="*"),
        Selection(since=middle, checkpoint_ns=""),
        Selection(thread_from="a", thread_to="x"),
        Selection(thread_id="nobody"),
    ]


def fast_rows(url: str, selection: Selection, *, details: bool = False) -> list[Row]:
    with open_store(url) as store:
        return [
            (s.thread_id, s.checkpoints, s.first_checkpoint_id, s.last_checkpoint_id)
            for s in store.threads(selection, details=details)
        ]


def test_aggregate_equals_the_records_for_every_selection(
    store_url: tuple[str, list[CheckpointRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, records = store_url
    assert {t for t, *_ in fast_rows(url, Selection())} == {*WRITTEN_BY_CKPT, COLON}
    for selection in selections(records):
        expected = oracle(records, selection)
        assert fast_rows(url, selection) == expected, selection
        assert fast_rows(url, selection, details=True) == expected, selection  # the payload path agrees
        with open_store(url) as store:
            assert store.count(selection) == sum(n for _, n, *_ in expected), selection
    monkeypatch.setattr(listing, "has_expiring_keys", lambda client: True)  # the per-key TTL path, same rows
    for selection in selections(records):
        assert fast_rows(url, selection) == oracle(records, selection), selection


def test_summaries_without_bounds_count_the_same(store_url: tuple[str, list[CheckpointRecord]]) -> None:
    """``bounds=False`` (what a copy's reader and ``count`` ask for): the same threads and counts
    from an aggregate that loads only the thread id; first and last are left out (but for time
    bounds, whose per-key path finds them anyway)."""
    url, records = store_url
    client = redis.Redis.from_url(url.split("?")[0], protocol=2)
    index = url.split("checkpoint_prefix=")[1].split("&")[0]
    for selection in selections(records):
        timed = selection.since is not None or selection.until is not None
        expected = [
            (t, n, *((first, last) if timed else (None, None))) for t, n, first, last in oracle(records, selection)
        ]
        listed = listing.thread_summaries(client, index, selection, ttl=False, bounds=False)
        assert listed is not None
        rows = [(s.thread_id, s.checkpoints, s.first_checkpoint_id, s.last_checkpoint_id) for s in listed]
        assert rows == expected, selection
    client.close()


def test_keys_without_ttl_count_the_selected_checkpoints(store_url: tuple[str, list[CheckpointRecord]]) -> None:
    url, records = store_url
    prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
    keys = KeySpace(prefix, f"{prefix}_write")
    client = redis.Redis.from_url(url.split("?")[0])
    # every key of one thread, two of another (its case variants keep none)
    expiring = {r.key for r in records if r.key.thread_id == "日本 語"}
    expiring |= set([r.key for r in records if r.key.thread_id == "thread"][:2])
    for key in expiring:
        assert client.pexpire(keys.checkpoint(key.thread_id, key.checkpoint_ns, key.checkpoint_id), 600_000)
    client.close()
    for selection in selections(records):
        chosen = [r.key for r in records if selection.matches(r.key)]
        expected = {k.thread_id: 0 for k in chosen}
        for key in chosen:
            expected[key.thread_id] += key not in expiring
        with open_store(url) as store:
            got = {s.thread_id: s.keys_without_ttl for s in store.threads(selection, details=False)}
        assert got == expected, selection


def test_plural_index_names_of_0_2(store_url: tuple[str, list[CheckpointRecord]]) -> None:
    url, records = store_url
    prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
    client: Any = redis.Redis.from_url(url.split("?")[0], decode_responses=True, protocol=2)
    for old in (prefix, f"{prefix}_write"):
        info = client.execute_command("FT.INFO", old)
        attributes = dict(zip(info[::2], info[1::2]))["attributes"]
        schema: list[str] = []
        for attribute in attributes:
            spec = dict(zip(attribute[::2], attribute[1::2]))
            schema += [spec["identifier"], "AS", spec["attribute"], spec["type"]]
        client.execute_command("FT.DROPINDEX", old)
        client.execute_command("FT.CREATE", f"{old}s", "ON", "JSON", "PREFIX", 1, f"{old}:", "SCHEMA", *schema)
        deadline = time.monotonic() + 30
        while dict(zip(*[iter(client.execute_command("FT.INFO", f"{old}s"))] * 2)).get("indexing") not in (0, "0"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    try:
        with open_store(url) as store:
            assert store.layout()["version"].startswith("<=0.2")
        for selection in selections(records)[:4]:
            assert fast_rows(url, selection) == oracle(records, selection), selection
    finally:
        for old in (prefix, f"{prefix}_write"):  # redis_prefix drops the singular names
            client.execute_command("FT.DROPINDEX", f"{old}s")
            client.execute_command(
                "FT.CREATE", old, "ON", "JSON", "PREFIX", 1, f"{old}:", "SCHEMA", "$.x", "AS", "x", "TAG"
            )
        client.close()


def test_a_thread_with_no_documents_in_the_time_window_is_not_listed(
    store_url: tuple[str, list[CheckpointRecord]],
) -> None:
    url, records = store_url
    last = max(checkpoint_time(r.key.checkpoint_id) or 0 for r in records)
    assert fast_rows(url, Selection(since=last + 1)) == []
    assert fast_rows(url, Selection(until=0.0)) == []


def test_a_parallel_copy_lists_the_threads_once(store_url: tuple[str, list[CheckpointRecord]]) -> None:
    """``migrate --jobs N`` from Redis: the parent lists the threads by one aggregate and gives each
    worker sets of them, which it reads without another (a search per batch); the parts hold about
    equal numbers of checkpoints, and their records are the whole store's, each once. Past
    ``MAX_LISTED_THREADS`` threads each worker lists its own hash shard instead."""
    from ckpt.backends.ops import parallel

    url, records = store_url
    with open_store(url) as store:
        client = redis.Redis.from_url(url.split("?", 1)[0])

        def aggregates() -> int:
            return command_calls(client, "FT.AGGREGATE")

        before = aggregates()
        parts = parallel.worker_parts(store, Selection(), 2)
        assert aggregates() == before + 1
        assert 2 < len(parts) <= 2 * parallel.CHUNKS_PER_JOB and all(p.threads for p in parts)
        sizes = [sum(1 for r in records if p.matches(r.key)) for p in parts]
        biggest = max(sum(1 for r in records if r.key.thread_id == t) for t in {r.key.thread_id for r in records})
        assert max(sizes) - min(sizes) <= biggest
        whole = sorted(str(r.key) for r in store.records())
        before = aggregates()
        assert sorted(str(r.key) for part in parts for r in store.records(part)) == whole
        assert aggregates() == before  # no worker lists again
        parallel.MAX_LISTED_THREADS, kept = 3, parallel.MAX_LISTED_THREADS
        try:
            shards = parallel.worker_parts(store, Selection(), 2)
        finally:
            parallel.MAX_LISTED_THREADS = kept
        assert [p.shard is not None and p.threads is None for p in shards] == [True, True]
        assert sorted(str(r.key) for part in shards for r in store.records(part)) == whole
        client.close()
