"""Redis → Redis copies RedisSaver's documents as stored (``backends/redis/rowcopy.py``, issue #24).

The source is written by the official RedisSaver (the example graph: subgraphs, Sends, an
interrupt; generated histories with pending writes in namespaces) on the test server; the copy
goes to the second server (``services.sh start redis2``): on one server the two stores would share
RedisSaver's write registries, which are not under a key prefix. The oracle is RedisSaver itself:
``get_tuple`` of every checkpoint and ``get_state_history`` of every thread on the target equal the
source's, and the interrupted thread resumes on the target.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

import ckpt
from ckpt.backends import open_store
from ckpt.backends.core.base import Selection
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.shards import Shard
from ckpt.backends.ops.transfer import copy_records
from examples.graphs import config
from tests.histories import write_histories
from tests.servers import fresh_redis
from tests.support import official_saver, populate_official, resume, saver_view, tuple_view


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    """(a source RedisSaver filled, an empty second server)."""
    with fresh_redis() as source, fresh_redis("redis2") as target:
        populate_official(source, threads=3)
        with official_saver(source) as saver:
            write_histories(saver, seed=7, threads=6)
        yield source, target


def _keys(url: str, selection: Selection = Selection()) -> list[tuple[str, str, str]]:
    with open_store(url) as store:
        return [h.key_tuple for h in store.headers(selection)]


def _documents(url: str, pattern: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        keys = sorted(client.scan_iter(match=pattern, count=1000))
        if pattern.startswith("write_keys_zset"):
            return {k: client.zrange(k, 0, -1, withscores=True) for k in keys}
        if "_latest:" in pattern:
            return {k: client.get(k) for k in keys}
        return {k: client.json().get(k) for k in keys}
    finally:
        client.close()


def _copy(source_url: str, target_url: str, selection: Selection = Selection(), *, as_rows: bool = True) -> Any:
    with open_store(source_url) as source, open_store(target_url, write=True) as target:
        return copy_records(source, target, selection, batch_size=50, as_rows=as_rows)


def test_the_target_holds_the_documents_as_stored_and_redissaver_reads_them_as_the_source(
    servers: tuple[str, str],
) -> None:
    source, target = servers
    report = ckpt.migrate(source, target, verify=True)
    assert report.verified is not None and report.verified.ok
    for pattern in ("checkpoint:*", "checkpoint_write:*", "write_keys_zset:*", "checkpoint_latest:*"):
        # the records path would rebuild each document (checkpoint_ts from the id, not RedisSaver's clock)
        assert _documents(target, pattern) == _documents(source, pattern), pattern
    keys = _keys(source)
    assert len(keys) > 50 and tuple_view(target, keys) == tuple_view(source, keys)
    threads = sorted({k[0] for k in keys})
    assert all(saver_view(target, t) == saver_view(source, t) for t in threads if t.startswith("thread-"))
    assert resume(target, "thread-3")["messages"][-1].content == resume(source, "thread-3")["messages"][-1].content


def test_a_rerun_writes_nothing(servers: tuple[str, str]) -> None:
    source, target = servers
    first = _copy(source, target)
    again = _copy(source, target)
    assert first.checkpoints_written == len(_keys(source)) and first.writes_written > 0
    assert (again.checkpoints_written, again.writes_written) == (0, 0)
    assert again.checkpoints_skipped == first.checkpoints_written


SELECTIONS = {
    "glob": Selection(thread_glob="gen-*"),
    "namespace": Selection(checkpoint_ns=""),
    "thread": Selection(thread_id="thread-2"),
    "shard": Selection(shard=Shard(1, 3)),
    "range": Selection(thread_from="gen-007-02", thread_to="thread-2"),
}


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_each_selection_copies_what_the_records_path_copies(servers: tuple[str, str], name: str) -> None:
    source, target = servers
    selection = SELECTIONS[name]
    _copy(source, target, selection)
    as_rows = _keys(target)
    view = tuple_view(target, as_rows)
    with fresh_redis("redis2") as emptied:
        _copy(source, emptied, selection, as_rows=False)
        assert _keys(emptied) == as_rows == _keys(source, selection)
        assert tuple_view(emptied, as_rows) == view == tuple_view(source, as_rows)


def test_a_time_window_is_applied_to_each_checkpoint(servers: tuple[str, str]) -> None:
    source, target = servers
    keys = _keys(source)
    times = sorted(t for k in keys if (t := checkpoint_time(k[2])) is not None)
    selection = Selection(since=times[len(times) // 2])
    _copy(source, target, selection)
    copied = _keys(target)
    assert copied == _keys(source, selection) and 0 < len(copied) < len(keys)
    assert tuple_view(target, copied) == tuple_view(source, copied)


def test_a_thread_with_an_older_document_goes_through_records_whole(servers: tuple[str, str]) -> None:
    """A checkpoint of ``v`` 3 may carry Sends only a decoded record can repair: its thread is handed
    back (``left_threads``) and copied through records; every other thread as stored."""
    source, target = servers
    client = redis.Redis.from_url(source, decode_responses=True)
    older = next(k for k in client.scan_iter(match="checkpoint:gen-007-01:*") if client.json().get(k, "$.checkpoint.v"))
    client.json().set(older, "$.checkpoint.v", 3)
    with open_store(source) as store_in, open_store(target, write=True) as store_out:
        batches = list(store_out.rows_from(store_in, Selection(), 500) or [])
    assert [t for b in batches for t in b.left_threads] == ["gen-007-01"]
    assert not any(key.startswith("checkpoint:gen-007-01:") for key in _documents(target, "checkpoint:*"))
    report = _copy(source, target)
    keys = _keys(source)
    assert report.checkpoints_written == sum(1 for k in keys if k[0] == "gen-007-01")
    assert _keys(target) == keys and tuple_view(target, keys) == tuple_view(source, keys)
    client.close()


def test_ttls_move_with_the_documents_or_are_set_by_the_target(servers: tuple[str, str]) -> None:
    source, target = servers
    client = redis.Redis.from_url(source, decode_responses=True)
    expiring = sorted(client.scan_iter(match="checkpoint:thread-1:*"))
    for key in expiring:
        client.pexpire(key, 3_600_000)
    client.close()
    _copy(source, target)
    copied = redis.Redis.from_url(target, decode_responses=True)
    assert all(3_000_000 < copied.pttl(k) <= 3_600_000 for k in expiring)
    assert all(copied.pttl(k) == -1 for k in copied.scan_iter(match="checkpoint:thread-2:*"))
    with fresh_redis("redis2") as emptied:
        _copy(source, f"{emptied}?ttl=5")
        again = redis.Redis.from_url(emptied, decode_responses=True)
        assert all(0 < again.pttl(k) <= 300_000 for k in again.scan_iter(match="checkpoint*"))
        again.close()
    copied.close()


def test_a_target_with_other_prefixes_is_read_by_a_redissaver_with_those_prefixes(servers: tuple[str, str]) -> None:
    from langgraph.checkpoint.redis import RedisSaver

    from tests.support import tuples_of

    source, target = servers
    _copy(source, f"{target}?checkpoint_prefix=moved&checkpoint_write_prefix=moved_write")
    keys = _keys(source)
    with RedisSaver.from_conn_string(target, checkpoint_prefix="moved", checkpoint_write_prefix="moved_write") as saver:
        saver.setup()
        assert tuples_of(saver, keys) == tuple_view(source, keys)
    latest = _documents(target, "moved_latest:*")
    assert latest and all(value.startswith("moved:") for value in latest.values())


@pytest.mark.parametrize(("release", "as_stored"), [("redis-0.2.1", False), ("redis-0.3.9", True)])
def test_only_a_source_in_the_current_layout_is_copied_as_stored(release: str, as_stored: bool) -> None:
    """Stores written by the real releases: 0.2's plural index names go through records (their
    repairs, tests/contract/test_old_layouts.py), 0.3.9's documents are today's."""
    from tests.old_stores import FIXTURES, loaded

    fixture = next(f for f in FIXTURES if f.name == release)
    with (
        loaded(fixture) as source_url,
        fresh_redis("redis2") as target_url,
        open_store(source_url) as source,
        open_store(target_url, write=True) as target,
    ):
        batches = target.rows_from(source, Selection(), 500)
        assert (batches is not None) == as_stored
        if batches is not None:
            done = list(batches)
            assert sum(b.checkpoints_read for b in done) == len(_keys(source_url))
            assert not any(b.left_threads for b in done)


def test_into_a_cluster_the_documents_as_stored_are_read_by_redissaver_in_cluster_mode(
    servers: tuple[str, str],
) -> None:
    """The cluster writes them in its own per-key steps (``RedisClusterStore.prepared_documents``)."""
    from tests.servers import fresh_redis_cluster

    source, _ = servers
    keys = _keys(source)
    with fresh_redis_cluster() as cluster:
        with open_store(source) as store_in, open_store(cluster, write=True) as store_out:
            batches = store_out.rows_from(store_in, Selection(), 500)
            assert batches is not None
            done = list(batches)
        assert sum(b.checkpoints_written for b in done) == len(keys)
        assert tuple_view(cluster, keys) == tuple_view(source, keys)
        with open_store(cluster) as store_out, open_store(source, write=True) as store_in:
            assert store_in.rows_from(store_out, Selection(), 500) is None  # a cluster is not read by search


def test_a_thread_the_target_cannot_hold_is_refused_or_skipped_as_by_the_records_path(
    servers: tuple[str, str],
) -> None:
    """RedisSaver writes ``user:42`` unescaped; its keys are ambiguous, so ckpt refuses to write it.
    The rows copy hands its thread back and the records path refuses it (nothing of that batch is
    written) or, with ``skip_bad``, names it and copies the rest."""
    from ckpt.backends.core.errors import CorruptRecordError
    from examples.graphs import build_graph, config

    source, target = servers
    with official_saver(source) as saver:
        build_graph(saver).invoke({"messages": [("user", "hi")]}, config("user:42"))
    keys = _keys(source)
    assert any(k[0] == "user:42" for k in keys)
    with open_store(source) as store_in, open_store(target, write=True) as store_out:
        with pytest.raises(CorruptRecordError, match="':'"):
            copy_records(store_in, store_out, Selection(), batch_size=50)
        report = copy_records(store_in, store_out, Selection(), batch_size=50, skip_bad=True)
    assert report.skipped and all("user:42" in line for line in report.skipped)
    kept = [k for k in keys if k[0] != "user:42"]
    assert _keys(target) == kept and tuple_view(target, kept) == tuple_view(source, kept)


@pytest.mark.parametrize("kind", ["redis2", "cluster"])
def test_what_the_target_held_reads_the_same_after_the_copy(servers: tuple[str, str], kind: str) -> None:
    """A target the app already writes to (RedisSaver ran the same graph there, so the same thread
    ids hold other checkpoints) and a thread copied before: RedisSaver's ``get_tuple`` of every
    checkpoint the target held is the same after the copy, and every copied one is the source's."""
    from tests.oracle import snapshot
    from tests.servers import fresh_redis_cluster

    source, second = servers
    with fresh_redis_cluster() if kind == "cluster" else fresh_redis("redis2") as target:
        populate_official(target, threads=3)
        _copy(source, target, Selection(thread_id="thread-1"))
        before, latest = snapshot(target, target), _latest(target)
        _copy(source, target)
        after = snapshot(target, target)
        assert {key: after[key] for key in before} == before
        assert _latest(target) == latest  # the app's newer checkpoints stay each thread's latest
        copied = snapshot(source, source)
        assert {key: after[key] for key in copied} == copied
        assert set(after) == set(before) | set(copied)


def _latest(url: str) -> dict[str, str]:
    """The checkpoint RedisSaver resumes each example thread from (``get_tuple`` without an id)."""
    with official_saver(url) as saver:
        found = {t: saver.get_tuple(config(t)) for t in ("thread-1", "thread-2", "thread-3")}
    return {t: tuple_.config["configurable"]["checkpoint_id"] for t, tuple_ in found.items() if tuple_ is not None}
