"""Copying records between any two stores: the one mechanism behind export, import and migrate."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any, TypeVar

from ckpt.backends.base import Selection, Store, WriteReport
from ckpt.backends.urls import redact

T = TypeVar("T")
Progress = Callable[[int, int], None]
"""Called after each batch with (checkpoints, bytes) just copied."""

DEFAULT_BATCH = 500


@dataclass
class CopyReport(WriteReport):
    """What a copy did, for people (summary line) and machines (``-o json``)."""

    checkpoints_read: int = 0
    bytes_read: int = 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def copy_records(
    source: Store,
    target: Store,
    selection: Selection = Selection(),
    *,
    source_url: str = "",
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    validated: bool = False,
) -> CopyReport:
    """Stream ``selection`` from ``source`` into ``target`` in batches; idempotent.

    ``source.validate()`` runs first (unless the caller already did: ``validated``), so
    malformed input fails before anything is written. Each batch is one transaction on the
    target (for stores that have them).
    """
    if not validated:
        source.validate()
    target.begin_copy(source.kind, source.layout(), redact(source_url))
    report = CopyReport()
    for batch in batched(source.records(selection), batch_size):
        size = sum(record.size for record in batch)
        report.add(target.write(batch))
        report.checkpoints_read += len(batch)
        report.bytes_read += size
        if progress is not None:
            progress(len(batch), size)
    return report
