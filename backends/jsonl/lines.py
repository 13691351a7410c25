"""One JSONL line ↔ one checkpoint record (format v1, ``docs/format.md``).

Reading has two paths with one answer: ``_record_fast`` builds the record of a well-formed
line with exact type checks and no per-field bookkeeping (import reads every line twice: once
to check the whole file, once to copy); any line it does not accept goes to the checked path,
which accepts exactly what it always did and names the file, line and field of a fault.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ckpt.backends.core.base import CheckpointKey, CheckpointRecord, Payload, PendingWrite
from ckpt.backends.core.errors import FormatError

_a2b = binascii.a2b_base64
_b2a = binascii.b2a_base64


def record_to(record: CheckpointRecord) -> dict[str, Any]:
    # Each payload as {type, data: base64} inline, not by a helper: export's Python time is per payload.
    key, b2a = record.key, _b2a
    checkpoint, metadata = record.checkpoint, record.metadata
    line = {
        "thread_id": key.thread_id,
        "checkpoint_ns": key.checkpoint_ns,
        "checkpoint_id": key.checkpoint_id,
        "parent_checkpoint_id": record.parent_checkpoint_id,
        "checkpoint": {"type": checkpoint.type, "data": b2a(checkpoint.data, newline=False).decode("ascii")},
        "metadata": {"type": metadata.type, "data": b2a(metadata.data, newline=False).decode("ascii")},
        "writes": [
            {
                "task_id": w.task_id,
                "task_path": w.task_path,
                "idx": w.idx,
                "channel": w.channel,
                "value": {"type": w.value.type, "data": b2a(w.value.data, newline=False).decode("ascii")},
            }
            for w in record.writes
        ],
    }
    if record.extra:
        line["extra"] = dict(record.extra)
    return line


def parse_line(path: str, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        truncated = " (truncated?)" if not line.endswith(b"\n") else ""
        raise FormatError(f"{path}:{lineno}: invalid JSON{truncated}: {exc}") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{path}:{lineno}: expected a JSON object")
    return value


class _LineReader:
    """Typed field access that names the file, line and field on every error."""

    def __init__(self, path: str, lineno: int, obj: dict[str, Any]) -> None:
        self.where = f"{path}:{lineno}"
        self.obj = obj

    def fail(self, message: str) -> FormatError:
        return FormatError(f"{self.where}: {message}")

    def field(self, obj: dict[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        if name not in obj:
            raise self.fail(f"missing field {name!r}")
        value = obj[name]
        if value is None and optional:
            return None
        if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
            raise self.fail(f"field {name!r} has the wrong type ({type(value).__name__})")
        return value

    def payload(self, obj: dict[str, Any], name: str) -> Payload:
        value = self.field(obj, name, dict)
        type_tag = self.field(value, "type", str)
        try:
            data = base64.b64decode(self.field(value, "data", str), validate=True)
        except binascii.Error as exc:
            raise self.fail(f"field {name!r} has invalid base64 data ({exc})") from exc
        return Payload(type_tag, data)


def _record_from(path: str, lineno: int, obj: dict[str, Any]) -> CheckpointRecord:
    r = _LineReader(path, lineno, obj)
    writes = []
    for item in r.field(obj, "writes", list):
        if not isinstance(item, dict):
            raise r.fail("each entry of 'writes' must be an object")
        writes.append(
            PendingWrite(
                task_id=r.field(item, "task_id", str),
                task_path=r.field(item, "task_path", str),
                idx=r.field(item, "idx", int),
                channel=r.field(item, "channel", str),
                value=r.payload(item, "value"),
            )
        )
    key = CheckpointKey(
        r.field(obj, "thread_id", str), r.field(obj, "checkpoint_ns", str), r.field(obj, "checkpoint_id", str)
    )
    metadata = r.payload(obj, "metadata")
    if metadata.type == "json":
        try:
            orjson.loads(metadata.data or b"{}")
        except orjson.JSONDecodeError as exc:
            raise r.fail(f"metadata is not valid JSON ({exc})") from exc
    extra = obj.get("extra") or {}
    if not isinstance(extra, dict):
        raise r.fail("field 'extra' must be an object")
    return CheckpointRecord(
        key=key,
        parent_checkpoint_id=r.field(obj, "parent_checkpoint_id", str, optional=True),
        checkpoint=r.payload(obj, "checkpoint"),
        metadata=metadata,
        writes=tuple(writes),
        extra=tuple(sorted(extra.items())),
    )


class _Slow(Exception):
    """The line is not plainly well formed: the checked path decides (and words the error)."""


def record_from(path: str, lineno: int, obj: dict[str, Any]) -> CheckpointRecord:
    """The record of a parsed line; raises ``FormatError`` naming the line and field."""
    try:
        return _record_fast(obj)
    except (_Slow, KeyError, TypeError, ValueError):  # binascii.Error and JSONDecodeError are ValueErrors
        return _record_from(path, lineno, obj)


def check_line(path: str, lineno: int, line: bytes) -> None:
    """Raise what reading ``line`` as a record raises, without building the record: import's first
    pass (the whole file is checked before anything is written) keeps nothing it reads."""
    obj = parse_line(path, lineno, line)
    try:
        _check_fast(obj)
    except (_Slow, KeyError, TypeError, ValueError):
        _record_from(path, lineno, obj)


def _payload_fast(value: Any) -> Payload:
    return Payload(*_typed_bytes(value))


def _typed_bytes(value: Any) -> tuple[str, bytes]:
    if type(value) is not dict:
        raise _Slow
    type_tag, data = value["type"], value["data"]
    if type(type_tag) is not str or type(data) is not str:
        raise _Slow
    return type_tag, _a2b(data, strict_mode=True)  # what b64decode(validate=True) runs


def _str(value: Any) -> str:
    if type(value) is not str:
        raise _Slow
    return value


def _write_fast(item: Any) -> PendingWrite:
    if type(item) is not dict or type(item["idx"]) is not int:  # bool is not int here, as in the checked path
        raise _Slow
    task_id, task_path, channel, value = item["task_id"], item["task_path"], item["channel"], item["value"]
    if type(task_id) is not str or type(task_path) is not str or type(channel) is not str or type(value) is not dict:
        raise _Slow
    type_tag, data = value["type"], value["data"]
    if type(type_tag) is not str or type(data) is not str:
        raise _Slow
    return PendingWrite(task_id, task_path, item["idx"], channel, Payload(type_tag, _a2b(data, strict_mode=True)))


def _record_fast(obj: dict[str, Any]) -> CheckpointRecord:
    """Types are checked with ``type(x) is``: orjson only makes exact ``str``/``int``/``dict``/``list``,
    so this is as strict as the checked path's ``isinstance``. The per-write checks are written out
    in ``_write_fast`` (not a helper per field): import runs them for every write, twice."""
    items = obj["writes"]
    if type(items) is not list:
        raise _Slow
    writes = tuple([_write_fast(item) for item in items])
    parent = obj["parent_checkpoint_id"]
    if parent is not None and type(parent) is not str:
        raise _Slow
    metadata = _payload_fast(obj["metadata"])
    if metadata.type == "json":
        orjson.loads(metadata.data or b"{}")
    extra = obj.get("extra") or {}
    if type(extra) is not dict:
        raise _Slow
    key = CheckpointKey(_str(obj["thread_id"]), _str(obj["checkpoint_ns"]), _str(obj["checkpoint_id"]))
    checkpoint = _payload_fast(obj["checkpoint"])
    return CheckpointRecord(key, parent, checkpoint, metadata, writes, tuple(sorted(extra.items())))


def _check_fast(obj: dict[str, Any]) -> None:
    """``_record_fast``'s checks, in the same terms, with nothing built (and written out, as there).
    Base64 is checked by ``_b64_checked``, not decoded: nothing of this pass is kept."""
    items = obj["writes"]
    if type(items) is not list:
        raise _Slow
    checked = _b64_checked
    for item in items:
        if type(item) is not dict or type(item["idx"]) is not int:
            raise _Slow
        value = item["value"]
        if (
            type(item["task_id"]) is not str
            or type(item["task_path"]) is not str
            or type(item["channel"]) is not str
            or type(value) is not dict
        ):
            raise _Slow
        data = value["data"]
        if type(value["type"]) is not str or type(data) is not str:
            raise _Slow
        checked(data)
    parent = obj["parent_checkpoint_id"]
    if parent is not None and type(parent) is not str:
        raise _Slow
    metadata_type, metadata = _typed_bytes(obj["metadata"])
    if metadata_type == "json":
        orjson.loads(metadata or b"{}")
    if type(obj.get("extra") or {}) is not dict:
        raise _Slow
    _str(obj["thread_id"]), _str(obj["checkpoint_ns"]), _str(obj["checkpoint_id"])
    checkpoint = obj["checkpoint"]
    if type(checkpoint) is not dict:
        raise _Slow
    type_tag, data = checkpoint["type"], checkpoint["data"]
    if type(type_tag) is not str or type(data) is not str:
        raise _Slow
    checked(data)


_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_PADDING = {b"": "", b"=": "=", b"==": "=="}


def _b64_checked(data: str) -> None:
    """Raise what ``a2b_base64(data, strict_mode=True)`` raises, without decoding where the answer is
    plain: ASCII, a length that is a multiple of 4, and nothing but the alphabet before at most two
    ``=`` at the end is strict base64 (a ``bytes.translate`` pass, about twice as fast as the decode
    on exports; import's check pass runs it on every payload). Anything else is decoded, so the
    error is the decoder's own."""
    if data.isascii() and not len(data) % 4:
        padding = _PADDING.get(data.encode("ascii").translate(None, _B64_ALPHABET))
        if padding is not None and data.endswith(padding):
            return
    _a2b(data, strict_mode=True)
