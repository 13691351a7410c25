"""MongoDB driver: the layout of langgraph-checkpoint-mongodb 0.5.x (spec §6).

``checkpoints`` documents hold the whole checkpoint as BinData and the metadata as a dict whose
leaves are ``[type, BinData]`` pairs (0.1-0.2.0: plain JSON bytes, read too); ``checkpoint_writes``
documents one write each. Reads follow the savers' unique indexes (thread, ns, checkpoint id
descending) with cursor batches, reversing each (thread, ns) group so records come out in
ascending key order. Writes are ``insert_many(ordered=False)`` when the saver's unique indexes
are in place: records are immutable, so a duplicate-key error (11000) means "already there" and
a rerun changes nothing. Without those indexes, ``bulk_write`` of ``$setOnInsert`` upserts does
the same job, slower (a stand-in like nx-27017 scans the collection for every upsert filter).
MongoDBSaver counts channel versions as integers: records are converted.
No multi-document transactions: a standalone MongoDB has none, and per-document inserts or
upserts make a batch safe to replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from dataclasses import replace
from datetime import datetime, timezone
from itertools import groupby
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pymongo
from bson.binary import Binary
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, PyMongoError

from ckpt.backends.core.base import (
    Capability,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    PendingWrite,
    Selection,
    Store,
    ThreadSummary,
    WriteReport,
)
from ckpt.backends.core.errors import (
    BackendUnavailableError,
    CorruptRecordError,
    IntegrityError,
    NotAStoreError,
)
from ckpt.backends.core.ids import lowest_id_at
from ckpt.backends.core.iterate import batched
from ckpt.backends.core.merge import attach
from ckpt.backends.core.urls import redact
from ckpt.backends.core.versions import to_int_versions
from ckpt.backends.mongodb import SCHEMES
from ckpt.backends.mongodb.listing import thread_summaries
from ckpt.backends.mongodb.lock import document_lock
from ckpt.backends.mongodb.metadata import metadata_from_mongo, metadata_to_mongo

CHECKPOINT_INDEX = [("thread_id", ASCENDING), ("checkpoint_ns", ASCENDING), ("checkpoint_id", DESCENDING)]
WRITES_INDEX = [*CHECKPOINT_INDEX, ("task_id", ASCENDING), ("idx", ASCENDING)]
_SHARD_BATCH = 500
"""Thread ids per ``$in`` query of a shard's read."""
_BATCH = 500
_DOCUMENT_LIMIT = 16 * 1024 * 1024
_DUPLICATE_KEY = 11000


def _unavailable(url: str, exc: Exception) -> BackendUnavailableError:
    """A failed connect or ping as one line (the URL and the driver's words masked)."""
    if isinstance(exc, PyMongoError):
        return BackendUnavailableError(
            f"cannot connect to {redact(url)}: {redact((str(exc).splitlines() or [type(exc).__name__])[0])}"
        )
    # pymongo's auth handshake indexes the server's reply: a server that answers an authentication
    # it does not support (the nx-27017 stand-in) ends in ``KeyError: 'payload'``.
    return BackendUnavailableError(
        f"cannot connect to {redact(url)}: authentication failed "
        f"(the server's reply was not understood: {type(exc).__name__}: {redact(str(exc))})"
    )


if TYPE_CHECKING:
    from ckpt.backends.core.upgrade import LayoutUpgrade


def connect_client(url: str, ours: set[str]) -> tuple[pymongo.MongoClient[Any], dict[str, str]]:
    """A pinged client (5 s timeouts; ``BackendUnavailableError`` otherwise) and ckpt's own query
    options, which are taken out of the URL pymongo sees."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    options = {k: v for k, v in query if k in ours}
    plain = urlunsplit(parts._replace(query=urlencode([(k, v) for k, v in query if k not in ours])))
    client: pymongo.MongoClient[Any] | None = None
    try:
        client = pymongo.MongoClient(plain, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000)
        client.admin.command("ping")
    except (PyMongoError, KeyError, TypeError, ValueError) as exc:
        if client is not None:
            client.close()
        raise _unavailable(url, exc) from None
    return client, options


class _BorrowedClient:
    """What ``MongoStore`` asks of its client, for a database whose client someone else owns."""

    def __init__(self, database: Database[Any]) -> None:
        self._database = database

    def get_default_database(self, default: str | None = None) -> Database[Any]:
        return self._database

    def close(self) -> None:
        """The owner closes the client."""


class MongoStore(Store):
    """A MongoDB database written by MongoDBSaver."""

    kind = "mongodb"
    writes_wait_on_server = True
    schemes = SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.TTL, Capability.INLINE_SENDS})

    def __init__(
        self, client: pymongo.MongoClient[Any], url: str, options: dict[str, str], *, writable: bool, setup: bool = True
    ) -> None:
        self._client = client
        self.url = url
        self.writable = writable
        self.setup = setup
        """Whether a write open creates the saver's indexes (not for prune and compact)."""
        database = client.get_default_database(default="checkpointing_db")
        self._checkpoints = database[options.get("checkpoint_collection", "checkpoints")]
        self._writes = database[options.get("writes_collection", "checkpoint_writes")]
        self.ttl_seconds = int(options["ttl"]) if "ttl" in options else None
        self.problems: list[str] = []
        self._insert_only = False
        """Both unique key indexes exist, so a duplicate insert fails instead of doubling a record."""
        self._layout = self._detect()

    @classmethod
    def open_existing(cls, url: str) -> MongoStore:
        """For prune and compact: the collections must be there; no index is created."""
        return cls.open(url, write=True, setup=False)

    @classmethod
    def open(cls, url: str, *, write: bool = False, setup: bool = True) -> MongoStore:
        client, options = connect_client(url, {"checkpoint_collection", "writes_collection", "ttl"})
        try:
            return cls(client, url, options, writable=write, setup=setup)
        except BaseException:
            client.close()
            raise

    @classmethod
    def from_database(
        cls,
        database: Database[Any],
        checkpoint_collection: str = "checkpoints",
        writes_collection: str = "checkpoint_writes",
    ) -> MongoStore:
        """A store on a database of a client someone else owns (a ``MongoDBSaver``'s ``db``), as
        ``open_existing``: the collections must be there; no index is created. ``close()`` leaves
        the client open."""
        options = {"checkpoint_collection": checkpoint_collection, "writes_collection": writes_collection}
        hosts = ",".join(f"{host}:{port}" for host, port in sorted(database.client.nodes))  # for messages
        url = f"mongodb://{hosts}/{database.name}"
        client = cast("pymongo.MongoClient[Any]", _BorrowedClient(database))
        return cls(client, url, options, writable=True, setup=False)

    def _detect(self) -> dict[str, Any]:
        names = set(self._checkpoints.database.list_collection_names())
        if self.writable and self.setup:
            self._ensure_indexes()
        elif self._checkpoints.name not in names:
            raise NotAStoreError(f"{redact(self.url)} has no '{self._checkpoints.name}' collection")
        sample = self._checkpoints.find_one({}, {"metadata": 1})
        legacy = sample is not None and _legacy_metadata(sample.get("metadata"))
        return {
            "drift": ["metadata leaves are untyped JSON (0.1-0.2.0); MongoDBSaver 0.2.1+ cannot load them"]
            if legacy
            else [],
            "saver": "langgraph-checkpoint-mongodb",
            "version": "0.1-0.2.0 (JSON metadata leaves)" if legacy else ">=0.2.1 (typed metadata leaves)",
            "database": self._checkpoints.database.name,
            "collections": [self._checkpoints.name, self._writes.name],
        }

    def _ensure_indexes(self) -> None:
        """The unique indexes MongoDBSaver creates (and its TTL index when ``?ttl=SECONDS``)."""
        unique = []
        for collection, keys in ((self._checkpoints, CHECKPOINT_INDEX), (self._writes, WRITES_INDEX)):
            existing = [list(i["key"].items()) for i in collection.list_indexes()]
            if keys not in existing:
                collection.create_index(keys, unique=True)
            if self.ttl_seconds is not None:
                collection.create_index([("created_at", ASCENDING)], expireAfterSeconds=self.ttl_seconds)
            unique.append(_has_unique_index(collection, keys))
        self._insert_only = all(unique)

    def layout(self) -> dict[str, Any]:
        return dict(self._layout)

    def close(self) -> None:
        self._client.close()

    # -- reading -----------------------------------------------------------------

    def _filter(self, selection: Selection) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if selection.thread_id is not None:
            query["thread_id"] = selection.thread_id
        # A --jobs worker's range, on the key index: without it each worker read every document.
        # MongoDB compares strings by their UTF-8 bytes, the code-point order ranges are cut in.
        elif threads := _half_open(selection.thread_from, selection.thread_to):
            query["thread_id"] = threads
        if selection.checkpoint_ns is not None:
            query["checkpoint_ns"] = selection.checkpoint_ns
        since = None if selection.since is None else lowest_id_at(selection.since)
        until = None if selection.until is None else lowest_id_at(selection.until)
        if ids := _half_open(since, until):
            query["checkpoint_id"] = ids
        return query

    def _ascending(
        self, collection: Any, query: dict[str, Any], index: list[tuple[str, int]]
    ) -> Iterator[dict[str, Any]]:
        """Documents in ascending key order, read in the index's own order (id descending per group)."""
        cursor = collection.find(query).sort(index).batch_size(_BATCH)
        for _, group in groupby(cursor, key=lambda d: (d.get("thread_id"), d.get("checkpoint_ns"))):
            yield from reversed(list(group))

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        for query in self._queries(selection):
            docs = (d for d in self._ascending(self._checkpoints, query, CHECKPOINT_INDEX) if self._valid(d))
            writes = self._ascending(self._writes, query, WRITES_INDEX)
            for doc, group in attach(docs, writes, _doc_key, _doc_key):
                record = self._record(doc, group)
                if record is not None and selection.matches(record.key):
                    yield record

    def _queries(self, selection: Selection) -> Iterator[dict[str, Any]]:
        """The reads of ``selection``, in key order. A ``--shard`` reads only its own threads: their
        ids from the key index (one ``$group``, no document read), hashed here, then ``$in`` batches
        (each in the index's order, and the batches in thread order), instead of every document."""
        query = self._filter(selection)
        if selection.shard is None or selection.shard.count == 1 or selection.thread_id is not None:
            yield query
            return
        pipeline = [{"$match": query}, {"$group": {"_id": "$thread_id"}}, {"$sort": {"_id": 1}}]
        ids = (row["_id"] for row in self._checkpoints.aggregate(pipeline, allowDiskUse=True))
        for batch in batched((t for t in ids if isinstance(t, str) and selection.matches_thread(t)), _SHARD_BATCH):
            yield {**query, "thread_id": {"$in": batch}}

    def _valid(self, doc: dict[str, Any]) -> bool:
        missing = [f for f in ("thread_id", "checkpoint_ns", "checkpoint_id", "checkpoint") if f not in doc]
        if missing:
            self.problems.append(f"checkpoint document {doc.get('_id')} lacks {', '.join(missing)}; skipped")
        return not missing

    def _record(self, doc: dict[str, Any], writes: list[dict[str, Any]]) -> CheckpointRecord | None:
        key = CheckpointKey(doc["thread_id"], doc["checkpoint_ns"], doc["checkpoint_id"])
        try:
            metadata = metadata_from_mongo(doc.get("metadata") or {})
            pending = tuple(sorted((_write(w) for w in writes), key=lambda w: (w.task_id, w.idx)))
        except (KeyError, TypeError, ValueError) as exc:
            self.problems.append(f"{key}: unreadable document ({exc}); skipped")
            return None
        return CheckpointRecord(
            key=key,
            parent_checkpoint_id=doc.get("parent_checkpoint_id"),
            checkpoint=Payload(doc.get("type") or "msgpack", bytes(doc["checkpoint"])),
            metadata=Payload("json", metadata),
            writes=pending,
        )

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        """Without ``details``: counts and first/last ids by one ``$group`` on the saver's key fields,
        no payload read (``mongodb_listing``; issue #24: reading every document made ``ckpt list``
        ~60x the server's own aggregate). Namespaces and bytes (``details``) take the general path."""
        if details:
            yield from super().threads(selection, details=details)
            return
        yield from thread_summaries(self._checkpoints, self._filter(selection), selection)

    def count(self, selection: Selection = Selection()) -> int | None:
        if selection.thread_glob is None and selection.shard is None:  # the filter says it all (ranges too)
            return int(self._checkpoints.count_documents(self._filter(selection)))
        # the filter expresses no glob or shard: count per thread, keep the threads selected
        per_thread = self._checkpoints.aggregate(
            [{"$match": self._filter(selection)}, {"$group": {"_id": "$thread_id", "n": {"$sum": 1}}}]
        )
        return sum(int(row["n"]) for row in per_thread if selection.matches_thread(str(row["_id"])))

    def read_problems(self) -> list[str]:
        return list(self.problems)

    # -- writing -----------------------------------------------------------------

    def stored_form(self, record: CheckpointRecord) -> CheckpointRecord:
        if record.checkpoint.type != "msgpack":
            return record
        return replace(record, checkpoint=Payload("msgpack", to_int_versions(record.checkpoint.data)), extra=())

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        return self.prepared_write(list(records))()

    def prepared_write(self, records: list[CheckpointRecord]) -> Callable[[], WriteReport]:
        """The documents are built now; the returned call inserts them."""
        now = datetime.now(timezone.utc)
        # (filter, fields) pairs; an inserted document is the filter's fields followed by the rest,
        # which is also what an upsert's $setOnInsert makes, so both paths store the same document.
        checkpoints = [(_key_filter(r.key), self._document(r, now)) for r in records]
        writes = [
            ({**_key_filter(r.key), "task_id": w.task_id, "task_path": w.task_path, "idx": w.idx},
             self._write_document(w, now))
            for r in records for w in r.writes
        ]  # fmt: skip
        return lambda: self._put(checkpoints, writes)

    def _put(self, checkpoints: list[tuple[Any, Any]], writes: list[tuple[Any, Any]]) -> WriteReport:
        put = self._insert if self._insert_only else self._upsert
        report = WriteReport()
        report.checkpoints_written = put(self._checkpoints, checkpoints)
        report.writes_written = put(self._writes, writes)
        report.checkpoints_skipped = len(checkpoints) - report.checkpoints_written
        report.writes_skipped = len(writes) - report.writes_written
        return report

    # -- upgrading (backends/mongodb/upgrade.py) -----------------------------------

    def layout_upgrade(self) -> LayoutUpgrade:
        from ckpt.backends.mongodb.upgrade import layout_upgrade

        return layout_upgrade(self)

    def replace(self, records: Iterable[CheckpointRecord]) -> int:
        from ckpt.backends.mongodb.upgrade import replace_checkpoints

        return replace_checkpoints(self, records)

    def metadata_documents(self) -> Iterator[dict[str, Any]]:
        """Every checkpoint document's metadata alone (what tells the layout generation)."""
        return iter(self._checkpoints.find({}, {"metadata": 1, "_id": 0}).batch_size(_BATCH))

    @property
    def checkpoints(self) -> Any:
        return self._checkpoints

    def key_filter(self, key: CheckpointKey) -> dict[str, str]:
        return _key_filter(key)

    def checkpoint_document(self, record: CheckpointRecord, now: datetime) -> dict[str, Any]:
        return self._document(record, now)

    def _insert(self, collection: Any, documents: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
        """Insert all, unordered; a duplicate key is a record already there (records never change)."""
        if not documents:
            return 0
        try:
            return len(collection.insert_many([{**key, **rest} for key, rest in documents], ordered=False).inserted_ids)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            refused = [e for e in errors if e.get("code") != _DUPLICATE_KEY]
            if refused:
                raise CorruptRecordError(f"MongoDB refused part of a batch: {refused[:1]}") from exc
            return int(exc.details.get("nInserted", len(documents) - len(errors)))

    def _upsert(self, collection: Any, documents: list[tuple[dict[str, Any], dict[str, Any]]]) -> int:
        if not documents:
            return 0
        operations = [UpdateOne(key, {"$setOnInsert": rest}, upsert=True) for key, rest in documents]
        try:
            result = collection.bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            raise CorruptRecordError(
                f"MongoDB refused part of a batch: {exc.details.get('writeErrors', [])[:1]}"
            ) from exc
        return int(result.upserted_count)

    def _document(self, record: CheckpointRecord, now: datetime) -> dict[str, Any]:
        checkpoint = record.checkpoint.data
        if record.checkpoint.type == "msgpack":
            checkpoint = to_int_versions(checkpoint)
        if len(checkpoint) > _DOCUMENT_LIMIT - 64 * 1024:
            self.problems.append(f"{record.key}: {len(checkpoint)} bytes is near MongoDB's 16 MiB document limit")
        doc: dict[str, Any] = {
            "parent_checkpoint_id": record.parent_checkpoint_id,
            "type": record.checkpoint.type,
            "checkpoint": Binary(checkpoint),
            "metadata": metadata_to_mongo(record),
        }
        if self.ttl_seconds is not None:
            doc["created_at"] = now
        return doc

    def _write_document(self, write: PendingWrite, now: datetime) -> dict[str, Any]:
        doc: dict[str, Any] = {"channel": write.channel, "type": write.value.type, "value": Binary(write.value.data)}
        if self.ttl_seconds is not None:
            doc["created_at"] = now
        return doc

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        orphans = []
        for doc in self._writes.find(
            {"checkpoint_id": {"$lt": idle_before}}, {"thread_id": 1, "checkpoint_ns": 1, "checkpoint_id": 1}
        ).batch_size(_BATCH):
            if self._checkpoints.count_documents(_key_filter(CheckpointKey(*_doc_key(doc))), limit=1) == 0:
                orphans.append(doc["_id"])
        if dry_run:
            return {"orphan_writes": len(orphans)}
        for start in range(0, len(orphans), _BATCH):
            chunk = orphans[start : start + _BATCH]
            self._check_orphans(chunk)
            self._writes.delete_many({"_id": {"$in": chunk}})
        for collection in (self._checkpoints, self._writes):
            # Not every deployment allows compact (Atlas shared tiers, stand-ins); space is reused anyway.
            with suppress(PyMongoError):
                collection.database.command("compact", collection.name)
        return {"orphan_writes": len(orphans)}

    def _check_orphans(self, ids: list[Any]) -> None:
        """compact's guard, right before a chunk goes: read the writes again and make sure none of
        their checkpoints exists (one may have been written since they were found)."""
        docs = list(self._writes.find({"_id": {"$in": ids}}, {"thread_id": 1, "checkpoint_ns": 1, "checkpoint_id": 1}))
        owners = {_doc_key(doc) for doc in docs}
        for found in self._matching(self._checkpoints, owners) if owners else []:
            thread_id, ns, checkpoint_id = _doc_key(found)
            raise IntegrityError(
                f"integrity guard: compact found checkpoint {checkpoint_id} (thread {thread_id!r}, ns {ns!r}) for "
                "writes it was about to delete as orphans; nothing of this chunk was deleted"
            )

    def storage_bytes(self) -> int | None:
        try:
            return sum(
                int(self._checkpoints.database.command("collStats", c.name).get("size", 0))
                for c in (self._checkpoints, self._writes)
            )
        except PyMongoError:
            return None

    def lock(self, name: str) -> AbstractContextManager[None]:
        """A document ``{_id: <collection>:<name>, token, expires_at}`` in ``ckpt_locks``
        (:func:`ckpt.backends.mongodb.lock.document_lock`)."""
        return document_lock(
            self._checkpoints.database["ckpt_locks"], f"{self._checkpoints.name}:{name}", name, redact(self.url)
        )

    def delete_threads(self, thread_ids: Sequence[str]) -> int:  # issue #22: backends/mongodb/residue.py
        from ckpt.backends.mongodb import residue

        return residue.delete_threads(self._checkpoints, self._writes, thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        from ckpt.backends.mongodb import residue

        return residue.residue(self._checkpoints, self._writes, thread_ids, keys)

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        """Delete checkpoints and their writes by ``_id``, after the guard has seen every document.

        MongoDB has no transaction to roll back here, so the guard runs first: the documents the
        batch's filters match are read (keys only), each must belong to a checkpoint of this batch,
        and only then are exactly those ``_id`` s deleted. A server that matched more than asked
        (a stand-in's query planner, a collation) stops the prune before anything goes."""
        doomed = {(k.thread_id, k.checkpoint_ns, k.checkpoint_id) for k in keys}
        if not doomed:
            return 0
        writes = _guarded(self._matching(self._writes, doomed), doomed, "pending write")
        checkpoints = _guarded(self._matching(self._checkpoints, doomed), doomed, "checkpoint")
        for start in range(0, len(writes), _BATCH):
            self._writes.delete_many({"_id": {"$in": writes[start : start + _BATCH]}})
        deleted = 0
        for start in range(0, len(checkpoints), _BATCH):
            deleted += int(
                self._checkpoints.delete_many({"_id": {"$in": checkpoints[start : start + _BATCH]}}).deleted_count
            )
        return deleted

    def _matching(self, collection: Any, doomed: set[tuple[str, str, str]]) -> list[dict[str, Any]]:
        """The documents of ``collection`` under these checkpoint keys (key fields and ``_id`` only),
        one ``$in`` of ids per thread and namespace (a long ``$or`` of compound filters is what a
        query planner handles worst)."""
        groups: dict[tuple[str, str], list[str]] = {}
        for thread_id, ns, checkpoint_id in sorted(doomed):
            groups.setdefault((thread_id, ns), []).append(checkpoint_id)
        filters = [
            {"thread_id": t, "checkpoint_ns": n, "checkpoint_id": {"$in": ids}} for (t, n), ids in groups.items()
        ]
        projection = {"thread_id": 1, "checkpoint_ns": 1, "checkpoint_id": 1}
        found: list[dict[str, Any]] = []
        for start in range(0, len(filters), _BATCH):
            found += collection.find({"$or": filters[start : start + _BATCH]}, projection).batch_size(5000)
        return PLANT_FAULT(found) if PLANT_FAULT is not None else found


PLANT_FAULT: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None
"""Test hook only: may add documents to what a delete is about to remove, so a test can prove the
guard refuses them. ``None`` in every real run."""


def _guarded(docs: list[dict[str, Any]], doomed: set[tuple[str, str, str]], what: str) -> list[Any]:
    """The ``_id`` s of ``docs``, or :class:`IntegrityError` when one is not under a doomed checkpoint."""
    for doc in docs:
        key = _doc_key(doc)
        if key not in doomed:
            thread_id, ns, checkpoint_id = key
            raise IntegrityError(
                f"integrity guard: a {what} of kept checkpoint {checkpoint_id} (thread {thread_id!r}, ns {ns!r}) "
                "was about to be deleted; nothing of this batch was deleted"
            )
    return [doc["_id"] for doc in docs]


def _has_unique_index(collection: Any, keys: list[tuple[str, int]]) -> bool:
    """A unique index on exactly these fields, in order (directions aside: stand-ins report them loosely)."""
    fields = [name for name, _ in keys]
    return any(bool(i.get("unique")) and list(i["key"]) == fields for i in collection.list_indexes())


def _half_open(low: str | None, high: str | None) -> dict[str, str]:
    """``low <= value < high`` as a query operator; a missing bound is left out (empty: no bound)."""
    bounds: dict[str, str] = {}
    if low is not None:
        bounds["$gte"] = low
    if high is not None:
        bounds["$lt"] = high
    return bounds


def _key_filter(key: CheckpointKey) -> dict[str, str]:
    return {"thread_id": key.thread_id, "checkpoint_ns": key.checkpoint_ns, "checkpoint_id": key.checkpoint_id}


def _doc_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    return (str(doc.get("thread_id")), str(doc.get("checkpoint_ns")), str(doc.get("checkpoint_id")))


def _legacy_metadata(metadata: Any) -> bool:
    if isinstance(metadata, dict):
        return any(_legacy_metadata(v) for v in metadata.values())
    return isinstance(metadata, bytes)


def _write(doc: dict[str, Any]) -> PendingWrite:
    return PendingWrite(
        doc["task_id"],
        doc.get("task_path") or "",
        int(doc["idx"]),
        doc["channel"],
        Payload(doc["type"], bytes(doc["value"])),
    )
