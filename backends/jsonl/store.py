"""A JSONL export file as a store of its own: export, import and migrate are one copy.

Format v1 is specified in ``docs/format.md`` with the JSON Schema in
``formats/schemas/jsonl-v1.schema.json``. Payloads are carried raw (base64 of the exact
stored bytes), so an export restores byte for byte. This module only moves bytes; the
optional readable view (``--decode``) is supplied by the caller as ``decorate``.
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, suppress
from datetime import datetime, timezone
from types import TracebackType
from typing import IO, Any

import orjson

from ckpt.backends.core.base import (
    Capability,
    CheckpointRecord,
    Selection,
    Store,
    WriteReport,
)
from ckpt.backends.core.errors import (
    CkptError,
    DataError,
    FormatError,
    StorageError,
    StoreNotFoundError,
    UsageError,
)
from ckpt.backends.core.files import PartialFile
from ckpt.backends.core.locks import file_lock
from ckpt.backends.core.shards import HASH, Shard
from ckpt.backends.core.urls import redact
from ckpt.backends.jsonl.lines import check_line, parse_line, record_from, record_to

FORMAT = "ckpt/jsonl"
VERSION = 1
Decorator = Callable[[CheckpointRecord], Any]

MAX_LINE_ENV = "CKPT_JSONL_MAX_LINE"
"""Environment variable: the longest line (bytes, newline included) read or written; default below."""
DEFAULT_MAX_LINE = 64 * 1024 * 1024
"""64 MiB: a line costs about three times its length to parse and decode (JSON, base64, bytes)."""


GZIP_LEVEL = 6
"""zlib's default and what ``gzip``/``pigz`` use: level 9 (``GzipFile``'s default) took about 1.7x as
long on exports of real checkpoints for an output a few percent smaller (docs/format.md)."""


def max_line_bytes() -> int:
    """The line-length bound: ``$CKPT_JSONL_MAX_LINE`` (bytes) or 64 MiB."""
    raw = os.environ.get(MAX_LINE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_LINE
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"{MAX_LINE_ENV} must be a number of bytes, got {raw!r}") from None
    if value < 1024:
        raise UsageError(f"{MAX_LINE_ENV} must be at least 1024 bytes, got {value}")
    return value


class JsonlStore(Store):
    """A ``.jsonl`` or ``.jsonl.gz`` file (``-`` = stdin/stdout) in the ckpt export format."""

    kind = "jsonl"
    ranges_read_by_index = False  # each range reads the file through
    capabilities = frozenset(
        {Capability.WRITE, Capability.BYTE_EXACT, Capability.PARENT_SENDS, Capability.INLINE_SENDS}
    )

    def __init__(self, path: str, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self.decorate: Decorator | None = None
        """Called per record when writing; its result is stored as ``decoded`` (``--decode``)."""
        self.decode_errors: list[str] = []
        self._source: dict[str, Any] = {}
        self._out: IO[bytes] | None = None
        self._file: PartialFile | None = None
        """The file under ``_out`` (the same object, or the file a ``GzipFile`` writes into)."""
        self._lock: ExitStack | None = None
        """Holds ``<file>.lock`` while this store writes ``<file>.partial``: one writer per file."""
        self._header: dict[str, Any] | None = None
        self.shard: Shard | None = None
        """Written: the ``--shard`` this export holds, put in the header. Read: the header's."""

    @classmethod
    def open_existing(cls, url: str) -> JsonlStore:
        """An export file is never pruned, compacted or upgraded in place: refused before it is opened for writing."""
        from ckpt.backends.core.errors import UsageError

        raise UsageError(
            f"{url} is an export file: commands that change a store in place work on stores "
            "(export again with --thread/--since)"
        )

    @classmethod
    def open(cls, url: str, *, write: bool = False) -> JsonlStore:
        path = url.partition("://")[2] if url.startswith("jsonl://") else url
        if not write and path != "-" and not os.path.isfile(path):
            raise StoreNotFoundError(f"no such export file: {path}")
        store = cls(path, writable=write)
        if not write:
            store._header = store._read_header()
            store.shard = _header_shard(path, store._header.get("shard"))
        return store

    def layout(self) -> dict[str, Any]:
        if self._header is None:
            return {"format": FORMAT, "version": VERSION}
        # masked again: an export written before passwords were masked in headers may hold one
        return {"format": FORMAT, "version": self._header["version"], "source": _redacted(self._header.get("source"))}

    # -- reading -----------------------------------------------------------------

    def _lines(self) -> Iterator[tuple[int, bytes]]:
        if self.path == "-":
            yield from _bounded_lines(self.path, sys.stdin.buffer)
            return
        opener: Callable[..., IO[bytes]] = gzip.open if self.path.endswith(".gz") else open  # type: ignore[assignment]
        try:
            with opener(self.path, "rb") as handle:
                yield from _bounded_lines(self.path, handle)
        except (OSError, EOFError) as exc:
            raise FormatError(f"{self.path}: cannot read the file ({exc})") from exc

    def _read_header(self) -> dict[str, Any]:
        for lineno, line in self._lines():
            header = parse_line(self.path, lineno, line)
            if header.get("format") != FORMAT:
                raise FormatError(f'{self.path}:{lineno}: not a ckpt export (first line has no "format": "{FORMAT}")')
            if header.get("version") != VERSION:
                raise FormatError(f"{self.path}:{lineno}: unsupported format version {header.get('version')!r}")
            return header
        raise FormatError(f"{self.path}: empty file, expected a ckpt export header")

    def records(self, selection: Selection = Selection()) -> Iterator[CheckpointRecord]:
        if self.writable:
            return  # a file being written holds only what this run writes; nothing to read back
        lines = self._lines()
        next(lines, None)  # the header, checked at open
        for lineno, line in lines:
            if line.isspace():  # a blank line (``line.strip()`` copied every line to find out)
                continue
            record = record_from(self.path, lineno, parse_line(self.path, lineno, line))
            if selection.matches(record.key):
                yield record

    def validate(self) -> int:
        """Read the whole file once; raises ``FormatError`` naming the first bad line."""
        count = 0
        lines = self._lines()
        next(lines, None)  # the header, checked at open
        for lineno, line in lines:
            if not line.isspace():
                check_line(self.path, lineno, line)
                count += 1
        return count

    # -- writing -----------------------------------------------------------------

    def begin_copy(self, source_kind: str, source_layout: dict[str, Any], source_url: str) -> None:
        """The header's ``source``; every string in it is masked (``redact``): no credential is stored."""
        self._source = _redacted({"kind": source_kind, "url": source_url, "layout": source_layout})

    def _output(self) -> IO[bytes]:
        if self._out is None:
            self.start(
                {
                    "format": FORMAT,
                    "version": VERSION,
                    "created_at": datetime.now(timezone.utc).isoformat(),
                    "source": self._source or None,
                    "decoded": self.decorate is not None,
                    **({"shard": self.shard.as_json()} if self.shard is not None else {}),
                }
            )
        assert self._out is not None
        return self._out

    def start(self, header: dict[str, Any]) -> None:
        """Open the output (a partial file under a lock) with ``header`` as its first line; the
        file machinery is shared with the other JSON Lines forms (``ckpt memory`` exports)."""
        if self._out is None:
            if not self.writable:
                raise UsageError(f"{self.path} was opened for reading")
            self._out = self._open_output()
            self._emit(orjson.dumps(header) + b"\n")

    def emit(self, line: bytes) -> None:
        """Append one line (``start`` first)."""
        self._emit(line)

    def lines(self) -> Iterator[tuple[int, bytes]]:
        """``(line number, line)`` of the file, header included, each bounded by ``max_line_bytes``."""
        return self._lines()

    def _open_output(self) -> IO[bytes]:
        """``<file>.partial``, under ``<file>.lock``: a second writer of the same file is refused
        (``LockedError``) instead of both finishing and one silently winning; a ``.partial`` left by
        a killed run is overwritten (and removed or renamed at the end) by the next one."""
        if self.path == "-":
            return sys.stdout.buffer
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StoreNotFoundError(f"no such directory: {directory}")
        lock = ExitStack()
        try:
            lock.enter_context(file_lock(self.path + ".lock", f"another ckpt run is writing {self.path}"))
            file = PartialFile(self.path)  # created under the lock: only its holder removes it
        except OSError as exc:
            lock.close()
            raise StorageError.from_os_error(exc, f"cannot write {self.path}") from None
        except BaseException:
            lock.close()
            raise
        self._lock, self._file = lock, file
        assert file.handle is not None
        if self.path.endswith(".gz"):
            return gzip.GzipFile(fileobj=file.handle, mode="wb", compresslevel=GZIP_LEVEL, mtime=0)  # type: ignore[return-value]
        return file.handle

    def _emit(self, line: bytes) -> None:
        assert self._out is not None
        try:
            self._out.write(line)
        except OSError as exc:
            if self.path == "-":
                raise
            raise StorageError.from_os_error(exc, f"cannot write {self.path}") from None

    def write(self, records: Iterable[CheckpointRecord]) -> WriteReport:
        self._output()
        report = WriteReport()
        limit = max_line_bytes()
        for record in records:
            line = record_to(record)
            if self.decorate is not None:
                line["decoded"] = self._decorated(record)
            data = orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
            if len(data) > limit:
                key = record.key
                raise DataError(
                    f"checkpoint {key.checkpoint_id} of thread {key.thread_id!r} (ns {key.checkpoint_ns!r}) is a "
                    f"{len(data)}-byte JSONL line, over the {limit}-byte limit ckpt reads back "
                    f"(raise it with {MAX_LINE_ENV}=BYTES); nothing was written to {self.path}"
                )
            self._emit(data)
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
        """Finish the file: the partial file is renamed into place only now. A write that fails
        here (the last buffer on a full disk) removes the partial file and raises ``StorageError``."""
        if self._out is None and self.writable:
            self._output()  # an export of nothing is still a valid file (header only)
        if self._out is None:
            return
        if self.path == "-":
            out, self._out = self._out, None
            out.flush()
            return
        try:
            self._finish()
        except OSError as exc:
            self.abort()
            raise StorageError.from_os_error(exc, f"cannot write {self.path}") from None
        finally:
            self._release()

    def _finish(self) -> None:
        assert self._out is not None and self._file is not None
        out, self._out = self._out, None
        out.close()  # a gzip stream writes its trailer into the partial file here
        self._file.finish()

    def abort(self) -> None:
        """Drop what was written: the target file is left as it was, and no partial file remains."""
        if self.path == "-":
            self._out = None
            return
        out, file, self._out, self._file = self._out, self._file, None, None
        try:
            if out is not None:  # a gzip stream over the partial file (or the file itself: closed twice, harmless)
                with suppress(OSError):  # a full disk fails the last flush too: the file goes anyway
                    out.close()
            if file is not None:
                file.discard()
        finally:
            self._release()

    def _release(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

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


def _header_shard(path: str, value: Any) -> Shard | None:
    """The header's ``shard`` (an export of ``--shard K/N``), checked: a split by another hash
    cannot be combined with this one's."""
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("hash") != HASH:
        raise FormatError(f"{path}:1: shard {value!r} is not a ckpt {HASH} shard")
    try:
        return Shard(int(value["index"]), int(value["count"]))
    except (KeyError, TypeError, ValueError, UsageError) as exc:
        raise FormatError(f"{path}:1: unreadable shard {value!r} ({exc})") from None


def _redacted(value: Any) -> Any:
    """``value`` with every string leaf masked by ``redact`` (URLs and options carrying credentials)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def _bounded_lines(path: str, handle: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)``, refusing a line longer than ``max_line_bytes()`` before reading
    more of it (a 200 MB line would otherwise cost about 600 MB to parse)."""
    limit = max_line_bytes()
    lineno = 0
    while line := handle.readline(limit + 1):
        lineno += 1
        if len(line) > limit:
            raise FormatError(
                f"{path}:{lineno}: line longer than {limit} bytes (the limit; raise it with {MAX_LINE_ENV}=BYTES)"
            )
        yield lineno, line
