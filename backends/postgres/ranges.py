"""Thread-id bounds for ``migrate --jobs`` from a sample of the table, not a list of every thread.

The bounds split the selection into ranges of about equal numbers of checkpoints. They are
quantiles of a ``TABLESAMPLE SYSTEM`` sample (whole pages at random: its cost is the sample,
not the table), sorted by PostgreSQL in the column's collation, the order in which
``thread_id >= %s AND thread_id < %s`` selects a range of the primary-key index. Any bounds
give disjoint ranges that cover every thread (each thread, with all its namespaces, falls in
exactly one), so a poor sample only balances the work less well.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ckpt.backends.core.base import Selection
from ckpt.backends.postgres.rows import residual, where

SAMPLE_ROWS = 20_000
"""About this many sampled rows: quantiles within ~1% of their share, whatever the table size."""


def thread_bounds(conn: psycopg.Connection[Any], selection: Selection, parts: int) -> list[str]:
    """Up to ``parts - 1`` thread ids, strictly increasing in the column's collation."""
    if parts < 2:
        return []
    clause, params = where(selection)
    percent = _sample_percent(conn)
    sample = "checkpoints" if percent >= 100 else f"checkpoints TABLESAMPLE SYSTEM ({percent:.6f}) REPEATABLE (24)"
    rows = conn.execute(f"SELECT thread_id FROM {sample} WHERE {clause} ORDER BY thread_id", params).fetchall()
    check = residual(selection)  # the glob's exact test (SQL's LIKE is a superset); not the range
    ids = [row[0] for row in rows if check.matches_thread(row[0])]
    bounds: list[str] = []
    for part in range(1, parts):
        if not ids:
            break
        bound = ids[part * len(ids) // parts]
        # sorted by the server, so equal neighbours are the only repeats: drop them (no empty range)
        if bound != ids[0] and (not bounds or bound != bounds[-1]):
            bounds.append(bound)
    return bounds


def _sample_percent(conn: psycopg.Connection[Any]) -> float:
    """The percentage of pages that holds about :data:`SAMPLE_ROWS` rows (100: read them all)."""
    # The planner's estimate: rows per page at the last ANALYZE times the pages there are now
    # (a table filled since then is not mistaken for its old size).
    row = conn.execute(
        "SELECT reltuples / NULLIF(relpages, 0) * (pg_relation_size(oid) / current_setting('block_size')::int) "
        "FROM pg_class WHERE oid = 'checkpoints'::regclass"
    ).fetchone()
    rows = float(row[0]) if row and row[0] is not None and row[0] >= 0 else -1.0
    if rows < 0:  # never vacuumed or analyzed: count (a scan, but no rows leave the server)
        counted = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        rows = float(counted[0]) if counted else 0.0
    return 100.0 if rows <= 2 * SAMPLE_ROWS else 100.0 * SAMPLE_ROWS / rows
