"""Long-term memory in MongoDB, in the layout of ``MongoDBStore`` (langgraph-store-mongodb 0.4.0;
docs/memory-layouts.md section 4). Written without importing that package: ckpt reads and writes
the documents, it does not need the store's embeddings stack.

One document per item in one collection (``persistent-store`` unless ``?memory_collection=NAME``)
of the URL's database (``checkpointing_db`` when it names none, as ``from_conn_string``):
``namespace_str`` (labels joined by ``/``), ``key``, ``value`` (the dict as a subdocument),
``updated_at`` and ``namespace`` (the labels) and ``created_at`` (Dates). Indexes: the unique
``{namespace_str: 1, key: 1}`` (reads page by keyset on it) and, when the store has a
``ttl_config``, a TTL index on ``updated_at`` (``expireAfterSeconds`` = ``default_ttl``).

TTL: the layout holds no per-item TTL (``MongoDBStore`` ignores ``put(ttl=…)``). With the TTL index,
every item whose ``updated_at`` is a Date expires ``expireAfterSeconds`` after it: ckpt shows that
as ``expires_at`` and ``ttl_minutes``. An item copied in keeps its value and times; its own TTL is
lost (:meth:`MongoMemory.stored_form` says what the store keeps, ``write`` reports the loss).
Vectors (one Atlas-indexed ``embedding`` per item, the indexed field not recorded) are not carried.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import bson
import orjson
import pymongo
from bson.int64 import Int64
from pymongo import ASCENDING, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, PyMongoError

from ckpt.backends.core.errors import DataError, NotAStoreError
from ckpt.backends.core.memory import (
    Address,
    MemoryItem,
    MemorySelection,
    MemoryStore,
    MemoryWriteReport,
    NamespaceSummary,
    namespace_path,
    utc,
)
from ckpt.backends.core.urls import redact
from ckpt.backends.mongodb.lock import document_lock
from ckpt.backends.mongodb.store import connect_client

SEP = "/"
"""``MongoDBStore``'s ``sep``: how ``namespace_str`` joins the labels."""
DEFAULT_COLLECTION = "persistent-store"
OPTIONS = ("memory_collection", "memory_ttl")
"""ckpt's URL query options (taken out before the URL reaches pymongo)."""
KEY_INDEX = [("namespace_str", ASCENDING), ("key", ASCENDING)]
PAGE = 1000
BATCH = 500
DOCUMENT_LIMIT = 16 * 1024 * 1024
EPOCH = datetime.fromtimestamp(0, timezone.utc)


class MongoMemory(MemoryStore):
    kind = "mongodb"
    holds_vectors = False  # the Atlas vector index cannot be made or tested here; refused, never dropped

    def __init__(self, client: pymongo.MongoClient[Any], url: str, options: dict[str, str], *, write: bool) -> None:
        self._client, self.url = client, url
        database = client.get_default_database(default="checkpointing_db")
        self._collection = database[options.get("memory_collection", DEFAULT_COLLECTION)]
        try:
            if write:
                _setup(self._collection, _seconds(options.get("memory_ttl")))
            else:
                self._check_readable()
            self._indexes = list(self._collection.list_indexes())
        except PyMongoError as exc:
            raise DataError(f"{self._where()}: {redact(str(exc).splitlines()[0])}") from exc
        self.ttl_seconds = _ttl_seconds(self._indexes)

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> MongoMemory:
        """Connect as the checkpoint driver does (5 s timeouts, a ping, the same errors); ckpt's own
        query options are taken out of the URL pymongo sees."""
        client, options = connect_client(url, set(OPTIONS))
        try:
            return cls(client, url, options, write=write)
        except BaseException:
            client.close()
            raise

    def _where(self) -> str:
        return f"{redact(self.url)} collection {self._collection.name!r}"

    def _check_readable(self) -> None:
        """A read-only open creates nothing: the collection must be there, and in 0.4.0's form (a
        document without ``namespace_str`` is one ``MongoDBStore`` backfills when it next starts)."""
        if self._collection.name not in self._collection.database.list_collection_names():
            raise NotAStoreError(f"{self._where()}: no such collection (MongoDBStore memory)")
        if self._collection.count_documents({"namespace_str": {"$exists": False}}, limit=1):
            raise DataError(
                f"{self._where()}: documents without namespace_str (MongoDBStore before 0.4.0); "
                "open it for writing (ckpt or MongoDBStore 0.4.0) once to backfill them"
            )

    def layout(self) -> dict[str, Any]:
        return {
            "store": "langgraph-store-mongodb MongoDBStore",
            "version": "0.4.0 (namespace_str)",
            "database": self._collection.database.name,
            "collection": self._collection.name,
            "ttl_seconds": self.ttl_seconds,
            "vector_index": False,
        }

    def close(self) -> None:
        self._client.close()

    # -- reading -----------------------------------------------------------------

    def _selection(self, selection: MemorySelection) -> dict[str, Any]:
        if not selection.prefix:
            return {}
        prefix = SEP.join(selection.prefix)
        if selection.exact:
            return {"namespace_str": prefix}
        # "/" + 1 is "0": the range holds exactly the strings that start with prefix + "/"
        return {"$or": [{"namespace_str": prefix}, {"namespace_str": {"$gte": prefix + SEP, "$lt": prefix + "0"}}]}

    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        """In ``(namespace_str, key)`` order, by keyset on the unique index: the namespace tuples'
        order unless a label holds a character below ``/`` (`` !"#$%&'()*+,-.``)."""
        base = self._selection(selection)
        query = base
        while True:
            cursor = self._collection.find(query).sort(KEY_INDEX).limit(PAGE)
            if any(list(i["key"]) == [k for k, _ in KEY_INDEX] for i in self._indexes):
                cursor = cursor.hint(KEY_INDEX)
            docs = list(cursor)
            for doc in docs:
                yield self._item(doc)
            if len(docs) < PAGE:
                return
            last_ns, last_key = docs[-1]["namespace_str"], docs[-1]["key"]
            after = {"$or": [{"namespace_str": {"$gt": last_ns}}, {"namespace_str": last_ns, "key": {"$gt": last_key}}]}
            query = {"$and": [base, after]} if base else after

    def _item(self, doc: dict[str, Any]) -> MemoryItem:
        namespace = tuple(doc.get("namespace") or str(doc.get("namespace_str", "")).split(SEP))
        where = f"namespace {namespace_path(namespace)!r}, key {doc.get('key')!r}"
        ttl, updated = self.ttl_seconds, doc.get("updated_at")
        # only Dates expire: a text updated_at (nx-27017's $set) never matches the TTL index
        expires = utc(updated) + timedelta(seconds=ttl) if isinstance(updated, datetime) and ttl is not None else None
        return MemoryItem(
            namespace=namespace,
            key=str(doc["key"]),
            value=value_json(doc.get("value"), where),
            created_at=_time(doc.get("created_at")) or EPOCH,
            updated_at=_time(updated) or EPOCH,
            expires_at=expires,
            ttl_minutes=ttl / 60 if expires is not None and ttl is not None else None,
        )

    def namespaces(self, selection: MemorySelection = MemorySelection()) -> Iterator[NamespaceSummary]:
        """One ``$group`` by ``namespace_str``. ``bytes`` is the BSON size of the values (the JSON
        text's length is not computable in the server); ``expiring`` counts Date ``updated_at`` s
        under a TTL index."""
        is_date = {"$cond": [{"$eq": [{"$type": "$updated_at"}, "date"]}, 1, 0]}
        group = {
            "_id": "$namespace_str",
            "namespace": {"$first": "$namespace"},
            "items": {"$sum": 1},
            "bytes": {"$sum": {"$bsonSize": "$value"}},
            "oldest": {"$min": "$updated_at"},
            "newest": {"$max": "$updated_at"},
            "dates": {"$sum": is_date},
        }
        pipeline = [{"$match": self._selection(selection)}, {"$group": group}]
        for row in sorted(self._collection.aggregate(pipeline), key=lambda r: str(r["_id"])):
            namespace = tuple(row.get("namespace") or str(row["_id"]).split(SEP))
            expiring = int(row.get("dates") or 0) if self.ttl_seconds is not None else 0
            yield NamespaceSummary(
                namespace, int(row["items"]), int(row.get("bytes") or 0), _time(row["oldest"]), _time(row["newest"]),
                expiring,
            )  # fmt: skip

    def get_many(self, addresses: Iterable[Address]) -> dict[Address, MemoryItem]:
        """One ``find`` per batch: a ``$in`` of keys per namespace, ``$or``-ed."""
        found: dict[Address, MemoryItem] = {}
        for filters in _batched_filters(addresses):
            for doc in self._collection.find({"$or": filters}).batch_size(BATCH):
                item = self._item(doc)
                found[item.address] = item
        return found

    def lock(self, name: str) -> AbstractContextManager[None]:
        """``ckpt_locks`` document ``memory:<collection>:<name>``, as the checkpoint store's lock
        (taken by insert, renewed while held, taken over once expired)."""
        locks = self._collection.database["ckpt_locks"]
        return document_lock(locks, f"memory:{self._collection.name}:{name}", f"memory {name}", self._where())

    def findings(self) -> list[str]:
        """Items past the TTL index's expiry that are still there (mongod's monitor runs every ~60 s)."""
        cutoff = datetime.now(timezone.utc) - timedelta(seconds=self.ttl_seconds or 0)
        expired = self.ttl_seconds and self._collection.count_documents({"updated_at": {"$lt": cutoff}})
        return [f"{expired} memory item(s) past the TTL index's expiry still stored"] if expired else []

    # -- writing -----------------------------------------------------------------

    def stored_form(self, item: MemoryItem) -> MemoryItem:
        """What this store keeps of ``item``: times to the millisecond (BSON Dates), no per-item TTL
        (the collection's TTL index, if any, applies from ``updated_at``), no vectors."""
        updated, ttl = _ms(item.updated_at), self.ttl_seconds
        expires, minutes = (None, None) if ttl is None else (updated + timedelta(seconds=ttl), ttl / 60)
        times: dict[str, Any] = {"created_at": _ms(item.created_at), "updated_at": updated}
        return replace(item, **times, expires_at=expires, ttl_minutes=minutes, vectors=())

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        """Upsert the batch by ``(namespace_str, key)``, each document replaced whole. Unlike
        ``put`` (``$setOnInsert``), ``created_at`` is the item's own on overwrite too: a copy shows
        the source's times. Every document is encoded first, so a bad one writes nothing of it."""
        batch = list(items)
        report = MemoryWriteReport(items=len(batch))
        operations = []
        for item in batch:
            document = _document(item)
            operations.append(ReplaceOne({"namespace_str": document["namespace_str"], "key": item.key}, document, True))
        if any(i.ttl_minutes is not None or i.expires_at is not None for i in batch):
            report.problems.append(
                "an item's own TTL, which MongoDBStore's layout cannot hold (its put ignores ttl): written without it"
            )
        if operations:
            try:
                self._collection.bulk_write(operations, ordered=False)
            except BulkWriteError as exc:
                error = (exc.details.get("writeErrors") or [{}])[0]
                index = error.get("index")
                what = batch[index].where() if isinstance(index, int) and index < len(batch) else "a batch"
                raise DataError(f"{what}: MongoDB refused it: {error.get('errmsg', exc)}") from exc
        return report

    def delete(self, addresses: Iterable[Address]) -> int:
        """``delete_many`` per batch (no transactions on a standalone server; a rerun deletes the rest)."""
        return sum(
            int(self._collection.delete_many({"$or": filters}).deleted_count) for filters in _batched_filters(addresses)
        )


def value_json(value: Any, where: str) -> bytes:
    """A ``value`` subdocument as JSON text, or ``DataError`` for anything JSON cannot hold as is:
    a Date, ObjectId, Decimal128, binary, regex, code…, or a float NaN/infinity (orjson writes
    ``null`` for those, so a ``null`` in the output sends the value through a walk)."""
    if not isinstance(value, dict):
        raise DataError(f"{where}: the stored value is {type(value).__name__}, not a document")

    def refuse(obj: Any) -> Any:
        if type(obj) is Int64:
            return int(obj)
        if isinstance(obj, (dict, list)):  # SON and the like: their plain form
            return dict(obj) if isinstance(obj, dict) else list(obj)
        raise DataError(f"{where}: the value holds a BSON {type(obj).__name__}, which JSON cannot hold; not copied")

    try:
        data = orjson.dumps(
            value, default=refuse, option=orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS
        )
    except orjson.JSONEncodeError as exc:
        if isinstance(exc.__cause__, DataError):
            raise exc.__cause__ from None
        raise DataError(f"{where}: the value cannot be written as JSON ({exc})") from exc
    if b"null" in data and _non_finite(value):
        raise DataError(f"{where}: the value holds a NaN or infinite number, which JSON cannot hold; not copied")
    return data


def _non_finite(value: Any) -> bool:
    if isinstance(value, (dict, list)):
        return any(map(_non_finite, value.values() if isinstance(value, dict) else value))
    return isinstance(value, float) and not math.isfinite(value)


def _document(item: MemoryItem) -> dict[str, Any]:
    """The document ``put`` makes (its upsert's field order), checked as BSON before any is sent."""
    for label in item.namespace:
        if not label or SEP in label:
            raise DataError(f"{item.where()}: MongoDBStore refuses empty labels and labels holding {SEP!r}")
    if not item.namespace:
        raise DataError(f"{item.where()}: the namespace is empty")
    if item.vectors:
        raise DataError(f"{item.where()}: ckpt does not carry vectors into MongoDBStore's layout; not written")
    value = orjson.loads(item.value)
    if not isinstance(value, dict):
        raise DataError(f"{item.where()}: the value is not a JSON object")
    document = {
        "namespace_str": SEP.join(item.namespace),
        "key": item.key,
        "value": value,
        "updated_at": utc(item.updated_at),
        "namespace": list(item.namespace),
        "created_at": utc(item.created_at),
    }
    try:
        size = len(bson.encode(document))
    except (bson.errors.BSONError, OverflowError, ValueError) as exc:
        raise DataError(f"{item.where()}: the value cannot be stored as BSON ({exc}); nothing was written") from exc
    if size > DOCUMENT_LIMIT:
        raise DataError(f"{item.where()}: {size} bytes is over MongoDB's 16 MiB document limit; nothing was written")
    return document


def _batched_filters(addresses: Iterable[Address]) -> Iterator[list[dict[str, Any]]]:
    """``{namespace_str, key: {$in}}`` filters, one per namespace, in ``$or`` batches of ``BATCH``
    addresses."""
    chunk: dict[str, list[str]] = {}
    count = 0
    for namespace, key in addresses:
        chunk.setdefault(SEP.join(namespace), []).append(key)
        count += 1
        if count >= BATCH:
            yield [{"namespace_str": ns, "key": {"$in": keys}} for ns, keys in chunk.items()]
            chunk, count = {}, 0
    if chunk:
        yield [{"namespace_str": ns, "key": {"$in": keys}} for ns, keys in chunk.items()]


def _time(value: Any) -> datetime | None:
    """A Date (naive UTC from pymongo), or the text a stand-in keeps: nx-27017 stores a ``$set``
    datetime as ``'2026-12-05 02:38:21.844000'`` and gives ``'{"$date":"…"}'`` from some aggregates."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc(value)
    text = str(value)
    if text.startswith("{"):
        text = str(orjson.loads(text).get("$date", ""))
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _ms(at: datetime) -> datetime:
    at = utc(at)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def _seconds(text: str | None) -> int | None:
    if text is not None and not text.isdigit():
        raise DataError(f"memory_ttl must be whole seconds, not {text!r}")
    return None if text is None else int(text)


def _ttl_seconds(indexes: list[Any]) -> int | None:
    """``expireAfterSeconds`` of a TTL index on ``updated_at`` (what ``default_ttl`` made)."""
    for index in indexes:
        if list(index["key"]) == ["updated_at"] and "expireAfterSeconds" in index:
            return int(index["expireAfterSeconds"])
    return None


def _setup(collection: Any, ttl_seconds: int | None) -> None:
    """What ``MongoDBStore.from_conn_string`` and its constructor do (bar the Atlas vector index):
    create the collection, backfill ``namespace_str`` on legacy documents, make the unique
    ``(namespace_str, key)`` index (dropping a non-unique one), drop the legacy ``(namespace, key)``
    index, and with ``?memory_ttl=SECONDS`` the TTL index, only where no ``updated_at`` index is."""
    if collection.name not in collection.database.list_collection_names():
        collection.database.create_collection(collection.name)
    backfill: list[UpdateOne] = []  # in batches of 1000, as the store's constructor
    for doc in collection.find({"namespace_str": {"$exists": False}}, {"_id": 1, "namespace": 1}):
        joined = SEP.join(doc.get("namespace") or ())
        backfill.append(
            UpdateOne({"_id": doc["_id"], "namespace_str": {"$exists": False}}, {"$set": {"namespace_str": joined}})
        )
        if len(backfill) >= 1000:
            collection.bulk_write(backfill, ordered=False)
            backfill = []
    if backfill:
        collection.bulk_write(backfill, ordered=False)
    indexes = list(collection.list_indexes())
    same = [i for i in indexes if list(i["key"]) == ["namespace_str", "key"]]
    if not any(i.get("unique") for i in same):
        for index in same:
            collection.drop_index(index["name"])
        collection.create_index(KEY_INDEX, unique=True)
    if any(list(i["key"]) == ["namespace", "key"] for i in collection.list_indexes()):
        collection.drop_index([("namespace", ASCENDING), ("key", ASCENDING)])
    if ttl_seconds is not None and not any(list(i["key"]) == ["updated_at"] for i in indexes):
        collection.create_index([("updated_at", ASCENDING)], expireAfterSeconds=ttl_seconds)
