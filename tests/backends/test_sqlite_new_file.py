"""A new SQLite target opened by several writers at once (the shards of one import, issue #23).

Each shard opens the same not-yet-existing file for writing; whichever is first sets it up as
the saver's ``setup()`` would. Another shard looking at that moment must see no tables or both;
only the shard that made the file may remove it when it fails, and not once another shard's
checkpoints are in it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ckpt.backends.core.errors import DataError
from ckpt.backends.sqlite import connect as sqlite_connect
from ckpt.backends.sqlite.store import SqliteStore
from tests.support import tuple_view


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_another_writer_never_sees_checkpoints_without_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "new.db"
    seen: list[set[str]] = []
    connect = sqlite_connect.connect

    def watched(target: str, name: str, *, uri: bool = False) -> sqlite3.Connection:
        conn = connect(target, name, uri=uri)

        def look(statement: str) -> None:  # what a second shard sees as `writes` is being made
            if "CREATE TABLE IF NOT EXISTS writes" in statement:
                seen.append(_tables(path))

        conn.set_trace_callback(look)
        return conn

    monkeypatch.setattr(sqlite_connect, "connect", watched)
    with SqliteStore.open(f"sqlite:///{path}", write=True) as store:
        assert store.removed_on_failure
    assert seen, "the schema was not made by the statements this test watches"
    assert all(tables in (set(), {"checkpoints", "writes"}) for tables in seen), seen
    assert _tables(path) == {"checkpoints", "writes"}


def test_only_the_writer_that_made_the_file_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    url = f"sqlite:///{path}"
    first = SqliteStore.open(url, write=True)
    second = SqliteStore.open(url, write=True)  # the file is there: this one found it
    assert first.removed_on_failure and not second.removed_on_failure
    with pytest.raises(DataError), second:
        raise DataError("a bad line in the second shard's input")
    assert path.exists(), "a shard that did not make the file removed it"
    with pytest.raises(DataError), first:
        raise DataError("the first shard failed too")
    assert not path.exists()


def test_a_failing_maker_keeps_the_file_when_another_writer_committed_to_it(tmp_path: Path, official_db: Path) -> None:
    """Shard A made the file, shard B committed its threads into it, then A failed: removing the
    file would take B's finished work with it. It stays, holding what both committed."""
    with SqliteStore.open(f"sqlite:///{official_db}") as example:
        records = list(example.records())
    mine = [r for r in records if r.key.thread_id == "thread-1"]
    theirs = [r for r in records if r.key.thread_id == "thread-2"]
    url = f"sqlite:///{tmp_path / 'new.db'}"
    maker = SqliteStore.open(url, write=True)
    with SqliteStore.open(url, write=True) as other:
        assert other.write(theirs).checkpoints_written == len(theirs)
    with pytest.raises(DataError), maker:
        maker.write(mine)
        raise DataError("a bad line in the maker's input")
    with SqliteStore.open(url) as kept:
        assert sorted(h.key.thread_id for h in kept.headers()) == sorted(r.key.thread_id for r in mine + theirs)
        keys = [h.key_tuple for h in kept.headers()]
    # SqliteSaver reads every checkpoint that survived as it reads it in the store both came from
    assert tuple_view(tmp_path / "new.db", keys) == tuple_view(official_db, keys)
    lone = f"sqlite:///{tmp_path / 'lone.db'}"
    with pytest.raises(DataError), SqliteStore.open(lone, write=True) as alone:
        alone.write(mine)
        raise DataError("nobody else wrote here")
    assert not (tmp_path / "lone.db").exists(), "a file holding only the failed run's rows is removed"
