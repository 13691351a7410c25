"""Rows of the saver's tables to ckpt's records and back, and a selection as a WHERE clause."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson

from ckpt.backends.core.base import (
    CheckpointHeader,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    PendingWrite,
    Selection,
)
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.ids import lowest_id_at
from ckpt.backends.postgres.globs import glob_like_superset
from ckpt.backends.postgres.layout import assemble, split

_C = ' COLLATE "C"'
"""Only for filters on checkpoint ids (``--since``/``--until``), which Python re-checks: a
filter orders nothing, so it costs no index; byte order keeps it a superset of the Python test."""


SHARD_SQL = "(('x' || substr(md5(convert_to(thread_id, 'UTF8')), 1, 15))::bit(60)::bigint %% %s)"
"""``core.shards.shard_of`` in SQL: the first 60 bits of the MD5 of the id's UTF-8 bytes, a
positive bigint, so ``%`` agrees with Python's (tests/backends/test_shards.py compares them)."""


def where(selection: Selection) -> tuple[str, list[Any]]:
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if selection.thread_id is not None:
        clauses.append("thread_id = %s")
        params.append(selection.thread_id)
    if selection.thread_glob is not None:
        clauses.append("thread_id LIKE %s")  # a superset; the exact glob is applied in Python
        params.append(glob_like_superset(selection.thread_glob))
    # A thread range is compared in the column's collation, the order of the primary-key index
    # (so it is an index range), and of the bounds ``thread_bounds`` takes from that index.
    if selection.thread_from is not None:
        clauses.append("thread_id >= %s")
        params.append(selection.thread_from)
    if selection.thread_to is not None:
        clauses.append("thread_id < %s")
        params.append(selection.thread_to)
    # one thread's reads (pairing, per-thread lookups) need no hash per row: Python re-checks the id,
    # and the plain ``thread_id =`` keeps a prepared (generic) plan on the thread's index
    if selection.shard is not None and selection.shard.count > 1 and selection.thread_id is None:
        clauses.append(f"{SHARD_SQL} = %s")
        params.extend((selection.shard.count, selection.shard.index))
    if selection.checkpoint_ns is not None:
        clauses.append("checkpoint_ns = %s")
        params.append(selection.checkpoint_ns)
    if selection.since is not None:
        clauses.append(f"checkpoint_id{_C} >= %s")
        params.append(lowest_id_at(selection.since))
    if selection.until is not None:
        clauses.append(f"checkpoint_id{_C} < %s")
        params.append(lowest_id_at(selection.until))
    return " AND ".join(clauses), params


def residual(selection: Selection) -> Selection:
    """What Python still checks of ``selection`` after :func:`where`: not the thread range, which
    SQL applied in the collation's order (Python's ``<`` is code-point order, not the same)."""
    return replace(selection, thread_from=None, thread_to=None)


def version_text(version: Any) -> str:
    """A version as ``jsonb_each_text`` renders it, which is what blob rows are keyed by."""
    return orjson.dumps(version).decode() if isinstance(version, float) else str(version)


def metadata_text(text: str) -> str:
    """Metadata JSON; PostgresSaver 2.0.0-2.0.21 stored it as a JSON *string* holding JSON."""
    if text.startswith('"'):
        inner = orjson.loads(text)
        if isinstance(inner, str):
            return inner
    return text


def record_from_row(
    row: tuple[Any, ...], blobs: dict[str, tuple[str, bytes]], writes: list[tuple[Any, ...]], fields: Any = None
) -> CheckpointRecord:
    """One checkpoint row, with ``blobs`` (its channels' blob rows, by channel) and write rows;
    ``fields``: the checkpoint column already parsed (issue #24: parsing it twice cost 10%)."""
    key = CheckpointKey(row[0], row[1], row[2])
    return CheckpointRecord(
        key=key,
        parent_checkpoint_id=row[3],
        checkpoint=Payload("msgpack", assemble(row[4], blobs, key, fields)),
        metadata=Payload("json", metadata_text(row[5]).encode("utf-8")),
        writes=tuple(
            PendingWrite(w[3], w[4] or "", w[5], w[6], Payload(w[7] or "", b"" if w[8] is None else w[8]))
            for w in writes
        ),  # read in binary: idx is an int and blob bytes already
    )


def header_from_row(row: tuple[Any, ...], sizes: tuple[Any, ...] | None) -> CheckpointHeader:
    try:
        metadata = orjson.loads(metadata_text(row[4]))
        error = None
    except orjson.JSONDecodeError as err:
        metadata, error = None, str(err)
    return CheckpointHeader(
        key=CheckpointKey(row[0], row[1], row[2]),
        parent_checkpoint_id=row[3],
        metadata=metadata if isinstance(metadata, dict) else None,
        checkpoint_bytes=int(row[5] or 0),
        writes_count=int(sizes[3]) if sizes else 0,
        writes_bytes=int(sizes[4] or 0) if sizes else 0,
        metadata_error=error,
    )


def rows_for(
    batch: list[CheckpointRecord],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ckpt_rows, write_rows = [], []
    blob_rows: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
    for record in batch:
        key = record.key
        split_form = split(record)
        ckpt_rows.append(
            (*key_tuple(key), record.parent_checkpoint_id, None, split_form.checkpoint_json, metadata_json(record))
        )
        for channel, version, type_tag, data in split_form.blobs:
            blob_rows.setdefault(
                (key.thread_id, key.checkpoint_ns, channel, version),
                (key.thread_id, key.checkpoint_ns, channel, version, type_tag, data),
            )
        write_rows += [
            (*key_tuple(key), w.task_id, w.task_path, w.idx, w.channel, w.value.type, w.value.data)
            for w in record.writes
        ]
    return ckpt_rows, list(blob_rows.values()), write_rows


def key_tuple(key: CheckpointKey) -> tuple[str, str, str]:
    return key.thread_id, key.checkpoint_ns, key.checkpoint_id


def metadata_json(record: CheckpointRecord) -> str:
    """Metadata as PostgresSaver stores it: JSON, without the legacy ``writes`` key (spec §1.4)."""
    if record.metadata.type != "json":
        raise CorruptRecordError(
            f"{record.key}: PostgreSQL stores metadata as JSON, got a {record.metadata.type!r} payload"
        )
    try:
        metadata = orjson.loads(record.metadata.data or b"{}")
    except orjson.JSONDecodeError as err:
        raise CorruptRecordError(f"cannot decode metadata of {record.key}: {err}") from err
    if isinstance(metadata, dict):
        metadata.pop("writes", None)
    return orjson.dumps(metadata).decode().replace("\\u0000", "")
