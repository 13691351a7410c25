"""Times decoded from uuid6 checkpoint ids."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.ids import checkpoint_iso, checkpoint_time
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
