"""Memory items as JSON Lines: ``ckpt/memory-jsonl`` version 1 (docs/format.md, schema in
``docs/memory-jsonl.schema.json``).

The first line is a header (format, version, source, the vector index); each further line is one
item. The value is embedded as the JSON text the store held (``orjson.Fragment``: written as read),
times are ISO 8601 in UTC, vectors are float lists. The file machinery (partial file, lock, gzip,
line bound) is the checkpoint export's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import orjson

from ckpt.backends.core.errors import FormatError, StoreNotFoundError
from ckpt.backends.core.memory import (
    MemoryItem,
    MemorySelection,
    MemoryStore,
    MemoryWriteReport,
    Vector,
    VectorIndex,
    iso,
    utc,
)
from ckpt.backends.jsonl.store import JsonlStore, _redacted

FORMAT = "ckpt/memory-jsonl"
VERSION = 1


class JsonlMemory(MemoryStore):
    kind = "jsonl"

    def __init__(self, path: str, *, write: bool) -> None:
        self.path = path
        self._file = JsonlStore(path, writable=write)
        self._header: dict[str, Any] = {}
        self._source: dict[str, Any] | None = None
        self._index: VectorIndex | None = None
        self.writable = write

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> JsonlMemory:
        path = url.partition("://")[2] if url.startswith("jsonl://") else url
        if not write and path != "-" and not os.path.isfile(path):
            raise StoreNotFoundError(f"no such memory export file: {path}")
        store = cls(path, write=write)
        if not write:
            store._header = store._read_header()
        return store

    def layout(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "source": _redacted(self._header.get("source"))}

    def _read_header(self) -> dict[str, Any]:
        for lineno, line in self._file.lines():
            header = _parse(self.path, lineno, line)
            if header.get("format") != FORMAT:
                hint = " (a checkpoint export: use ckpt import)" if header.get("format") == "ckpt/jsonl" else ""
                raise FormatError(f'{self.path}:{lineno}: not a memory export (no "format": "{FORMAT}"){hint}')
            if header.get("version") != VERSION:
                raise FormatError(
                    f"{self.path}:{lineno}: memory export version {header.get('version')!r} is not {VERSION}"
                )
            return header
        raise FormatError(f"{self.path}: empty file (no header line)")

    def index(self) -> VectorIndex | None:
        """The header's index; for a file without one, what ``validate`` saw in its vectors."""
        raw = self._header.get("index") if not self.writable else None
        if not raw:
            return self._index
        return VectorIndex(int(raw["dims"]), raw.get("distance"), tuple(raw.get("fields") or ()))

    def items(self, selection: MemorySelection = MemorySelection()) -> Iterator[MemoryItem]:
        lines = self._file.lines()
        next(lines, None)  # the header
        for lineno, line in lines:
            if line.strip():
                item = item_from(self.path, lineno, _parse(self.path, lineno, line))
                if selection.matches(item.namespace):
                    yield item

    def validate(self) -> int:
        """Read the whole file once; raises ``FormatError`` naming the first bad line (or the first
        vector whose dimensions differ from those before it)."""
        count, dims, fields = 0, None, set()
        for count, item in enumerate(self.items(), start=1):  # noqa: B007 - the count is returned
            for vector in item.vectors:
                fields.add(vector.field)
                if dims is None:
                    dims = len(vector.embedding)
                elif len(vector.embedding) != dims:
                    raise FormatError(
                        f"{self.path}: {item.where()}: a {len(vector.embedding)}-dim vector among {dims}-dim ones"
                    )
        if dims is not None and self._index is None and not self._header.get("index"):
            self._index = VectorIndex(dims, None, tuple(sorted(fields)))
        return count

    # -- writing -----------------------------------------------------------------

    def begin_copy(
        self, source_kind: str, source_layout: dict[str, Any], source_url: str, index: VectorIndex | None
    ) -> None:
        self._source = _redacted({"kind": source_kind, "url": source_url, "layout": source_layout})
        self._index = index

    def _start(self) -> None:
        self._file.start(
            {
                "format": FORMAT,
                "version": VERSION,
                "created_at": datetime.now(timezone.utc).isoformat(),
                "source": self._source,
                "index": None if self._index is None else self._index.as_json(),
            }
        )

    def write(self, items: Iterable[MemoryItem]) -> MemoryWriteReport:
        self._start()
        report = MemoryWriteReport()
        for item in items:
            self._file.emit(orjson.dumps(item_to(item)) + b"\n")
            report.items += 1
            report.vectors += len(item.vectors)
        return report

    def close(self) -> None:
        if self.writable:
            self._start()  # an export of nothing is still a valid file (header only)
        self._file.close()

    def abort(self) -> None:
        self._file.abort()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def item_to(item: MemoryItem) -> dict[str, Any]:
    line: dict[str, Any] = {
        "namespace": list(item.namespace),
        "key": item.key,
        "value": orjson.Fragment(item.value),
        "created_at": iso(item.created_at),
        "updated_at": iso(item.updated_at),
        "expires_at": iso(item.expires_at),
        "ttl_minutes": item.ttl_minutes,
    }
    if item.vectors:
        line["vectors"] = [{"field": v.field, "embedding": list(v.embedding)} for v in item.vectors]
    return line


def _parse(path: str, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        truncated = " (truncated?)" if not line.endswith(b"\n") else ""
        raise FormatError(f"{path}:{lineno}: invalid JSON{truncated}: {exc}") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{path}:{lineno}: expected a JSON object")
    return value


def item_from(path: str, lineno: int, obj: dict[str, Any]) -> MemoryItem:
    where = f"{path}:{lineno}"

    def field(name: str, kind: type | tuple[type, ...], *, optional: bool = False) -> Any:
        value = obj.get(name)
        if value is None and optional:
            return None
        if name not in obj:
            raise FormatError(f"{where}: missing field {name!r}")
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise FormatError(f"{where}: field {name!r} has the wrong type ({type(value).__name__})")
        return value

    def when(name: str, *, optional: bool = False) -> datetime | None:
        text = field(name, str, optional=optional)
        if text is None:
            return None
        try:
            return utc(datetime.fromisoformat(text))
        except ValueError as exc:
            raise FormatError(f"{where}: field {name!r} is not an ISO 8601 time ({text!r})") from exc

    namespace = field("namespace", list)
    if not namespace or not all(isinstance(label, str) and label and "." not in label for label in namespace):
        raise FormatError(f"{where}: field 'namespace' must be a non-empty list of labels without '.'")
    value = field("value", dict)
    created, updated = when("created_at"), when("updated_at")
    assert created is not None and updated is not None
    return MemoryItem(
        namespace=tuple(namespace),
        key=field("key", str),
        value=orjson.dumps(value),
        created_at=created,
        updated_at=updated,
        expires_at=when("expires_at", optional=True),
        ttl_minutes=_ttl(where, obj.get("ttl_minutes")),
        vectors=_vectors(where, obj.get("vectors") or []),
    )


def _ttl(where: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(f"{where}: field 'ttl_minutes' must be a number or null")
    return float(value)


def _vectors(where: str, raw: Any) -> tuple[Vector, ...]:
    if not isinstance(raw, list):
        raise FormatError(f"{where}: field 'vectors' must be a list")
    out = []
    for entry in raw:
        ok = (
            isinstance(entry, dict) and isinstance(entry.get("field"), str) and isinstance(entry.get("embedding"), list)
        )
        if not ok or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in entry["embedding"]):
            raise FormatError(f"{where}: each vector needs a 'field' string and an 'embedding' list of numbers")
        out.append(Vector(entry["field"], tuple(float(x) for x in entry["embedding"])))
    return tuple(out)
