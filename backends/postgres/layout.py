"""Whole-checkpoint msgpack ↔ the PostgresSaver split layout (spec §4.2, §4.3, §8 rules 1-2).

``split`` does what ``PostgresSaver.put`` does to a checkpoint: primitives stay inline in the
JSONB ``checkpoint`` column, every other channel value becomes a ``checkpoint_blobs`` row keyed
by its version. Blob bytes are the exact slice of the source blob, so they equal what the
saver itself would write. ``assemble`` is the read path (``SELECT_SQL``): inline values plus
the blobs of the checkpoint's versions, packed into one msgpack map again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
import ormsgpack

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_raw import RawExt, pack
from ckpt.backends.core.msgpack_spans import (
    MsgpackSpanError,
    bin_payload,
    ext_code,
    is_primitive,
    map_entries,
    map_header,
)
from ckpt.backends.core.versions import string_versions

_OPTIONS = ormsgpack.OPT_NON_STR_KEYS
_DELTA_SNAPSHOT = 7
# Field order of a checkpoint as langgraph's create_checkpoint writes it (spec §1.3).
_FIELD_ORDER = ("v", "ts", "id", "channel_values", "channel_versions", "versions_seen", "updated_channels")
# Blob types that can be embedded in a whole-checkpoint msgpack map as they are.
_EMBEDDABLE = {"msgpack", "bytes", "bytearray", "null"}


@dataclass(frozen=True)
class SplitCheckpoint:
    """A checkpoint in the PostgreSQL layout: JSONB text plus blob rows ``(channel, version, type, bytes)``."""

    checkpoint_json: str
    blobs: list[tuple[str, str, str, bytes]]


def _unpack_plain(data: bytes) -> Any:
    def refuse(code: int, _data: bytes) -> Any:
        raise ValueError(f"unexpected msgpack ext {code} outside channel values")

    return ormsgpack.unpackb(data, option=_OPTIONS, ext_hook=refuse)


def _json_safe(value: Any) -> bool:
    """JSONB rejects NaN/Infinity and \\u0000 in strings; such values go to a blob instead."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    return True


def split(record: CheckpointRecord) -> SplitCheckpoint:
    """The PostgreSQL rows for a whole-checkpoint msgpack payload; raises ``CorruptRecordError``."""
    if record.checkpoint.type != "msgpack":
        raise CorruptRecordError(
            f"{record.key}: a {record.checkpoint.type!r} checkpoint payload cannot be split into the PostgreSQL layout"
        )
    try:
        decoded = record.checkpoint.decoded
        fast = _split_fields(decoded) if type(decoded) is dict else None  # what the reader packed: exact
        return fast if fast is not None else _split(record.checkpoint.data)
    except (MsgpackSpanError, ValueError, TypeError, ormsgpack.MsgpackDecodeError) as exc:
        raise CorruptRecordError(f"cannot decode {record.key}: {exc}") from exc


def _split(data: bytes) -> SplitCheckpoint:
    fast = _fast_split(data)
    return fast if fast is not None else _walk_split(data)


_EXTS = (ormsgpack.Ext, RawExt)
"""Decoded ext values (``ormsgpack.Ext`` shows no code: a top-level one is checked once packed)."""


class _DeltaSnapshot(Exception):
    """An ext 7 value: left to the span walker, which keeps its exact bytes."""


def _keep_ext(code: int, payload: bytes) -> Any:
    if code == _DELTA_SNAPSHOT:
        raise _DeltaSnapshot
    return ormsgpack.Ext(code, payload)


def _canonical_fields(data: bytes) -> dict[Any, Any] | None:
    """The decoded checkpoint if re-encoding it gives back exactly ``data``, else ``None``.

    ormsgpack's encoding is compositional (a map is its header plus each key and value
    encoded in order), so when the whole re-encodes to the same bytes, every channel value
    re-encodes to the very slice the span walker would cut: the fast path is then exact.
    A payload made by packing (``Payload.decoded``) is such a whole by construction.
    """
    try:
        fields = ormsgpack.unpackb(data, ext_hook=_keep_ext, option=_OPTIONS)
        if isinstance(fields, dict) and ormsgpack.packb(fields, option=_OPTIONS) == data:
            return fields
    except Exception:  # noqa: BLE001 - any doubt (delta snapshot, odd encoding): the walker decides
        return None
    return None


def _fast_split(data: bytes) -> SplitCheckpoint | None:
    """``_walk_split`` done in C (3-5x faster), or ``None`` whenever it could differ from it."""
    fields = _canonical_fields(data)
    return _split_fields(fields) if fields is not None else None


def _split_fields(decoded: dict[Any, Any]) -> SplitCheckpoint | None:
    """The split of a checkpoint from the fields its canonical msgpack packs (left unchanged),
    or ``None`` where the walker could differ: delta snapshots, int versions (converted by the
    walker), channels whose blob has no version (the walker raises its own error), exts outside
    channel values (the walker refuses them)."""
    values = decoded.get("channel_values")
    versions = decoded.get("channel_versions")
    if not isinstance(values, dict) or not isinstance(versions, dict):
        return None
    if any(issubclass(kind, int) for kind in set(map(type, versions.values()))):
        return None
    inline: dict[Any, Any] = {}
    blobs: list[tuple[str, str, str, bytes]] = []
    for channel, value in values.items():
        if (value is None or isinstance(value, (str, int, float))) and _json_safe(value):
            inline[channel] = value
            continue
        if channel not in versions:
            return None
        if isinstance(value, bytes):
            blobs.append((channel, str(versions[channel]), "bytes", value))
            continue
        packed = pack(value)
        if type(value) in _EXTS and ext_code(packed) == _DELTA_SNAPSHOT:
            return None
        blobs.append((channel, str(versions[channel]), "msgpack", packed))
    fields = {**decoded, "channel_values": inline}
    if "pending_sends" in fields:
        fields["pending_sends"] = []
    try:
        return SplitCheckpoint(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS).decode(), blobs)
    except TypeError:  # an ext (or a huge int) outside channel values: the walker raises the right error
        return None


def _walk_split(data: bytes) -> SplitCheckpoint:
    """The reference split: walks the msgpack spans, slicing each channel value's exact bytes."""
    fields: dict[str, Any] = {}
    inline: dict[str, Any] = {}
    blobs: list[tuple[str, str, bytes]] = []
    values_at = -1
    for raw_key, start, end in map_entries(data):
        key = _unpack_plain(raw_key)
        if key == "channel_values":
            fields[key] = inline
            _split_values(data, start, inline, blobs)
            values_at = start
        elif key == "pending_sends":
            fields[key] = []  # PostgresSaver >= 2.0 reads v<4 sends from the parent's __pregel_tasks writes
        else:
            fields[key] = _unpack_plain(data[start:end])
    if any(isinstance(v, int) for v in (fields.get("channel_versions") or {}).values()):
        # Only int-version sources (MongoDB, Couchbase) pay for a second walk of the values.
        spans = map_entries(data, values_at) if values_at >= 0 else []
        string_versions(fields, {_unpack_plain(k): data[s:e] for k, s, e in spans})
    versions = fields.get("channel_versions") or {}
    rows = []
    for channel, type_tag, blob in blobs:
        if channel not in versions:
            raise ValueError(f"channel {channel!r} has a value but no version")
        rows.append((channel, str(versions[channel]), type_tag, blob))
    return SplitCheckpoint(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS).decode(), rows)


def _split_values(data: bytes, start: int, inline: dict[str, Any], blobs: list[tuple[str, str, bytes]]) -> None:
    for raw_key, value_start, value_end in map_entries(data, start):
        channel = _unpack_plain(raw_key)
        value = data[value_start:value_end]
        if ext_code(value) == _DELTA_SNAPSHOT:
            blobs.append((channel, "msgpack", value))
            inline[channel] = True  # the saver's marker: "the blob at this version wins"
        elif is_primitive(value) and _json_safe(plain := _unpack_plain(value)):
            inline[channel] = plain
        elif (raw := bin_payload(value)) is not None:
            blobs.append((channel, "bytes", raw))
        else:
            blobs.append((channel, "msgpack", value))


def assemble(checkpoint_json: str, blobs: dict[str, tuple[str, bytes]], where: object, fields: Any = None) -> bytes:
    """One msgpack checkpoint from the JSONB column and its blobs ``{channel: (type, bytes)}``.

    JSONB does not keep key order, so fields follow langgraph's own order; the bytes are
    semantically equal to the original (spec §8 rule 2), blob values byte-identical inside.
    The fields before and after ``channel_values`` are packed as two maps whose entries are
    spliced in (one C call each, not two per field: issue #24).
    """
    if fields is None:
        fields = orjson.loads(checkpoint_json)
    if not isinstance(fields, dict):
        raise CorruptRecordError(f"{where}: the checkpoint column is not a JSON object")
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for key in _FIELD_ORDER:
        if key in fields and key != "channel_values":
            (after if key in _AFTER_VALUES else before)[key] = fields[key]
    for key in fields:
        if key not in _FIELD_ORDER:
            after[key] = fields[key]
    values = _assemble_values(fields.get("channel_values") or {}, blobs, where)
    return b"".join((map_header(len(before) + 1 + len(after)), _entries(before), _VALUES_KEY, values, _entries(after)))


_AFTER_VALUES = frozenset(_FIELD_ORDER[_FIELD_ORDER.index("channel_values") + 1 :])
_VALUES_KEY = ormsgpack.packb("channel_values")


def _entries(fields: dict[str, Any]) -> bytes:
    """The packed entries of ``fields`` without their map header."""
    if not fields:
        return b""
    return ormsgpack.packb(fields, option=_OPTIONS)[len(map_header(len(fields))) :]


def _assemble_values(inline: dict[str, Any], blobs: dict[str, tuple[str, bytes]], where: object) -> bytes:
    values: dict[str, bytes] = {}
    for channel, value in inline.items():
        values[channel] = _embed(channel, blobs[channel], where) if channel in blobs else ormsgpack.packb(value)
    for channel, blob in blobs.items():
        if channel not in values and blob[0] != "empty":
            values[channel] = _embed(channel, blob, where)
    parts = [map_header(len(values))]
    for channel, packed in values.items():
        parts += [_packed_name(channel), packed]
    return b"".join(parts)


_NAMES: dict[str, bytes] = {}
_NAMES_MAX = 4096
"""Channel names packed once: a graph has a handful, repeated in every checkpoint."""


def _packed_name(channel: str) -> bytes:
    packed = _NAMES.get(channel)
    if packed is None:
        packed = ormsgpack.packb(channel)
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[channel] = packed
    return packed


def _embed(channel: str, blob: tuple[str, bytes], where: object) -> bytes:
    type_tag, data = blob
    if type_tag == "msgpack":
        return data
    if type_tag in ("bytes", "bytearray"):
        return ormsgpack.packb(data)
    if type_tag == "null":
        return b"\xc0"
    raise CorruptRecordError(
        f"{where}: channel {channel!r} is stored as {type_tag!r}, "
        "which cannot be embedded in a whole-checkpoint payload"
    )
