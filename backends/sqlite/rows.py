"""Rows of the SQLite layout (spec §3.2) to and from the store contract's records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def records_from_rows(rows: Iterable[tuple[Any, ...]], writes: Iterable[tuple[Any, ...]]) -> Iterator[CheckpointRecord]:
    """Each checkpoint row with its writes: ``core.merge.attach(rows, writes, key=row[:3])`` and the
    record built, in one loop. Both streams are sorted by key; writes without their checkpoint are
    skipped, as ``attach`` does. The generic join's peek/pop calls and key lambdas and a generator
    per record were about a third of the Python time of ``size``/``export``/``doctor`` on SQLite
    (issue #24)."""
    pending = iter(writes)
    w: tuple[Any, ...] | None = None
    started = False
    for row in rows:
        if not started:  # the writes' query starts after the checkpoints', as in ``attach``
            w, started = next(pending, None), True
        key = row[:3]
        found: list[PendingWrite] = []
        while w is not None:
            wkey = w[:3]
            if wkey == key:
                value = w[8]
                found.append(
                    PendingWrite(
                        w[3],
                        w[4] or "",
                        int(w[5]),
                        w[6],
                        Payload(w[7] or "", value if type(value) is bytes else blob(value)),
                    )
                )
            elif wkey > key:
                break
            w = next(pending, None)
        data, metadata = row[5], row[6]
        yield CheckpointRecord(
            CheckpointKey(*key),
            row[3],
            Payload(row[4] or "", data if type(data) is bytes else blob(data)),
            Payload("json", metadata if type(metadata) is bytes else blob(metadata)),
            tuple(found),
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


def write_rows(records: Iterable[CheckpointRecord]) -> list[tuple[Any, ...]]:
    """The ``writes`` rows of every write of ``records``, in one comprehension (a function call
    per write was ~5% of the client CPU of a migrate or import into SQLite)."""
    return [
        (k.thread_id, k.checkpoint_ns, k.checkpoint_id, w.task_id, w.task_path, w.idx, w.channel, v.type, v.data)
        for r in records
        for k in (r.key,)
        for w in r.writes
        for v in (w.value,)
    ]
