"""RedisSaver's JSON documents for a record (spec §5.2), built and encoded once for the wire.

Two ways to the same document. The exact path walks the unpacked msgpack with ``ToRedis`` and
encodes with the standard library, as redis-py's ``json().set`` did. The fast path decodes in C
(``decoded_for_redis``) and encodes with orjson; it is taken only where it provably gives the
same JSON value and the same loss counts: no bytes inside an ext value (plain bytes get the
exact path's ``__bytes__`` marker), string channel versions, no loss inside ``pending_sends``
(which the exact path never converts), and nothing else orjson cannot encode. RedisJSON parses
what it gets, so only the value has to match, not the text (orjson writes UTF-8 where the
standard library writes ``\\u`` escapes).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import orjson

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, PendingWrite, parse_metadata
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.ids import checkpoint_time
from ckpt.backends.core.msgpack_raw import pack, unpack
from ckpt.backends.core.versions import string_versions
from ckpt.backends.redis.jsonform import (
    ExtCache,
    Losses,
    ToRedis,
    bytes_marker,
    decoded_for_redis,
    write_value_to_redis,
)
from ckpt.backends.redis.schema import EMPTY


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """One checkpoint's documents as a RedisSaver store holds them, encoded for the wire: built from
    a record (``RedisStore.stored``) or taken as stored from another Redis store (``rowcopy``).
    Either way its key was checked then (``schema.refuse_unreadable``), and is not again."""

    key: CheckpointKey
    document: bytes
    has_writes: bool
    """The document's own ``has_writes`` (a document already stored gets it set when true)."""
    writes: tuple[tuple[str, int, bytes], ...]
    """``(task_id, idx, document)`` of each write, keyed and registered by the target."""
    ttl_ms: int | None
    """Milliseconds every key of the checkpoint expires in (``None`` or 0: no TTL)."""


def checkpoint_document(record: CheckpointRecord, losses: Losses) -> dict[str, Any]:
    """The checkpoint document, by the exact path."""
    return _document(record, _checkpoint_json(record, losses))


def encoded_checkpoint(record: CheckpointRecord, losses: Losses, cache: ExtCache) -> tuple[bytes, bool]:
    """``(JSON text of the checkpoint document, its has_writes)``, by the fast path when it applies."""
    _refuse(record)
    found = Losses()
    fields = decoded_for_redis(record.checkpoint.data, cache, found)
    # The exact path leaves pending_sends out before converting: losses counted inside them would not be its own.
    if isinstance(fields, dict) and _string_versions(fields) and not (found and fields.get("pending_sends")):
        converted = {k: v for k, v in fields.items() if k != "pending_sends"}
        converted["channel_versions"] = {k: str(v) for k, v in (converted.get("channel_versions") or {}).items()}
        doc = _document(record, {"type": "json", **converted, "pending_sends": []})
        encoded = _encoded(doc)
        if encoded is not None:
            losses.update(found)
            return encoded, doc["has_writes"]
    doc = checkpoint_document(record, losses)
    return json.dumps(doc).encode("utf-8"), doc["has_writes"]


def _encoded(doc: dict[str, Any]) -> bytes | None:
    """``doc`` as JSON text; bytes as ``ToRedis`` writes them (``{"__bytes__": base64}``, and the
    checkpoint's type then ``msgpack``); ``None`` for anything else orjson refuses (an integer
    past 64 bits): the exact path decides. Bytes inside an ext value never get here (the
    decoder refused them), so the marker is all that ``ToRedis`` would have done to them."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        pass
    doc["checkpoint"]["type"] = "msgpack"
    try:
        return orjson.dumps(doc, default=bytes_marker)
    except TypeError:
        return None


def write_document(
    key: CheckpointKey, write: PendingWrite, losses: Losses, cache: ExtCache | None = None
) -> dict[str, Any]:
    type_tag, data = write_value_to_redis(write.value.type, write.value.data, losses, cache)
    return {
        "thread_id": key.thread_id,
        "checkpoint_ns": key.checkpoint_ns or EMPTY,
        "checkpoint_id": key.checkpoint_id,
        "task_id": write.task_id,
        "task_path": write.task_path,
        "idx": write.idx,
        "channel": write.channel,
        "type": type_tag,
        "blob": base64.b64encode(data).decode("ascii"),
    }


def encoded_write(key: CheckpointKey, write: PendingWrite, losses: Losses, cache: ExtCache) -> bytes:
    doc = write_document(key, write, losses, cache)
    try:
        return orjson.dumps(doc)  # every field is a str or an int: the same JSON value either way
    except TypeError:  # e.g. a lone surrogate in an id, which only the standard library escapes
        return json.dumps(doc).encode("utf-8")


def _document(record: CheckpointRecord, checkpoint: dict[str, Any]) -> dict[str, Any]:
    metadata = parse_metadata(record.metadata.data)[0] or {}
    doc: dict[str, Any] = {
        "thread_id": record.key.thread_id,
        "run_id": str(metadata.get("run_id") or record.extra_value("run_id") or ""),
        "checkpoint_ns": record.key.checkpoint_ns or EMPTY,
        "checkpoint_id": record.key.checkpoint_id,
        "parent_checkpoint_id": record.parent_checkpoint_id or "",
        "checkpoint_ts": (checkpoint_time(record.key.checkpoint_id) or 0.0) * 1000,
        "checkpoint": checkpoint,
        "metadata": record.metadata.data.decode("utf-8").replace("\\u0000", ""),
        "has_writes": bool(record.extra_value("redis.has_writes", bool(record.writes))),
    }
    if "source" in metadata and "step" in metadata:
        doc["source"], doc["step"] = metadata["source"], metadata["step"]
    return doc


def _refuse(record: CheckpointRecord) -> None:
    if record.checkpoint.type != "msgpack" or record.metadata.type != "json":
        raise CorruptRecordError(
            f"{record.key}: a {record.checkpoint.type!r} checkpoint cannot be stored in RedisSaver's JSON layout"
        )


def _string_versions(fields: dict[str, Any]) -> bool:
    """Channel versions all strings and no integer in ``versions_seen``: ``string_versions`` changes nothing."""
    versions = fields.get("channel_versions") or {}
    if not (isinstance(versions, dict) and all(isinstance(v, str) for v in versions.values())):
        return False
    seen = fields.get("versions_seen") or {}
    if not isinstance(seen, dict):
        return False
    return not any(
        isinstance(v, int) and not isinstance(v, bool)
        for channels in seen.values()
        if isinstance(channels, dict)
        for v in channels.values()
    )


def _int_versions(fields: dict[str, Any]) -> bool:
    versions = fields.get("channel_versions") or {}
    return isinstance(versions, dict) and any(isinstance(v, int) for v in versions.values())


def _checkpoint_json(record: CheckpointRecord, losses: Losses) -> dict[str, Any]:
    _refuse(record)
    try:
        fields = unpack(record.checkpoint.data)
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"cannot decode {record.key}: {exc}") from exc
    values = fields.get("channel_values") or {}
    # the packed values only feed the digests of integer channel versions: packed only for those
    string_versions(fields, {k: pack(v) for k, v in values.items()} if _int_versions(fields) else {})
    converter = ToRedis(losses)
    converted = {k: converter.value(v) for k, v in fields.items() if k != "pending_sends"}
    converted["channel_versions"] = {k: str(v) for k, v in (converted.get("channel_versions") or {}).items()}
    return {"type": "msgpack" if converter.had_bytes else "json", **converted, "pending_sends": []}
