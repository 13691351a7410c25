"""``ckpt list``: threads (or checkpoints) of a store, without decoding any checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from ckpt.cli.options import (
    OutputOption,
    SinceOption,
    StoreArgument,
    ThreadOption,
    UntilOption,
    resolve_store,
    selection,
    selection_words,
)
from ckpt.cli.output import RIGHT_ALIGNED, OutputFormat, cell, emit_rows, human_bytes, resolve

if TYPE_CHECKING:
    from ckpt.backends.core.base import CheckpointHeader, ThreadSummary

T = TypeVar("T")

THREAD_COLUMNS = ("thread_id", "checkpoints", "first", "last")
SIZE_COLUMNS = ("namespaces", "bytes")
CHECKPOINT_COLUMNS = (
    "thread_id",
    "checkpoint_ns",
    "checkpoint_id",
    "parent_checkpoint_id",
    "step",
    "source",
    "time",
    "writes",
    "bytes",
)


def list_(
    url: StoreArgument = None,
    thread: ThreadOption = None,
    checkpoints: Annotated[
        bool, typer.Option("--checkpoints", "-c", help="One row per checkpoint instead of per thread.")
    ] = False,
    ns: Annotated[Optional[str], typer.Option("--ns", help="Only this checkpoint namespace ('' = root graph).")] = None,
    sizes: Annotated[
        bool,
        typer.Option("--sizes", "-s", help="Also count namespaces and bytes (reads every row, not just the index)."),
    ] = False,
    since: SinceOption = None,
    until: UntilOption = None,
    no_trunc: Annotated[
        bool,
        typer.Option(
            "--no-trunc",
            "--wide",
            "-w",
            help="Tables: whole ids and every column, even wider than the terminal.",
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """List threads with their checkpoint counts and first/last times; no checkpoint is decoded.

    Times come from the uuid6 checkpoint ids. --sizes adds namespaces and bytes (checkpoints,
    metadata and pending writes), which costs a read of every row; `ckpt size` breaks bytes down.

    Example:
      ckpt list sqlite:///agent.db
      ckpt list sqlite:///agent.db --thread 'user-*' --sizes -o json
      ckpt list sqlite:///agent.db --checkpoints --thread thread-1 -o csv
    """
    from ckpt.backends import Capability, Selection, open_store
    from ckpt.cli.console import finish_reads, warn

    url = resolve_store(url)
    fmt = resolve(output)
    chosen = selection(thread, since, until, ns)
    with open_store(url) as store:
        if checkpoints:
            rows = _checkpoint_rows(store.headers(chosen))
            human = {"bytes": human_bytes, "checkpoint_ns": _ns, "time": _short_time}
            if fmt is OutputFormat.table:
                count = _fitted_table(rows, CHECKPOINT_COLUMNS, human, no_trunc, ids=True)
            else:
                count = emit_rows(rows, fmt, CHECKPOINT_COLUMNS, human=human)
        else:
            columns = THREAD_COLUMNS + (SIZE_COLUMNS if sizes else ())
            columns += ("keys_without_ttl",) if Capability.TTL in store.capabilities else ()
            rows = _thread_rows(store.threads(chosen, details=sizes), sizes)
            human = {"bytes": human_bytes, "first": _short_time, "last": _short_time}
            if fmt is OutputFormat.table:
                count = _fitted_table(rows, columns, human, no_trunc, ids=False)
            else:
                count = emit_rows(rows, fmt, columns, human=human)
        if count == 0 and (fmt is OutputFormat.table or chosen != Selection()):
            warn(f"no {'checkpoints' if checkpoints else 'threads'} matched{selection_words(thread, since, until, ns)}")
        finish_reads(store)


def _thread_rows(summaries: Iterable[ThreadSummary], sizes: bool) -> Iterator[dict[str, Any]]:
    # Per chunk, not per row: a large store lists ~10^5 threads, and the two times per thread
    # are converted in bulk (bench/bench_list.py).
    from ckpt.backends.core.ids import checkpoint_isos

    for chunk in _chunks(summaries, 1000):
        n = len(chunk)
        times = checkpoint_isos(
            [s.first_checkpoint_id or "" for s in chunk] + [s.last_checkpoint_id or "" for s in chunk]
        )
        for summary, first, last in zip(chunk, times, times[n:]):
            row: dict[str, Any] = {
                "thread_id": summary.thread_id,
                "checkpoints": summary.checkpoints,
                "first": first,
                "last": last,
            }
            if sizes:
                row["namespaces"], row["bytes"] = summary.namespaces, summary.bytes
            if summary.keys_without_ttl is not None:
                row["keys_without_ttl"] = summary.keys_without_ttl
            yield row


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to ``size`` items; when reading fails, the items read before it come out first."""
    chunk: list[T] = []
    try:
        for item in items:
            chunk.append(item)
            if len(chunk) == size:
                yield chunk
                chunk = []
    except Exception:
        if chunk:
            yield chunk
        raise
    if chunk:
        yield chunk


def _checkpoint_rows(headers: Iterable[CheckpointHeader]) -> Iterator[dict[str, Any]]:
    from ckpt.backends.core.ids import checkpoint_iso
    from ckpt.cli.console import warn

    for header in headers:
        metadata = header.metadata or {}
        if header.metadata_error:
            warn(f"{header.key}: {header.metadata_error}")
        yield {
            "thread_id": header.key.thread_id,
            "checkpoint_ns": header.key.checkpoint_ns,
            "checkpoint_id": header.key.checkpoint_id,
            "parent_checkpoint_id": header.parent_checkpoint_id,
            "step": metadata.get("step"),
            "source": metadata.get("source"),
            "time": checkpoint_iso(header.key.checkpoint_id),
            "writes": header.writes_count,
            "bytes": header.size,
        }


def _ns(value: Any) -> str:
    return "(root)" if value == "" else str(value)


def _short_time(value: Any) -> str:
    return "" if value is None else str(value).replace("T", " ").rstrip("Z")


# Narrow terminals: these columns go first, in this order, then these cells are cut (never an id).
_DROP = ("parent_checkpoint_id", "source", "writes", "time", "step", "namespaces", "keys_without_ttl", "first")
_SHRINK = ("checkpoint_ns", "thread_id")
_ID_COLUMNS = ("checkpoint_id", "parent_checkpoint_id")


def _fitted_table(
    rows: Iterable[dict[str, Any]], columns: Sequence[str], human: dict[str, Any], whole: bool, *, ids: bool
) -> int:
    """A table that fits the terminal, one line per row: checkpoint ids (and the task ids in
    namespaces) cut to the shortest prefix that is unique among those listed, as git and docker
    do, then low-value columns dropped while it is too wide. ``whole`` (--no-trunc) keeps every
    value and column whole. Off a terminal nothing is dropped; ids are still shortened."""
    from ckpt.cli.console import stdout
    from ckpt.cli.table import fit_columns

    listed = list(rows)
    if ids and not whole:
        listed = _short_ids(listed)
    cells = [[cell(row.get(c), human.get(c)) for c in columns] for row in listed]
    kept = list(columns)
    if whole:  # rich would fold the cells to the terminal's width: drawn unfolded instead
        from ckpt.cli.output import binary_stdout
        from ckpt.cli.table import plain_table

        with binary_stdout() as out:
            for line in plain_table(cells, kept, [c in RIGHT_ALIGNED for c in kept], None):
                out.write(line.encode("utf-8"))
        return len(cells)
    console = stdout()
    if console.is_terminal:
        cells, kept = fit_columns(cells, columns, console.width, drop=_DROP, shrink=_SHRINK)
    return emit_rows((dict(zip(kept, row)) for row in cells), OutputFormat.table, kept)


def _short_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from ckpt.cli.table import unique_prefix_length

    ids = [v for row in rows for c in _ID_COLUMNS if (v := row.get(c))]
    tasks = [task for row in rows for _, task in _ns_parts(row.get("checkpoint_ns") or "")]
    id_length, task_length = unique_prefix_length(ids), unique_prefix_length(tasks)
    out = []
    for row in rows:
        short = dict(row)
        for column in _ID_COLUMNS:
            if short.get(column):
                short[column] = short[column][:id_length]
        if short.get("checkpoint_ns"):
            short["checkpoint_ns"] = "|".join(
                f"{name}:{task[:task_length]}" if task else name for name, task in _ns_parts(short["checkpoint_ns"])
            )
        out.append(short)
    return out


def _ns_parts(ns: str) -> list[tuple[str, str]]:
    """``parent:task|child:task`` as (name, task id) pairs; a segment without ``:`` has no task id."""
    if not ns:
        return []
    return [(name, task) for name, _, task in (part.partition(":") for part in ns.split("|"))]
