"""Times decoded from uuid6 checkpoint ids."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ckpt.backends.ids import checkpoint_iso, checkpoint_time
from ckpt.cli.options import iso_time


def _uuid6(ticks: int, tail: int) -> str:
    high, mid, low = ticks >> 28, (ticks >> 12) & 0xFFFF, ticks & 0xFFF
    return f"{high:08x}-{mid:04x}-6{low:03x}-{tail >> 48:04x}-{tail & (2**48 - 1):012x}"


@given(st.integers(0, 2**60 - 1), st.integers(0, 2**64 - 1))
def test_iso_time_of_an_id_is_the_formatted_epoch(ticks: int, tail: int) -> None:
    checkpoint_id = _uuid6(ticks, tail)
    assert checkpoint_iso(checkpoint_id) == iso_time(checkpoint_time(checkpoint_id))


def test_known_ids_and_other_forms() -> None:
    assert checkpoint_iso("1f0e8a9e-a25e-6d66-bfff-07370e2d6494") == iso_time(
        checkpoint_time("1f0e8a9e-a25e-6d66-bfff-07370e2d6494")
    )
    # worked by hand: 1582-10-15 + 0x1f0c6a1e2e5bd66 x 100 ns
    assert checkpoint_iso("1f0c6a1e-2e5b-6d66-8000-000000000000") == "2025-11-21T06:18:24Z"
    for other in ("", "thread-1", "1f0e8a9e-a25e-4d66-bfff-07370e2d6494", "zzzzzzzz-a25e-6d66-bfff-07370e2d6494"):
        assert checkpoint_iso(other) is None
