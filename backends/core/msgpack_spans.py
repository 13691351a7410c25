"""Byte spans of msgpack values, without decoding them.

Converting between a whole-checkpoint msgpack blob (SQLite, MongoDB, Couchbase) and the
PostgreSQL split layout (inline JSON primitives + one blob per channel) needs the exact bytes
of each channel value. Slicing them out of the original blob keeps blob bytes identical to
what the official saver writes (spec §2.6), and never touches ext payloads.
"""

from __future__ import annotations

import struct

_FIXED = {
    0xC0: 0, 0xC2: 0, 0xC3: 0,  # nil, false, true
    0xCA: 4, 0xCB: 8,  # float32/64
    0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8,  # uint8..64
    0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8,  # int8..64
    0xD4: 2, 0xD5: 3, 0xD6: 5, 0xD7: 9, 0xD8: 17,  # fixext 1..16 (type byte + data)
}  # fmt: skip
_LEN_PREFIXED = {  # marker -> (length bytes, extra bytes after the length: ext type)
    0xC4: (1, 0), 0xC5: (2, 0), 0xC6: (4, 0),  # bin
    0xD9: (1, 0), 0xDA: (2, 0), 0xDB: (4, 0),  # str
    0xC7: (1, 1), 0xC8: (2, 1), 0xC9: (4, 1),  # ext
}  # fmt: skip
_CONTAINERS = {
    0xDC: (2, 1),
    0xDD: (4, 1),
    0xDE: (2, 2),
    0xDF: (4, 2),
}  # array16/32, map16/32 -> (len bytes, items per entry)
_UINT = {1: ">B", 2: ">H", 4: ">I"}


class MsgpackSpanError(ValueError):
    """The bytes are not well-formed msgpack."""


def _uint(data: bytes, pos: int, size: int) -> int:
    if pos + size > len(data):
        raise MsgpackSpanError("truncated msgpack")
    value: int = struct.unpack_from(_UINT[size], data, pos)[0]
    return value


def skip(data: bytes, pos: int = 0) -> int:
    """End offset of the msgpack value starting at ``pos``."""
    pending = 1
    while pending:
        pending -= 1
        if pos >= len(data):
            raise MsgpackSpanError("truncated msgpack")
        marker = data[pos]
        pos += 1
        if marker <= 0x7F or marker >= 0xE0:  # fixint
            continue
        if 0x80 <= marker <= 0x8F:  # fixmap
            pending += 2 * (marker & 0x0F)
        elif 0x90 <= marker <= 0x9F:  # fixarray
            pending += marker & 0x0F
        elif 0xA0 <= marker <= 0xBF:  # fixstr
            pos += marker & 0x1F
        elif marker in _FIXED:
            pos += _FIXED[marker]
        elif marker in _LEN_PREFIXED:
            size, extra = _LEN_PREFIXED[marker]
            pos += size + extra + _uint(data, pos, size)
        elif marker in _CONTAINERS:
            size, per_entry = _CONTAINERS[marker]
            pending += per_entry * _uint(data, pos, size)
            pos += size
        else:
            raise MsgpackSpanError(f"invalid msgpack marker 0x{marker:02x}")
    if pos > len(data):
        raise MsgpackSpanError("truncated msgpack")
    return pos


def map_entries(data: bytes, pos: int = 0) -> list[tuple[bytes, int, int]]:
    """``(raw key bytes, value start, value end)`` for each entry of the map at ``pos``."""
    marker = data[pos] if pos < len(data) else -1
    if 0x80 <= marker <= 0x8F:
        count, pos = marker & 0x0F, pos + 1
    elif marker in (0xDE, 0xDF):
        size = 2 if marker == 0xDE else 4
        count, pos = _uint(data, pos + 1, size), pos + 1 + size
    else:
        raise MsgpackSpanError("expected a msgpack map")
    entries = []
    for _ in range(count):
        key_end = skip(data, pos)
        value_end = skip(data, key_end)
        entries.append((data[pos:key_end], key_end, value_end))
        pos = value_end
    return entries


def map_header(count: int) -> bytes:
    """The shortest msgpack map header for ``count`` entries (what ormsgpack writes)."""
    if count <= 15:
        return bytes([0x80 | count])
    if count <= 0xFFFF:
        return b"\xde" + struct.pack(">H", count)
    return b"\xdf" + struct.pack(">I", count)


def is_primitive(value: bytes) -> bool:
    """True for nil, bool, int, float and str: what PostgresSaver keeps inline in JSONB."""
    marker = value[0]
    return (
        marker <= 0x7F
        or marker >= 0xE0
        or 0xA0 <= marker <= 0xBF
        or marker in (0xC0, 0xC2, 0xC3, 0xCA, 0xCB, 0xD9, 0xDA, 0xDB)
        or 0xCC <= marker <= 0xD3
    )


def ext_code(value: bytes) -> int | None:
    """The ext type code if ``value`` is an ext, else ``None``."""
    marker = value[0]
    if 0xD4 <= marker <= 0xD8:
        return struct.unpack_from(">b", value, 1)[0]  # type: ignore[no-any-return]
    if marker in (0xC7, 0xC8, 0xC9):
        size = _LEN_PREFIXED[marker][0]
        return struct.unpack_from(">b", value, 1 + size)[0]  # type: ignore[no-any-return]
    return None


def bin_payload(value: bytes) -> bytes | None:
    """The raw bytes if ``value`` is a msgpack bin, else ``None``."""
    marker = value[0]
    if marker in (0xC4, 0xC5, 0xC6):
        size = _LEN_PREFIXED[marker][0]
        return value[1 + size :]
    return None
