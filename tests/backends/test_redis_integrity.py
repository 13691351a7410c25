"""Redis deletes touch only their own store's keys, and the integrity guard stops a bad batch whole.

RedisSaver's write registries (``write_keys_zset:…``) carry no key prefix, so two stores on one
server share that key space (and, for the same thread, namespace and checkpoint id, one registry
key). Each test fingerprints what must not change (``_digest``) and compares it byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import redis

from ckpt.backends import CheckpointKey, open_store
from ckpt.backends.core.errors import ExitCode, IntegrityError
from ckpt.backends.redis import prune as redis_prune
from tests.conftest import Cli, sqlite_url
from tests.histories import write_histories
from tests.servers import redis_prefix
from tests.support import tuples_of

ZSETS = "write_keys_zset:*"


def _prefix(url: str) -> str:
    return parse_qs(urlsplit(url).query)["checkpoint_prefix"][0]


def _base(url: str) -> str:
    return url.split("?", 1)[0]


@contextmanager
def _saver(url: str) -> Iterator[Any]:
    """The official RedisSaver on the key prefixes of a ckpt URL."""
    from langgraph.checkpoint.redis import RedisSaver

    prefix = _prefix(url)
    with RedisSaver.from_conn_string(
        _base(url), checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
    ) as saver:
        saver.setup()
        yield saver


@contextmanager
def _stores(count: int) -> Iterator[list[str]]:
    """``count`` stores under fresh prefixes; their entries in the shared registries go afterwards too."""
    with ExitStack() as stack:
        urls = [stack.enter_context(redis_prefix()) for _ in range(count)]
        try:
            yield urls
        finally:
            client = redis.Redis.from_url(_base(urls[0]), decode_responses=True, protocol=2)
            stems = tuple(f"{_prefix(u)}_write:" for u in urls)
            for zset in client.scan_iter(match=ZSETS):
                mine = [m for m in client.zrange(zset, 0, -1) if m.startswith(stems)]
                if mine:
                    client.zrem(zset, *mine)
            client.close()


def _digest(url: str) -> dict[str, Any]:
    """Every key of the store (name → TYPE, DUMP bytes, has-a-TTL), its registry entries, its index sizes.

    A registry another store shares is the store's only as far as its entries go: those (member,
    score) are compared; the registry's DUMP only where the store's entries are all it holds, on
    both sides (``_assert_same``).
    """
    prefix = _prefix(url)
    client = redis.Redis.from_url(_base(url), protocol=2)
    out: dict[str, Any] = {}
    for key in client.scan_iter(match=f"{prefix}*"):
        out[key.decode()] = (client.type(key), client.dump(key), client.pttl(key) > 0)
    for zset in client.scan_iter(match=ZSETS):
        members = client.zrange(zset, 0, -1, withscores=True)
        mine = [(m, s) for m, s in members if m.startswith(f"{prefix}_write:".encode())]
        if mine:
            whole = client.dump(zset) if len(mine) == len(members) else None
            out[zset.decode()] = (client.type(zset), mine, client.pttl(zset) > 0, whole)
    for index in (prefix, f"{prefix}_write"):
        info = client.execute_command("FT.INFO", index)
        out[f"FT.INFO {index}"] = dict(zip(info[::2], info[1::2]))[b"num_docs"]
    client.close()
    return out


def _assert_same(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert sorted(after) == sorted(before), set(before) ^ set(after)
    for key, old in before.items():
        new = after[key]
        if key.startswith("write_keys_zset:") and None in (old[3], new[3]):
            old, new = old[:3], new[:3]  # shared on one side: the entries are what this store owns
        assert new == old, key


def _keys(url: str) -> list[tuple[str, str, str]]:
    with open_store(url) as store:
        return sorted(h.key_tuple for h in store.headers())


def _views(url: str, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], Any]:
    with _saver(url) as saver:
        return {tuple(v[:3]): v[3:] for v in tuples_of(saver, keys)}  # type: ignore[misc]


def _with_writes(url: str) -> list[tuple[str, str, str]]:
    with open_store(url) as store:
        return [(r.key.thread_id, r.key.checkpoint_ns, r.key.checkpoint_id) for r in store.records() if r.writes]


def _populate(cli: Cli, official_db: Path, urls: list[str]) -> None:
    """Each store: the example graph's store (the same ids in every store: shared registries) plus its own histories."""
    for seed, url in enumerate(urls, 1):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        with _saver(url) as saver:
            write_histories(saver, seed, threads=6, prefix=f"gen{seed}")


def test_compact_and_prune_on_one_prefix_leave_another_prefix_byte_identical(cli: Cli, official_db: Path) -> None:
    with _stores(2) as (a, b):
        _populate(cli, official_db, [b, a])
        client = redis.Redis.from_url(_base(a), decode_responses=True, protocol=2)
        # Orphans in A: a checkpoint of its own histories and one whose registry B shares, deleted raw.
        own = next(k for k in _with_writes(a) if k[0].startswith("gen"))
        shared = next(k for k in _with_writes(a) if k[0].startswith("thread-"))
        for thread_id, ns, checkpoint_id in (own, shared):
            assert client.delete(f"{_prefix(a)}:{thread_id}:{ns or '__empty__'}:{checkpoint_id}") == 1
        kept_a = _keys(a)
        views_a = _views(a, kept_a)
        digest_b = _digest(b)
        b_registries = sum(1 for key in digest_b if key.startswith("write_keys_zset:"))

        result = cli("compact", a, "--min-idle", "0s", "--yes", "-o", "json")
        assert result.exit_code == 0, result.stderr
        removed = json.loads(result.stdout)["removed"]
        assert removed["orphan_zsets"] == 2 and removed["orphan_writes"] > 0, removed
        _assert_same(digest_b, _digest(b))
        assert sum(1 for key in _digest(b) if key.startswith("write_keys_zset:")) == b_registries
        assert _views(a, kept_a) == views_a
        shared_zset = f"write_keys_zset:{shared[0]}:{shared[1] or '__empty__'}:{shared[2]}"
        assert client.exists(shared_zset) and all(m.startswith(_prefix(b)) for m in client.zrange(shared_zset, 0, -1))

        assert cli("prune", a, "--keep-last", "1", "--min-idle", "0s", "--yes").exit_code == 0
        _assert_same(digest_b, _digest(b))
        after = _keys(a)
        assert len(after) < len(kept_a) and _views(a, after) == {k: views_a[k] for k in after}
        assert cli("compact", a, "--min-idle", "0s", "--yes").exit_code == 0
        _assert_same(digest_b, _digest(b))
        assert _views(a, after) == {k: views_a[k] for k in after}
        _assert_consistent(client, _prefix(a))


def _assert_consistent(client: redis.Redis, prefix: str) -> None:
    """Pointers lead to checkpoints, and no entry of the store's registries outlives its checkpoint."""
    for pointer in client.scan_iter(match=f"{prefix}_latest:*"):
        assert client.exists(client.get(pointer)), pointer
    for zset in client.scan_iter(match=ZSETS):
        if any(m.startswith(f"{prefix}_write:") for m in client.zrange(zset, 0, -1)):
            assert client.exists(f"{prefix}:" + zset.split(":", 1)[1]), zset


def _newest(url: str) -> dict[tuple[str, str], str]:
    """The newest checkpoint id of each thread and namespace: what ``--keep-last 1`` keeps."""
    newest: dict[tuple[str, str], str] = {}
    for thread_id, ns, checkpoint_id in _keys(url):
        newest[(thread_id, ns)] = max(newest.get((thread_id, ns), ""), checkpoint_id)
    return newest


def _kept_write(url: str) -> tuple[str, str]:
    """(thread id, key of a pending write) of a checkpoint that ``--keep-last 1`` keeps."""
    client = redis.Redis.from_url(_base(url), decode_responses=True, protocol=2)
    for (thread_id, ns), checkpoint_id in sorted(_newest(url).items()):
        keys = list(client.scan_iter(match=f"{_prefix(url)}_write:{thread_id}:{ns or '__empty__'}:{checkpoint_id}:*"))
        if keys:
            return thread_id, sorted(keys)[0]
    raise AssertionError("no kept checkpoint has pending writes")


def test_a_planted_kept_write_stops_prune_with_exit_7_and_deletes_nothing(
    cli: Cli, official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _stores(1) as (url,):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        thread_id, planted = _kept_write(url)
        monkeypatch.setattr(redis_prune, "_plant_fault", lambda keys: [*keys, planted])
        before = _digest(url)
        result = cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes", "--report", "json")
        _assert_same(before, _digest(url))
        said = result.stdout + result.stderr
        assert f"thread={thread_id!r}" in said and planted in said, said
        assert result.exit_code == ExitCode.INTEGRITY, (result.exit_code, result.stderr)


def _planted(url: str, kind: str, other: str) -> str:
    """A key the batch must not delete: a kept checkpoint's, a valid pointer, or another store's."""
    thread_id, write = _kept_write(url)
    _, ns, checkpoint_id = write.split(":", 1)[1].split(":")[:3]
    prefix = _prefix(url)
    return {
        "write": write,
        "checkpoint": f"{prefix}:{thread_id}:{ns}:{checkpoint_id}",
        "zset": f"write_keys_zset:{thread_id}:{ns}:{checkpoint_id}",
        "pointer": f"{prefix}_latest:{thread_id}:{ns}",
        "other store": f"{_prefix(other)}:{thread_id}:{ns}:{checkpoint_id}",
    }[kind]


@pytest.mark.parametrize("kind", ["write", "checkpoint", "zset", "pointer", "other store"])
def test_the_guard_refuses_each_kind_of_wrong_key(
    cli: Cli, official_db: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    with _stores(2) as (url, other):
        for target in (url, other):
            assert cli("migrate", sqlite_url(official_db), target).exit_code == 0
        planted = _planted(url, kind, other)
        monkeypatch.setattr(redis_prune, "_plant_fault", lambda keys: [*keys, planted])
        newest = _newest(url)
        doomed = [CheckpointKey(t, ns, c) for t, ns, c in _keys(url) if newest[(t, ns)] != c]
        before, before_other = _digest(url), _digest(other)
        with open_store(url, write=True) as store, pytest.raises(IntegrityError) as raised:
            store.delete(doomed)
        message = str(raised.value)
        assert planted in message and len(message.splitlines()) == 1
        if kind != "other store":
            assert f"thread={planted.split(':')[1]!r}" in message, message
        _assert_same(before, _digest(url))
        _assert_same(before_other, _digest(other))


def test_compact_guard_rechecks_that_an_orphan_has_no_checkpoint(
    cli: Cli, official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _stores(1) as (url,):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        client = redis.Redis.from_url(_base(url), decode_responses=True, protocol=2)
        newest = _newest(url)
        orphan = next(k for k in _with_writes(url) if newest[k[:2]] != k[2])  # its pointer stays valid
        client.delete(f"{_prefix(url)}:{orphan[0]}:{orphan[1] or '__empty__'}:{orphan[2]}")
        thread_id, planted = _kept_write(url)
        monkeypatch.setattr(redis_prune, "_plant_fault", lambda keys: [*keys, planted])
        before = _digest(url)
        result = cli("compact", url, "--min-idle", "0s", "--yes")
        assert result.exit_code == ExitCode.INTEGRITY, (result.exit_code, result.stderr)
        assert planted in result.stderr and "exists" in result.stderr
        _assert_same(before, _digest(url))
        monkeypatch.setattr(redis_prune, "_plant_fault", None)
        assert cli("compact", url, "--min-idle", "0s", "--yes").exit_code == 0
        _assert_consistent(client, _prefix(url))
