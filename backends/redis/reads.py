"""Reading RedisSaver's documents a batch of threads at a time (issue #24: migrate from Redis).

The reader used to run, per thread, a search for its checkpoint keys and one for its write keys,
then ``JSON.MGET`` through redis-py (whose replies the standard library's ``json`` decoded) and a
``PTTL`` pipeline: four round trips a thread, and most of the client's time in redis-py. Here:

- threads come from the server's aggregate with their checkpoint counts (``redis_listing``) and are
  read in batches of about ``_BATCH`` checkpoints; one ``FT.SEARCH`` per index finds a whole
  batch's keys (a TAG union ``@thread_id:{a|b|c}``), then ``JSON.MGET`` and ``PTTL`` read them
  (``fetch.Fetcher``: plain commands, their replies walked off the socket, not through redis-py).
- the next batch is requested before this one is converted: the server searches and reads while
  this process converts and the caller writes (one thread: no lock contention with the writer).
- a document belongs to the thread it names (``$.thread_id``, compared exactly, as before): the
  union only finds candidates (tags fold case). A thread id whose own tag query never matches
  (``schema.tag_problem``: a ``,``, edge spaces, control characters, > 4096 bytes) was never found
  by its per-thread search either, so it stays out of the union and reads as before: no documents.
- conversion goes through ``records.Converter`` (bounded caches by JSON text).

Memory: a batch in hand and the next in flight, whatever the store's size (one thread's documents
when a thread alone is bigger than a batch, as before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Selection
from ckpt.backends.redis.fetch import Doc, Fetcher, documents, union
from ckpt.backends.redis.listing import has_expiring_keys, thread_summaries
from ckpt.backends.redis.records import Converter, WritesByCheckpoint, is_misfiled
from ckpt.backends.redis.schema import scan_keys, stored_ns

_BATCH = 500
"""Checkpoints per batch (by the aggregate's counts; a bigger thread is a batch of its own)."""
_BATCH_THREADS = 100
"""Threads per batch at most (and ``_QUERY_BYTES`` of query text)."""
_QUERY_BYTES = 16_000
Stamped = tuple[str, Doc, int]
"""A checkpoint document with its key and remaining TTL."""
_UNKNOWN = 20
"""A thread's assumed checkpoint count before any is fetched, where counts are not known (threads
given by the selection, the SCAN fallback)."""


class _Batch:
    """Threads read together; ``searchable``: those a tag query can find."""

    def __init__(self, threads: list[str], searchable: list[str]) -> None:
        self.threads = threads
        self.searchable = searchable


class DocumentBatch(NamedTuple):
    """A batch of threads with the documents a search found for them: candidates (tags fold
    case), each to be kept only when the thread id it names is one of ``searchable``."""

    threads: list[str]
    searchable: list[str]
    checkpoints: list[Stamped]
    writes: list[tuple[str, Doc]]

    def by_thread(self) -> Iterator[tuple[str, list[Stamped], list[tuple[str, Doc]]]]:
        """Each of ``threads`` in order, with the checkpoint and write documents that name it
        exactly (none for a thread that is not ``searchable``)."""
        wanted = set(self.searchable)
        checkpoints: dict[str, list[Stamped]] = {}
        for key, doc, ttl in self.checkpoints:
            thread_id = doc.get("thread_id") if isinstance(doc, dict) else None
            if isinstance(thread_id, str) and thread_id in wanted:
                checkpoints.setdefault(thread_id, []).append((key, doc, ttl))
        writes: dict[str, list[tuple[str, Doc]]] = {}
        for key, doc in self.writes:
            thread_id = doc.get("thread_id") if isinstance(doc, dict) else None
            if isinstance(thread_id, str) and thread_id in wanted:
                writes.setdefault(thread_id, []).append((key, doc))
        for thread_id in self.threads:
            yield thread_id, checkpoints.get(thread_id, []), writes.get(thread_id, [])


class BatchReader:
    """The records of a selection, thread by thread in thread order (see the module's doc)."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        indexes: tuple[str, str],
        selection: Selection,
        inline_blobs: Callable[[list[Doc]], None],
        searchable: Callable[[str], bool],
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._indexes = indexes
        self._selection = selection
        self._inline_blobs = inline_blobs
        self._searchable = searchable
        self._convert = Converter()
        self._threads_seen = self._checkpoints_seen = 0
        """Fetched so far: what a thread whose count is not known is taken to hold (``_thread_size``)."""

    def records(self) -> Iterator[CheckpointRecord]:
        for batch in self.fetched():
            yield from self._assemble(batch)

    def fetched(self) -> Iterator[DocumentBatch]:
        """Each batch's documents as fetched, in thread order (what ``records`` converts)."""
        queries = ((batch, union(batch.searchable) if batch.searchable else None) for batch in self._batches())
        # No key of the database expires (``INFO keyspace``): no PTTL per checkpoint (a key given a
        # TTL during the copy is copied without it, as if it had been read just before).
        fetcher = Fetcher(self._r, self._indexes, ttls=has_expiring_keys(self._r))
        for batch, fetched in fetcher.batches(queries):
            self._threads_seen += len(batch.threads)
            self._checkpoints_seen += len(fetched[0])
            yield DocumentBatch(batch.threads, batch.searchable, *fetched)

    # -- which threads, in batches -------------------------------------------------

    def _threads(self) -> Iterator[tuple[str, int | None]]:
        """``(thread id, checkpoint count)`` in thread order: the threads given (``Selection.threads``,
        counts unknown), else the aggregate, else one SCAN of the checkpoint keys reading only
        ``$.thread_id`` (counts unknown)."""
        selection = self._selection
        if selection.thread_id is not None:
            yield selection.thread_id, None
            return
        if selection.threads is not None:
            yield from ((t, None) for t in sorted(selection.threads) if selection.matches_thread(t))
            return
        threads = Selection(selection.thread_glob, thread_from=selection.thread_from, thread_to=selection.thread_to)
        threads = replace(threads, shard=selection.shard)
        listed = thread_summaries(self._r, self._indexes[0], threads, ttl=False, bounds=False)
        if listed is not None:
            yield from ((summary.thread_id, summary.checkpoints) for summary in listed)
            return
        found: set[str] = set()
        for keys in scan_keys(self._r, f"{self._prefix}:*"):
            found.update(t for _, t in documents(self._r, keys, "$.thread_id") if isinstance(t, str))
        yield from ((t, None) for t in sorted(t for t in found if threads.matches_thread(t)))

    def _batches(self) -> Iterator[_Batch]:
        threads: list[str] = []
        searchable: list[str] = []
        size: float = 0
        query = 0
        for thread_id, known in self._threads():
            count = known if known is not None else self._thread_size()
            if threads and (size + count > _BATCH or len(threads) >= _BATCH_THREADS or query > _QUERY_BYTES):
                yield _Batch(threads, searchable)
                threads, searchable, size, query = [], [], 0.0, 0
            threads.append(thread_id)
            size += count
            if self._searchable(thread_id):
                searchable.append(thread_id)
                query += len(thread_id) + 8
        if threads:
            yield _Batch(threads, searchable)

    def _thread_size(self) -> float:
        """The checkpoints of a thread whose count is not known: the mean of those fetched so far
        (``_UNKNOWN`` before any), so batches stay near ``_BATCH`` checkpoints either way."""
        if not self._threads_seen:
            return _UNKNOWN
        return max(1.0, self._checkpoints_seen / self._threads_seen)

    # -- records ----------------------------------------------------------------------

    def _assemble(self, batch: DocumentBatch) -> Iterator[CheckpointRecord]:
        for _, found, written in batch.by_thread():
            yield from self._thread(found, written)

    def _thread(self, found: list[Stamped], write_docs: list[tuple[str, Doc]]) -> Iterator[CheckpointRecord]:
        """One thread's records, as the per-thread reader made them."""
        self._inline_blobs([d for _, d, _ in found])
        writes: WritesByCheckpoint = {}
        for key, w in write_docs:
            slot = (stored_ns(w["checkpoint_ns"]), w["checkpoint_id"])
            writes.setdefault(slot, []).append(self._convert.write(key, w))
        # A checkpoint filed twice (0.0.x's misfiled document and the one ``upgrade`` filed under its
        # own id, when a killed upgrade left both) is the same checkpoint: the rightly filed one wins.
        chosen: dict[CheckpointKey, tuple[Doc, CheckpointRecord]] = {}
        for _, doc, ttl in found:
            record = self._convert.record(doc, writes, ttl)
            if record.key not in chosen or is_misfiled(chosen[record.key][0]) and not is_misfiled(doc):
                chosen[record.key] = (doc, record)
        records = [record for _, record in chosen.values()]
        for record in sorted(records, key=lambda r: (r.key.checkpoint_ns, r.key.checkpoint_id)):
            if self._selection.matches(record.key):
                yield record
