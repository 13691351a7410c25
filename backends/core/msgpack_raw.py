"""msgpack decoding that never runs an ext hook's import: ext values stay ``RawExt``."""

from __future__ import annotations

from typing import Any

import ormsgpack

from ckpt.backends.core.base import Payload

OPTIONS = ormsgpack.OPT_NON_STR_KEYS


class RawExt:
    """An ext value as read: its code and the still-packed payload."""

    __slots__ = ("code", "data")

    def __init__(self, code: int, data: bytes) -> None:
        self.code = code
        self.data = data

    def __hash__(self) -> int:
        return hash((self.code, self.data))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RawExt) and (self.code, self.data) == (other.code, other.data)

    def __repr__(self) -> str:
        # by value, not by address: an odd channel name (a map key holding an ext) is shown with
        # its repr, which must be the same in every read (tests/formats/test_fast_paths.py)
        return f"RawExt({self.code}, {self.data!r})"

    def payload(self) -> Any:
        return unpack(self.data)


def unpack(data: bytes) -> Any:
    return ormsgpack.unpackb(data, ext_hook=RawExt, option=OPTIONS)


def pack(value: Any) -> bytes:
    return ormsgpack.packb(value, option=OPTIONS, default=_default)


def packed(value: Any) -> Payload:
    """A ``msgpack`` payload of ``value`` that keeps ``value`` as its ``decoded`` form (a writer
    that needs the parts, as PostgreSQL's split does, then decodes nothing); the caller hands
    ``value`` over and changes it no more."""
    payload = Payload("msgpack", pack(value))
    payload.decoded = value
    return payload


def _default(value: Any) -> Any:
    if isinstance(value, RawExt):
        return ormsgpack.Ext(value.code, value.data)
    raise TypeError(f"cannot pack {type(value).__name__}")


def plain_json(value: Any) -> Any:
    """An unpacked metadata value as JSON: ext values kept as ``{"$ext": code, "v": …}``, never revived."""
    if isinstance(value, RawExt):
        return {"$ext": value.code, "v": plain_json(value.payload())}
    if isinstance(value, bytes):
        raise ValueError("bytes in metadata")
    if isinstance(value, list):
        return [plain_json(v) for v in value]
    if isinstance(value, dict):
        return {k: plain_json(v) for k, v in value.items()}
    return value
