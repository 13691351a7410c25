"""``-o table|json|jsonl|csv`` for every read command, streaming where the format allows."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import TYPE_CHECKING, Any, BinaryIO

import orjson

if TYPE_CHECKING:
    from ckpt.backends.core.shards import Shard

# Beyond this many rows a table on a terminal is drawn by the plain formatter too: rich
# spends ~8 µs a row fitting cells to the terminal width, seconds for a large store.
RICH_TABLE_MAX_ROWS = 2000


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def resolve(fmt: OutputFormat | None) -> OutputFormat:
    """Tables for people at a terminal; JSON Lines when piped, unless ``-o`` says otherwise."""
    if fmt is not None:
        return fmt
    return OutputFormat.table if sys.stdout.isatty() else OutputFormat.jsonl


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def write_json(value: Any, fmt: OutputFormat = OutputFormat.json, *, pretty: bool | None = None) -> None:
    """One JSON document, by the rule every command follows: ``-o json`` is indented for people,
    ``-o jsonl`` (the default when piped) is one compact line for scripts."""
    if pretty is None:
        pretty = fmt is not OutputFormat.jsonl
    option = orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS if pretty else orjson.OPT_NON_STR_KEYS
    sys.stdout.buffer.write(orjson.dumps(value, option=option) + b"\n")
    sys.stdout.buffer.flush()


def emit_rows(
    rows: Iterable[dict[str, Any]],
    fmt: OutputFormat,
    columns: Sequence[str],
    *,
    title: str | None = None,
    human: dict[str, Any] | None = None,
) -> int:
    """Write rows in ``fmt``; ``human`` maps a column to a formatter used for tables only."""
    if fmt is OutputFormat.table:
        return _table(rows, columns, title, human or {})
    if fmt is OutputFormat.json:
        count = 0
        with binary_stdout() as out:
            out.write(b"[")
            for row in rows:
                out.write((b",\n" if count else b"\n") + _dumps(row))
                count += 1
            out.write(b"\n]\n" if count else b"]\n")
        return count
    counted = _Counted(rows)
    write_blocks(encoded_blocks(counted, fmt, columns))
    return counted.count


def encoded_blocks(rows: Iterable[dict[str, Any]], fmt: OutputFormat, columns: Sequence[str]) -> Iterator[bytes]:
    """JSON Lines or CSV as blocks of about 64 KiB. When a row fails, the rows before it still
    come out, then the error."""
    if fmt is OutputFormat.csv:
        text = io.StringIO()  # encoded in blocks, not a UTF-8 encode per row
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(columns)
        try:
            for row in rows:
                writer.writerow(["" if (value := row.get(c)) is None else value for c in columns])
                if text.tell() >= 1 << 16:
                    yield text.getvalue().encode("utf-8")
                    text.seek(0)
                    text.truncate()
        except Exception:
            yield text.getvalue().encode("utf-8")
            raise
        yield text.getvalue().encode("utf-8")
        return
    assert fmt is OutputFormat.jsonl, fmt
    dumps, option = orjson.dumps, orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
    block = bytearray()
    try:
        for row in rows:
            block += dumps(row, option=option)
            if len(block) >= 1 << 16:
                yield bytes(block)
                block.clear()
    except Exception:
        yield bytes(block)
        raise
    yield bytes(block)


def write_blocks(blocks: Iterable[bytes]) -> None:
    with binary_stdout() as out:
        for block in blocks:
            out.write(block)


class _Counted:
    def __init__(self, rows: Iterable[dict[str, Any]]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for row in self.rows:
            self.count += 1
            yield row


@contextmanager
def binary_stdout() -> Iterator[BinaryIO]:
    """stdout for bytes, buffered even under PYTHONUNBUFFERED (set in many containers), where
    ``sys.stdout.buffer`` is the raw file and every row would be a system call of its own."""
    out: Any = sys.stdout.buffer
    if not isinstance(out, io.RawIOBase):
        yield out
        return
    buffered = io.BufferedWriter(out, 1 << 16)
    try:
        yield buffered
    finally:
        try:
            buffered.flush()  # also when a row failed: what was listed before it is printed
        finally:
            buffered.detach()  # stdout itself stays open


def _table(rows: Iterable[dict[str, Any]], columns: Sequence[str], title: str | None, human: dict[str, Any]) -> int:
    """Rich's table for a person at a terminal; the same box drawn by a plain formatter in a
    pipe (no folding to 80 columns) or when there are many rows."""
    from ckpt.cli.table import plain_table, rich_table

    formatters = [human.get(c) for c in columns]
    cells = [[cell(row.get(c), f) for c, f in zip(columns, formatters)] for row in rows]
    right = [c in RIGHT_ALIGNED for c in columns]
    if sys.stdout.isatty() and len(cells) <= RICH_TABLE_MAX_ROWS:
        rich_table(cells, columns, right, title)
    else:
        with binary_stdout() as out:
            for line in plain_table(cells, columns, right, title):
                out.write(line.encode("utf-8"))
    return len(cells)


RIGHT_ALIGNED = frozenset({"checkpoints", "bytes", "writes", "step", "namespaces"})


def cell(value: Any, formatter: Any) -> str:
    """A table cell: the column's formatter applied, or the value as text (empty for none)."""
    if formatter is not None:
        return str(formatter(value))
    return "" if value is None else str(value)


def human_bytes(value: Any) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


def save_report(path: str, command: str, body: dict[str, Any], shard: Shard | None) -> None:
    """``--report FILE``: the command's JSON report written whole to a file (one per shard)."""
    from ckpt.backends.ops.reports import write_report
    from ckpt.cli.console import info

    info(f"report written to {write_report(path, command, body, shard)}")
