"""Checkpoint ids are uuid6 (spec §1.2): their first 60 bits are a 100-ns timestamp.

Decoding the time from the id lets ``list`` show first/last times without reading a blob,
and lets ``--since/--until`` become a plain string range on the id column.
"""

from __future__ import annotations

import re

# 100-ns ticks between the Gregorian epoch (1582-10-15) and the Unix epoch.
_GREGORIAN_OFFSET = 0x01B21DD213814000
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-6[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$")


def checkpoint_time(checkpoint_id: str) -> float | None:
    """Epoch seconds encoded in a uuid6 checkpoint id, or ``None`` for other id forms."""
    if not _UUID_RE.match(checkpoint_id):
        return None
    hex_digits = checkpoint_id.replace("-", "")
    ticks = (int(hex_digits[0:8], 16) << 28) | (int(hex_digits[8:12], 16) << 12) | int(hex_digits[13:16], 16)
    return (ticks - _GREGORIAN_OFFSET) / 1e7


def lowest_id_at(epoch_seconds: float) -> str:
    """The smallest uuid6 string whose time is ``epoch_seconds`` (a bound for id ranges)."""
    ticks = max(0, int(round(epoch_seconds * 1e7)) + _GREGORIAN_OFFSET)
    high, mid, low = ticks >> 28, (ticks >> 12) & 0xFFFF, ticks & 0xFFF
    return f"{high:08x}-{mid:04x}-6{low:03x}-0000-000000000000"
