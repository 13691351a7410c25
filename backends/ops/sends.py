"""Give every saver the v<4 pending Sends LangGraph means (``ckpt.backends.core.sends``).

A store declares what its saver finds: ``Capability.PARENT_SENDS`` (rebuilt from the parent's
writes) and ``Capability.INLINE_SENDS`` (the checkpoint's own ``pending_sends``). A copy into a
store whose saver would not find a checkpoint's Sends stores them in the tasks channel instead,
whatever the source (a SQLite store written by langgraph-checkpoint-sqlite 2.0 needs the same
repair to be resumed by today's saver). ``verify`` compares the source as LangGraph means it
with the target as its own saver reads it, both in that materialized form.

A parent comes just before its children in a stream (one thread and namespace at a time); only
the Sends of the latest checkpoints are held (constant memory), and a parent not among them (a
``--since`` selection) is read by key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ckpt.backends.core.base import Capability, CheckpointKey, CheckpointRecord, PendingWrite, Selection, Store
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.sends import legacy_sends, materialized, send_values, task_sends


@dataclass(frozen=True)
class Finds:
    """Where a saver looks for a v<4 checkpoint's Sends."""

    parent: bool
    inline: bool


LANGGRAPH = Finds(parent=True, inline=True)
"""What the data means: the inline list, else the parent's writes."""


def finds(store: Store) -> Finds:
    caps = store.capabilities
    return Finds(Capability.PARENT_SENDS in caps, Capability.INLINE_SENDS in caps)


def saver_view(records: Iterable[CheckpointRecord], store: Store, reader: Finds) -> Iterator[CheckpointRecord]:
    """``records`` of ``store`` with the Sends ``reader`` finds put in the tasks channel."""
    for record, inline, parents in _legacy(records, store):
        if inline and reader.inline:
            record = _materialized(record, inline)
        elif reader.parent and (found := parents()):
            record = _from_writes(record, found)
        yield record


def for_target(records: Iterable[CheckpointRecord], store: Store, target: Store) -> Iterator[CheckpointRecord]:
    """``records`` of ``store`` as ``target`` must hold them for its saver to find their Sends."""
    reader = finds(target)
    for record, inline, parents in _legacy(records, store):
        if inline:
            record = record if reader.inline else _materialized(record, inline)
        elif not reader.parent and (found := parents()):
            record = _from_writes(record, found)
        yield record


def repaired(store: Store, selection: Selection = Selection()) -> Iterator[tuple[CheckpointRecord, bool]]:
    """Each record of ``store`` as its own saver must hold it, and whether that differs from
    what is stored (``doctor`` counts these, ``upgrade`` rewrites them)."""
    stored: list[CheckpointRecord] = []

    def remember() -> Iterator[CheckpointRecord]:
        for record in store.records(selection):
            stored.append(record)
            yield record

    for record in for_target(remember(), store, store):
        yield record, record is not stored.pop()


def one_record(store: Store, record: CheckpointRecord) -> CheckpointRecord:
    """One record as LangGraph means it (``show``): its Sends in the tasks channel."""
    return next(saver_view([record], store, LANGGRAPH))


def _legacy(
    records: Iterable[CheckpointRecord], store: Store
) -> Iterator[tuple[CheckpointRecord, list[object], _ParentSends]]:
    """Each record with its inline Sends and a lookup of its parent's (empty for all but v<4
    checkpoints whose Sends are not in the tasks channel already)."""
    scope: tuple[str, str] | None = None
    window = _SendsWindow()
    for record in records:
        key = record.key
        if (key.thread_id, key.checkpoint_ns) != scope:
            scope, window = (key.thread_id, key.checkpoint_ns), _SendsWindow()
        found = legacy_sends(record)
        if found is None or found[1]:
            yield record, [], _NO_PARENT
        else:
            yield record, found[0], _ParentSends(store, window, key, record.parent_checkpoint_id)
        window.add(key.checkpoint_id, task_sends(record.writes))


class _ParentSends:
    """The parent's ``__pregel_tasks`` writes, looked up only when asked for."""

    def __init__(self, store: Store | None, window: _SendsWindow, key: CheckpointKey, parent: str | None) -> None:
        self.store, self.window, self.key, self.parent = store, window, key, parent

    def __call__(self) -> list[PendingWrite]:
        if self.store is None or self.parent is None:
            return []
        known = self.window.sends_of(self.parent)
        if known is not None:
            return known
        record = self.store.get(CheckpointKey(self.key.thread_id, self.key.checkpoint_ns, self.parent))
        return task_sends(record.writes) if record is not None else []


class _SendsWindow:
    """The Sends of the latest checkpoints of one thread and namespace (``[]`` for one without).

    A parent is almost always among the last few checkpoints streamed; one that is not (outside
    the selection, or a store whose collation orders ids otherwise) is read by key. No order of
    ids is assumed, and memory is bounded by ``SIZE``.
    """

    SIZE = 256

    def __init__(self) -> None:
        self.recent: OrderedDict[str, list[PendingWrite]] = OrderedDict()

    def add(self, checkpoint_id: str, sends: list[PendingWrite]) -> None:
        self.recent[checkpoint_id] = sends
        if len(self.recent) > self.SIZE:
            self.recent.popitem(last=False)

    def sends_of(self, parent_id: str) -> list[PendingWrite] | None:
        """The parent's Sends, or ``None`` when it must be read."""
        return self.recent.get(parent_id)


_NO_PARENT = _ParentSends(None, _SendsWindow(), CheckpointKey("", "", ""), None)


def _materialized(record: CheckpointRecord, sends: list[object]) -> CheckpointRecord:
    try:
        return materialized(record, sends)
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"{record.key}: {exc}") from exc


def _from_writes(record: CheckpointRecord, writes: list[PendingWrite]) -> CheckpointRecord:
    try:
        return materialized(record, send_values(writes))
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"{record.key}: {exc}") from exc
