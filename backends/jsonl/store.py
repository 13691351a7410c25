"""A JSONL export file as a store of its own: export, import and migrate are one copy.

Format v1 is specified in ``docs/format.md`` with the JSON Schema in
``formats/schemas/jsonl-v1.schema.json``. Payloads are carried raw (base64 of the exact
stored bytes), so an export restores byte for byte. This module only moves bytes; the
optional readable view (``--decode``) is supplied by the caller as ``decorate``.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any

import orjson

from ckpt.backends.core.base import (
    Capability,
    CheckpointKey,
    CheckpointRecord,
    Payload,
    PendingWrite,
    Selection,
    Store,
    WriteReport,
)
from ckpt.backends.core.errors import CkptError, FormatError, StoreNotFoundError, UsageError

FORMAT = "ckpt/jsonl"
VERSION = 1
Decorator = Callable[[CheckpointRecord], Any]


class JsonlStore(Store):
    """A ``.jsonl`` or ``.jsonl.gz`` file (``-`` = stdin/stdout) in the ckpt export format."""

    kind = "jsonl"
    capabilities = frozenset({Capability.WRITE, Capability.BYTE_EXACT})

    def __init__(self, path: str, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self.decorate: Decorator | None = None
        """Called per record when writing; its result is stored as ``decoded`` (``--decode``)."""
        self.decode_errors: list[str] = []
        self._source: dict[str, Any] = {}
        self._out: IO[bytes] | None = None
        self._header: dict[str, Any] | None = None

    @classmethod
    def open_existing(cls, url: str) -> JsonlStore:
        """An export file is never pruned or compacted in place: refused before it is opened for writing."""
        from ckpt.backends.core.errors import UsageError

        raise UsageError(
            f"{url} is an export file: prune and compact work on stores (export again with --thread/--since)"
        )

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> JsonlStore:
        path = url.partition("://")[2] if url.startswith("jsonl://") else url
        if not write and path != "-" and not os.path.isfile(path):
            raise StoreNotFoundError(f"no such export file: {path}")
        store = cls(path, writable=write)
        if not write:
            store._header = store._read_header()
        return store

    def layout(self) -> dict[str, Any]:
        if self._header is None:
            return {"format": FORMAT, "version": VERSION}
        return {"format": FORMAT, "version": self._header["version"], "source": self._header.get("source")}

    # -- reading -----------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        if self.path == "-":
            yield from enumerate(sys.stdin.buffer, start=1)
            return
        opener: Callable[..., IO[bytes]] = gzip.open if self.path.endswith(".gz") else open  # type: ignore[assignment]
        try:
            with opener(self.path, "rb") as handle:
                yield from enumerate(handle, start=1)
        except (OSError, EOFError) as exc:
            raise FormatError(f"{self.path}: cannot read the file ({exc})") from exc

    def _read_header(self) -> dict[str, Any]:
        for lineno, line in self._lines():
            header = _parse_line(self.path, lineno, line)
            if header.get("format") != FORMAT:
                raise FormatError(f'{self.path}:{lineno}: not a ckpt export (first line has no "format": "{FORMAT}")')
            if header.get("version") != VERSION:
                raise FormatError(f"{self.path}:{lineno}: unsupported format version {header.get('version')!r}")
            return header
        raise FormatError(f"{self.path}: empty file, expected a ckpt export header")

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        lines = self._lines()
        next(lines, None)  # the header, checked at open
        for lineno, line in lines:
            if not line.strip():
                continue
            record = _record_from(self.path, lineno, _parse_line(self.path, lineno, line))
            if selection.matches(record.key):
                yield record

    def validate(self) -> int:
        """Read the whole file once; raises ``FormatError`` naming the first bad line."""
        return sum(1 for _ in self.records())

    # -- writing -----------------------------------------------------------------

    def begin_copy(self, source_kind: str, source_layout: dict[str, Any], source_url: str) -> None:
        self._source = {"kind": source_kind, "url": source_url, "layout": source_layout}

    def _output(self) -> IO[bytes]:
        if self._out is None:
            if not self.writable:
                raise UsageError(f"{self.path} was opened for reading")
            self._out = self._open_output()
            header = {
                "format": FORMAT,
                "version": VERSION,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "source": self._source or None,
                "decoded": self.decorate is not None,
            }
            self._out.write(orjson.dumps(header) + b"\n")
        return self._out

    def _open_output(self) -> IO[bytes]:
        if self.path == "-":
            return sys.stdout.buffer
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StoreNotFoundError(f"no such directory: {directory}")
        raw = open(self._partial, "wb")  # noqa: SIM115 - closed in close()/abort()
        if self.path.endswith(".gz"):
            return gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)  # type: ignore[return-value]
        return raw

    @property
    def _partial(self) -> str:
        return self.path + ".partial"

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        out = self._output()
        report = WriteReport()
        for record in records:
            line = _record_to(record)
            if self.decorate is not None:
                line["decoded"] = self._decorated(record)
            out.write(orjson.dumps(line) + b"\n")
            report.checkpoints_written += 1
            report.writes_written += len(record.writes)
        return report

    def _decorated(self, record: CheckpointRecord) -> Any:
        assert self.decorate is not None
        try:
            return self.decorate(record)
        except CkptError as exc:
            self.decode_errors.append(str(exc))
            return {"$error": str(exc)}

    def close(self) -> None:
        """Finish the file: the partial file is renamed into place only now."""
        if self._out is None and self.writable:
            self._output()  # an export of nothing is still a valid file (header only)
        if self._out is None:
            return
        out, self._out = self._out, None
        if self.path == "-":
            out.flush()
            return
        raw = out.fileobj if isinstance(out, gzip.GzipFile) else out
        out.close()
        raw.close()
        os.replace(self._partial, self.path)

    def abort(self) -> None:
        """Drop what was written: the target file is left as it was."""
        if self._out is None or self.path == "-":
            return
        out, self._out = self._out, None
        raw = out.fileobj if isinstance(out, gzip.GzipFile) else out
        try:
            out.close()
            raw.close()
        finally:
            os.unlink(self._partial)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _payload_json(payload: Payload) -> dict[str, Any]:
    return {"type": payload.type, "data": _b64(payload.data)}


def _record_to(record: CheckpointRecord) -> dict[str, Any]:
    key = record.key
    return {
        "thread_id": key.thread_id,
        "checkpoint_ns": key.checkpoint_ns,
        "checkpoint_id": key.checkpoint_id,
        "parent_checkpoint_id": record.parent_checkpoint_id,
        "checkpoint": _payload_json(record.checkpoint),
        "metadata": _payload_json(record.metadata),
        "writes": [
            {
                "task_id": w.task_id,
                "task_path": w.task_path,
                "idx": w.idx,
                "channel": w.channel,
                "value": _payload_json(w.value),
            }
            for w in record.writes
        ],
        **({"extra": dict(record.extra)} if record.extra else {}),
    }


def _parse_line(path: str, lineno: int, line: bytes) -> dict[str, Any]:
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
