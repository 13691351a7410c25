"""The documents of langgraph-checkpointer-couchbase 2.0.x (spec §7), as pure functions.

A checkpoint is one document ``{thread}::{ns}::{id}`` holding the serialized checkpoint and
metadata as base64 (``metadata_type`` names the metadata's serializer tag; 1.0.x documents
have none and mean ``json``); a write is one document ``{thread}::{ns}::{id}::{task}::{idx}``
without ``task_path``. CouchbaseSaver numbers writes by position in their ``put_writes`` call
and ignores LangGraph's ``WRITES_IDX_MAP``: a special write (interrupt, resume, error) is
stored at idx 0 and mapped back to its negative idx when read, so moves in and out agree with
the other savers. Channel versions are integers here, as the saver's ``get_next_version``
counts them.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Payload, PendingWrite
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_raw import pack, plain_json, unpack
from ckpt.backends.core.versions import to_int_versions

WRITES_IDX_MAP = {"__error__": -1, "__scheduled__": -2, "__interrupt__": -3, "__resume__": -4}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("utf-8")


def checkpoint_id_of(key: CheckpointKey) -> str:
    return f"{key.thread_id}::{key.checkpoint_ns}::{key.checkpoint_id}"


def checkpoint_document(record: CheckpointRecord) -> tuple[str, dict[str, Any]]:
    """The document CouchbaseSaver.put writes for this checkpoint."""
    checkpoint = record.checkpoint.data
    if record.checkpoint.type == "msgpack":
        checkpoint = to_int_versions(checkpoint)
    metadata_type, metadata = _metadata_payload(record)
    key = record.key
    return checkpoint_id_of(key), {
        "parent_checkpoint_id": record.parent_checkpoint_id,
        "type": record.checkpoint.type,
        "checkpoint": _b64(checkpoint) if checkpoint else None,
        "metadata": _b64(metadata) if metadata else None,
        "metadata_type": metadata_type,
        "thread_id": key.thread_id,
        "checkpoint_ns": key.checkpoint_ns,
        "checkpoint_id": key.checkpoint_id,
    }


def _metadata_payload(record: CheckpointRecord) -> tuple[str, bytes]:
    if record.metadata.type != "json":
        return record.metadata.type, record.metadata.data
    try:
        metadata = orjson.loads(record.metadata.data or b"{}")
    except orjson.JSONDecodeError as exc:
        raise CorruptRecordError(f"cannot decode metadata of {record.key}: {exc}") from exc
    return "msgpack", pack(metadata)  # CouchbaseSaver: serde.dumps_typed(metadata)


def write_documents(record: CheckpointRecord) -> list[tuple[str, dict[str, Any]]]:
    """The documents CouchbaseSaver.put_writes writes for this checkpoint's pending writes."""
    key = record.key
    taken = {(w.task_id, w.idx) for w in record.writes if w.idx >= 0}
    docs = []
    for write in record.writes:
        idx = write.idx
        if idx < 0 and (write.task_id, 0) not in taken:
            # A special write heads its put_writes call: position 0. Where the saver would let two
            # writes collide on one id (and lose one), the second keeps its negative idx instead.
            idx = 0
            taken.add((write.task_id, 0))
        docs.append(
            (
                f"{checkpoint_id_of(key)}::{write.task_id}::{idx}",
                {
                    "thread_id": key.thread_id,
                    "checkpoint_ns": key.checkpoint_ns,
                    "checkpoint_id": key.checkpoint_id,
                    "task_id": write.task_id,
                    "idx": idx,
                    "channel": write.channel,
                    "type": write.value.type,
                    "value": _b64(write.value.data),
                },
            )
        )
    return docs


def record_from_documents(doc: dict[str, Any], writes: list[dict[str, Any]]) -> CheckpointRecord:
    """The record for a checkpoint document and its write documents."""
    try:
        key = CheckpointKey(doc["thread_id"], doc["checkpoint_ns"], doc["checkpoint_id"])
    except KeyError as exc:
        raise CorruptRecordError(f"checkpoint document lacks {exc}") from exc
    try:
        checkpoint = base64.b64decode(doc.get("checkpoint") or "")
        metadata = _metadata_json(doc.get("metadata_type") or "json", base64.b64decode(doc.get("metadata") or ""))
        pending = tuple(sorted((_write(w) for w in writes), key=lambda w: (w.task_id, w.idx)))
    except (KeyError, ValueError, TypeError) as exc:
        raise CorruptRecordError(f"{key}: unreadable document ({exc})") from exc
    return CheckpointRecord(
        key=key,
        parent_checkpoint_id=doc.get("parent_checkpoint_id") or None,
        checkpoint=Payload(doc.get("type") or "msgpack", checkpoint),
        metadata=Payload("json", metadata),
        writes=pending,
    )


def _metadata_json(type_tag: str, data: bytes) -> bytes:
    if type_tag == "json" or not data:
        return data or b"{}"
    if type_tag == "msgpack":
        return orjson.dumps(plain_json(unpack(data)), option=orjson.OPT_NON_STR_KEYS)
    raise ValueError(f"metadata of type {type_tag!r}")


def _write(doc: dict[str, Any]) -> PendingWrite:
    channel = doc["channel"]
    idx = int(doc["idx"])
    if channel in WRITES_IDX_MAP and idx == 0:
        idx = WRITES_IDX_MAP[channel]  # what the other savers store for a special write
    return PendingWrite(doc["task_id"], "", idx, channel, Payload(doc["type"], base64.b64decode(doc["value"])))
