"""``ckpt list``: threads (or checkpoints) of a store, without decoding any checkpoint."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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
)
from ckpt.cli.output import OutputFormat, emit_rows, human_bytes, resolve

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
    from ckpt.backends import Capability, open_store
    from ckpt.cli.console import finish_reads, warn

    url = resolve_store(url)
    fmt = resolve(output)
    chosen = selection(thread, since, until, ns)
    with open_store(url) as store:
        if checkpoints:
            rows = _checkpoint_rows(store.headers(chosen))
            emit_rows(
                rows, fmt, CHECKPOINT_COLUMNS, human={"bytes": human_bytes, "checkpoint_ns": _ns, "time": _short_time}
            )
        else:
            columns = THREAD_COLUMNS + (SIZE_COLUMNS if sizes else ())
            columns += ("keys_without_ttl",) if Capability.TTL in store.capabilities else ()
            rows = _thread_rows(store.threads(chosen, details=sizes), sizes)
            count = emit_rows(
                rows, fmt, columns, human={"bytes": human_bytes, "first": _short_time, "last": _short_time}
            )
            if count == 0 and fmt is OutputFormat.table:
                warn("no threads matched")
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
