"""Redis-only checks of ``RedisMemory`` (issue #21): ckpt writes RedisStore's own layout (indexes,
keys, documents, expiries, vectors), reads it exactly where RedisStore's TEXT queries are fuzzy,
and never deletes another namespace's item the way RedisStore's puts do."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from ckpt.backends import open_memory
from ckpt.backends.core.errors import DataError, LockedError, NotAStoreError
from ckpt.backends.core.memory import MemoryItem, MemorySelection, Vector
from ckpt.backends.redis.memory_layout import escape, unescape
from tests.memory import scenario
from tests.memory.kind_redis import official, place, split

AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def _item(namespace: tuple[str, ...], key: str, **changes: Any) -> MemoryItem:
    fields: dict[str, Any] = {"value": b'{"text":"t"}', "created_at": AT, "updated_at": AT}
    fields.update(changes)
    return MemoryItem(namespace, key, **fields)


def _client(url: str) -> Any:
    return redis.Redis.from_url(split(url)[0], protocol=2)


def _schema(client: Any, index: str) -> tuple[Any, Any]:
    info = client.execute_command("FT.INFO", index)
    fields = dict(zip(info[::2], info[1::2]))
    return repr(fields[b"index_definition"]).replace(index, "<name>"), fields[b"attributes"]


def test_indexes_are_created_as_redisstore_setup_creates_them(tmp_path: Path) -> None:
    index = {"dims": 4, "embed": scenario.fake_embed, "fields": ["text"]}
    with place(tmp_path) as ours, place(tmp_path) as theirs:
        with pytest.raises(NotAStoreError):  # a read-only open creates nothing
            open_memory(ours).close()
        client = _client(ours)
        assert split(ours)[1] not in {i.decode() for i in client.execute_command("FT._LIST")}
        with official(theirs, index) as store:
            scenario.write(store, scenario.ITEMS[:2])
        result = open_memory(theirs)
        with result as source, open_memory(ours, write=True) as target:
            target.begin_copy("redis", source.layout(), theirs, source.index())  # type: ignore[attr-defined]
            target.write(source.items())
            assert target.index() == source.index() and source.index() is not None
        for a, b in ((split(ours)[1], split(theirs)[1]), (split(ours)[2], split(theirs)[2])):
            assert _schema(client, a) == _schema(client, b)
        client.close()


def test_documents_are_redisstores_and_it_reads_them(tmp_path: Path) -> None:
    expires = datetime.now(timezone.utc) + timedelta(minutes=30)
    items = [_item(("users",), "hand", expires_at=expires), _item(("users", "42"), "nested")]
    with place(tmp_path) as url:
        with open_memory(url, write=True) as memory:
            memory.write(items)
        client = _client(url)
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{split(url)[1]}:*"))
        assert len(keys) == 2 and all(len(k.rpartition(":")[2]) == 26 for k in keys)  # store:<ULID>
        docs = [orjson.loads(client.execute_command("JSON.GET", k)) for k in keys]
        assert all(list(d) == ["prefix", "key", "value", "created_at", "updated_at"] for d in docs)
        assert {d["prefix"] for d in docs} == {"users", "users\\.42"}
        assert {d["created_at"] for d in docs} == {1767323045678901}
        expiry = [int(client.execute_command("PEXPIRETIME", k)) for k in keys]
        assert sorted(expiry)[0] == -1 and abs(sorted(expiry)[1] / 1000 - expires.timestamp()) < 0.001
        client.close()
        with official(url) as store:
            got = store.get(("users",), "hand")
            assert got is not None and got.value == {"text": "t"} and got.created_at == AT
            assert {(i.namespace, i.key) for i in store.search(("users",))} == {
                (("users",), "hand"),
                (("users", "42"), "nested"),
            }
        with open_memory(url) as memory:
            read = {i.key: i for i in memory.items()}
        assert read["hand"].expires_at is not None and abs((read["hand"].expires_at - expires).total_seconds()) < 1e-3
        assert read["hand"].ttl_minutes is None and read["nested"].expires_at is None


def test_exact_namespaces_and_keys_where_redisstore_is_fuzzy(tmp_path: Path) -> None:
    addresses = [
        (("users",), "k"), (("Users",), "k"), (("doc",), "k"), (("docs",), "k"), (("run",), "K"),
        (("running",), "k"), (("the",), "a,b"), (("a b",), " x "), (("a",), ","), (("ünï", "名前"), "ключ 🔑"),
    ]  # fmt: skip
    with place(tmp_path) as url, open_memory(url, write=True) as memory:
        memory.write([_item(ns, key) for ns, key in addresses])
        memory.write([_item(("Users",), "k", value=b'{"v":2}')])  # RedisStore's put would delete users/k
        assert sorted(i.address for i in memory.items()) == sorted(addresses)
        got = memory.get_many([*addresses, (("users",), "K"), (("user",), "k")])
        assert sorted(got) == sorted(addresses) and got[(("Users",), "k")].value == b'{"v":2}'
        assert memory.delete([(("a",), ","), (("the",), "a,b"), (("nope",), "k")]) == 2
        assert len(list(memory.items())) == len(addresses) - 2
        listed = [(s.namespace, s.items) for s in memory.namespaces()]
        assert sorted(listed) == sorted((ns, 1) for ns, _k in addresses if ns not in (("a",), ("the",)))
        shown = [i.address for i in memory.items(MemorySelection(("users",)))]
        assert shown == [(("users",), "k")]


def test_order_paging_and_namespace_summaries(tmp_path: Path) -> None:
    items = [_item(("n", f"{i % 7}"), f"k{i:04d}", value=orjson.dumps({"i": i})) for i in range(450)]
    with place(tmp_path) as url, open_memory(url, write=True) as memory:
        memory.write(items)
        read = [i.address for i in memory.items()]
        assert read == sorted(read) and len(read) == 450  # escaped prefixes sort as the namespaces here
        summaries = list(memory.namespaces(MemorySelection(("n",))))
        assert [s.items for s in summaries] == [65, 65, 64, 64, 64, 64, 64]
        assert sum(s.bytes for s in summaries) == sum(len(i.value) for i in items)
        assert [i.key for i in memory.items(MemorySelection(("n", "3"), exact=True))][:2] == ["k0003", "k0010"]


def test_vectors_are_carried_one_per_item(tmp_path: Path, cli: Any) -> None:
    index = {"dims": 4, "embed": scenario.fake_embed, "fields": ["text"], "distance_type": "inner_product"}
    with place(tmp_path) as src, place(tmp_path) as dst:
        with official(src, index) as store:
            scenario.write(store)
        result = cli("memory", "migrate", src, dst, "--verify", "-o", "json")
        assert result.exit_code == 0, result.stderr
        assert orjson.loads(result.stdout)["vectors"] == len(scenario.ITEMS)
        with open_memory(dst) as memory:
            assert memory.index() is not None and memory.index().distance == "inner_product"  # type: ignore[union-attr]
            item = next(i for i in memory.items() if i.key == "u1")
            assert [v.field for v in item.vectors] == ["text"]
        with official(dst, index) as store:
            hits = store.search(("users",), query="likes tea", limit=1)
            assert [(h.namespace, h.key) for h in hits] == [(("users",), "u1")]
        two = _item(("v",), "two", vectors=(Vector("a", (1.0, 0, 0, 0)), Vector("b", (0, 1.0, 0, 0))))
        with open_memory(dst, write=True) as memory, pytest.raises(DataError, match="keeps one per item"):
            memory.write([two])


def test_lock_is_exclusive(tmp_path: Path) -> None:
    with place(tmp_path) as url, open_memory(url, write=True) as a, open_memory(url, write=True) as b:
        with a.lock("prune"), pytest.raises(LockedError), b.lock("prune"):
            pass
        with b.lock("prune"):
            pass


def test_escaping_is_redisvls() -> None:
    from redisvl.utils.token_escaper import TokenEscaper

    for namespace in [("users", "42"), ("a_b%c", "x-y"), ("a b", "é?*|"), ("q\"'`",)]:
        assert escape(namespace) == TokenEscaper().escape(".".join(namespace))
        assert unescape(escape(namespace)) == namespace


def test_an_expired_item_is_reported(tmp_path: Path) -> None:
    gone = _item(("t",), "gone", expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
    with place(tmp_path) as url, open_memory(url, write=True) as memory:
        report = memory.write([gone, _item(("t",), "kept", ttl_minutes=5.0, expires_at=AT + timedelta(days=3650))])
        time.sleep(0.01)
        assert [i.key for i in memory.items()] == ["kept"]
    assert any("already expired" in p for p in report.problems), report.problems
    assert any("ttl_minutes not kept" in p for p in report.problems)


def test_doctor_findings_name_redisstores_bugs(tmp_path: Path) -> None:
    with place(tmp_path) as url, open_memory(url, write=True) as memory:
        assert memory.findings() == []
        memory.write(
            [_item(("users",), "k"), _item(("Users",), "k"), _item(("users", "42"), "a"), _item(("a b",), "b")]
        )
        found = memory.findings()
    assert len(found) == 2 and found[0].startswith("2 item(s) in nested or punctuated namespaces")
    assert found[1].startswith("1 group(s) of namespaces differing only in case")
