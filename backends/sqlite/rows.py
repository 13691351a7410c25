"""Rows of the SQLite layout (spec §3.2) to and from the store contract's records."""

from __future__ import annotations

from typing import Any

from ckpt.backends.core.base import (
    CheckpointHeader,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    PendingWrite,
    parse_metadata,
)
from ckpt.backends.core.errors import DataError


def blob(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def header_from_row(row: tuple[Any, ...], sizes: tuple[Any, ...] | None) -> CheckpointHeader:
    metadata, error = parse_metadata(blob(row[4]))
    return CheckpointHeader(
        key=CheckpointKey(row[0], row[1], row[2]),
        parent_checkpoint_id=row[3],
        metadata=metadata,
        checkpoint_bytes=int(row[5] or 0),
        writes_count=int(sizes[3]) if sizes else 0,
        writes_bytes=int(sizes[4] or 0) if sizes else 0,
        metadata_error=error,
    )


def record_from_rows(row: tuple[Any, ...], writes: list[tuple[Any, ...]]) -> CheckpointRecord:
    return CheckpointRecord(
        key=CheckpointKey(row[0], row[1], row[2]),
        parent_checkpoint_id=row[3],
        checkpoint=Payload(row[4] or "", blob(row[5])),
        metadata=Payload("json", blob(row[6])),
        writes=tuple(PendingWrite(w[3], w[4] or "", int(w[5]), w[6], Payload(w[7] or "", blob(w[8]))) for w in writes),
    )


def checkpoint_row(record: CheckpointRecord) -> tuple[Any, ...]:
    key = record.key
    return (
        key.thread_id,
        key.checkpoint_ns,
        key.checkpoint_id,
        record.parent_checkpoint_id,
        record.checkpoint.type,
        saver_versions(record.checkpoint),
        metadata_json(record.metadata),
    )


def saver_versions(checkpoint: Payload) -> bytes:
    """SqliteSaver counts versions as padded strings; integer ones (MongoDB, Couchbase) are converted."""
    from ckpt.backends.core.versions import to_string_versions  # writes only: read commands skip its imports

    return to_string_versions(checkpoint.data) if checkpoint.type == "msgpack" else checkpoint.data


def metadata_json(metadata: Payload) -> bytes:
    if metadata.type != "json":
        # SQLite stores metadata as plain JSON; other encodings need converting first.
        raise DataError(f"SQLite stores metadata as JSON, got a {metadata.type!r} payload")
    return metadata.data


def write_row(key: CheckpointKey, write: PendingWrite) -> tuple[Any, ...]:
    return (
        key.thread_id,
        key.checkpoint_ns,
        key.checkpoint_id,
        write.task_id,
        write.task_path,
        write.idx,
        write.channel,
        write.value.type,
        write.value.data,
    )
