"""Give a target the pending Sends its own saver needs (``ckpt.backends.core.sends``).

A store whose saver rebuilds v<4 Sends from the parent's writes (``Capability.PARENT_SENDS``)
may keep ``pending_sends`` empty; a copy into a store whose saver does not must carry them
inline, or the fan-out is lost (whatever the source: a SQLite store written by
langgraph-checkpoint-sqlite 2.0 needs the same repair to be resumed by today's saver).
Records stream in key order, so a parent comes before its children; only the Sends of the
latest checkpoints of one thread and namespace are held (constant memory), and a parent outside
the stream (a ``--since`` selection) is read by key.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ckpt.backends.core.base import Capability, CheckpointKey, CheckpointRecord, PendingWrite, Selection, Store
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.backends.core.sends import lacks_inline_sends, task_sends, with_inline_sends

Stored = CheckpointRecord
"""A record as the store holds it (beside the one LangGraph means)."""


def needs_inline_sends(target: Store) -> bool:
    """True when the target's saver does not rebuild Sends from parents: a copy must inline them."""
    return Capability.PARENT_SENDS not in target.capabilities


def saver_view(records: Iterable[CheckpointRecord], store: Store) -> Iterable[CheckpointRecord]:
    """``records`` of ``store`` as its own saver shows them (``verify`` compares this)."""
    return records if needs_inline_sends(store) else inline_parent_sends(records, store)


def inline_parent_sends(records: Iterable[CheckpointRecord], source: Store) -> Iterator[CheckpointRecord]:
    """``records`` with every v<4 checkpoint's Sends put inline from its parent's writes."""
    scope: tuple[str, str] | None = None
    window = _SendsWindow()
    for record in records:
        key = record.key
        if (key.thread_id, key.checkpoint_ns) != scope:
            scope, window = (key.thread_id, key.checkpoint_ns), _SendsWindow(key.checkpoint_id)
        parent = record.parent_checkpoint_id
        if parent is not None and lacks_inline_sends(record):
            known = window.sends_of(parent)
            record = _inlined(record, known if known is not None else _parent_sends(source, key, parent))
        window.add(key.checkpoint_id, task_sends(record.writes))
        yield record


class _SendsWindow:
    """The Sends of the latest checkpoints of one thread and namespace, read in id order.

    Ids only grow along the stream, so a parent at or after the first id that is not held had
    no Sends; one before it (outside the selection) or pushed out of the window is read by key.
    """

    SIZE = 64

    def __init__(self, first_id: str = "") -> None:
        self.first_id = first_id
        self.dropped_up_to = ""
        self.sends: dict[str, list[PendingWrite]] = {}

    def add(self, checkpoint_id: str, sends: list[PendingWrite]) -> None:
        if not sends:
            return
        self.sends[checkpoint_id] = sends
        if len(self.sends) > self.SIZE:
            oldest = next(iter(self.sends))
            del self.sends[oldest]
            self.dropped_up_to = max(self.dropped_up_to, oldest)

    def sends_of(self, parent_id: str) -> list[PendingWrite] | None:
        """The parent's Sends, ``[]`` when it had none, ``None`` when it must be read."""
        if parent_id in self.sends:
            return self.sends[parent_id]
        if parent_id < self.first_id or parent_id <= self.dropped_up_to:
            return None
        return []


def with_sends_inline(
    store: Store, selection: Selection = Selection()
) -> Iterator[tuple[CheckpointRecord, CheckpointRecord]]:
    """Each record of ``store`` as its saver must store it, with the record as stored (the very
    same object when nothing is missing). Only a store whose saver does not rebuild Sends from
    parents can miss any."""
    if not needs_inline_sends(store):
        for record in store.records(selection):
            yield record, record
        return
    stored: list[CheckpointRecord] = []

    def remember() -> Iterator[CheckpointRecord]:
        for record in store.records(selection):
            stored.append(record)
            yield record

    for record in inline_parent_sends(remember(), store):
        yield record, stored.pop()


def parent_sends_of(source: Store, record: CheckpointRecord) -> CheckpointRecord:
    """One record as its saver shows it (``show``): the parent's Sends inline when it lacks them."""
    parent = record.parent_checkpoint_id
    if parent is None or not lacks_inline_sends(record):
        return record
    return _inlined(record, _parent_sends(source, record.key, parent))


def _parent_sends(source: Store, key: CheckpointKey, parent_id: str) -> list[PendingWrite]:
    parent = source.get(CheckpointKey(key.thread_id, key.checkpoint_ns, parent_id))
    return task_sends(parent.writes) if parent is not None else []


def _inlined(record: CheckpointRecord, sends: list[PendingWrite]) -> CheckpointRecord:
    try:
        return with_inline_sends(record, sends)
    except ValueError as exc:
        raise CorruptRecordError(f"{record.key}: {exc}") from exc
