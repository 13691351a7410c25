"""RedisSaver's documents copied as they are stored, between two Redis stores (issue #24).

A copy through records converts every document twice: RedisSaver's JSON into JsonPlus msgpack
when read, and back into RedisSaver's JSON when written; measured at 100k checkpoints, ~13 s of
the client's CPU, more than the target server spends storing them. Between two stores of the
current layout (the ``checkpoint``/``checkpoint_write`` index names of 0.3 and later) a document
is what the target's RedisSaver reads as it is: here each batch the source's reader fetched
(``BatchReader.fetched``: documents and TTLs, a batch a round of plain commands) is keyed for the target and
written by the target's own pipeline (``RedisStore.prepared_documents``), as records are: each
document set with NX, write keys registered in ``write_keys_zset`` (scored as RedisSaver scores
them), the latest pointers moved forward, the TTLs (``--ttl``, else the source key's own).

A thread is copied so only when every document of it is in the form today's saver writes:
filed under its own key (not 0.0.x's parent-id filing), its channel values inline, checkpoint
``v`` 4 or later (older ones may carry Sends the target's saver only finds once repaired), the
root namespace as ``__empty__``, metadata a JSON string, a key RedisSaver can read back, write
documents with their identifying fields, and JSON orjson encodes exactly (no integer past 64
bits, no lone surrogate). Any other thread is handed back whole (``CopiedRows.left_threads``)
and copied through records, with that path's repairs and errors.

A batch is the reader's (whole threads, about 500 checkpoints; a bigger thread alone), not the
copy's ``batch_size``: Redis has no transaction around it anyway (each MULTI/EXEC block is applied
whole, and every command in it is safe to repeat). The next batch is fetched by the source's server
while this one is keyed, and sent to the target in a thread while the one after is keyed
(``core.iterate.behind``): one batch in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from ckpt.backends.core.base import CheckpointKey, CopiedRows, Selection
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.iterate import behind, called
from ckpt.backends.redis.docs import StoredCheckpoint
from ckpt.backends.redis.reads import DocumentBatch
from ckpt.backends.redis.records import is_misfiled
from ckpt.backends.redis.schema import KeySpace, refuse_unreadable, stored_ns

if TYPE_CHECKING:
    from ckpt.backends.redis.store import RedisStore

Doc = dict[str, Any]
Writes = dict[tuple[str, str], list[tuple[str, int, Doc]]]
"""A thread's writes by ``(checkpoint_ns, checkpoint_id)``: ``(task_id, idx, document)``."""


class _NotAsStored(Exception):
    """A document not in the form today's saver writes: its thread goes through records."""


def copy_documents(
    batches: Iterator[DocumentBatch], source_keys: KeySpace, target: RedisStore, selection: Selection
) -> Iterator[CopiedRows]:
    """The selection's documents of each batch written into ``target`` (see the module's doc)."""

    def prepared(batch: DocumentBatch) -> Callable[[], CopiedRows]:
        stored, left = _taken(batch, source_keys, target.ttl_ms, selection)
        send = target.prepared_documents(stored)
        read = sum(len(s.document) + sum(len(w[2]) for w in s.writes) for s in stored)

        def sent() -> CopiedRows:
            done = CopiedRows(checkpoints_read=len(stored), bytes_read=read, left_threads=tuple(left))
            done.add(send())
            return done

        return sent

    return behind(called, map(prepared, batches))


def _taken(
    batch: DocumentBatch, source_keys: KeySpace, ttl_ms: int | None, selection: Selection
) -> tuple[list[StoredCheckpoint], list[str]]:
    """The batch's checkpoints as the target stores them, and the threads handed back."""
    stored: list[StoredCheckpoint] = []
    left: list[str] = []
    for thread_id, checkpoints, writes in batch.by_thread():
        try:
            stored += _thread(thread_id, checkpoints, [doc for _, doc in writes], source_keys, ttl_ms, selection)
        except _NotAsStored:
            left.append(thread_id)
    return stored, left


def _thread(
    thread_id: str,
    checkpoints: list[tuple[str, Doc, int]],
    write_docs: list[Doc],
    source_keys: KeySpace,
    ttl_ms: int | None,
    selection: Selection,
) -> list[StoredCheckpoint]:
    """One thread's selected checkpoints in key order; ``_NotAsStored`` when any document is not
    as today's saver writes it (see the module's doc)."""
    writes = _writes(write_docs)
    found: dict[CheckpointKey, StoredCheckpoint] = {}
    for stored_key, doc, ttl in checkpoints:
        key = _checkpoint_key(thread_id, stored_key, doc, source_keys)
        try:
            refuse_unreadable(key)
        except CorruptRecordError:
            raise _NotAsStored from None
        if key in found:  # filed twice (a killed upgrade): the records path chooses
            raise _NotAsStored
        own = writes.pop((key.checkpoint_ns, key.checkpoint_id), [])
        if selection.matches(key):  # encoded only when copied
            expires = ttl_ms if ttl_ms is not None else (ttl if ttl > 0 else None)
            encoded = tuple((task_id, idx, _encoded(w)) for task_id, idx, w in own)
            found[key] = StoredCheckpoint(key, _encoded(doc), bool(doc.get("has_writes")), encoded, expires)
    return [found[key] for key in sorted(found, key=lambda k: (k.checkpoint_ns, k.checkpoint_id))]


def _checkpoint_key(thread_id: str, stored_key: str, doc: Doc, source_keys: KeySpace) -> CheckpointKey:
    ns, checkpoint_id, checkpoint = doc.get("checkpoint_ns"), doc.get("checkpoint_id"), doc.get("checkpoint")
    if not (isinstance(ns, str) and ns and isinstance(checkpoint_id, str) and checkpoint_id):
        raise _NotAsStored
    if not isinstance(checkpoint, dict) or "channel_values" not in checkpoint or is_misfiled(doc):
        raise _NotAsStored  # 0.0.x: values in blob documents, or filed under the parent's id
    version = checkpoint.get("v")
    if type(version) is not int or version < 4 or not isinstance(doc.get("metadata"), str):
        raise _NotAsStored
    key = CheckpointKey(thread_id, stored_ns(ns), checkpoint_id)
    if source_keys.checkpoint(thread_id, key.checkpoint_ns, checkpoint_id) != stored_key:
        raise _NotAsStored
    return key


def _writes(docs: list[Doc]) -> Writes:
    found: Writes = {}
    for doc in docs:
        ns, checkpoint_id, task_id, idx = (doc.get(f) for f in ("checkpoint_ns", "checkpoint_id", "task_id", "idx"))
        if not (isinstance(ns, str) and ns and isinstance(checkpoint_id, str) and isinstance(task_id, str)):
            raise _NotAsStored
        if type(idx) is not int or not isinstance(doc.get("channel"), str):
            raise _NotAsStored
        found.setdefault((stored_ns(ns), checkpoint_id), []).append((task_id, idx, doc))
    for each in found.values():
        each.sort(key=lambda w: (w[0], w[1]))  # as the records path orders a checkpoint's writes
    return found


def _encoded(doc: Doc) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # an integer past 64 bits, a lone surrogate: the records path writes those
        raise _NotAsStored from None


__all__ = ["copy_documents"]
