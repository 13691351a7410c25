"""PostgreSQL to PostgreSQL as stored rows: ``COPY … TO STDOUT`` streamed into ``COPY … FROM STDIN``.

Both stores in the saver's current layout (migration 9, ``writes.task_path``): the target's
saver then reads the copied rows exactly as the source's saver reads the originals, so nothing
is decoded, assembled or split again (issue #24: the client's CPU bound a migrate between two
PostgreSQL servers at 8-10x the official loop). The bytes pass through in binary COPY blocks
(constant memory) and are inserted from staging tables as ``write`` does, one transaction per
batch of checkpoints, with their blobs and writes.

What the decoding copy repairs is repaired here in SQL, so both copies leave the same rows as
the saver sees them: metadata stored as a JSON *string* becomes the object it holds, without the
legacy ``writes`` key. A v<4 checkpoint with Sends stored in it (PostgresSaver 1.0) needs them
moved into the tasks channel, which only a decoded record can have: it is left to the decoding
copy. Blob rows are the ones the saver joins to each checkpoint
(``jsonb_each_text(channel_versions)``); writes are those of the copied checkpoints. Rows of
types the decoding copy cannot embed (``pickle``, encrypted) pass through unread.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from ckpt.backends.core.base import CheckpointKey, CopiedRows, Selection
from ckpt.backends.postgres.reads import KEY
from ckpt.backends.postgres.rows import where
from ckpt.backends.postgres.writes import COLUMNS, insert_staged, stage_table

Key = tuple[str, str, str]

_METADATA = (
    "(SELECT CASE WHEN jsonb_typeof(m) = 'object' THEN m - 'writes' ELSE m END FROM "
    "(SELECT CASE WHEN jsonb_typeof(c.metadata) = 'string' THEN (c.metadata #>> '{}')::jsonb "
    "ELSE c.metadata END AS m) AS unwrapped)"
)
_CHECKPOINT = (
    "CASE WHEN c.checkpoint ? 'pending_sends' THEN jsonb_set(c.checkpoint, '{pending_sends}', '[]') "
    "ELSE c.checkpoint END"
)
INLINE_SENDS = "(jsonb_typeof(checkpoint -> 'pending_sends') = 'array' AND checkpoint -> 'pending_sends' <> '[]')"
"""A v<4 checkpoint whose Sends are stored in it (PostgresSaver 1.0: ``[type, base64]``), which
today's saver no longer reads there: the decoding copy moves them into the tasks channel, so such
checkpoints are left to it (``CopiedRows.left``), their blobs and writes with them."""
_PROBE = "CROSS JOIN LATERAL (SELECT {columns} FROM {table} x WHERE {match} OFFSET 0) AS r"
"""A primary-key probe per key: ``OFFSET 0`` keeps the planner from flattening the subquery into
a hash join, which it chose from its estimate of a chunk (26,000 rows for 2,000) and which read
the whole blob or writes table for every chunk (EXPLAIN ANALYZE at 1M: 1.7 s against ms)."""
SELECTS = {
    "checkpoints": "SELECT c.thread_id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type, "
    f"{_CHECKPOINT}, {_METADATA} FROM checkpoints c WHERE {{chunk}}",
    "checkpoint_blobs": "SELECT k.t, k.n, k.ch, k.v, r.type, r.blob FROM (SELECT DISTINCT thread_id AS t, "
    "checkpoint_ns AS n, e.key AS ch, e.value AS v FROM checkpoints, "
    "jsonb_each_text(checkpoint -> 'channel_versions') AS e WHERE {chunk}) AS k "
    + _PROBE.format(
        columns="x.type, x.blob",
        table="checkpoint_blobs",
        match="x.thread_id = k.t AND x.checkpoint_ns = k.n AND x.channel = k.ch AND x.version = k.v",
    ),
    "checkpoint_writes": "SELECT k.thread_id, k.checkpoint_ns, k.checkpoint_id, r.task_id, r.task_path, r.idx, "
    "r.channel, r.type, r.blob FROM (SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints "
    "WHERE {chunk}) AS k "
    + _PROBE.format(
        columns="x.task_id, x.task_path, x.idx, x.channel, x.type, x.blob",
        table="checkpoint_writes",
        match="x.thread_id = k.thread_id AND x.checkpoint_ns = k.checkpoint_ns AND x.checkpoint_id = k.checkpoint_id",
    ),
}
"""Each table's rows of one chunk, in the target's column order (``writes.COLUMNS``). Blobs
first, then checkpoints, then writes: the order ``write`` inserts them in."""


def exact_in_sql(selection: Selection) -> bool:
    """Whether :func:`where` applies ``selection`` exactly (else the decoding copy re-checks rows in
    Python): a thread glob is only a ``LIKE`` superset, time bounds compare ids in byte order, and
    one thread's reads skip the shard test."""
    return (
        selection.thread_glob is None
        and selection.since is None
        and selection.until is None
        and not (selection.shard is not None and selection.thread_id is not None)
    )


def copy_rows(
    source: psycopg.Cursor[Any], target: psycopg.Connection[Any], selection: Selection, batch_size: int
) -> Iterator[CopiedRows]:
    """``selection`` of the source (``source``: a cursor in its read snapshot) into ``target``'s
    tables, ``batch_size`` checkpoints a transaction, chunks cut on the primary-key index."""
    clause, params = where(selection)
    last: Key | None = None
    while True:
        high = _chunk_end(source, clause, params, last, batch_size)
        chunk, chunk_params = _chunk(clause, params, last, high)
        done = _copy_chunk(source, target, chunk, chunk_params)
        chunk_size = batch_size if high is not None else _count(source, chunk, chunk_params)
        if done.checkpoints_read < chunk_size:  # some had inline Sends: the caller decodes those
            done.left = _inline_sends(source, chunk, chunk_params)
        yield done
        if high is None:
            return
        last = high


def _count(cur: psycopg.Cursor[Any], chunk: str, params: list[Any]) -> int:
    cur.execute(f"SELECT count(*) FROM checkpoints WHERE {chunk}", params)
    row = cur.fetchone()
    return int(row[0]) if row else 0


def _inline_sends(cur: psycopg.Cursor[Any], chunk: str, params: list[Any]) -> tuple[CheckpointKey, ...]:
    cur.execute(f"SELECT {KEY} FROM checkpoints WHERE {chunk} AND {INLINE_SENDS} ORDER BY {KEY}", params)
    return tuple(CheckpointKey(*row) for row in cur.fetchall())


def _chunk_end(cur: psycopg.Cursor[Any], clause: str, params: list[Any], last: Key | None, size: int) -> Key | None:
    """The key of the ``size``-th checkpoint after ``last`` (an index-only walk), or ``None``
    when fewer are left: the final chunk then has no upper bound."""
    after = f" AND ({KEY}) > (%s, %s, %s)" if last else ""
    cur.execute(
        f"SELECT {KEY} FROM checkpoints WHERE {clause}{after} ORDER BY {KEY} OFFSET {size - 1} LIMIT 1",
        [*params, *(last or ())],
    )
    row = cur.fetchone()
    return None if row is None else (row[0], row[1], row[2])


def _chunk(clause: str, params: list[Any], last: Key | None, high: Key | None) -> tuple[str, list[Any]]:
    parts, values = [clause], list(params)
    if last is not None:
        parts.append(f"({KEY}) > (%s, %s, %s)")
        values += last
    if high is not None:
        parts.append(f"({KEY}) <= (%s, %s, %s)")
        values += high
    return " AND ".join(parts), values


def _copy_chunk(
    source: psycopg.Cursor[Any], target: psycopg.Connection[Any], chunk: str, params: list[Any]
) -> CopiedRows:
    done = CopiedRows()
    with target.transaction(), target.cursor() as cur:
        for table, select in SELECTS.items():
            rows_of = f"{chunk} AND NOT coalesce({INLINE_SENDS}, false)"
            read, size = _stream(source, cur, table, select.replace("{chunk}", rows_of), params)
            inserted = insert_staged(cur, table)
            done.bytes_read += size
            if table == "checkpoints":
                done.checkpoints_read = read
                done.checkpoints_written, done.checkpoints_skipped = inserted, read - inserted
            elif table == "checkpoint_writes":
                done.writes_written, done.writes_skipped = inserted, read - inserted
    return done


def _stream(
    source: psycopg.Cursor[Any], cur: psycopg.Cursor[Any], table: str, select: str, params: list[Any]
) -> tuple[int, int]:
    """``select``'s rows from the source into ``table``'s staging table; (rows, bytes)."""
    stage = stage_table(cur.connection, table)
    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
    size = 0
    copy_out = f"COPY ({select}) TO STDOUT (FORMAT BINARY)"
    with (
        source.copy(copy_out, params) as out,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(stage, columns)) as into,
    ):
        for block in out:
            into.write(block)
            size += len(block)
    return max(cur.rowcount, 0), size
