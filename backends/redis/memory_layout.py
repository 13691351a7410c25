"""The bytes of RedisStore's memory layout (langgraph-checkpoint-redis 0.5.2): namespace escaping,
microsecond times, ULID keys, vector documents; no connection here (``memory.py`` does the I/O)."""

from __future__ import annotations

import os
import re
import struct
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from ckpt.backends.core.memory import SEPARATOR, Vector, utc

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
PAGE = 200
"""Rows per cursor read, and documents per JSON.MGET (values can be large: 200 per round trip)."""
TAGS_PER_QUERY = 100
"""Keys per ``@key:{a|b|…}`` lookup."""
_ESCAPE = re.compile(r"([,.<>{}\[\]\\\"':;!@#$%^&*()\-+=~/ ?])")
"""redisvl ``TokenEscaper.DEFAULT_ESCAPED_CHARS``: what RedisStore escapes in a namespace."""
_UNESCAPE = re.compile(r"\\(.)", re.S)
DISTANCES = {"COSINE": "cosine", "IP": "inner_product", "L2": "l2"}
STORE_FIELDS = ("prefix", "key", "created_at", "updated_at", "ttl_minutes", "expires_at")
SIZES_SCRIPT = """
local out = {}
for i = 1, #KEYS, 2 do
  local v = redis.call('JSON.GET', KEYS[i], '$.value')
  out[#out + 1] = v and (#v - 2) or -1
  out[#out + 1] = redis.call('PTTL', KEYS[i]) > 0 and 1 or 0
  out[#out + 1] = redis.call('EXISTS', KEYS[i + 1])
end
return out
"""
"""Per item: value length (the JSON text, RedisJSON's ``[…]`` stripped), has an expiry, has a vector."""


def escape(namespace: tuple[str, ...]) -> str:
    """RedisStore's ``_namespace_to_text``: ``("users", "42")`` → ``users\\.42``."""
    return _ESCAPE.sub(r"\\\1", SEPARATOR.join(namespace))


def unescape(prefix: str) -> tuple[str, ...]:
    """RedisStore's ``_decode_ns``: every backslash dropped, the next character kept, split on ``.``."""
    return tuple(_UNESCAPE.sub(r"\1", prefix).split(SEPARATOR))


def micros(at: datetime) -> int:
    return (utc(at) - EPOCH) // timedelta(microseconds=1)


def from_micros(value: Any) -> datetime:
    return EPOCH + timedelta(microseconds=int(value))


def new_ulid() -> str:
    """A ULID as python-ulid makes it (48-bit ms time, 80 random bits, Crockford base32)."""
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    return "".join(alphabet[(n >> (5 * i)) & 31] for i in reversed(range(26)))


def expiry_ms(at: datetime) -> int:
    """The ``PEXPIREAT`` of an expiry: milliseconds since the epoch, rounded."""
    return round((utc(at) - EPOCH) / timedelta(milliseconds=1))


def text_of(value: Any) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


def float32_index(info: dict[str, Any]) -> bool:
    """Whether the vector index reads embeddings as FLOAT32 (RedisStore's ``datatype``, unless the
    app's ``ann_index_config`` changed it)."""
    for attribute in info.get("attributes") or []:
        attrs = {text_of(k): v for k, v in zip(attribute[::2], attribute[1::2])}
        if text_of(attrs.get("type")) == "VECTOR":
            return text_of(attrs.get("data_type", "FLOAT32")).upper() == "FLOAT32"
    return False


def vector_of(raw: Any, float32: bool = False) -> tuple[Vector, ...]:
    """A vector document (JSON text or a HASH with a float32 blob) → the item's one vector.

    RedisStore's JSON documents hold the embedder's doubles, and RedisJSON prints them back with up to
    a digit less than it parsed; what the store searches is their FLOAT32 cast in the index. So under
    a FLOAT32 index the vector is read as those float32 values (as SQLite's BLOBs and pgvector hold
    them): a copy carries what the search compares, bit for bit, whatever store it lands in."""
    if not raw:
        return ()
    if isinstance(raw, dict):
        blob = raw.get(b"embedding") or b""
        embedding = struct.unpack(f"<{len(blob) // 4}f", blob[: len(blob) // 4 * 4])
        return (Vector(text_of(raw.get(b"field_name", b"$")), tuple(embedding)),)
    doc = orjson.loads(raw)
    values = tuple(float(x) for x in doc.get("embedding") or ())
    if float32:
        values = struct.unpack(f"<{len(values)}f", struct.pack(f"<{len(values)}f", *values))
    return (Vector(str(doc.get("field_name", "$")), values),)
