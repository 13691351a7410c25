"""Redis driver: the layout of langgraph-checkpoint-redis 0.5.x (spec §5), RedisJSON + RediSearch.

Reads checkpoint and write documents through the saver's own search indexes, a batch of threads
at a time in thread order (``redis_reads``, ``redis_fetch``; memory: two batches, or one thread
bigger than a batch); converts RedisSaver's JSON values to JsonPlus msgpack (``redis_records``).
Writes documents exactly as RedisSaver does:
``checkpoint:{thread}:{ns}:{id}`` with ``has_writes``, ``checkpoint_write:…:{task}:{idx}``
registered in ``write_keys_zset:…``, ``checkpoint_latest:{thread}:{ns}`` pointing at the
newest checkpoint, and the two search indexes created when missing. One MULTI/EXEC pipeline per
batch; documents are set with NX, so a rerun writes nothing twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import orjson
import redis

from ckpt.backends.core.base import (
    Capability,
    CheckpointKey,
    CheckpointRecord,
    CopiedRows,
    Selection,
    Store,
    ThreadSummary,
    WriteReport,
)
from ckpt.backends.core.errors import (
    BackendUnavailableError,
    CorruptRecordError,
    LockedError,
    NotAStoreError,
    UsageError,
)
from ckpt.backends.core.locks import holder_of, lock_ttl, new_token, renewed
from ckpt.backends.core.msgpack_raw import unpack
from ckpt.backends.core.urls import redact
from ckpt.backends.redis import SCHEMES
from ckpt.backends.redis import records as _records
from ckpt.backends.redis.docs import (
    StoredCheckpoint,
    checkpoint_document,
    encoded_checkpoint,
    encoded_write,
    write_document,
)
from ckpt.backends.redis.fetch import documents
from ckpt.backends.redis.jsonform import ExtCache, Losses
from ckpt.backends.redis.listing import thread_summaries
from ckpt.backends.redis.prune import Janitor
from ckpt.backends.redis.reads import BatchReader, DocumentBatch
from ckpt.backends.redis.records import blob_bytes, is_misfiled
from ckpt.backends.redis.schema import (
    EMPTY,
    STAGING,
    KeySpace,
    ensure_indexes,
    holds_shallow_keys,
    missing_modules,
    refuse_unreadable,
    searchable,
    tag_query,
)
from ckpt.backends.redis.wire import Block, Pipeline

_FIELD_ORDER = ("v", "ts", "id", "channel_values", "channel_versions", "versions_seen", "updated_channels")
_PAGE = 500
_DELETE_IF_HELD = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
"""Release a lock by token, atomically: a holder whose lock lapsed and was taken over deletes nothing."""
_RENEW_IF_HELD = (
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
)
"""Extend a lock's expiry by token, atomically (0: the token is gone)."""

_BLOCK = 250
"""Checkpoints per MULTI/EXEC block of a write batch (blocks are pipelined, see ``redis_wire``)."""


if TYPE_CHECKING:
    from ckpt.backends.core.upgrade import LayoutUpgrade


class RedisStore(Store):
    """A Redis (RedisJSON + RediSearch) database written by RedisSaver / AsyncRedisSaver."""

    kind = "redis"
    writes_wait_on_server = True
    one_writer = True  # out of PostgreSQL, 100k: 12.4 and 14.9 s with one worker, 15.4 and 15.7 s with two
    ranges_read_by_index = False  # a TAG field has no order: each range runs the listing aggregate over every thread
    schemes = SCHEMES
    capabilities = frozenset({Capability.WRITE, Capability.DELETE, Capability.TTL})

    def __init__(
        self,
        client: redis.Redis,
        url: str,
        prefix: str,
        write_prefix: str,
        *,
        writable: bool,
        setup: bool = True,
        scan_for_shallow: bool = True,
    ) -> None:
        self._r: Any = client  # redis-py's reply types are too loose for mypy to follow
        self.url = url
        self.prefix = prefix
        self.write_prefix = write_prefix
        self.writable = writable
        self.setup = setup
        """Whether a write open creates the search indexes (not for prune and compact)."""
        self.ttl_ms: int | None = None
        """TTL for every key written (``?ttl=MINUTES``, what ``migrate --ttl`` sets)."""
        self.losses = Losses()
        """What writes into this store could not keep (the JSON form is lossy, spec §5.1)."""
        self._ext_cache: ExtCache = {}
        """Messages already converted for writing (``redis_json._Decoded``); bounded."""
        self._scan_for_shallow = scan_for_shallow
        """Whether opening SCANs the key space for ShallowRedisSaver keys (not on ``reopen``)."""
        self._layout = self._detect()
        self._keys = KeySpace(prefix, write_prefix)
        self._janitor = Janitor(client, self._keys, self._index, self._write_index)

    @classmethod
    def open_existing(cls, url: str) -> RedisStore:
        """For prune and compact: the search indexes must be there; none is created."""
        return cls.open(url, write=True, setup=False)

    @classmethod
    def from_client(
        cls, client: redis.Redis, prefix: str = "checkpoint", write_prefix: str = "checkpoint_write"
    ) -> RedisStore:
        """A store on a client someone else owns (a ``RedisSaver``'s, RESP2 and bytes replies as
        ``open`` makes them), as ``open_existing``: the search indexes must be there; none is created.
        ``close()`` closes ``client``: a borrower does not call it."""
        kwargs = client.get_connection_kwargs()
        url = f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"
        return cls(client, url, prefix, write_prefix, writable=True, setup=False)

    @classmethod
    def reopen(cls, url: str, *, write: bool = False) -> RedisStore:
        """As ``open``, without the SCAN of the whole key space for ShallowRedisSaver keys that the
        parent's open made (~0.1 s of the server's one thread per 100k checkpoints, which the
        workers of a ``--jobs`` copy would each queue on at their start)."""
        return cls.open(url, write=write, scan_for_shallow=False)

    @classmethod
    def open(cls, url: str, *, write: bool = False, setup: bool = True, scan_for_shallow: bool = True) -> RedisStore:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix = query.pop("checkpoint_prefix", "checkpoint")
        write_prefix = query.pop("checkpoint_write_prefix", "checkpoint_write")
        ttl_minutes = query.pop("ttl", None)
        plain = urlunsplit(parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())))
        try:
            # redis-py 8 gives up on a reply after 5 s; a write block (hundreds of documents for
            # RediSearch to index) on a busy server can take longer. A URL's own value still wins.
            client = redis.Redis.from_url(plain, socket_connect_timeout=10, socket_timeout=120, protocol=2)
            client.ping()
        except (redis.ConnectionError, redis.AuthenticationError, redis.ResponseError, redis.TimeoutError) as exc:
            raise BackendUnavailableError(f"cannot connect to {redact(url)}: {redact(str(exc))}") from None
        store = cls(client, url, prefix, write_prefix, writable=write, setup=setup, scan_for_shallow=scan_for_shallow)
        if ttl_minutes is not None:
            try:
                store.ttl_ms = int(float(ttl_minutes) * 60_000)
            except ValueError:
                raise UsageError(f"ttl must be a number of minutes, got {ttl_minutes!r}") from None
        return store

    def _detect(self) -> dict[str, Any]:
        missing = missing_modules(self._r)
        if missing:
            raise BackendUnavailableError(
                f"{redact(self.url)} lacks the Redis module(s) {', '.join(missing)} that RedisSaver needs"
            )
        indexes = {i.decode() if isinstance(i, bytes) else i for i in self._r.execute_command("FT._LIST")}
        if self.writable and self.setup:
            ensure_indexes(self._r, self.prefix, self.write_prefix, indexes)
            indexes |= {self.prefix, self.write_prefix}
        # langgraph-checkpoint-redis <= 0.2 named its indexes in the plural (spec §5.7).
        self._index = self.prefix if self.prefix in indexes else f"{self.prefix}s"
        self._write_index = self.write_prefix if self.write_prefix in indexes else f"{self.write_prefix}s"
        if self._index not in indexes or self._write_index not in indexes:
            raise NotAStoreError(
                f"{redact(self.url)} has no '{self.prefix}' and '{self.write_prefix}' search indexes "
                "(no RedisSaver data here? writing to it with ckpt creates them)"
            )
        # A SCAN of the whole key space (~5 keys a checkpoint): pages of 10,000 keys cost the server
        # ~1 ms each and took this check from ~0.4 s to ~0.08 s at 100k checkpoints (issue #24).
        # Not repeated within a minute while the key count stays the same (``holds_shallow_keys``).
        if self._scan_for_shallow and holds_shallow_keys(self._r):
            raise NotAStoreError(
                f"{redact(self.url)} holds ShallowRedisSaver keys; ckpt reads the full RedisSaver layout"
            )
        old = self._index != self.prefix
        drift = []
        if old:
            names = f"{self._index}, {self._write_index}"
            drift.append(f"search indexes are named {names} (<= 0.2); RedisSaver 0.5 names them {self.prefix}")
        return {
            "drift": drift,
            "saver": "langgraph-checkpoint-redis",
            "version": "<=0.2 (plural index names)" if old else ">=0.3 (checkpoint/checkpoint_write indexes)",
            "prefix": self.prefix,
            "write_prefix": self.write_prefix,
            "indexes": [self._index, self._write_index],
        }

    def layout(self) -> dict[str, Any]:
        return dict(self._layout)

    def close(self) -> None:
        self._r.close()

    # -- reading -----------------------------------------------------------------

    def _search_keys(self, index: str, thread_id: str) -> list[str]:
        keys: list[str] = []
        while True:
            reply = self._r.execute_command(
                "FT.SEARCH",
                index,
                tag_query("thread_id", thread_id),
                "NOCONTENT",
                "LIMIT",
                len(keys),
                1000,
                "DIALECT",
                2,
            )
            page = [k.decode() for k in reply[1:]]
            keys += page
            if len(page) < 1000:
                return keys

    def _documents(self, keys: list[str]) -> Iterator[tuple[str, Any]]:
        return documents(self._r, keys)

    def _inline_blobs(self, docs: list[dict[str, Any]]) -> None:
        """0.0.x kept channel values in ``checkpoint_blob:{thread}:{ns}:{channel}:{version}`` docs."""
        wanted: list[tuple[dict[str, Any], str, str]] = []
        for doc in docs:
            checkpoint = doc.get("checkpoint")
            if isinstance(checkpoint, dict) and "channel_values" not in checkpoint:
                checkpoint["channel_values"] = {}
                for channel, version in (checkpoint.get("channel_versions") or {}).items():
                    ns = doc.get("checkpoint_ns") or EMPTY
                    wanted.append(
                        (checkpoint, channel, f"{self.prefix}_blob:{doc['thread_id']}:{ns}:{channel}:{version}")
                    )
        blobs = dict(self._documents([key for _, _, key in wanted]))
        for checkpoint, channel, key in wanted:
            blob = blobs.get(key)
            if blob is None or blob.get("type") == "empty":
                continue
            type_tag = blob.get("type")
            data = blob_bytes(type_tag, blob.get("blob"))
            if type_tag == "json":
                checkpoint["channel_values"][channel] = orjson.loads(data)  # still Redis JSON: _record converts it
            elif type_tag == "msgpack":
                checkpoint["channel_values"][channel] = unpack(data)
            elif type_tag in ("bytes", "bytearray"):
                checkpoint["channel_values"][channel] = data
            elif type_tag == "null":
                checkpoint["channel_values"][channel] = None
            else:
                raise CorruptRecordError(f"blob {key} has type {type_tag!r}, which cannot be embedded in a checkpoint")

    def _ttls(self, keys: list[str]) -> list[int]:
        """Remaining TTL in ms per key (-1: none), in one pipeline."""
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.pttl(key)
        return [int(t) for t in pipe.execute()] if keys else []

    def threads(self, selection: Selection = Selection(), *, details: bool = True) -> Iterator[ThreadSummary]:
        """Plus how many checkpoints of each thread have no TTL. Without ``details``: one aggregate on
        the server, no document read (``redis_listing``); with them (bytes are those of the records
        as read), from the records, then the TTLs of each thread's keys."""
        listed = None if details else thread_summaries(self._r, self._index, selection)
        if listed is not None:
            yield from listed
            return
        for summary in super().threads(selection):
            keys = self._search_keys(self._index, summary.thread_id)
            summary.keys_without_ttl = sum(1 for ttl in self._ttls(keys) if ttl < 0)
            yield summary

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        """A batch of threads at a time, the next batch's commands in flight (``redis_reads``)."""
        return self._reader(selection).records()

    def _reader(self, selection: Selection) -> BatchReader:
        return BatchReader(
            self._r, self.prefix, (self._index, self._write_index), selection, self._inline_blobs, searchable
        )

    def thread_counts(self, selection: Selection) -> Iterator[tuple[str, int]] | None:
        """The selected threads with their checkpoint counts, in thread order, from one aggregate
        (no TTLs, no first and last ids); ``None`` where the index cannot answer it. A set of them
        is then read by a search per batch (``Selection.threads``, ``parallel.listed_parts``)."""
        listed = thread_summaries(self._r, self._index, selection, ttl=False, bounds=False)
        return None if listed is None else ((summary.thread_id, summary.checkpoints) for summary in listed)

    def count(self, selection: Selection = Selection()) -> int | None:
        if selection != Selection():
            listed = thread_summaries(self._r, self._index, selection, ttl=False, bounds=False)
            return None if listed is None else sum(summary.checkpoints for summary in listed)
        reply = self._r.execute_command("FT.SEARCH", self._index, "*", "LIMIT", 0, 0, "TIMEOUT", 0)
        return int(reply[0])

    def stored_form(self, record: CheckpointRecord) -> CheckpointRecord:
        doc = checkpoint_document(record, self.losses)
        key = record.key
        writes = [
            _records.write(self._write_key(key, w.task_id, w.idx), write_document(key, w, self.losses))
            for w in record.writes
        ]
        ttl = self.ttl_ms if self.ttl_ms is not None else record.extra_value("redis.ttl_ms", -1)
        return _records.record(doc, {(key.checkpoint_ns, key.checkpoint_id): writes}, ttl)

    def conversion_losses(self) -> dict[str, int]:
        return dict(self.losses)

    # -- writing -----------------------------------------------------------------

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        return self.prepared_write(list(records))()

    def prepared_write(self, records: list[CheckpointRecord]) -> Callable[[], WriteReport]:
        # Every document is built before anything is sent: a record that cannot be stored fails
        # the batch with nothing written, so the caller's one-by-one retry counts exactly.
        return self.prepared_documents([self.stored(record) for record in records])

    def stored(self, record: CheckpointRecord) -> StoredCheckpoint:
        """``record`` as RedisSaver stores it; ``CorruptRecordError`` when it cannot be."""
        refuse_unreadable(record.key)  # first: a key RedisSaver could not read back
        document, has_writes = encoded_checkpoint(record, self.losses, self._ext_cache)
        writes = tuple(
            (w.task_id, w.idx, encoded_write(record.key, w, self.losses, self._ext_cache)) for w in record.writes
        )
        ttl = self.ttl_ms if self.ttl_ms is not None else record.extra_value("redis.ttl_ms")
        return StoredCheckpoint(record.key, document, has_writes, writes, ttl)

    def prepared_documents(self, batch: list[StoredCheckpoint]) -> Callable[[], WriteReport]:
        """``prepared_write`` of documents already encoded (from records, or another Redis store's
        as they are: ``rows_from``): one MULTI/EXEC pipeline, sent by the call returned."""
        flags: list[str | None] = []  # per checkpoint: its key when it has writes
        blocks = [self._block(batch[i : i + _BLOCK], flags) for i in range(0, len(batch), _BLOCK)]
        last = Block()
        self._point_latest(last, [stored.key for stored in batch])
        self._expire(last, batch)  # after SET, which clears a key's TTL
        return lambda: self._send([*blocks, last], flags)

    def rows_from(self, source: Store, selection: Selection, batch_size: int) -> Iterator[CopiedRows] | None:
        """Another Redis store's documents as they are stored (``rowcopy``), when both are in the
        current layout and the source is read by search (a single server)."""
        if not (isinstance(source, RedisStore) and self.writable and self._current() and source._current()):
            return None
        batches = source.document_batches(selection)
        if batches is None:
            return None
        from ckpt.backends.redis.rowcopy import copy_documents

        return copy_documents(batches, source._keys, self, selection)

    def document_batches(self, selection: Selection) -> Iterator[DocumentBatch] | None:
        """The documents of ``selection`` as fetched, a batch of threads at a time (``rows_from``)."""
        return self._reader(selection).fetched()

    def _current(self) -> bool:
        """Whether the search indexes have today's names (>= 0.3; rows copy only between such)."""
        return (self._index, self._write_index) == (self.prefix, self.write_prefix)

    def _send(self, blocks: list[Block], flags: list[str | None]) -> WriteReport:
        pipeline, failed = Pipeline(self._r), True
        try:
            for block in blocks:
                pipeline.send(block)
            results = pipeline.finish()
            # A checkpoint that was already there may lack has_writes for the writes just added.
            # New documents carry the flag already; setting it again would make RediSearch index
            # them twice (measured: ~20% of the server's time).
            stored = (r for kind, r in results if kind == "checkpoint")
            pipeline.send(_flag_block([key for key, new in zip(flags, stored) if key is not None and not new]))
            results += pipeline.finish()
            failed = False
        finally:
            pipeline.close(failed=failed)
        report = WriteReport()
        for kind, result in results:
            if kind == "checkpoint":
                report.checkpoints_written += 1 if result else 0
                report.checkpoints_skipped += 0 if result else 1
            elif kind == "write":
                report.writes_written += 1 if result else 0
                report.writes_skipped += 0 if result else 1
        return report

    def _block(self, batch: list[StoredCheckpoint], flags: list[str | None], *, staged: bool = False) -> Block:
        """The documents of ``batch``, each only where absent; ``staged`` (upgrade): checkpoints
        overwrite their staging keys and writes their own keys (``backends/redis/upgrade.py``)."""
        block, nx = Block(), not staged
        for stored in batch:
            key = self._stored_key(stored.key)
            block.json_set("checkpoint", STAGING + key if staged else key, b"$", stored.document, nx=nx)
            flags.append(key if stored.has_writes else None)
            zset: list[str | int] = []
            for task_id, idx, document in stored.writes:
                write_key = self._write_key(stored.key, task_id, idx)
                block.json_set("write", write_key, b"$", document, nx=nx)
                # RedisSaver scores a key by its position in the put_writes call: its idx for a
                # task's regular writes, 0 for a special write (idx < 0), which comes alone.
                zset += [max(idx, 0), write_key]
            if zset:
                block.add("zset", "ZADD", self._zset_key(stored.key), *zset)
        return block

    # -- upgrading (backends/redis/upgrade.py) -------------------------------------

    def layout_upgrade(self) -> LayoutUpgrade | None:
        from ckpt.backends.redis.upgrade import layout_upgrade

        def use_current_indexes() -> None:
            self._index, self._write_index = self.prefix, self.write_prefix

        return layout_upgrade(self._r, self.prefix, self.write_prefix, use_current_indexes)

    def replace(self, records: Iterable[CheckpointRecord]) -> int:
        """Every document of ``records`` stored again in the current form, in one MULTI/EXEC per block:
        checkpoints under staging keys, filed under their own keys once all are staged (a 0.0.x
        store filed each checkpoint under its parent's id, so a document overwritten early could
        hold a checkpoint not yet stored anywhere else)."""
        batch = [self.stored(record) for record in records]
        flags: list[str | None] = []
        blocks = [self._block(batch[i : i + _BLOCK], flags, staged=True) for i in range(0, len(batch), _BLOCK)]
        last = Block()
        self._point_latest(last, [stored.key for stored in batch])
        self._expire(last, batch, staged=True)
        pipeline, failed = Pipeline(self._r), True
        try:
            for block in [*blocks, last]:
                pipeline.send(block)
            pipeline.finish()
            failed = False
        finally:
            pipeline.close(failed=failed)
        return len(batch)

    def _expire(self, block: Block, batch: list[StoredCheckpoint], *, staged: bool = False) -> None:
        """TTLs as RedisSaver's ``default_ttl`` sets them (``--ttl``), else the source's own (Redis→Redis).
        A staged checkpoint's TTL moves with it when it is filed (RENAME keeps it)."""
        for stored in batch:
            for key in self._expiring_keys(stored, staged=staged):
                block.add("ttl", "PEXPIRE", key, int(stored.ttl_ms or 0))

    def _expiring_keys(self, stored: StoredCheckpoint, *, staged: bool = False) -> list[str]:
        """The keys a checkpoint's TTL applies to (none without one): its document, its thread's
        latest pointer, its writes and their registry, as RedisSaver expires them."""
        if not stored.ttl_ms:
            return []
        key = stored.key
        checkpoint_key = self._stored_key(key)
        keys = [STAGING + checkpoint_key if staged else checkpoint_key]
        keys.append(self._latest_key(key.thread_id, key.checkpoint_ns))
        keys += [self._write_key(key, task_id, idx) for task_id, idx, _ in stored.writes]
        if stored.writes:
            keys.append(self._zset_key(key))
        return keys

    def _point_latest(self, block: Block, keys: list[CheckpointKey]) -> None:
        newest = newest_per_thread(keys)
        pointers = [self._latest_key(t, ns) for t, ns in newest]
        current = self._r.mget(pointers) if pointers else []
        for key, pointer, existing in zip(newest.values(), pointers, current):
            target = self._stored_key(key)
            if existing is None or existing.decode().rsplit(":", 1)[-1] < key.checkpoint_id:
                block.add("latest", "SET", pointer, target)

    def _checkpoint_key(self, key: CheckpointKey) -> str:
        refuse_unreadable(key)
        return self._stored_key(key)

    def _stored_key(self, key: CheckpointKey) -> str:
        """The key of a ``StoredCheckpoint``'s checkpoint, checked when it was made."""
        return self._keys.checkpoint(key.thread_id, key.checkpoint_ns, key.checkpoint_id)

    def _latest_key(self, thread_id: str, ns: str) -> str:
        return self._keys.latest(thread_id, ns)

    def _write_key(self, key: CheckpointKey, task_id: str, idx: int) -> str:
        stem = self._keys.write_stem(key.thread_id, key.checkpoint_ns, key.checkpoint_id)
        return f"{stem}{task_id}:{idx}"

    def _zset_key(self, key: CheckpointKey) -> str:
        return self._keys.zset(key.thread_id, key.checkpoint_ns, key.checkpoint_id)

    def compact(self, idle_before: str, *, dry_run: bool = False) -> dict[str, int]:
        """Orphan write keys and registry entries, stale latest pointers and unset ``has_writes`` flags."""
        return self._janitor.compact(idle_before, dry_run=dry_run)

    def storage_bytes(self) -> int | None:
        return int(self._r.info("memory").get("used_memory", 0)) or None

    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """``SET ckpt_lock:<prefix>:<name> <token> NX PX <ttl>``: renewed by token every TTL/3 while
        held (so it lapses a TTL after a killed holder), deleted by token (``backends.core.locks``)."""
        key, token, ttl = f"ckpt_lock:{self.prefix}:{name}", new_token(), lock_ttl()
        ttl_ms = max(1, math.ceil(ttl * 1000))
        if not self._r.set(key, token, nx=True, px=ttl_ms):
            held_by = holder_of(self._r.get(key))
            raise LockedError(f"another ckpt {name} is running on {redact(self.url)} (key {key}, {held_by})")

        def renew() -> bool:
            return bool(self._r.eval(_RENEW_IF_HELD, 1, key, token, ttl_ms))

        try:
            with renewed(renew, ttl, f"the {name} lock (key {key})"):
                yield
        finally:
            with suppress(redis.RedisError):  # unreachable: the lock lapses after the TTL instead
                self._r.eval(_DELETE_IF_HELD, 1, key, token)

    def delete_threads(self, thread_ids: Sequence[str]) -> int:  # issue #22: backends/redis/residue.py
        from ckpt.backends.redis import residue

        return residue.delete_threads(self._r, self._keys, thread_ids)

    def residue(self, thread_ids: Sequence[str] = (), keys: Sequence[CheckpointKey] = ()) -> dict[str, int]:
        from ckpt.backends.redis import residue

        return residue.residue(self._r, self._keys, (self._index, self._write_index), thread_ids, keys)

    def delete(self, keys: Iterable[CheckpointKey]) -> int:
        """Checkpoints with their writes and registry entries, behind the integrity guard (``redis_prune``)."""
        return self._janitor.delete(keys)


def _flag_block(keys: list[str]) -> Block:
    block = Block()
    for key in keys:
        block.json_set("flag", key, b"$.has_writes", b"true", nx=False)
    return block


def newest_per_thread(keys: list[CheckpointKey]) -> dict[tuple[str, str], CheckpointKey]:
    """The newest of ``keys`` per ``(thread, namespace)``: where a latest pointer may move."""
    newest: dict[tuple[str, str], CheckpointKey] = {}
    for key in keys:
        slot = (key.thread_id, key.checkpoint_ns)
        if slot not in newest or key.checkpoint_id > newest[slot].checkpoint_id:
            newest[slot] = key
    return newest


__all__ = ["RedisStore", "is_misfiled"]
