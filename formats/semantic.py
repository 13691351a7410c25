"""What an official saver would load from a record, as a comparable value and digest.

Stores that cannot keep bytes verbatim (PostgreSQL's JSONB, Redis' JSON) are compared by this
form: the decoded checkpoint with map order ignored, channel versions reduced to their
counter (``"0000…0003.0.86"`` and ``3`` are the same version), metadata as parsed JSON
without the legacy ``writes`` key, and pending writes byte for byte.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from ckpt.backends.core.base import CheckpointRecord
from ckpt.formats import tagged

_DROPPED_METADATA = ("writes",)  # PostgresSaver drops it (spec §1.4)


def semantic_form(record: CheckpointRecord) -> dict[str, Any]:
    """A JSON-able value equal for two records exactly when the savers would load the same."""
    return {
        "key": [record.key.thread_id, record.key.checkpoint_ns, record.key.checkpoint_id],
        "parent": record.parent_checkpoint_id or None,
        "checkpoint": _checkpoint(record),
        "metadata": _metadata(record),
        "writes": sorted(
            [w.task_id, w.task_path, w.idx, w.channel, w.value.type, tagged.b64(w.value.data)] for w in record.writes
        ),
    }


def semantic_digest(record: CheckpointRecord) -> str:
    return hashlib.sha256(orjson.dumps(semantic_form(record), option=orjson.OPT_SORT_KEYS)).hexdigest()


def byte_digest(record: CheckpointRecord) -> str:
    """Digest of the exact stored bytes (meaningful between byte-exact stores)."""
    h = hashlib.sha256()
    for payload in (record.checkpoint, record.metadata, *(w.value for w in record.writes)):
        h.update(payload.type.encode() + b"\0" + len(payload.data).to_bytes(8, "big") + payload.data)
    return h.hexdigest()


def _checkpoint(record: CheckpointRecord) -> Any:
    if record.checkpoint.type != "msgpack":
        return [record.checkpoint.type, tagged.b64(record.checkpoint.data)]
    try:
        value = tagged.decode(record.checkpoint.data)
    except ValueError:
        return ["undecodable", tagged.b64(record.checkpoint.data)]
    if not isinstance(value, dict):
        return value
    value.pop("pending_sends", None)  # v<4 sends live in the parent's writes; savers rebuild them
    for field in ("channel_versions",):
        if isinstance(value.get(field), dict):
            value[field] = {k: _counter(v) for k, v in value[field].items()}
    if isinstance(value.get("versions_seen"), dict):
        value["versions_seen"] = {
            node: {k: _counter(v) for k, v in seen.items()} if isinstance(seen, dict) else seen
            for node, seen in value["versions_seen"].items()
        }
    return _unordered(value)


def _counter(version: Any) -> Any:
    if isinstance(version, str):
        head = version.split(".", 1)[0]
        return int(head) if head.isdigit() else version
    return version


_SETS = (["builtins", "set"], ["builtins", "frozenset"])


def _unordered(value: Any) -> Any:
    """Map order and set order carry no meaning: the same set may be packed in any order
    (langgraph re-creates sets between steps, and PostgreSQL keeps the first packing of a
    version while SQLite keeps every one)."""
    if isinstance(value, dict):
        if value.get("$ext") == 0 and isinstance(value.get("v"), list) and value["v"][:2] in _SETS:
            module, name, items = value["v"][:3]
            members = sorted((_unordered(item) for item in items), key=lambda item: orjson.dumps(item))
            return {"$ext": 0, "v": [module, name, members]}
        return {k: _unordered(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_unordered(v) for v in value]
    return value


def _metadata(record: CheckpointRecord) -> Any:
    if record.metadata.type != "json":
        return [record.metadata.type, tagged.b64(record.metadata.data)]
    try:
        value = orjson.loads(record.metadata.data or b"{}")
    except orjson.JSONDecodeError:
        return ["undecodable", tagged.b64(record.metadata.data)]
    if isinstance(value, dict):
        for key in _DROPPED_METADATA:
            value.pop(key, None)
    return _unordered(value)
