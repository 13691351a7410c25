"""Grouping unordered pairs in bounded memory (a Redis Cluster's SCAN, ``core.grouping``)."""

from __future__ import annotations

import random

import pytest

from ckpt.backends.core.grouping import grouped


@pytest.mark.parametrize("in_memory", [1, 7, 10_000])
def test_groups_come_out_whole_and_in_code_point_order(in_memory: int) -> None:
    rng = random.Random(3)
    groups = ["b", "a", "ü", "Z", "日本", "😀", "a b", ""]
    pairs = [(rng.choice(groups), f"key-{n}") for n in range(500)]
    want: dict[str, list[str]] = {}
    for group, item in pairs:
        want.setdefault(group, []).append(item)
    got = list(grouped(pairs, in_memory=in_memory))  # 1 and 7 spool to disk at once
    assert [g for g, _ in got] == sorted(want)
    assert dict(got) == want  # each group's items in arrival order


def test_nothing_gives_nothing() -> None:
    assert list(grouped([], in_memory=1)) == []
