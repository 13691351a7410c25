"""A copy into SQLite commits its batches with ``synchronous=NORMAL`` only where that is safe.

In WAL mode (the saver's) a crash or power loss at any point leaves a consistent file; the WAL is
fsynced when the store closes. A rollback-journal file keeps ``FULL``, and a connection someone
else owns (``from_connection``) keeps whatever its owner set.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from ckpt.backends import open_store
from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.sqlite.store import SqliteStore
from tests.conftest import sqlite_url

FULL, NORMAL = 2, 1


def _records(official_db: Path) -> list[CheckpointRecord]:
    with open_store(sqlite_url(official_db)) as source:
        return list(source.records())


def _synchronous(store: SqliteStore) -> int:
    return int(store._conn.execute("PRAGMA synchronous").fetchone()[0])


def test_a_wal_file_takes_batches_without_an_fsync_each(official_db: Path, tmp_path: Path) -> None:
    records = _records(official_db)
    target = tmp_path / "t.db"
    with open_store(sqlite_url(target), write=True) as store:
        assert isinstance(store, SqliteStore) and _synchronous(store) == FULL
        report = store.write(records)
        assert report.checkpoints_written == len(records) and _synchronous(store) == NORMAL
    with sqlite3.connect(target) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == len(records)


@pytest.mark.parametrize("journal", ["delete", "truncate"])
def test_a_rollback_journal_file_keeps_full(official_db: Path, tmp_path: Path, journal: str) -> None:
    target = tmp_path / "t.db"
    shutil.copy(official_db, target)
    conn = sqlite3.connect(target, isolation_level=None)
    conn.execute("DELETE FROM writes")
    conn.execute("DELETE FROM checkpoints")
    assert conn.execute(f"PRAGMA journal_mode={journal}").fetchone()[0] == journal
    conn.close()
    records = _records(official_db)
    with open_store(sqlite_url(target), write=True) as store:
        assert isinstance(store, SqliteStore)
        store.write(records)
        assert _synchronous(store) == FULL


def test_a_borrowed_connection_keeps_its_setting(official_db: Path, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    shutil.copy(official_db, target)
    records = _records(official_db)
    conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA synchronous=EXTRA")
    store = SqliteStore.from_connection(conn)
    store.write(records)  # all already there: skipped, but the pragma would have been set first
    assert int(conn.execute("PRAGMA synchronous").fetchone()[0]) == 3
    conn.close()
