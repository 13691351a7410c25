"""Reading RedisSaver's documents a batch at a time, replies walked off the socket (issue #24).

``fetch.Fetcher`` reads each batch with plain commands (``FT.SEARCH``, then ``JSON.MGET`` and
``PTTL`` of the keys found, sent back as the search returned them) and parses the replies itself
(``resp.Replies``). Its oracle is redis-py: ``fetch.fetch_plain`` sends the same searches and reads
through redis-py's own reply parser. Every test runs on the real Redis server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from ckpt.backends import CheckpointRecord, Selection, open_store
from ckpt.backends.redis import fetch
from ckpt.backends.redis.resp import Replies
from ckpt.backends.redis.wire import command
from tests.conftest import sqlite_url
from tests.servers import fresh_redis, redis_prefix, server_url
from tests.support import command_calls

THREADS = 130
"""More than a batch's 100 threads: two batches, the second's commands sent while the first is used."""
BIG = "x" * (3 << 20)
"""A channel value bigger than a socket read (1 MiB): one document arrives in several reads."""


@pytest.fixture
def store(official_db: Path) -> Iterator[tuple[str, list[CheckpointRecord]]]:
    with open_store(sqlite_url(official_db)) as source:
        template = [r for r in source.records() if r.key.thread_id == "thread-1"][:3]
    ids = [f"t{n:03}" for n in range(THREADS - 1)] + ["üni🙂"]  # a key that is not ASCII, too
    records = [replace(r, key=replace(r.key, thread_id=thread_id)) for thread_id in ids for r in template]
    with redis_prefix() as url:
        with open_store(url, write=True) as target:
            target.write(records)
        client = redis.Redis.from_url(url.split("?")[0])
        prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
        keys = sorted(client.scan_iter(match=f"{prefix}:*"))
        client.execute_command("JSON.SET", keys[0], "$.checkpoint.channel_values.big", f'"{BIG}"')
        client.pexpire(keys[1], 3_600_000)
        client.close()
        yield url, records


def _reader(url: str) -> Any:
    store = open_store(url)
    return store, store._reader(Selection())  # type: ignore[attr-defined]


def _by_redis_py(reader: Any, client: Any) -> list[fetch.Fetched]:
    """Each batch as redis-py's own reply parser reads it (the oracle)."""
    return [fetch.fetch_plain(client, reader._indexes, fetch.union(b.searchable)) for b in reader._batches()]


def _without_ttl_drift(batches: list[Any]) -> list[Any]:
    """Batches with each TTL rounded to 100 s (the key ages between two reads)."""
    return [
        ([(k, d, -1 if t < 0 else round(t, -5)) for k, d, t in checkpoints], writes) for checkpoints, writes in batches
    ]


def test_every_batch_reads_as_redis_py_reads_it(store: tuple[str, list[CheckpointRecord]]) -> None:
    url, _ = store
    src, reader = _reader(url)
    with src:
        fetched = [(b.checkpoints, b.writes) for b in reader.fetched()]
        expected = _by_redis_py(reader, src._r)
    assert len(fetched) == 2
    assert sum("üni🙂" in key for checkpoints, _ in fetched for key, _, _ in checkpoints) == 3
    assert _without_ttl_drift(fetched) == _without_ttl_drift(expected)
    docs = [doc for checkpoints, _ in fetched for _, doc, _ in checkpoints]
    assert sum(doc["checkpoint"]["channel_values"].get("big") == BIG for doc in docs) == 1
    assert sorted(ttl > 0 for checkpoints, _ in fetched for _, _, ttl in checkpoints).count(True) == 1


def _settled(records: Iterator[CheckpointRecord]) -> list[CheckpointRecord]:
    """The records with their remaining TTL rounded to 100 s (the key ages between two reads)."""
    return [
        replace(r, extra=tuple((k, round(v, -5) if k == "redis.ttl_ms" else v) for k, v in r.extra)) for r in records
    ]


def _settled_read(url: str) -> list[CheckpointRecord]:
    """Every record of the store at ``url`` as read now, TTLs rounded (``_settled``)."""
    with open_store(url) as src:
        return _settled(src.records())


def test_every_checkpoint_written_is_read(store: tuple[str, list[CheckpointRecord]]) -> None:
    url, records = store
    with open_store(url) as src:
        read = list(src.records())
    assert len(read) == len(records) == THREADS * 3
    assert {r.key for r in read} == {r.key for r in records}
    assert [dict(r.extra).get("redis.ttl_ms", 0) > 0 for r in read].count(True) == 1


def test_a_search_past_one_page_is_read_whole(
    store: tuple[str, list[CheckpointRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = store
    expected = _settled_read(url)
    monkeypatch.setattr(fetch, "_PAGE", 7)  # every search is paged through
    monkeypatch.setattr(fetch, "fetch_plain", None)  # and no batch leaves it for redis-py's route
    assert _settled_read(url) == expected


def test_without_a_socket_to_read_redis_py_reads_the_same(
    store: tuple[str, list[CheckpointRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = store
    expected = _settled_read(url)
    monkeypatch.setattr(fetch.Connection, "replies", lambda self: None)
    used: list[str] = []
    plain = fetch.fetch_plain
    monkeypatch.setattr(fetch, "fetch_plain", lambda *a, **k: used.append(a[2]) or plain(*a, **k))
    assert _settled_read(url) == expected
    assert len(used) == 2  # both batches took redis-py's route


def test_a_user_refused_scripts_reads_by_the_fast_route(
    store: tuple[str, list[CheckpointRecord]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads send no ``EVAL``: an ACL user without it reads every batch off the socket, as before."""
    url, _ = store
    expected = _settled_read(url)
    monkeypatch.setattr(fetch, "fetch_plain", None)  # redis-py's route is never taken
    refused_before = _evals_refused()
    with _as_user_without_scripts(url) as reader_url, open_store(reader_url) as src:
        assert _settled(src.records()) == expected
    assert _evals_refused() == refused_before


@pytest.mark.parametrize("route", ["socket", "redis-py"])
def test_no_ttl_is_read_where_no_key_expires(official_db: Path, monkeypatch: pytest.MonkeyPatch, route: str) -> None:
    """With no key of the database expiring (``INFO keyspace``), no ``PTTL`` is sent and every
    record reads as without a TTL; one key given a TTL brings back a ``PTTL`` per checkpoint."""
    with open_store(sqlite_url(official_db)) as source:
        records = list(source.records())
    if route == "redis-py":
        monkeypatch.setattr(fetch.Connection, "replies", lambda self: None)
    with fresh_redis() as base:
        url = f"{base}?checkpoint_prefix=nottl&checkpoint_write_prefix=nottl_write"
        with open_store(url, write=True) as target:
            target.write(records)
        client = redis.Redis.from_url(base)
        before = _pttl_calls(client)
        with open_store(url) as src:
            read = list(src.records())
        assert _pttl_calls(client) == before  # not one PTTL
        assert {r.key for r in read} == {r.key for r in records}
        assert not any("redis.ttl_ms" in dict(r.extra) for r in read)
        key = sorted(client.scan_iter(match="nottl:*"))[0].decode()
        client.pexpire(key, 3_600_000)
        before = _pttl_calls(client)
        with open_store(url) as src:
            read = list(src.records())
        assert _pttl_calls(client) - before == len(records)
        assert [r.key.checkpoint_id for r in read if "redis.ttl_ms" in dict(r.extra)] == [key.rsplit(":", 1)[1]]
        client.close()


def _pttl_calls(client: Any) -> int:
    return command_calls(client, "pttl")


def _evals_refused() -> int:
    client = redis.Redis.from_url(server_url("redis"))
    refused = command_calls(client, "eval", "rejected_calls")
    client.close()
    return refused


def test_stopping_half_way_leaves_no_reply_behind(store: tuple[str, list[CheckpointRecord]]) -> None:
    url, _ = store
    src, reader = _reader(url)
    with src:
        batches = reader.fetched()
        first = next(batches)  # the second batch's reads are in flight now
        batches.close()
        assert src._r.ping()
        again = [(b.checkpoints, b.writes) for b in reader.fetched()]
    assert _without_ttl_drift(again[:1]) == _without_ttl_drift([(first.checkpoints, first.writes)])


@contextmanager
def _as_user_without_scripts(url: str) -> Iterator[str]:
    """``url`` as an ACL user that may run every command but ``EVAL``."""
    client = redis.Redis.from_url(server_url("redis"))
    client.execute_command("ACL", "SETUSER", "ckpt-noscript", "on", ">noscript-pw", "~*", "&*", "+@all", "-eval")
    try:
        yield url.replace("redis://", "redis://ckpt-noscript:noscript-pw@", 1)
    finally:
        client.execute_command("ACL", "DELUSER", "ckpt-noscript")
        client.close()


def _raw_connection(client: Any) -> tuple[Any, socket.socket]:
    conn = client.connection_pool.get_connection()
    return conn, conn._sock


def test_replies_nil_errors_and_big_values_off_the_socket() -> None:
    client = redis.Redis.from_url(server_url("redis"), protocol=2)
    value = b'["' + b"y" * (5 << 20) + b'"]'
    client.execute_command("JSON.SET", "ckpt-test:big", "$", value[1:-1])
    client.execute_command("JSON.SET", "ckpt-test:small", "$", '{"n": 18446744073709551615, "s": "\\u00fc\\r\\n"}')
    conn, sock = _raw_connection(client)
    try:
        replies = Replies(sock)
        conn.send_packed_command(
            [
                command("FT.SEARCH", "ckpt-test-no-such-index", "*"),
                command("JSON.MGET", "ckpt-test:big", "ckpt-test:missing", "ckpt-test:small", "$"),
                command("JSON.MGET", "ckpt-test:missing", "ckpt-test:small", "ckpt-test:missing", "$"),
                command("JSON.MGET", "ckpt-test:missing", "$"),
            ]
        )
        with pytest.raises(redis.ResponseError, match="no-such-index|Unknown index|no such index"):
            replies.array()
        big, missing, small = replies.json_array(fetch.parse)
        assert big == [value[2:-2].decode()]
        assert missing is None
        assert small == [{"n": 18446744073709551615, "s": "ü\r\n"}]
        assert replies.json_array(fetch.parse) == [None, small, None]
        assert replies.json_array(fetch.parse) == [None]
    finally:
        conn.disconnect()
        client.delete("ckpt-test:big", "ckpt-test:small")
        client.close()


def test_json_that_orjson_refuses_is_read_as_redis_py_reads_it() -> None:
    text = b'[{"n": 123456789012345678901234567890, "s": "\\ud800"}]'
    assert fetch.parse(memoryview(text)) == [{"n": 123456789012345678901234567890, "s": "\ud800"}]


def test_an_unexpected_reply_type_is_an_error() -> None:
    client = redis.Redis.from_url(server_url("redis"), protocol=2)
    conn, sock = _raw_connection(client)
    try:
        conn.send_packed_command([command("PING")])
        with pytest.raises(redis.RedisError, match="unexpected reply type '\\+'"):
            Replies(sock).array()
    finally:
        conn.disconnect()
        client.close()


ODD_KEYS = [
    b"ckpt-odd:plain",
    b"ckpt-odd:cr\r\nlf $3\r\nabc",  # a CR LF and a bulk header inside a key
    b"ckpt-odd:\xff\xfe not UTF-8",
    "ckpt-odd:üni🙂".encode(),
    b"ckpt-odd:" + b"k" * (200 << 10),  # longer than a socket read: the reply comes in pieces
]


def test_search_keys_go_back_out_as_they_came() -> None:
    """``Replies.search_keys`` on a real index: every key named as redis-py decodes it, in runs of
    at most ``chunk`` that a ``JSON.MGET`` sent with them as they are reads the documents of."""
    client = redis.Redis.from_url(server_url("redis"), protocol=2)
    client.execute_command(
        "FT.CREATE", "ckpt-odd", "ON", "JSON", "PREFIX", 1, "ckpt-odd:", "SCHEMA", "$.n", "AS", "n", "NUMERIC"
    )
    for n, key in enumerate(ODD_KEYS):
        client.execute_command("JSON.SET", key, "$", f'{{"n": {n}}}')
    conn, sock = _raw_connection(client)
    try:
        conn.send_packed_command(
            [command("FT.SEARCH", "ckpt-odd", "@n:[0 +inf]", "NOCONTENT", "SORTBY", "n", "LIMIT", 0, 100)]
        )
        total, runs, names = Replies(sock).search_keys(2)
        assert total == len(ODD_KEYS)
        assert names == [key.decode("utf-8", "surrogateescape") for key in ODD_KEYS]
        assert [n for n, _ in runs] == [2, 2, 1]
        replies = Replies(sock)
        conn.send_packed_command([b"*%d\r\n$9\r\nJSON.MGET\r\n" % (n + 2) + run + b"$1\r\n$\r\n" for n, run in runs])
        docs = [doc for _ in runs for doc in replies.json_array(fetch.parse)]
        assert docs == [[{"n": n}] for n in range(len(ODD_KEYS))]
    finally:
        conn.disconnect()
        client.execute_command("FT.DROPINDEX", "ckpt-odd", "DD")
        client.close()


@pytest.mark.parametrize("rereads", [3, 0])
def test_a_search_paged_while_the_index_changes_is_read_again(
    store: tuple[str, list[CheckpointRecord]], monkeypatch: pytest.MonkeyPatch, rereads: int
) -> None:
    """A checkpoint deleted while a search is paged (a prune running beside the copy) shifts the
    pages after it: the changed total shows it and the search is read again from its start, so
    every checkpoint still there is read. Without the rereads one would be missed (``rereads=0``
    proves the test can see it)."""
    url, _ = store
    monkeypatch.setattr(fetch, "_PAGE", 7)
    monkeypatch.setattr(fetch, "_REREADS", rereads)
    monkeypatch.setattr(fetch, "fetch_plain", None)
    prefix = url.split("checkpoint_prefix=")[1].split("&")[0]
    deleted: list[str] = []
    search_keys = Replies.search_keys

    def deleting_once(self: Replies, chunk: int) -> Any:
        total, runs, names = search_keys(self, chunk)
        if not deleted and total > len(names) and names and names[0].startswith(f"{prefix}:"):
            client = redis.Redis.from_url(url.split("?")[0])
            client.delete(names[0])  # a key of the page just read: the pages after it shift by one
            client.close()
            deleted.append(names[0])
        return total, runs, names

    monkeypatch.setattr(Replies, "search_keys", deleting_once)
    with open_store(url) as src:
        read = {(r.key.thread_id, r.key.checkpoint_id) for r in src.records()}
    monkeypatch.setattr(Replies, "search_keys", search_keys)
    with open_store(url) as src:
        there = {(r.key.thread_id, r.key.checkpoint_id) for r in src.records()}
    _, thread_id, _, checkpoint_id = deleted[0].split(":")
    assert len(deleted) == 1 and (thread_id, checkpoint_id) not in there
    if rereads:
        assert read == there
    else:
        assert read < there and len(there - read) == 1
