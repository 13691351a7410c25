"""MongoDBSaver metadata: a dict whose leaves are ``[type, BinData]`` pairs (spec §6).

Every leaf is ``serde.dumps_typed(value)``: ``["msgpack", <packed>]`` or ``["null", b""]``;
MongoDBSaver 0.1-0.2.0 stored ``serde.dumps(value)`` (JSON bytes, no type). ckpt's common form
is the metadata as UTF-8 JSON, so leaves are unpacked here (plain values only; an ext value in
metadata is carried in its tagged form, never revived).
"""

from __future__ import annotations

from typing import Any

import orjson
from bson.binary import Binary

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.msgpack_raw import pack, plain_json, unpack


def metadata_from_mongo(metadata: Any) -> bytes:
    return orjson.dumps(_leaves_to_plain(metadata), option=orjson.OPT_NON_STR_KEYS)


def _leaves_to_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _leaves_to_plain(v) for k, v in value.items()}
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], bytes):
        type_tag, data = value[0], bytes(value[1])
        if type_tag == "null":
            return None
        if type_tag == "msgpack":
            return plain_json(unpack(data))
        if type_tag == "json":
            return orjson.loads(data)
        raise ValueError(f"metadata leaf of type {type_tag!r}")
    if isinstance(value, bytes):  # 0.1-0.2.0: serde.dumps(value), JSON without a type
        return orjson.loads(value)
    raise ValueError(f"metadata leaf {value!r} is not a [type, bytes] pair")


def metadata_to_mongo(record: CheckpointRecord) -> dict[str, Any]:
    if record.metadata.type != "json":
        raise CorruptRecordError(f"{record.key}: MongoDB metadata needs JSON, got a {record.metadata.type!r} payload")
    try:
        metadata = orjson.loads(record.metadata.data or b"{}")
    except orjson.JSONDecodeError as exc:
        raise CorruptRecordError(f"cannot decode metadata of {record.key}: {exc}") from exc
    if not isinstance(metadata, dict):
        raise CorruptRecordError(f"{record.key}: metadata is not a JSON object")
    return {k: _to_leaves(v) for k, v in metadata.items()}


def _to_leaves(value: Any) -> Any:
    """Nested dicts keep their structure (MongoDBSaver filters on ``metadata.<key>``); the rest is typed."""
    if isinstance(value, dict):
        return {k: _to_leaves(v) for k, v in value.items()}
    if value is None:
        return ["null", Binary(b"")]
    return ["msgpack", Binary(pack(value))]
