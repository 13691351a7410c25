"""Reading the saver's tables in the order its primary-key indexes keep them (issue #24).

Every ``ORDER BY`` and keyset bound compares ``(thread_id, checkpoint_ns, checkpoint_id)`` in
the columns' own collation, so the saver's primary keys serve them: a page of 500 at 1M is an
index range scan (EXPLAIN ANALYZE: 2 ms), where ``COLLATE "C"`` made each page a scan and sort of
the whole table (300-430 ms). That order is the database's, not Python's (``"B" < "a"`` in code points,
not in ``en_US``), so nothing here compares keys in Python: writes, blobs and sizes are joined
to a page by dict lookups. Where ckpt pairs two stores, :mod:`ckpt.backends.ops.pairing`
copes with the two orders.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import orjson
import psycopg

from ckpt.backends.core.base import CheckpointHeader, CheckpointRecord, Selection
from ckpt.backends.postgres.prefetch import prefetched
from ckpt.backends.postgres.rows import header_from_row, record_from_row, residual, version_text, where

KEY = "thread_id, checkpoint_ns, checkpoint_id"
PAGE = 500
"""Checkpoints a page of records (their blobs and writes come in one query each)."""
HEADER_PAGE = 2000
"""Header rows a page: small rows, so more of them per round trip."""

Row = tuple[Any, ...]
Key = tuple[str, str, str]
BlobKey = tuple[str, str, str, str]
Blobs = dict[BlobKey, tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """A page of checkpoint rows and what assembling them needs: queried, not yet assembled."""

    rows: list[Row]
    fields: list[Any]
    """Each row's checkpoint column, parsed once: for its blob keys here and its assembly later."""
    wanted: list[list[tuple[str, BlobKey]]]
    blobs: Blobs
    writes: dict[Key, list[Row]]


SELECT_CHECKPOINTS = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint::text, metadata::text "
    "FROM checkpoints"
)
SELECT_HEADERS = (
    "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, metadata::text, "
    "pg_column_size(checkpoint) + pg_column_size(metadata) FROM checkpoints"
)
_KEYS4 = "(SELECT e->>0 AS t, e->>1 AS n, e->>2 AS c, e->>3 AS v FROM jsonb_array_elements(%t::jsonb) e) AS k"
"""Keys go as one JSON text of ``[t, n, c, v]`` arrays (``orjson``, C): psycopg's dumper of
``text[]`` arrays, even in binary, was a Python step per element (~10% of a migrate out of
PostgreSQL, issue #24). The join stays a primary-key probe per key (EXPLAIN: nested loop over the
function scan, as with ``unnest``)."""


def pages(cur: psycopg.Cursor[Any], select: str, selection: Selection, size: int) -> Iterator[list[Row]]:
    """``select``'s rows in index order, ``size`` at a time, each page resuming after the last key."""
    clause, params = where(selection)
    last: Row | None = None
    while True:
        after = f" AND ({KEY}) > (%s, %s, %s)" if last else ""
        cur.execute(f"{select} WHERE {clause}{after} ORDER BY {KEY} LIMIT {size}", [*params, *(last or ())])
        page = cur.fetchall()
        if page:
            yield page
        if len(page) < size:
            return  # a short page is the last: no query for an empty one
        last = page[-1][:3]


def records(cur: psycopg.Cursor[Any], selection: Selection, task_path: bool) -> Iterator[CheckpointRecord]:
    """Pages queried a page ahead in a thread (:mod:`.prefetch`) and assembled by the caller: the
    server's time (psycopg waits outside the GIL) overlaps the assembly and the caller's work. A
    thread that also assembled left nothing to overlap in a plain read (wall = CPU + server)."""
    check = residual(selection)
    fetched = (fetch_page(cur, page, task_path) for page in pages(cur, SELECT_CHECKPOINTS, selection, PAGE))
    for page in prefetched(fetched):
        for record in page_records(page):
            if check.matches(record.key):
                yield record


def fetch_page(cur: psycopg.Cursor[Any], page: list[Row], task_path: bool) -> Fetched:
    """A page of checkpoint rows with what its records need: their blobs and writes, one query each."""
    fields = [orjson.loads(row[4]) for row in page]
    wanted = [_blob_keys(row, parsed) for row, parsed in zip(page, fields)]
    blobs = blobs_for(cur, {key for keys in wanted for _, key in keys})
    return Fetched(page, fields, wanted, blobs, writes_for(cur, page, task_path))


def page_records(page: Fetched) -> Iterator[CheckpointRecord]:
    for row, parsed, keys in zip(page.rows, page.fields, page.wanted):
        mine = {channel: page.blobs[key] for channel, key in keys if key in page.blobs}
        yield record_from_row(row, mine, page.writes.get(row[:3], []), parsed)


def _blob_keys(row: Row, fields: Any) -> list[tuple[str, BlobKey]]:
    """``(channel, blob key)`` for each channel version the checkpoint names (the saver's join)."""
    versions = (fields.get("channel_versions") if isinstance(fields, dict) else None) or {}
    thread_id, ns = row[0], row[1]
    return [(c, (thread_id, ns, c, v if type(v) is str else version_text(v))) for c, v in versions.items()]


def headers(cur: psycopg.Cursor[Any], selection: Selection) -> Iterator[CheckpointHeader]:
    check = residual(selection)
    for page in pages(cur, SELECT_HEADERS, selection, HEADER_PAGE):
        sizes = write_sizes(cur, page)
        for row in page:
            header = header_from_row(row, sizes.get(row[:3]))
            if check.matches(header.key):
                yield header


def blobs_for(cur: psycopg.Cursor[Any], keys: set[BlobKey]) -> Blobs:
    """The blob rows of ``keys`` (primary-key probes), by key."""
    if not keys:
        return {}
    cur.execute(
        "SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version, b.type, b.blob FROM checkpoint_blobs b "
        f"JOIN {_KEYS4} ON b.thread_id = k.t AND b.checkpoint_ns = k.n AND b.channel = k.c AND b.version = k.v",
        [orjson.dumps(list(keys)).decode()],
        binary=True,  # blobs as they are, not hex to decode
    )
    return {(t, n, c, v): (typ, bytes(blob or b"")) for t, n, c, v, typ, blob in cur.fetchall()}


def _page_keys(page: list[Row]) -> list[str]:
    """The page's keys as one JSON text, for :data:`_KEYS3`."""
    return [orjson.dumps([row[:3] for row in page]).decode()]


_KEYS3 = "(SELECT e->>0 AS t, e->>1 AS n, e->>2 AS i FROM jsonb_array_elements(%t::jsonb) e) AS k"
_BY_KEY = "w.thread_id = k.t AND w.checkpoint_ns = k.n AND w.checkpoint_id = k.i"
"""Writes are looked up by their checkpoints' exact keys (a primary-key probe each), not by the
page's key range: PostgreSQL serves such a range from the ``thread_id`` index and filters the
rest, which re-reads a long thread's writes for every page of it."""


def writes_for(cur: psycopg.Cursor[Any], page: list[Row], task_path: bool) -> dict[Key, list[Row]]:
    """The page's pending writes by checkpoint key, each checkpoint's in ``(task_id, idx)`` order.

    That order is sorted here, in code points, as every other store keeps it (the saver sorts in
    the collation; task ids are uuids, for which the two agree)."""
    path = "w.task_path" if task_path else "''"
    cur.execute(
        f"SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, {path}, w.idx, w.channel, w.type, w.blob "
        f"FROM checkpoint_writes w JOIN {_KEYS3} ON {_BY_KEY}",
        _page_keys(page),
        binary=True,
    )
    found: dict[Key, list[Row]] = {}
    for row in cur.fetchall():
        found.setdefault(row[:3], []).append(row)
    for rows in found.values():
        rows.sort(key=lambda w: (w[3], w[5]))
    return found


def write_sizes(cur: psycopg.Cursor[Any], page: list[Row]) -> dict[Key, Row]:
    """Count and bytes of each checkpoint's writes in the page, by key."""
    cur.execute(
        "SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, count(*), sum(octet_length(w.blob)) "
        f"FROM checkpoint_writes w JOIN {_KEYS3} ON {_BY_KEY} GROUP BY 1, 2, 3",
        _page_keys(page),
    )
    return {row[:3]: row for row in cur.fetchall()}


THREAD_CHUNK = 2000
"""Threads per FETCH of ``thread_rows``' server-side cursor."""


def thread_rows(cur: psycopg.Cursor[Any], selection: Selection, details: bool) -> Iterator[Row]:
    """``(thread, namespaces, checkpoints, first id, last id, bytes)`` per thread, in index order.

    Without ``details`` only the checkpoints' primary key is read: grouped by thread and
    namespace first, an order only the primary key gives, so the planner takes an index-only
    scan of it. Grouped by thread alone it took the saver's ``thread_id`` index and read every
    heap row for ``checkpoint_id`` (issue #24: 0.91–1.20 s against 1.17–1.35 s at 1M through
    the server-side cursor, which never runs in parallel). With ``details``, every row's size
    and the blob and write bytes, summed per thread in SQL and joined there (no merge in
    Python, whose order is not the index's). First and last ids are byte-order extremes, as
    every other store reports them."""
    clause, params = where(selection)
    ids = 'min(checkpoint_id COLLATE "C") AS lo, max(checkpoint_id COLLATE "C") AS hi'
    if not details:
        query = (
            f'SELECT thread_id, NULL, sum(n)::bigint, min(lo COLLATE "C"), max(hi COLLATE "C"), NULL FROM '
            f"(SELECT thread_id, checkpoint_ns, count(*) AS n, {ids} FROM checkpoints WHERE {clause} GROUP BY 1, 2)"
            " AS per_namespace GROUP BY 1 ORDER BY 1"
        )
        args = params
    else:
        query = (
            f"SELECT c.thread_id, c.ns, c.n, c.lo, c.hi, c.size + coalesce(b.size, 0) + coalesce(w.size, 0) FROM "
            f"(SELECT thread_id, count(DISTINCT checkpoint_ns) AS ns, count(*) AS n, {ids},"
            f" sum(pg_column_size(checkpoint) + pg_column_size(metadata)) AS size FROM checkpoints"
            f" WHERE {clause} GROUP BY 1) c "
            f"LEFT JOIN (SELECT thread_id, sum(pg_column_size(blob)) AS size FROM checkpoint_blobs WHERE {clause}"
            f" GROUP BY 1) b USING (thread_id) "
            f"LEFT JOIN (SELECT thread_id, sum(octet_length(blob)) AS size FROM checkpoint_writes WHERE {clause}"
            f" GROUP BY 1) w USING (thread_id) ORDER BY c.thread_id"
        )
        args = [*params, *params, *params]
    # JIT compiles this aggregate for 20-40 ms at 1M rows and gains nothing on it: ``list`` is
    # measured against a bare GROUP BY (issue #24), and the setting ends with the snapshot.
    jit_off(cur)
    with cur.connection.cursor(name="ckpt_threads") as named:  # server-side: a chunk of threads at a time
        named.execute(query, args)
        # The next chunk is fetched in a thread while the caller works on this one: a server-side
        # cursor computes rows only when asked, so a plain FETCH loop left the server idle while the
        # client worked and the client idle while the server grouped (wall = both).
        yield from chain.from_iterable(prefetched(iter(lambda: named.fetchmany(THREAD_CHUNK), [])))


_BYTE_ORDERED = ("C", "POSIX")


def code_point_order(conn: psycopg.Connection[Any]) -> bool:
    """True when the key columns sort in code points: a ``C``/``POSIX`` collation, their own or the
    database's. Anything else (``en_US.UTF-8``, ICU, even glibc's ``C.UTF-8``) is taken not to."""
    row = conn.execute(
        "SELECT bool_and(CASE WHEN co.collname = 'default' "
        "THEN coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') = 'c' AND d.datcollate = ANY(%s) "
        "ELSE co.collprovider = 'c' AND co.collcollate = ANY(%s) END) "
        "FROM pg_attribute a JOIN pg_collation co ON co.oid = a.attcollation "
        "JOIN pg_database d ON d.datname = current_database() "
        "WHERE a.attrelid = to_regclass('checkpoints') "
        "AND a.attname IN ('thread_id', 'checkpoint_ns', 'checkpoint_id')",
        (list(_BYTE_ORDERED), list(_BYTE_ORDERED)),
    ).fetchone()
    return True if row is None or row[0] is None else bool(row[0])  # no table yet: nothing to order


def jit_off(cur: psycopg.Cursor[Any]) -> None:
    """No JIT for the rest of this transaction: these plans are cheap to run, not to compile
    (~35 ms a query at the default costs)."""
    if cur.connection.info.server_version >= 110000:  # no JIT (nor its setting) before 11
        cur.execute("SET LOCAL jit = off")
