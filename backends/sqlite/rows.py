"""Rows of the SQLite layout (spec §3.2) to and from the store contract's records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import groupby
from operator import itemgetter
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
    skipped, as ``attach`` does. The writes are grouped by key in C (``groupby`` on an
    ``itemgetter``): a Python step per write row was a third of the Python time of
    ``size``/``export``/``doctor`` on SQLite (issue #24)."""
    groups: Iterator[tuple[tuple[Any, ...], Iterator[tuple[Any, ...]]]] | None = None
    group: tuple[tuple[Any, ...], Iterator[tuple[Any, ...]]] | None = None
    for row in rows:
        if groups is None:  # grouped from the first checkpoint on, as ``attach`` reads them
            groups = groupby(writes, _KEY)
            group = next(groups, None)
        key = row[:3]
        while group is not None and group[0] < key:  # writes of no checkpoint: skipped
            group = next(groups, None)
        found: tuple[PendingWrite, ...] = ()
        if group is not None and group[0] == key:
            found = tuple(
                [
                    PendingWrite(
                        w[3],
                        w[4] or "",
                        int(w[5]),
                        w[6],
                        Payload(w[7] or "", w[8] if type(w[8]) is bytes else blob(w[8])),
                    )
                    for w in group[1]
                ]
            )
            group = next(groups, None)
        data, metadata = row[5], row[6]
        yield CheckpointRecord(
            CheckpointKey(*key),
            row[3],
            Payload(row[4] or "", data if type(data) is bytes else blob(data)),
            Payload("json", metadata if type(metadata) is bytes else blob(metadata)),
            found,
        )


_KEY = itemgetter(0, 1, 2)


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
    """SqliteSaver counts versions as padded strings; integer ones (MongoDB, Couchbase) are converted.
    A payload a reader packed (``Payload.decoded``) shows its versions without a look at the bytes."""
    from ckpt.backends.core.versions import strings_or_none, to_string_versions  # writes only

    if checkpoint.type != "msgpack":
        return checkpoint.data
    decoded = checkpoint.decoded
    if type(decoded) is dict and strings_or_none(decoded.get("channel_versions")):
        return checkpoint.data
    return to_string_versions(checkpoint.data)


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
