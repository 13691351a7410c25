"""Redis Cluster driver: RedisSaver's layout (spec §5) on a cluster, as ``RedisSaver`` in cluster mode writes it.

``redis+cluster://host:port[,host:port...]`` (or redisvl's ``redis://host:port?cluster=true``).
Measured on a Valkey 9.1.2 / Redis 7.4.1 cluster with RedisJSON 2.8.3 + RediSearch 2.10.5
(docs/research-23.md §1):

- RedisSaver writes the same key names as on a single server and no hash tag, so one thread's
  keys are spread over every slot and node. ckpt writes exactly those names (the saver would not
  find any other) and never sends a command, transaction or script spanning two slots
  (``cluster.py``).
- RediSearch here has no coordinator: an index lives on the primary owning its name's slot,
  indexes only that node's keys and returns their contents as nil. So this driver never searches.
  Reads SCAN the checkpoint keys on every primary (a thread's keys are known from their names),
  read each document by ``JSON.GET`` (pipelined per node), and a checkpoint's writes through its
  ``write_keys_zset`` registry, as the saver's own ``get_tuple`` does. The key names are grouped
  by thread in bounded memory (past 200,000 they are sorted in a temporary SQLite file,
  ``core.grouping``); documents are read a thread at a time.
- Writes cannot be atomic per checkpoint (its keys are in different slots), so they are idempotent
  single-key steps in an order that keeps a reader safe: write documents and their registry
  entries first, then the checkpoint documents (``NX``) and their ``has_writes`` flags, then the
  ``checkpoint_latest`` pointers, then TTLs. A reader never follows a pointer to a missing
  document and never sees a checkpoint without its writes; a killed run is completed by a rerun.
- The saver's two search indexes are created on a new target as ``setup()`` creates them, each on
  the primary owning its name. They serve nothing on a cluster, but the saver's ``setup()`` and a
  later move to a single server expect them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import redis

from ckpt.backends.core.base import (
    Capability,
    CheckpointKey,
    CheckpointRecord,
    PendingWrite,
    Selection,
    Store,
    ThreadSummary,
    WriteReport,
)
from ckpt.backends.core.errors import BackendUnavailableError, CorruptRecordError, NotAStoreError, UsageError
from ckpt.backends.core.grouping import grouped
from ckpt.backends.core.urls import redact
from ckpt.backends.redis import CLUSTER_SCHEMES
from ckpt.backends.redis import records as redis_records
from ckpt.backends.redis.cluster import NodeBatch, by_name, connect, glob_escape, on_every_primary, scan
from ckpt.backends.redis.cluster_delete import ClusterJanitor
from ckpt.backends.redis.docs import StoredCheckpoint
from ckpt.backends.redis.records import is_misfiled
from ckpt.backends.redis.schema import ensure_indexes, missing_modules, stored_ns
from ckpt.backends.redis.store import RedisStore, newest_per_thread

_PAGE = 500
"""Keys per ``NodeBatch`` of document reads."""


class RedisClusterStore(RedisStore):
    """RedisSaver's documents on a Redis Cluster (RedisJSON on every primary)."""

    kind = "redis"
    schemes = CLUSTER_SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.TTL})

    @classmethod
    def open(
        cls, url: str, *, write: bool = False, setup: bool = True, scan_for_shallow: bool = True
    ) -> RedisClusterStore:
        query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}
        prefix = query.pop("checkpoint_prefix", "checkpoint")
        write_prefix = query.pop("checkpoint_write_prefix", "checkpoint_write")
        ttl_minutes = query.pop("ttl", None)
        query.pop("cluster", None)
        try:
            client = connect(url, query)
            client.ping()
        except redis.RedisError as exc:
            raise BackendUnavailableError(f"cannot connect to {redact(url)}: {redact(str(exc))}") from None
        store = cls(
            client,  # type: ignore[arg-type]
            url, prefix, write_prefix, writable=write, setup=setup, scan_for_shallow=scan_for_shallow,
        )  # fmt: skip
        if ttl_minutes is not None:
            try:
                store.ttl_ms = int(float(ttl_minutes) * 60_000)
            except ValueError:
                raise UsageError(f"ttl must be a number of minutes, got {ttl_minutes!r}") from None
        return store

    @classmethod
    def open_existing(cls, url: str) -> RedisClusterStore:
        return cls.open(url, write=True, setup=False)

    def _detect(self) -> dict[str, Any]:
        missing = sorted({name for reply in on_every_primary(self._r, "MODULE", "LIST") for name in _missing(reply)})
        if missing:
            raise BackendUnavailableError(
                f"{redact(self.url)} lacks the Redis module(s) {', '.join(missing)} on a node; RedisSaver needs them"
            )
        indexes = {_text(i) for reply in on_every_primary(self._r, "FT._LIST") for i in reply}
        if self.writable and self.setup:
            ensure_indexes(by_name(self._r), self.prefix, self.write_prefix, indexes)
            indexes |= {self.prefix, self.write_prefix}
        self._index, self._write_index = self.prefix, self.write_prefix
        if self.prefix not in indexes or self.write_prefix not in indexes:
            raise NotAStoreError(
                f"{redact(self.url)} has no '{self.prefix}' and '{self.write_prefix}' search indexes on any node "
                "(no RedisSaver data here? writing to it with ckpt creates them)"
            )
        if self._scan_for_shallow and any(True for _ in scan(self._r, "write_registry:*:shallow")):
            raise NotAStoreError(
                f"{redact(self.url)} holds ShallowRedisSaver keys; ckpt reads the full RedisSaver layout"
            )
        nodes = [node.name for node in self._r.get_primaries()]
        return {
            "drift": [],
            "saver": "langgraph-checkpoint-redis",
            "version": ">=0.3 (checkpoint/checkpoint_write indexes)",
            "prefix": self.prefix,
            "write_prefix": self.write_prefix,
            "indexes": [self.prefix, self.write_prefix],
            "cluster": {"primaries": sorted(nodes), "search": "per node only (no coordinator): not used"},
        }

    # -- reading -----------------------------------------------------------------

    def thread_counts(self, selection: Selection) -> Iterator[tuple[str, int]] | None:
        return None  # no search across nodes: every read SCANs each primary, so a set costs a pass

    def _checkpoint_keys(self, selection: Selection) -> Iterator[tuple[str, str]]:
        """``(thread id, key)`` of the checkpoint keys selected, from their names (a SCAN of every
        primary, in no order)."""
        thread = selection.thread_id
        pattern = f"{glob_escape(self.prefix)}:{'*' if thread is None else glob_escape(thread) + ':*'}"
        for page in scan(self._r, pattern):
            for key in page:
                owner = self._keys.owner(key)
                if owner is None or not selection.matches_thread(owner[0]):
                    continue
                if selection.checkpoint_ns is not None and owner[1] != selection.checkpoint_ns:
                    continue
                yield owner[0], key

    def _by_thread(self, selection: Selection) -> Iterator[tuple[str, list[str]]]:
        """Each selected thread's checkpoint keys, threads in order: grouped in bounded memory (a
        big store's key names are spooled to disk and sorted there, ``core.grouping``)."""
        return grouped(self._checkpoint_keys(selection))

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        for thread_id, keys in self._by_thread(selection):
            yield from self._records_of(thread_id, keys, selection)

    def get(self, key: CheckpointKey) -> CheckpointRecord | None:
        exact = Selection(thread_id=key.thread_id, checkpoint_ns=key.checkpoint_ns)
        found = self._records_of(key.thread_id, [self._checkpoint_key(key)], exact)
        return next((record for record in found if record.key == key), None)

    def _records_of(self, thread_id: str, keys: list[str], selection: Selection) -> Iterator[CheckpointRecord]:
        """One thread's records from its checkpoint keys (``RedisStore._thread_records`` without search)."""
        documents = list(self._documents(keys))
        for key, doc in documents:
            if str(doc.get("thread_id", "")).startswith(f"{thread_id}:"):  # RedisSaver leaves ':' unescaped
                raise CorruptRecordError(
                    f"{key}: thread id {doc['thread_id']!r} contains ':', so its keys cannot be told apart "
                    "without a search, which a Redis Cluster cannot serve; read it on a single server"
                )
        found = [(k, d) for k, d in documents if d.get("thread_id") == thread_id]
        ttls = self._ttls([k for k, _ in found])
        self._inline_blobs([d for _, d in found])
        writes: dict[tuple[str, str], list[PendingWrite]] = {}
        for key, w in self._documents(self._write_keys(thread_id, [k for k, _ in found])):
            if w.get("thread_id") == thread_id:
                writes.setdefault((stored_ns(w["checkpoint_ns"]), w["checkpoint_id"]), []).append(
                    redis_records.write(key, w)
                )
        chosen: dict[CheckpointKey, tuple[bool, CheckpointRecord]] = {}
        for (_, doc), ttl in zip(found, ttls):
            record, misfiled = redis_records.record(doc, writes, ttl), is_misfiled(doc)
            if record.key not in chosen or chosen[record.key][0] and not misfiled:
                chosen[record.key] = (misfiled, record)
        for _, record in sorted(chosen.values(), key=lambda c: (c[1].key.checkpoint_ns, c[1].key.checkpoint_id)):
            if selection.matches(record.key):
                yield record

    def _write_keys(self, thread_id: str, checkpoint_keys: list[str]) -> list[str]:
        """The write keys the registries of these checkpoints hold (this store's prefix only: the
        registries are shared by every prefix), as RedisSaver finds a checkpoint's writes."""
        batch = NodeBatch(self._r)
        for key in checkpoint_keys:
            owner = self._keys.owner(key)
            if owner is not None:
                zset = self._keys.zset(*owner)
                batch.add(zset, "ZRANGE", zset, 0, -1)
        stem = f"{self.write_prefix}:{thread_id}:"
        members = (_text(m) for reply in batch.run() for m in reply or ())
        return sorted({m for m in members if m.startswith(stem)})

    def _documents(self, keys: list[str]) -> Iterator[tuple[str, Any]]:
        """``JSON.GET key $`` for each key (never JSON.MGET: across slots it answers nil)."""
        for start in range(0, len(keys), _PAGE):
            chunk = keys[start : start + _PAGE]
            batch = NodeBatch(self._r)
            for key in chunk:
                batch.add(key, "JSON.GET", key, "$")
            try:
                replies = batch.run()
            except redis.ResponseError as exc:
                raise CorruptRecordError(f"cannot read documents {chunk[0]}…: {exc}") from exc
            for key, reply in zip(chunk, replies):
                if reply is None:
                    continue
                try:
                    doc = orjson.loads(reply)
                except orjson.JSONDecodeError as exc:
                    raise CorruptRecordError(f"document {key} is not JSON: {exc}") from exc
                if doc:
                    yield key, doc[0]

    def _ttls(self, keys: list[str]) -> list[int]:
        batch = NodeBatch(self._r)
        for key in keys:
            batch.add(key, "PTTL", key)
        return [int(t) for t in batch.run()] if keys else []

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        """Without ``details``, from the key names alone (count, first and last id) and each key's
        TTL; with them, from the records."""
        if details:  # both in thread order: each summary meets its thread's keys
            keyed = self._by_thread(selection)
            current: tuple[str, list[str]] | None = next(keyed, None)
            for summary in Store.threads(self, selection):
                while current is not None and current[0] < summary.thread_id:
                    current = next(keyed, None)
                keys = current[1] if current is not None and current[0] == summary.thread_id else []
                summary.keys_without_ttl = sum(1 for ttl in self._ttls(keys) if ttl < 0)
                yield summary
            return
        for thread_id, keys in self._by_thread(selection):
            kept = [(owner[2], key) for key in keys if (owner := self._in(key, selection))]
            if not kept:
                continue
            ids = sorted(checkpoint_id for checkpoint_id, _ in kept)
            without_ttl = sum(1 for ttl in self._ttls([key for _, key in kept]) if ttl < 0)
            yield ThreadSummary(thread_id, None, len(ids), ids[0], ids[-1], None, without_ttl)

    def _in(self, key: str, selection: Selection) -> tuple[str, str, str] | None:
        owner = self._keys.owner(key)
        return owner if owner is not None and selection.matches(CheckpointKey(*owner)) else None

    def count(self, selection: Selection = Selection()) -> int | None:
        return sum(1 for _, key in self._checkpoint_keys(selection) if self._in(key, selection))

    def storage_bytes(self) -> int | None:
        used = sum(int(info.get("used_memory", 0)) for info in on_every_primary(self._r, "INFO", "memory"))
        return used or None

    # -- writing -----------------------------------------------------------------

    def prepared_write(self, records: list[CheckpointRecord]) -> Callable[[], WriteReport]:
        """Not RedisStore's single pipeline: the cluster's own four steps, all in the call."""
        return lambda: self.write(records)

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        """One batch in four idempotent steps (see the module's doc); every document is built first,
        so a record that cannot be stored fails the batch with nothing written."""
        return self._write_stored([self.stored(record) for record in records])

    def prepared_documents(self, batch: list[StoredCheckpoint]) -> Callable[[], WriteReport]:
        return lambda: self._write_stored(batch)

    def document_batches(self, selection: Selection) -> None:
        """None: a cluster's documents are read key by key, not by search (``rows_from``)."""
        return None

    def _write_stored(self, built: list[StoredCheckpoint]) -> WriteReport:
        report = WriteReport()
        step = NodeBatch(self._r)  # 1: the writes and their registry entries
        for stored in built:
            write_keys = [self._write_key(stored.key, task_id, idx) for task_id, idx, _ in stored.writes]
            for write_key, (_, _, document) in zip(write_keys, stored.writes):
                step.add(write_key, "JSON.SET", write_key, b"$", document, b"NX")
            if write_keys:
                zset = self._zset_key(stored.key)
                # RedisSaver scores a key by its position in the put_writes call: its idx for a
                # task's regular writes, 0 for a special write (idx < 0), which comes alone.
                scored = [x for k, (_, idx, _) in zip(write_keys, stored.writes) for x in (max(idx, 0), k)]
                step.add(zset, "ZADD", zset, *scored)
        for stored, reply in zip(built, _per_record(step.run(), built)):
            written = sum(1 for r in reply if r is not None)
            report.writes_written += written
            report.writes_skipped += len(stored.writes) - written
        step = NodeBatch(self._r)  # 2: the checkpoint documents
        keys = [self._stored_key(stored.key) for stored in built]
        for key, stored in zip(keys, built):
            step.add(key, "JSON.SET", key, b"$", stored.document, b"NX")
        new = step.run()
        report.checkpoints_written = sum(1 for r in new if r is not None)
        report.checkpoints_skipped = len(new) - report.checkpoints_written
        step = NodeBatch(self._r)  # an existing checkpoint may lack has_writes for the writes just added
        for key, stored, reply in zip(keys, built, new):
            if stored.has_writes and reply is None:
                step.add(key, "JSON.SET", key, b"$.has_writes", b"true")
        step.run()
        self._point_latest_per_key([stored.key for stored in built])  # 3
        self._expire_per_key(built)  # 4: after SET, which clears a key's TTL
        return report

    def _point_latest_per_key(self, keys: list[CheckpointKey]) -> None:
        newest = newest_per_thread(keys)
        read = NodeBatch(self._r)
        pointers = [self._latest_key(t, ns) for t, ns in newest]
        for pointer in pointers:
            read.add(pointer, "GET", pointer)
        step = NodeBatch(self._r)
        for key, pointer, existing in zip(newest.values(), pointers, read.run()):
            if existing is None or _text(existing).rsplit(":", 1)[-1] < key.checkpoint_id:
                step.add(pointer, "SET", pointer, self._stored_key(key))
        step.run()

    def _expire_per_key(self, built: list[StoredCheckpoint]) -> None:
        step = NodeBatch(self._r)
        for stored in built:
            for key in self._expiring_keys(stored):
                step.add(key, "PEXPIRE", key, int(stored.ttl_ms or 0))
        step.run()

    # -- deleting (cluster_delete.py: single-key steps in a reader-safe order) -------

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        return ClusterJanitor(self._r, self._keys).delete(keys)

    def delete_threads(self, thread_ids: Sequence[str]) -> int:
        return ClusterJanitor(self._r, self._keys).delete_threads(thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        return ClusterJanitor(self._r, self._keys).residue(thread_ids, keys)

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        return ClusterJanitor(self._r, self._keys).compact(idle_before, dry_run=dry_run)

    # -- what a cluster cannot do here ---------------------------------------------

    def layout_upgrade(self) -> None:
        return None

    def replace(self, records: Iterable[CheckpointRecord]) -> int:
        raise UsageError("ckpt upgrade does not run on a Redis Cluster: move the store to a single server first")


def _per_record(replies: list[Any], built: list[StoredCheckpoint]) -> Iterator[list[Any]]:
    """Step 1's replies cut per checkpoint: its writes' replies (its ZADD's reply dropped)."""
    at = 0
    for stored in built:
        yield replies[at : at + len(stored.writes)]
        at += len(stored.writes) + (1 if stored.writes else 0)


def _text(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def _missing(module_list: Any) -> list[str]:
    class _One:
        def execute_command(self, *args: Any) -> Any:
            return module_list

    return missing_modules(_One())
