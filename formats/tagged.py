"""msgpack ↔ portable tagged JSON, without importing or calling anything (spec §2.6).

The JsonPlus serializer stores class instances as msgpack *ext* values whose payload names
a module and a callable. LangGraph's own decoder imports and calls them; this module only
records them:

* ext          → ``{"$ext": code, "v": <payload, recursively tagged>}``
* bin          → ``{"$bin": "<base64>"}``
* NaN / ±Inf   → ``{"$float": "nan" | "inf" | "-inf"}``; a NaN with other sign or payload bits
  keeps them as 16 hex digits: ``{"$float": "fff8000000000000"}``
* a map with a non-str key or a key starting with ``$`` → ``{"$map": [[k, v], ...]}``
* anything else stays plain JSON (map order kept).

``encode(decode(b)) == b`` for everything ormsgpack produces. ``decode_exact`` checks
that and falls back to ``{"$raw": "<base64>"}`` when a producer used a non-minimal
encoding that would not survive the round trip.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import Any

import ormsgpack

from ckpt.backends.core.msgpack_raw import RawExt, unpack

_TAGS = frozenset({"$ext", "$bin", "$float", "$map", "$raw"})


_unpack = unpack


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def decode(data: bytes) -> Any:
    """msgpack bytes → tagged JSON value. Raises ``ValueError`` on malformed msgpack."""
    try:
        return to_tagged(_unpack(data))
    except (ormsgpack.MsgpackDecodeError, TypeError) as exc:
        raise ValueError(f"malformed msgpack: {exc}") from exc


def decode_exact(data: bytes) -> Any:
    """Like ``decode`` but guarantees ``encode(result) == data``.

    When the bytes use an encoding ormsgpack would not produce (float32, non-minimal ints),
    the result is ``{"$raw": <base64>, "view": <decoded>}``: exact bytes plus a readable view.
    Malformed msgpack still raises ``ValueError``.
    """
    value = decode(data)
    try:
        if encode(value) == data:
            return value
    except (ValueError, TypeError, ormsgpack.MsgpackEncodeError):
        pass
    return {"$raw": b64(data), "view": value}


def check(data: bytes) -> None:
    """Raise ``ValueError`` exactly when ``decode(data)`` would, without building its result.

    ``decode`` fails only when the bytes, or the payload of an ext value at any depth, are not
    msgpack: one C unpack whose ext hook unpacks each payload in turn finds the same failures
    (``doctor`` runs this on every payload; ``decode_exact`` costs 10-20x more).
    """
    try:
        ormsgpack.unpackb(data, ext_hook=_check_ext, option=ormsgpack.OPT_NON_STR_KEYS)
    except (ValueError, TypeError) as exc:  # MsgpackDecodeError is a ValueError; so is a failed ext hook
        raise ValueError(f"malformed msgpack: {exc}") from exc


def _check_ext(code: int, payload: bytes) -> int:
    # Nothing is imported or called: the payload is only unpacked, as ``to_tagged`` does.
    ormsgpack.unpackb(payload, ext_hook=_check_ext, option=ormsgpack.OPT_NON_STR_KEYS)
    return code


def to_tagged(obj: Any) -> Any:
    """A decoded msgpack object (with ``RawExt`` leaves) → tagged JSON."""
    if isinstance(obj, RawExt):
        return {"$ext": obj.code, "v": to_tagged(_unpack(obj.data))}
    if isinstance(obj, bytes):
        return {"$bin": b64(obj)}
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"$float": _float_tag(obj)}
    if isinstance(obj, list):
        return [to_tagged(item) for item in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return {k: to_tagged(v) for k, v in obj.items()}
        return {"$map": [[to_tagged(k), to_tagged(v)] for k, v in obj.items()]}
    return obj


def encode(value: Any) -> bytes:
    """Tagged JSON → msgpack bytes, the inverse of ``decode``."""
    if isinstance(value, dict) and "$raw" in value:
        return unb64(value["$raw"])
    return ormsgpack.packb(from_tagged(value), option=ormsgpack.OPT_NON_STR_KEYS)


def from_tagged(value: Any) -> Any:
    """Tagged JSON → objects ormsgpack packs back into the original bytes."""
    if isinstance(value, list):
        return [from_tagged(item) for item in value]
    if not isinstance(value, dict):
        return value
    tag = _tag_of(value)
    if tag == "$ext":
        return ormsgpack.Ext(int(value["$ext"]), encode(value["v"]))
    if tag == "$bin":
        return unb64(value["$bin"])
    if tag == "$float":
        text = value["$float"]
        return struct.unpack(">d", bytes.fromhex(text))[0] if len(text) == 16 else float(text)
    if tag == "$map":
        return {_hashable(from_tagged(k)): from_tagged(v) for k, v in value["$map"]}
    if tag == "$raw":
        raise ValueError("a $raw value can only stand for a whole payload")
    return {k: from_tagged(v) for k, v in value.items()}


_CANONICAL_NAN = struct.pack(">d", float("nan"))


def _float_tag(value: float) -> str:
    if not math.isnan(value):
        return "inf" if value > 0 else "-inf"
    bits = struct.pack(">d", value)
    return "nan" if bits == _CANONICAL_NAN else bits.hex()


def _tag_of(value: dict[str, Any]) -> str | None:
    for key in value:
        if key in _TAGS:
            return key
    return None


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        raise ValueError("a list cannot be a map key")
    return key
