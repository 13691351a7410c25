"""PostgreSQL-only checks of the ``PostgresStore`` memory driver (issue #21): what a read-only open
leaves alone, what a write open sets up, the INT ``ttl_minutes`` column, vectors without pgvector,
paging and prefix selection, and the lock. The shared, parametrised checks are in test_memory.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from ckpt.backends import open_memory
from ckpt.backends.core.errors import ExitCode, LockedError, NotAStoreError, StoreNotFoundError
from ckpt.backends.core.memory import MemoryItem, MemorySelection, MemoryStore
from ckpt.backends.ops.memory import same_item
from ckpt.backends.postgres.memory_layout import MIGRATIONS, ROUNDED_TTL
from tests.conftest import Cli
from tests.servers import postgres_schema

T0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


@pytest.fixture
def place() -> Iterator[tuple[str, str]]:
    """(ckpt URL, libpq URL with search_path) of a fresh schema."""
    with postgres_schema() as urls:
        yield urls


def _sql(libpq: str, query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq, autocommit=True) as conn:
        cur = conn.execute(query, params or None)  # type: ignore[arg-type]
        return cur.fetchall() if cur.description else []


def _item(namespace: tuple[str, ...], key: str, ttl: float | None = None, **value: Any) -> MemoryItem:
    expires = None if ttl is None else T0 + timedelta(minutes=ttl)
    return MemoryItem(namespace, key, orjson.dumps(value or {"k": key}), T0, T0, expires, ttl)


def _tables(libpq: str) -> list[str]:
    return [
        r[0]
        for r in _sql(
            libpq, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY 1"
        )
    ]


def test_a_read_only_open_creates_nothing(place: tuple[str, str]) -> None:
    url, libpq = place
    with pytest.raises(NotAStoreError, match="no 'store' table"):
        open_memory(url)
    assert _tables(libpq) == []
    _sql(libpq, "CREATE TABLE store (id int)")  # another app's table of that name
    for write in (False, True):
        with pytest.raises(NotAStoreError, match="not PostgresStore's"):
            open_memory(url, write=write)
    assert _tables(libpq) == ["store"]
    with pytest.raises(StoreNotFoundError):
        open_memory(url.rsplit("schema=", 1)[0] + "schema=ckpt_no_such_schema")


def test_a_write_open_runs_what_setup_runs(place: tuple[str, str]) -> None:
    url, libpq = place
    with open_memory(url, write=True) as memory:
        assert memory.layout()["migration"] == len(MIGRATIONS) - 1 and memory.index() is None
    assert _tables(libpq) == ["store", "store_migrations"]
    assert _sql(libpq, "SELECT v FROM store_migrations ORDER BY v") == [(0,), (1,), (2,), (3,)]
    indexes = dict(_sql(libpq, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema()"))
    assert "text_pattern_ops" in indexes["store_prefix_idx"] and "idx_store_expires_at" in indexes
    types = dict(
        _sql(
            libpq,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'store'",
        )
    )
    assert types["value"] == "jsonb" and types["ttl_minutes"] == "integer"
    with _official(libpq) as store:
        store.put(("n",), "k", {"a": 1})  # the official setup() found nothing left to do
    assert _sql(libpq, "SELECT count(*) FROM store_migrations") == [(4,)]


def _official(libpq: str) -> Any:
    from langgraph.store.postgres import PostgresStore

    return PostgresStore.from_conn_string(libpq)


def test_a_store_set_up_before_ttl_is_read_then_upgraded_in_place(place: tuple[str, str]) -> None:
    url, libpq = place
    _sql(libpq, "CREATE TABLE store_migrations (v INTEGER PRIMARY KEY)")
    for v in (0, 1):
        _sql(libpq, MIGRATIONS[v])
        _sql(libpq, "INSERT INTO store_migrations VALUES (%s)", v)
    _sql(libpq, """INSERT INTO store (prefix, key, value) VALUES ('old.ns', 'k', '{"a": 1}')""")
    with open_memory(url) as memory:
        (item,) = memory.items()
        assert item.namespace == ("old", "ns") and item.ttl_minutes is None and item.expires_at is None
        assert memory.layout()["migration"] == 1
        assert memory.findings() == [
            "memory layout at migration 1: PostgresStore.setup() (or a ckpt memory write) adds the rest"
        ]
    with open_memory(url, write=True) as memory:
        memory.write([_item(("old", "ns"), "t", ttl=5.0)])
        assert [i.ttl_minutes for i in memory.items()] == [None, 5.0]
    assert _sql(libpq, "SELECT max(v) FROM store_migrations") == [(3,)]


def test_a_float_ttl_is_stored_as_postgres_store_stores_it_and_verify_shows_it(
    place: tuple[str, str], tmp_path: Path, cli: Cli
) -> None:
    url, libpq = place
    with _official(libpq) as store:
        store.setup()
        for ttl in (0.5, 2.5, 0.01):
            store.put(("official",), str(ttl), {"a": 1}, ttl=ttl)
    official = dict(_sql(libpq, "SELECT key, ttl_minutes FROM store"))
    assert official == {"0.5": 0, "2.5": 2, "0.01": 0}  # PostgreSQL's own half-to-even cast
    with open_memory(url, write=True) as memory:
        report = memory.write([_item(("ckpt",), str(t), ttl=t) for t in (0.5, 2.5, 0.01, 600.0)])
        assert report.problems == [ROUNDED_TTL]  # said once per batch, not per item
        back = {i.key: i for i in memory.items(MemorySelection(("ckpt",)))}
    assert {k: i.ttl_minutes for k, i in back.items()} == {"0.5": 0.0, "2.5": 2.0, "0.01": 0.0, "600.0": 600.0}
    assert back["0.5"].expires_at == T0 + timedelta(seconds=30)  # the expiry itself is exact
    with open_memory(url) as memory:  # T0 is in the past: every TTL item has expired
        expired, zero = memory.findings()
        assert "expired memory item(s)" in expired and zero.startswith("4 item(s) with ttl_minutes 0")
    assert same_item(_item(("ckpt",), "0.5", ttl=0.5), back["0.5"]) == "ttl_minutes differs (0.5 != 0.0)"
    source = f"sqlite:///{tmp_path / 'src.db'}"
    with open_memory(source, write=True) as memory:
        memory.write([_item(("s",), "half", ttl=0.5)])
    result = cli("memory", "migrate", source, url, "--verify")  # verify expects what the INT column keeps
    assert result.exit_code == 0, result.stderr
    assert f"not kept by the target: {ROUNDED_TTL}" in result.stderr


def test_vectors_need_pgvector_and_nothing_is_written_without_it(
    place: tuple[str, str], tmp_path: Path, cli: Cli
) -> None:
    url, libpq = place
    if _sql(libpq, "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"):
        pytest.skip("this server has pgvector: the refusal cannot happen here")
    line = {"namespace": ["n"], "key": "k", "value": {"a": 1}, "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(), "expires_at": None, "ttl_minutes": None,
            "vectors": [{"field": "$", "embedding": [0.5, 0.5, 0.5, 0.5]}]}  # fmt: skip
    header = {"format": "ckpt/memory-jsonl", "version": 1, "source": None, "index": None}
    path = tmp_path / "vec.jsonl"
    path.write_bytes(orjson.dumps(header) + b"\n" + orjson.dumps(line) + b"\n")
    result = cli("memory", "import", str(path), url)
    assert result.exit_code == ExitCode.DATA and "no pgvector" in result.stderr, result.stderr
    assert _sql(libpq, "SELECT count(*) FROM store") == [(0,)]
    assert "store_vectors" not in _tables(libpq)


def test_pages_prefixes_and_aggregates(place: tuple[str, str]) -> None:
    url, _libpq = place
    items = [_item(("a_b%c", f"{i % 7}"), f"k{i:05d}", n=i) for i in range(2500)]
    items += [_item(("aXb%c",), "decoy"), _item(("a_b%cd",), "decoy"), _item(("a_b%c",), "top", ttl=1.0)]
    with open_memory(url, write=True) as memory:
        for start in range(0, len(items), 700):
            assert memory.write(items[start : start + 700]).items == len(items[start : start + 700])
    with open_memory(url) as memory:
        got = list(memory.items(MemorySelection(("a_b%c",))))
        assert len(got) == 2501 and len({i.address for i in got}) == 2501
        assert [(i.namespace, i.key) for i in got] == sorted((i.namespace, i.key) for i in got)
        assert [i.key for i in memory.items(MemorySelection(("a_b%c",), exact=True))] == ["top"]
        for selection in (MemorySelection(), MemorySelection(("a_b%c",))):
            assert [s.as_json() for s in memory.namespaces(selection)] == [
                s.as_json() for s in MemoryStore.namespaces(memory, selection)
            ]
        wanted = [items[0].address, items[2400].address, (("nope",), "k")]
        assert sorted(memory.get_many(wanted)) == sorted(wanted[:2])
        back = memory.get_many(wanted)[items[0].address]
        assert same_item(items[0], back) is None and back.value == b'{"n": 0}'  # jsonb's own text form


def test_a_write_replaces_an_item_with_its_own_times_and_delete_counts(place: tuple[str, str]) -> None:
    url, libpq = place
    with _official(libpq) as store:
        store.setup()
        store.put(("n",), "k", {"old": True}, ttl=5)
    with open_memory(url, write=True) as memory:
        memory.write([_item(("n",), "k", new=True)])
        (item,) = memory.items()
        assert (item.created_at, item.value_json(), item.ttl_minutes, item.expires_at) == (
            T0,
            {"new": True},
            None,
            None,
        )
        assert memory.delete([(("n",), "k"), (("n",), "missing")]) == 1
        assert list(memory.items()) == []


def test_the_lock_is_exclusive_across_connections(place: tuple[str, str]) -> None:
    url, _libpq = place
    with open_memory(url, write=True) as first, open_memory(url) as second:
        with first.lock("prune"):
            with pytest.raises(LockedError, match="memory prune"), second.lock("prune"):
                pass
            with second.lock("other"):
                pass
        with second.lock("prune"):
            pass


def test_a_fresh_store_is_copied_straight_in_until_an_address_repeats(place: tuple[str, str]) -> None:
    url, libpq = place
    with open_memory(url, write=True) as memory:
        memory.write([_item(("a",), "1", v=1), _item(("a",), "2", v=2)])  # empty table: COPY, no upsert
        memory.write([_item(("a",), "2", v=20), _item(("b",), "3", v=3)])  # "2" again: falls back to upsert
        memory.write([_item(("a",), "1", v=10)])
    with _official(libpq) as store:
        assert [(i.key, i.value) for i in store.search(("a",))] == [("1", {"v": 10}), ("2", {"v": 20})]
        assert store.get(("b",), "3").value == {"v": 3}  # type: ignore[union-attr]
