"""Grouping pairs that arrive in no order (a Redis Cluster's SCAN) in bounded memory.

Up to ``in_memory`` pairs are grouped in a dict; past that, every pair goes to a temporary SQLite
file and comes back sorted by the database, so ten million keys need one group's worth of memory,
not ten million. SQLite compares TEXT with BINARY collation, i.e. UTF-8 bytes, which is Python's
code-point order for every string ckpt can read.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import closing
from itertools import groupby
from pathlib import Path

IN_MEMORY = 200_000
"""Pairs grouped in memory before the rest is spooled to disk (~100 bytes each)."""


def grouped(pairs: Iterable[tuple[str, str]], *, in_memory: int = IN_MEMORY) -> Iterator[tuple[str, list[str]]]:
    """Each group's items (in arrival order), groups in code-point order."""
    iterator = iter(pairs)
    held: dict[str, list[str]] = {}
    for count, (group, item) in enumerate(iterator, 1):
        held.setdefault(group, []).append(item)
        if count >= in_memory:
            yield from _spooled(held, iterator)
            return
    for group in sorted(held):
        yield group, held.pop(group)


def _spooled(held: dict[str, list[str]], rest: Iterator[tuple[str, str]]) -> Iterator[tuple[str, list[str]]]:
    with (
        tempfile.TemporaryDirectory(prefix="ckpt-group-") as tmp,
        closing(sqlite3.connect(Path(tmp) / "pairs.db", isolation_level=None)) as conn,
    ):
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("CREATE TABLE pairs (grp TEXT NOT NULL, seq INTEGER PRIMARY KEY, item TEXT NOT NULL)")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO pairs (grp, item) VALUES (?, ?)", ((g, i) for g, items in held.items() for i in items)
        )
        held.clear()
        conn.executemany("INSERT INTO pairs (grp, item) VALUES (?, ?)", rest)
        conn.execute("COMMIT")
        conn.execute("CREATE INDEX by_group ON pairs (grp, seq)")
        rows = conn.execute("SELECT grp, item FROM pairs ORDER BY grp, seq")
        for group, members in groupby(rows, key=lambda row: row[0]):
            yield group, [item for _, item in members]
