"""`ckpt list` on SQLite reads large files in two thread-id ranges at once (the upper one in a forked
child); the rows must not change, a failing child must fail the listing, an early stop must reap it."""

from __future__ import annotations

import bisect
import os
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends import Selection, open_store, sqlite_ranges
from ckpt.backends import sqlite as sqlite_driver
from ckpt.backends.errors import DataError
from ckpt.backends.sqlite_ranges import split_point, two_ranges
from tests.conftest import sqlite_url

FORKS: list[int] = []
"""One entry per listing that took the two-range path (reset by the fixture)."""
ODD_IDS = ["", "a", "ab", "user-1", "user-10", "user-2", "Z", "é", "中文", "\U0001f600", "x" * 300]


@pytest.fixture
def many_threads(db_copy: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The official store plus copies of one checkpoint under odd and numerous thread ids; split always."""
    conn = sqlite3.connect(db_copy)
    row = conn.execute("SELECT * FROM checkpoints ORDER BY checkpoint_id LIMIT 1").fetchone()
    ids = ODD_IDS + [f"{n:08x}-{n % 7}" for n in range(0, 2**32, 2**32 // 500)]
    conn.executemany("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", [(i, *row[1:]) for i in ids])
    conn.commit()
    conn.close()
    real = sqlite_ranges.two_ranges

    def counted(*args: object) -> Iterator[tuple[object, ...]]:
        FORKS.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_driver, "worth_two_readers", lambda path: True)
    monkeypatch.setattr(sqlite_driver, "two_ranges", counted)
    FORKS.clear()
    return db_copy


def _expected(path: Path, where: str = "", params: tuple[str, ...] = ()) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        sql = "SELECT thread_id, count(*), min(checkpoint_id), max(checkpoint_id) FROM checkpoints"
        return conn.execute(f"{sql} {where} GROUP BY thread_id ORDER BY thread_id", params).fetchall()
    finally:
        conn.close()


def _listed(path: Path, selection: Selection = Selection()) -> list[tuple[object, ...]]:
    with open_store(sqlite_url(path)) as store:
        return [
            (t.thread_id, t.checkpoints, t.first_checkpoint_id, t.last_checkpoint_id)
            for t in store.threads(selection, details=False)
        ]


def test_two_ranges_list_what_one_query_lists(many_threads: Path) -> None:
    assert len(_expected(many_threads)) > 500
    assert _listed(many_threads) == _expected(many_threads)
    assert FORKS  # the two-range path really ran
    assert _listed(many_threads, Selection(thread_glob="user-*")) == _expected(
        many_threads, "WHERE thread_id GLOB ?", ("user-*",)
    )
    assert _listed(many_threads, Selection(checkpoint_ns="")) == _expected(
        many_threads, "WHERE checkpoint_ns = ?", ("",)
    )


def test_a_reader_that_leaves_early_stops_the_second_range(many_threads: Path) -> None:
    with open_store(sqlite_url(many_threads)) as store:
        rows = store.threads(details=False)
        assert next(rows).thread_id == ""
        rows.close()  # type: ignore[attr-defined]
    assert _listed(many_threads)[:1] == _expected(many_threads)[:1]
    _assert_no_child_left()


def _assert_no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def _numbers(condition: str, params: Sequence[object]) -> Iterator[tuple[object, ...]]:
    split = params[-1]
    below = condition == "thread_id < ?"
    return iter([(f"t{n:04d}", n) for n in range(2000) if (f"t{n:04d}" < split) == below])  # type: ignore[operator]


def test_two_ranges_spools_the_childs_rows_in_order() -> None:
    assert list(two_ranges(_numbers, _numbers, [], "t1234")) == [(f"t{n:04d}", n) for n in range(2000)]
    _assert_no_child_left()


def test_a_failing_child_fails_the_listing_with_its_message() -> None:
    def broken(condition: str, params: Sequence[object]) -> Iterator[tuple[object, ...]]:
        yield ("t1500", 1)
        raise sqlite3.DatabaseError("database disk image is malformed")

    rows = two_ranges(_numbers, broken, [], "t1000")
    with pytest.raises(DataError, match="upper thread-id range failed: database disk image is malformed"):
        for row in rows:
            assert str(row[0]) < "t1000"  # none of the child's rows before the error
    _assert_no_child_left()


@given(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=60, unique=True))
def test_split_point_lies_inside_the_range(ids: list[str]) -> None:
    ids.sort()

    def first_from(probe: str) -> str | None:
        at = bisect.bisect_left(ids, probe)
        return ids[at] if at < len(ids) else None

    split = split_point(ids[0], ids[-1], first_from)
    if split is None:
        return
    assert ids[0] < split <= ids[-1]
    assert split.encode("utf-8")  # bindable as SQLite text


def test_split_point_of_uuid_like_ids_is_near_the_middle() -> None:
    ids = sorted(f"{n:032x}" for n in range(0, 2**128, 2**128 // 1000))

    def first_from(probe: str) -> str | None:
        at = bisect.bisect_left(ids, probe)
        return ids[at] if at < len(ids) else None

    split = split_point(ids[0], ids[-1], first_from)
    assert split is not None and 0.4 < bisect.bisect_left(ids, split) / len(ids) < 0.6
