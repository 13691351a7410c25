"""Channel versions in the form each saver's ``get_next_version`` expects (spec §1.5, §8 rule 4).

SQLite, PostgreSQL and Redis use zero-padded strings (``"0000…0003.0.8601"``); MongoDB and
Couchbase use integers. A thread moved between the two families must be converted, in
``channel_versions`` and ``versions_seen`` alike, or the saver's ``max()`` over mixed types
fails on the next step. Checkpoint ids, ``v``, namespaces and task ids are never touched.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ckpt.backends.core.msgpack_raw import pack, unpack
from ckpt.backends.core.msgpack_spans import MsgpackSpanError, map_entries, skip

_STRING, _INT = "string", "int"


def version_kind(checkpoint: bytes) -> str | None:
    """``"string"`` or ``"int"`` from the first channel version, read without decoding the blob."""
    try:
        for raw_key, start, _end in map_entries(checkpoint):
            if raw_key == b"\xb0channel_versions":
                entries = map_entries(checkpoint, start)
                if not entries:
                    return None
                marker = checkpoint[entries[0][1]]
                is_str = 0xA0 <= marker <= 0xBF or marker in (0xD9, 0xDA, 0xDB)
                return _STRING if is_str else _INT
    except (MsgpackSpanError, IndexError):
        return None
    return None


def to_string_versions(checkpoint: bytes) -> bytes:
    """The checkpoint with integer versions as padded strings (no-op when already strings).

    As in :func:`to_int_versions`, the kind comes from one C unpack: ``version_kind``'s walk in
    Python past every channel value (before ``channel_versions`` in langgraph's field order) was
    a third of the CPU of a migrate PostgreSQL → SQLite (issue #24).
    """
    if _strings_already(checkpoint):
        return checkpoint
    try:
        fields = unpack(checkpoint)
    except (ValueError, TypeError):
        if version_kind(checkpoint) != _INT:
            return checkpoint  # not ours to judge: carried as it is
        raise
    if strings_or_none(fields.get("channel_versions") if isinstance(fields, dict) else None):
        return checkpoint  # strings already, or nothing to convert: the very same bytes
    values = fields.get("channel_values") or {}
    string_versions(fields, {k: pack(v) for k, v in values.items()})
    return pack(fields)


def to_int_versions(checkpoint: bytes) -> bytes:
    """The checkpoint with padded-string versions as their integer counters.

    The versions' kind is read from one C unpack, not by ``version_kind``'s walk in Python past
    every channel value (that walk was about half of ckpt's CPU in a migrate to MongoDB).
    """
    try:
        fields = unpack(checkpoint)
    except (ValueError, TypeError):
        if version_kind(checkpoint) != _STRING:
            return checkpoint  # not ours to judge: carried as it is
        raise
    versions = fields.get("channel_versions") if isinstance(fields, dict) else None
    if not isinstance(versions, dict) or not versions or not isinstance(next(iter(versions.values())), str):
        return checkpoint  # integers already, or nothing to convert: the very same bytes
    fields["channel_versions"] = {k: _counter(v) for k, v in versions.items()}
    seen = fields.get("versions_seen") or {}
    for node, channels in seen.items():
        if isinstance(channels, dict):
            seen[node] = {ch: _counter(v) for ch, v in channels.items()}
    return pack(fields)


def strings_or_none(versions: Any) -> bool:
    """Whether ``to_string_versions`` leaves a checkpoint with these ``channel_versions`` as it
    is: not a map, an empty one, or one whose first version is a string already."""
    return not isinstance(versions, dict) or not versions or isinstance(next(iter(versions.values())), str)


def _counter(version: Any) -> Any:
    if isinstance(version, str) and version.split(".", 1)[0].isdigit():
        return int(version.split(".", 1)[0])
    return version


def string_versions(fields: dict[str, Any], value_bytes: dict[str, bytes]) -> None:
    """Integer versions → ``f"{n:032}.<digest of the value>"``, in place.

    The counter still orders versions, and the suffix keeps fork branches that reuse a counter
    with another value from sharing a PostgreSQL blob row. A ``versions_seen`` entry equal to
    the channel's current counter gets the very same string (so nothing re-triggers); older
    ones only need the counter to compare lower.
    """
    current: dict[str, str] = {}
    for channel, version in (fields.get("channel_versions") or {}).items():
        if isinstance(version, int) and not isinstance(version, bool):
            digest = hashlib.sha256(value_bytes.get(channel, b"")).hexdigest()[:16]
            current[channel] = f"{version:032}.{digest}"
    fields["channel_versions"] = {k: current.get(k, v) for k, v in (fields.get("channel_versions") or {}).items()}
    seen = fields.get("versions_seen") or {}
    for node, channels in seen.items():
        if isinstance(channels, dict):
            seen[node] = {ch: _seen_version(ch, v, current) for ch, v in channels.items()}


def _seen_version(channel: str, version: Any, current: dict[str, str]) -> Any:
    if not isinstance(version, int) or isinstance(version, bool):
        return version
    mapped = current.get(channel)
    if mapped is not None and int(mapped.split(".", 1)[0]) == version:
        return mapped
    return f"{version:032}.0"


_VERSIONS_KEY = b"channel_versions"


def _strings_already(checkpoint: bytes) -> bool:
    """True when :func:`to_string_versions` would surely return ``checkpoint`` as it is, judged
    from the bytes after each occurrence of ``channel_versions`` (C's ``bytes.find``), not by an
    unpack (a third of a migrate's writer CPU from stores whose versions are strings: issue #24).

    The top-level key, however its string is framed, is directly followed by its value, so it is
    one of the occurrences looked at; others (inside a message's text, a bin payload) can only
    send the checkpoint down the full path, never keep it from there. "Surely" is: every
    occurrence is followed by something that is not a map, an empty map, or a map whose first
    key is a string and whose first value is a string."""
    at = checkpoint.find(_VERSIONS_KEY)
    while at >= 0:
        if not _no_int_first(checkpoint, at + len(_VERSIONS_KEY)):
            return False
        at = checkpoint.find(_VERSIONS_KEY, at + 1)
    return True


def _no_int_first(data: bytes, at: int) -> bool:
    """The value at ``at`` is not a map, an empty map, or a map whose first value is a string."""
    if at >= len(data):
        return False
    marker = data[at]
    if 0x80 <= marker <= 0x8F:
        count, at = marker & 0x0F, at + 1
    elif marker in (0xDE, 0xDF):
        width = 2 if marker == 0xDE else 4
        count, at = int.from_bytes(data[at + 1 : at + 1 + width], "big"), at + 1 + width
    else:
        return True  # not a map: no versions the conversion would touch
    if count == 0:
        return True
    key_end = _str_end(data, at)
    return key_end is not None and _str_end(data, key_end) is not None


def _str_end(data: bytes, at: int) -> int | None:
    """Where the msgpack string at ``at`` ends; ``None`` if it is not a whole string."""
    if at >= len(data) or not (0xA0 <= data[at] <= 0xBF or data[at] in (0xD9, 0xDA, 0xDB)):
        return None
    try:
        return skip(data, at)
    except MsgpackSpanError:
        return None
