"""SQLite: the official ``SqliteStore`` (langgraph-checkpoint-sqlite) on a file of its own."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import count
from pathlib import Path
from typing import Any

from tests.memory.kinds import MemoryKind

_names = count()


@contextmanager
def place(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / f'memory-{next(_names)}.db'}"


@contextmanager
def official(url: str) -> Iterator[Any]:
    from langgraph.store.sqlite import SqliteStore

    conn = sqlite3.connect(url.removeprefix("sqlite:///"), check_same_thread=False, isolation_level=None)
    try:
        store = SqliteStore(conn)
        store.setup()
        yield store
    finally:
        conn.close()


KIND = MemoryKind("sqlite", place, official)
