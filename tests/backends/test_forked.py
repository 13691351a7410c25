"""Two halves of a read at once (the upper one in a forked child) and where SQLite cuts them."""

from __future__ import annotations

import bisect
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.core.errors import DataError, StoreNotFoundError
from ckpt.backends.ops import forked
from ckpt.backends.ops.forked import in_parts
from ckpt.backends.sqlite.ranges import split_point, split_points

T = TypeVar("T")
NAMES = [f"t{n:04d}" for n in range(5000)]
CUTS = [None, "t0100", "t1000", "t1001", "t2500", "t4999", None]  # six parts, two of one name or none


Read = Callable[[int], Iterator[tuple[str, int]]]


def _reader(cuts: list[str | None]) -> Read:
    """The names between ``cuts[part]`` and ``cuts[part + 1]`` (``None``: open)."""

    def read(part: int) -> Iterator[tuple[str, int]]:
        lo, hi = cuts[part], cuts[part + 1]
        return ((n, len(n)) for n in NAMES if (lo is None or n >= lo) and (hi is None or n < hi))

    return read


_part = _reader(CUTS)


@contextmanager
def _there(read: Callable[[int], Iterator[T]]) -> Iterator[Callable[[int], Iterator[T]]]:
    yield read


def _assert_no_child_left() -> None:
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@pytest.mark.parametrize("parts", [1, 2, 6])
def test_items_come_out_in_order(parts: int) -> None:
    read = _reader(CUTS if parts == 6 else [None, "t1234", None] if parts == 2 else [None, None])
    assert list(in_parts(parts, read, lambda: _there(read))) == [(n, 5) for n in NAMES]
    _assert_no_child_left()


def test_a_slow_side_reads_fewer_parts_and_the_order_holds() -> None:
    """The child sleeps in every part it reads: this process reads the others, output unchanged."""
    mine: list[int] = []

    def here(part: int) -> Iterator[tuple[str, int]]:
        mine.append(part)
        return _part(part)

    def slow(part: int) -> Iterator[tuple[str, int]]:
        time.sleep(0.5)
        return _part(part)

    assert list(in_parts(6, here, lambda: _there(slow))) == [(n, 5) for n in NAMES]
    assert mine == list(range(len(mine))) and 4 <= len(mine) <= 6  # a prefix; the child got one or two
    _assert_no_child_left()


def test_each_part_is_read_once_by_one_side() -> None:
    claims = forked._Claims(7, os.open(os.devnull, os.O_RDWR))
    taken = [claims.front(), claims.back(), claims.front(), claims.back(), claims.back()]
    rest = [claims.front(), claims.front(), claims.back(), claims.front()]
    assert taken == [0, 6, 1, 5, 4] and rest == [2, 3, None, None]


def test_a_ckpt_error_in_the_child_is_raised_as_itself_before_any_child_item() -> None:
    def broken(part: int) -> Iterator[tuple[str, int]]:
        yield ("t4999", 5)
        raise StoreNotFoundError("no such file: /x/agent.db")

    def here(part: int) -> Iterator[tuple[str, int]]:
        time.sleep(0.2)  # the child has claimed its part by now
        return _part(part)

    seen = []
    with pytest.raises(StoreNotFoundError, match="no such file: /x/agent.db"):
        for item in in_parts(6, here, lambda: _there(broken)):
            seen.append(item)
    assert seen == [(n, 5) for n in NAMES[: len(seen)]] and ("t4999", 5) not in seen
    _assert_no_child_left()


def test_another_error_in_the_child_becomes_a_data_error_with_its_message() -> None:
    @contextmanager
    def broken() -> Iterator[Callable[[int], Iterator[tuple[str, int]]]]:
        raise sqlite3.DatabaseError("database disk image is malformed")
        yield _part

    with pytest.raises(DataError, match="second reader failed: database disk image is malformed"):
        list(in_parts(2, _part, broken))
    _assert_no_child_left()


def test_stopping_early_kills_and_reaps_the_child() -> None:
    def endless(part: int) -> Iterator[int]:
        while True:
            yield 1

    items = in_parts(2, lambda part: iter([0, 0, 0]), lambda: _there(endless))
    assert next(items) == 0
    items.close()  # type: ignore[attr-defined]
    _assert_no_child_left()


def _first_from(ids: list[str]) -> Callable[[str], str | None]:
    """The smallest of the sorted ``ids`` at or after a probe (what one index seek answers)."""
    return lambda probe: ids[at] if (at := bisect.bisect_left(ids, probe)) < len(ids) else None


def _last_before(ids: list[str]) -> Callable[[str], str | None]:
    """The largest of the sorted ``ids`` before a probe."""
    return lambda probe: ids[at - 1] if (at := bisect.bisect_left(ids, probe)) > 0 else None


@given(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=60, unique=True))
def test_split_point_lies_inside_the_range(ids: list[str]) -> None:
    ids.sort()

    split = split_point(ids[0], ids[-1], _first_from(ids))
    if split is None:
        return
    assert ids[0] < split <= ids[-1]
    assert split.encode("utf-8")  # bindable as SQLite text


def test_split_point_of_uuid_like_ids_is_near_the_middle() -> None:
    ids = sorted(f"{n:032x}" for n in range(0, 2**128, 2**128 // 1000))

    split = split_point(ids[0], ids[-1], _first_from(ids))
    assert split is not None and 0.4 < bisect.bisect_left(ids, split) / len(ids) < 0.6


@given(st.lists(st.text(min_size=0, max_size=6), min_size=1, max_size=60, unique=True), st.integers(1, 9))
def test_split_points_increase_inside_the_range(ids: list[str], parts: int) -> None:
    ids.sort()

    points = split_points(ids[0], ids[-1], parts, _first_from(ids), _last_before(ids))
    assert len(points) <= parts - 1
    assert points == sorted(set(points)) and all(ids[0] < p <= ids[-1] for p in points)


def test_split_points_of_uuid_like_ids_make_even_parts() -> None:
    ids = sorted(f"{n:032x}" for n in range(0, 2**128, 2**128 // 4000))

    points = split_points(ids[0], ids[-1], 8, _first_from(ids), _last_before(ids))
    assert len(points) == 7
    sizes = [
        b - a
        for a, b in zip(
            [0, *(bisect.bisect_left(ids, p) for p in points)],
            [*(bisect.bisect_left(ids, p) for p in points), len(ids)],
        )
    ]
    assert all(0.08 < size / len(ids) < 0.17 for size in sizes), sizes


@pytest.mark.parametrize(("looks", "idle"), [([1], True), ([3, 2, 1], True), ([3, 2, 2], False), ([5, 5, 5, 1], False)])
def test_a_core_is_idle_when_one_of_three_looks_finds_it_so(
    monkeypatch: pytest.MonkeyPatch, looks: list[int], idle: bool
) -> None:
    seen = iter(looks)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(forked, "_running", lambda: next(seen))
    assert forked.idle_core() is idle


def test_one_core_is_never_idle_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})
    monkeypatch.setattr(forked, "_running", lambda: 0)
    assert forked.idle_core() is False
