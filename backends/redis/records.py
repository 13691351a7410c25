"""RedisSaver documents → ckpt records (spec §5.1, §5.2): a checkpoint document with its writes.

``record`` and ``write`` are pure functions of the parsed documents. ``Converter`` gives the same
results with two bounded caches (issue #24): a thread's checkpoints repeat its channel values (each
holds the whole message list so far) and its writes repeat values, so a value already converted
is looked up by its JSON text (``orjson.dumps``, C) instead of being walked again in Python. The
JSON text of a parsed value determines it exactly (key order, ``1`` vs ``1.0`` vs ``true``), so a
hit is the conversion of an equal value; a value orjson cannot encode (an integer past 64 bits, a
lone surrogate) is converted without the cache. Nothing stored is revived: values stay data, ext
payloads stay packed (``RawExt``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import orjson
import ormsgpack

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Payload, PendingWrite, parse_metadata
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_raw import RawExt, packed
from ckpt.backends.redis.jsonform import from_redis, write_value_from_redis
from ckpt.backends.redis.schema import EMPTY, ZERO_ID, misfiled_ids, stored_ns

FIELD_ORDER = ("v", "ts", "id", "channel_values", "channel_versions", "versions_seen", "updated_channels")
WritesByCheckpoint = dict[tuple[str, str], list[PendingWrite]]
"""A thread's writes by ``(checkpoint_ns, checkpoint_id)`` as LangGraph has them."""

_CACHE_BYTES = 8 << 20
"""JSON text held as cache keys, per cache: past it the cache starts over (memory stays flat)."""
_SCALARS = (str, int, float, bool, type(None))


def record(
    doc: dict[str, Any],
    writes: WritesByCheckpoint,
    ttl_ms: int = -1,
    values: Callable[[Any], Any] = from_redis,
) -> CheckpointRecord:
    """The record of a checkpoint document; ``values`` converts its ``channel_values`` (``from_redis``
    or a ``Converter``'s cached equivalent)."""
    key, parent = identity(doc)
    checkpoint = doc.get("checkpoint")
    if not isinstance(checkpoint, dict):
        raise CorruptRecordError(f"{key}: the checkpoint document has no checkpoint object")
    fields = {k: v for k, v in checkpoint.items() if k not in ("type", "pending_sends")}
    if checkpoint.get("pending_sends"):
        fields["pending_sends"] = checkpoint["pending_sends"]
    ordered = {k: fields[k] for k in FIELD_ORDER if k in fields} | fields
    ordered["channel_values"] = values(ordered.get("channel_values") or {})
    metadata = doc.get("metadata", "{}")
    metadata_bytes = metadata.encode("utf-8") if isinstance(metadata, str) else orjson.dumps(metadata)
    mine = sorted(writes.get((key.checkpoint_ns, key.checkpoint_id), []), key=lambda w: (w.task_id, w.idx))
    # RedisSaver only shows writes when has_writes is set, and sometimes leaves it unset
    # although writes exist; keep the writes (never drop data) and the flag as it was.
    flag = bool(doc.get("has_writes"))
    extra: tuple[tuple[str, Any], ...] = (("redis.has_writes", flag),) if flag != bool(mine) else ()
    if ttl_ms > 0:
        extra += (("redis.ttl_ms", ttl_ms),)
    run_id = doc.get("run_id")
    if isinstance(run_id, str) and run_id and run_id != _metadata_run(metadata):
        extra += (("run_id", run_id),)  # RedisSaver files the run here, not in the metadata
    return CheckpointRecord(
        key=key,
        parent_checkpoint_id=parent,
        checkpoint=packed(ordered),
        metadata=Payload("json", metadata_bytes),
        writes=tuple(mine),
        extra=extra,
    )


def write(key: str, doc: dict[str, Any]) -> PendingWrite:
    """A write document as a pending write (its value as JsonPlus ``(type, bytes)``)."""
    return PendingWrite(
        doc["task_id"], doc.get("task_path") or "", int(doc["idx"]), doc["channel"], write_payload(key, doc)
    )


def write_payload(key: str, doc: dict[str, Any]) -> Payload:
    blob = blob_bytes(doc.get("type"), doc.get("blob"))
    try:
        type_tag, data = write_value_from_redis(str(doc.get("type") or ""), blob)
    except orjson.JSONDecodeError as exc:
        raise CorruptRecordError(f"write {key} holds invalid JSON: {exc}") from exc
    return Payload(type_tag, data)


def identity(doc: dict[str, Any]) -> tuple[CheckpointKey, str | None]:
    """The checkpoint's key and parent id. langgraph-checkpoint-redis 0.0.x filed each checkpoint
    under its parent's id: ``checkpoint_id`` and ``parent_checkpoint_id`` are both the parent's (the
    zero id for the first), and the checkpoint's own id is only in ``checkpoint.id``."""
    ns = stored_ns(doc.get("checkpoint_ns", EMPTY))
    if is_misfiled(doc):
        filed_as = doc["checkpoint_id"]
        return CheckpointKey(doc["thread_id"], ns, doc["checkpoint"]["id"]), (None if filed_as == ZERO_ID else filed_as)
    return CheckpointKey(doc["thread_id"], ns, doc["checkpoint_id"]), (doc.get("parent_checkpoint_id") or None)


def is_misfiled(doc: dict[str, Any]) -> bool:
    """A 0.0.x document filed under its parent's id (see ``identity``): its own id differs and it
    names itself as its parent (nothing else writes a document that does)."""
    return misfiled_ids(doc.get("checkpoint_id"), doc.get("parent_checkpoint_id"), doc.get("checkpoint")) is not None


def b64decode(blob: Any) -> bytes:
    try:
        return base64.b64decode(blob or "", validate=True)
    except ValueError:
        return str(blob or "").encode("utf-8")  # RedisSaver's own fallback for non-base64 blobs


def blob_bytes(type_tag: Any, blob: Any) -> bytes:
    """The bytes of a blob field: base64 since 0.1.0, but 0.0.x stored ``"json"`` values as raw JSON
    text (``"null"`` is valid base64 too), so a base64 reading that is not JSON falls back to the text."""
    data = b64decode(blob)
    if type_tag != "json" or not isinstance(blob, str) or data == blob.encode("utf-8"):
        return data
    try:
        orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            orjson.loads(blob)
        except orjson.JSONDecodeError:
            return data  # neither reading is JSON: let the caller report the stored value
        return blob.encode("utf-8")
    return data


def _metadata_run(metadata: Any) -> Any:
    if isinstance(metadata, str):
        metadata = parse_metadata(metadata.encode("utf-8"))[0]
    return metadata.get("run_id") if isinstance(metadata, dict) else None


class _Bounded:
    """A dict of conversions by text key that starts over past ``_CACHE_BYTES`` of keys."""

    def __init__(self) -> None:
        self.entries: dict[Any, Any] = {}
        self.size = 0

    def put(self, key: Any, size: int, value: Any) -> None:
        if self.size + size > _CACHE_BYTES:
            self.entries.clear()
            self.size = 0
        self.entries[key] = value
        self.size += size


class Converter:
    """``record``/``write`` with conversions remembered by JSON text (see the module's doc).

    ``values`` is ``from_redis`` on a checkpoint's ``channel_values``; each channel's value is looked
    up whole (unchanged channels repeat from checkpoint to checkpoint), and inside a value that
    changed, each constructor envelope (a message, a model) is looked up on its own.
    """

    def __init__(self) -> None:
        self._values = _Bounded()
        self._writes = _Bounded()

    def record(self, doc: dict[str, Any], writes: WritesByCheckpoint, ttl_ms: int = -1) -> CheckpointRecord:
        return record(doc, writes, ttl_ms, self.values)

    def write(self, key: str, doc: dict[str, Any]) -> PendingWrite:
        payload = None
        blob, type_tag = doc.get("blob"), doc.get("type")
        if isinstance(blob, str) and isinstance(type_tag, str):
            payload = self._writes.entries.get((type_tag, blob))
        if payload is None:
            payload = write_payload(key, doc)  # raises on a bad value: nothing is remembered then
            if isinstance(blob, str) and isinstance(type_tag, str):
                self._writes.put((type_tag, blob), len(blob), payload)
        return PendingWrite(doc["task_id"], doc.get("task_path") or "", int(doc["idx"]), doc["channel"], payload)

    def values(self, values: Any) -> Any:
        if type(values) is not dict:
            return from_redis(values)
        if _is_special(values):
            return self._cached(values)
        return {k: self._cached(v) for k, v in values.items()}

    def _cached(self, value: Any) -> Any:
        """``from_redis(value)``, looked up by the value's JSON text first."""
        if isinstance(value, _SCALARS):
            return value
        try:
            text = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            return from_redis(value)
        entries = self._values.entries
        if text in entries:
            return entries[text]
        converted = self._convert(value)
        if type(converted) is RawExt:  # packed as it is, without ``pack``'s Python fallback per value
            converted = ormsgpack.Ext(converted.code, converted.data)
        self._values.put(text, len(text), converted)
        return converted

    def _convert(self, value: Any) -> Any:
        """``from_redis(value)``: envelopes inside a list or plain dict are looked up on their own."""
        if type(value) is list:
            return [self._part(item) for item in value]
        if type(value) is not dict or _is_special(value):
            return from_redis(value)
        return {k: self._part(v) for k, v in value.items()}

    def _part(self, value: Any) -> Any:
        return self._cached(value) if type(value) is dict and _is_special(value) else self._convert(value)


def _is_special(value: dict[str, Any]) -> bool:
    """Whether ``from_redis`` treats this dict other than as a plain mapping (an envelope or a marker)."""
    return (
        "lc" in value
        or "__bytes__" in value
        or "__send__" in value
        or "__interrupt__" in value
        or "__delta_snapshot__" in value
    )
