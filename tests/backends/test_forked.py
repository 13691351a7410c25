"""Two halves of a read at once (the upper one in a forked child) and where SQLite cuts them."""

from __future__ import annotations

import bisect
import os
import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.errors import DataError, StoreNotFoundError
from ckpt.backends.forked import in_two_processes
from ckpt.backends.sqlite_ranges import split_point

NAMES = [f"t{n:04d}" for n in range(5000)]


def _below(split: str) -> Iterator[tuple[str, int]]:
    return ((name, len(name)) for name in NAMES if name < split)


def _from(split: str) -> Iterator[tuple[str, int]]:
    return ((name, len(name)) for name in NAMES if name >= split)


def _assert_no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_items_come_out_in_order_lower_half_first() -> None:
    assert list(in_two_processes(lambda: _below("t1234"), lambda: _from("t1234"))) == [(n, 5) for n in NAMES]
    assert list(in_two_processes(lambda: _below("t0000"), lambda: _from("t0000"))) == [(n, 5) for n in NAMES]
    _assert_no_child_left()


def test_a_ckpt_error_in_the_child_is_raised_as_itself_before_any_child_item() -> None:
    def broken() -> Iterator[tuple[str, int]]:
        yield ("t4000", 5)
        raise StoreNotFoundError("no such file: /x/agent.db")

    seen = []
    with pytest.raises(StoreNotFoundError, match="no such file: /x/agent.db"):
        for item in in_two_processes(lambda: _below("t1000"), broken):
            seen.append(item)
    assert seen == [(n, 5) for n in NAMES[:1000]]
    _assert_no_child_left()


def test_another_error_in_the_child_becomes_a_data_error_with_its_message() -> None:
    def broken() -> Iterator[tuple[str, int]]:
        raise sqlite3.DatabaseError("database disk image is malformed")
        yield ("never", 0)

    with pytest.raises(DataError, match="second half failed: database disk image is malformed"):
        list(in_two_processes(lambda: _below("t1000"), broken))
    _assert_no_child_left()


def test_stopping_early_kills_and_reaps_the_child() -> None:
    def endless() -> Iterator[int]:
        while True:
            yield 1

    items = in_two_processes(lambda: iter([0, 0, 0]), endless)
    assert next(items) == 0
    items.close()  # type: ignore[attr-defined]
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
