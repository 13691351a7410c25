"""The MongoDB memory driver's own promises (issue #21): read-only opens create nothing, write opens
make MongoDBStore's indexes, values JSON cannot hold are refused by name, the stand-in's string
times are read, keyset pages are complete and ordered, TTL comes from the collection's index."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from bson import ObjectId

from ckpt.backends import open_memory
from ckpt.backends.core.errors import DataError, LockedError, NotAStoreError
from ckpt.backends.core.memory import MemoryItem, MemorySelection
from ckpt.backends.mongodb import memory as driver
from tests.memory import kind_mongodb
from tests.memory.kind_mongodb import COLLECTION

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    with kind_mongodb.place(tmp_path) as place:
        yield place


def _collection(url: str) -> Any:
    import pymongo

    plain = url.split("?", 1)[0]
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(plain)
    return client.get_default_database()[COLLECTION]


def _item(namespace: tuple[str, ...], key: str, value: Any = None, **changes: Any) -> MemoryItem:
    fields: dict[str, Any] = {"created_at": T0, "updated_at": T0 + dt.timedelta(seconds=1)}
    fields.update(changes)
    return MemoryItem(namespace, key, orjson.dumps(value if value is not None else {"k": key}), **fields)


def test_read_only_opens_create_nothing(url: str) -> None:
    collection = _collection(url)
    with pytest.raises(NotAStoreError, match=COLLECTION):
        open_memory(url)
    with pytest.raises(NotAStoreError, match="persistent-store"):  # the store's own default name
        open_memory(url.split("?", 1)[0])
    assert collection.database.list_collection_names() == []


def test_write_opens_make_the_stores_indexes_and_ttl_comes_from_its_index(url: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)  # an old updated_at would be gone as soon as the TTL index is there
    with open_memory(url, write=True) as memory:
        report = memory.write([_item(("a",), "k", ttl_minutes=5.0, created_at=now, updated_at=now)])
        assert memory.layout()["ttl_seconds"] is None and "cannot hold" in report.problems[0]
    indexes = {tuple(i["key"]): i for i in _collection(url).list_indexes()}
    assert indexes[("namespace_str", "key")].get("unique") and ("updated_at",) not in indexes
    with open_memory(url) as memory:
        (item,) = memory.items()
        assert item.expires_at is None and item.ttl_minutes is None  # the item's own TTL has no place
    with open_memory(f"{url}&memory_ttl=3600", write=True) as memory:
        (item,) = memory.items()
        assert item.ttl_minutes == 60.0 and item.expires_at == item.updated_at + dt.timedelta(hours=1)
        assert memory.stored_form(_item(("b",), "k")).ttl_minutes == 60.0  # type: ignore[attr-defined]
        assert memory.findings() == []  # nothing past the index's expiry


def test_documents_are_the_stores_own_and_the_official_store_reads_them(url: str) -> None:
    with open_memory(url, write=True) as memory:
        report = memory.write([_item(("users", "42"), "prefs", {"x": [1, 2.5, None], "ü": "名前"})])
    assert report.items == 1 and report.problems == []
    doc = _collection(url).find_one({}, {"_id": 0})
    assert list(doc) == ["namespace_str", "key", "value", "updated_at", "namespace", "created_at"]
    assert doc["namespace_str"] == "users/42" and doc["namespace"] == ["users", "42"]
    assert isinstance(doc["created_at"], dt.datetime) and isinstance(doc["updated_at"], dt.datetime)
    with kind_mongodb.official(url) as store:
        got = store.get(("users", "42"), "prefs", refresh_ttl=False)
        assert got.value == {"x": [1, 2.5, None], "ü": "名前"}
        assert got.created_at.replace(tzinfo=dt.timezone.utc) == T0
        store.put(("users", "42"), "prefs", {"new": True})  # put keeps created_at ($setOnInsert)
    with open_memory(url, write=True) as memory:
        (item,) = memory.items()
        assert item.created_at == T0 and orjson.loads(item.value) == {"new": True}
        memory.write([_item(("users", "42"), "prefs", created_at=T0 + dt.timedelta(days=1))])
        (item,) = memory.items()
        assert item.created_at == T0 + dt.timedelta(days=1)  # ckpt's write replaces it: a copy keeps the source's


@pytest.mark.parametrize(
    "bad", [T0, ObjectId(), b"raw"], ids=["datetime", "objectid", "binary"]
)  # Decimal128 and NaN: nx-27017 refuses to store them at all
def test_values_json_cannot_hold_are_refused_by_name(url: str, bad: Any) -> None:
    with open_memory(url, write=True) as memory:
        memory.write([_item(("ok",), "fine")])
    _collection(url).insert_one(
        {"namespace_str": "n/m", "key": "bad", "value": {"deep": [{"v": bad}]}, "namespace": ["n", "m"]}
    )
    with open_memory(url) as memory, pytest.raises(DataError, match=r"namespace 'n/m', key 'bad'.*JSON cannot hold"):
        list(memory.items())


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(DataError, match="NaN or infinite"):
        driver.value_json({"a": [1.0, float("nan")]}, "here")
    assert driver.value_json({"a": None, "b": 1}, "here") == b'{"a":null,"b":1}'


def test_the_stand_ins_string_times_are_read(url: str) -> None:
    with open_memory(url, write=True):
        pass
    _collection(url).insert_one(
        {"namespace_str": "s", "key": "k", "value": {}, "namespace": ["s"],
         "created_at": T0, "updated_at": "2026-01-02 03:04:06.678000"}
    )  # fmt: skip
    with open_memory(url) as memory:
        (item,) = memory.items()
        assert item.updated_at == T0 + dt.timedelta(seconds=1)
        (summary,) = memory.namespaces()
        assert summary.items == 1 and summary.newest_update == item.updated_at


def test_keyset_pages_are_complete_and_ordered(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "PAGE", 3)
    namespaces = [("a",), ("a", "b"), ("a", "b", "c"), ("ab",), ("b",), ("é",)]
    items = [_item(ns, f"k{i}") for ns in namespaces for i in range(4)]
    with open_memory(url, write=True) as memory:
        memory.write(reversed(items))
        got = [i.address for i in memory.items()]
        assert got == sorted((i.address for i in items), key=lambda a: ("/".join(a[0]), a[1]))
        under_a = [i.address for i in memory.items(MemorySelection(("a",)))]
        assert {ns for ns, _ in under_a} == {("a",), ("a", "b"), ("a", "b", "c")} and len(under_a) == 12
        exact = [i.key for i in memory.items(MemorySelection(("a", "b"), exact=True))]
        assert exact == ["k0", "k1", "k2", "k3"]
        assert [s.namespace for s in memory.namespaces()] == namespaces
        assert [s.items for s in memory.namespaces(MemorySelection(("a", "b")))] == [4, 4]
        wanted = [items[0].address, items[5].address, (("zz",), "none")]
        assert set(memory.get_many(wanted)) == set(wanted[:2])
        assert memory.delete(wanted) == 2
        assert memory.get_many(wanted) == {}


def test_labels_the_store_refuses_are_refused(url: str) -> None:
    with open_memory(url, write=True) as memory:
        with pytest.raises(DataError, match="labels holding '/'"):
            memory.write([_item(("ok",), "fine"), _item(("a/b",), "k")])
        assert list(memory.items()) == []  # checked before anything of the batch was sent


def test_legacy_documents_are_refused_read_only_and_backfilled_on_write(url: str) -> None:
    collection = _collection(url)
    collection.database.create_collection(COLLECTION)
    collection.insert_one(
        {"namespace": ["old", "ns"], "key": "k", "value": {"v": 1}, "created_at": T0, "updated_at": T0}
    )
    with pytest.raises(DataError, match="without namespace_str"):
        open_memory(url)
    with open_memory(url, write=True) as memory:
        assert [i.address for i in memory.items()] == [(("old", "ns"), "k")]
    assert collection.find_one({})["namespace_str"] == "old/ns"


def test_lock_is_exclusive(url: str) -> None:
    with open_memory(url, write=True) as memory, open_memory(url) as other:
        with memory.lock("prune"), pytest.raises(LockedError, match="memory prune"), other.lock("prune"):
            pass
        with other.lock("prune"):
            pass
