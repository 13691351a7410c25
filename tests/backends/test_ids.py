"""Times decoded from uuid6 checkpoint ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.core import ids as ids_module
from ckpt.backends.core.ids import checkpoint_iso, checkpoint_isos, checkpoint_time
from ckpt.cli.options import iso_time

GREGORIAN = datetime(1582, 10, 15, tzinfo=timezone.utc)


def _exact_iso(ticks: int) -> str:
    """Integer arithmetic in datetime: no float rounding at second boundaries."""
    return (GREGORIAN + timedelta(seconds=ticks // 10**7)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid6(ticks: int, tail: int) -> str:
    high, mid, low = ticks >> 28, (ticks >> 12) & 0xFFFF, ticks & 0xFFF
    return f"{high:08x}-{mid:04x}-6{low:03x}-{tail >> 48:04x}-{tail & (2**48 - 1):012x}"


@given(st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1))
def test_iso_time_of_an_id_is_its_exact_second(ticks: int, tail: int) -> None:
    assert checkpoint_iso(_uuid6(ticks, tail)) == _exact_iso(ticks)


def test_the_last_tick_of_a_second_stays_in_that_second() -> None:
    unix_2026 = 0x01B21DD213814000 + 1_780_000_000 * 10**7  # 100-ns ticks since 1582 at a whole second
    assert checkpoint_iso(_uuid6(unix_2026 - 1, 0)) == _exact_iso(unix_2026 - 1)
    assert checkpoint_iso(_uuid6(unix_2026 - 1, 0)) != checkpoint_iso(_uuid6(unix_2026, 0))


def test_known_ids_and_other_forms() -> None:
    assert checkpoint_iso("1f0e8a9e-a25e-6d66-bfff-07370e2d6494") == iso_time(
        checkpoint_time("1f0e8a9e-a25e-6d66-bfff-07370e2d6494")
    )
    # worked by hand: 1582-10-15 + 0x1f0c6a1e2e5bd66 x 100 ns
    assert checkpoint_iso("1f0c6a1e-2e5b-6d66-8000-000000000000") == "2025-11-21T06:18:24Z"
    for other in ("", "thread-1", "1f0e8a9e-a25e-4d66-bfff-07370e2d6494", "zzzzzzzz-a25e-6d66-bfff-07370e2d6494"):
        assert checkpoint_iso(other) is None


def _near_uuid6(ticks: int, tail: int, at: int, char: str) -> str:
    """A uuid6 id with one character replaced: other forms, some of which the per-id path still reads."""
    text = _uuid6(ticks, tail)
    return text[:at] + char + text[at + 1 :]


_IDS = st.one_of(
    st.builds(_uuid6, st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1)),
    st.builds(_uuid6, st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1)).map(str.upper),
    st.builds(
        _near_uuid6,
        st.integers(0, 2**60 - 1),
        st.integers(0, 2**64 - 1),
        st.integers(0, 35),
        st.sampled_from(["-", " ", "_", "g", "\t", "6", "F", "+"]),
    ),
    st.text(max_size=40),
)


@given(st.lists(_IDS, max_size=12))
def test_bulk_conversion_equals_the_per_id_one(ids: list[str]) -> None:
    assert checkpoint_isos(ids) == [checkpoint_iso(i) for i in ids]


@given(st.lists(st.builds(_uuid6, st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1)), min_size=1, max_size=12))
def test_bulk_conversion_of_canonical_ids_is_exact(ids: list[str]) -> None:
    assert checkpoint_isos(ids) == [checkpoint_iso(i) for i in ids]
    assert all(t is not None for t in checkpoint_isos(ids))


def test_canonical_ids_take_the_bulk_path(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = ["2025-11-21T06:18:24Z", "2025-11-21T06:18:24Z"]
    ids = ["1f0c6a1e-2e5b-6d66-8000-000000000000", "1F0C6A1E-2E5B-6D66-8000-00000000000A"]
    monkeypatch.setattr(ids_module, "checkpoint_iso", lambda _: pytest.fail("per-id path taken"))
    assert checkpoint_isos(ids) == expected
