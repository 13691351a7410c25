"""Pending ``Send``s of checkpoints older than format v4 (spec §1, "Format history").

Before v4 a checkpoint named the Sends its next step runs in ``pending_sends``. From
langgraph-checkpoint 2.0 the loop left that list empty and kept the Sends only as the parent
checkpoint's writes on ``__pregel_tasks``; readers rebuild them on load. LangGraph itself
(``Pregel._migrate_checkpoint``) only looks at the inline list, so a saver that does not rebuild
them from the parent (SQLite, MongoDB, Redis's ``get_tuple``) silently loses the fan-out: the
thread shows ``next=()`` and resumes without its workers.

The rebuild here is the one ``PostgresSaver`` performs (its ``SELECT_PENDING_SENDS_SQL``): the
parent's ``__pregel_tasks`` writes ordered by ``(task_path, task_id, idx)``, put inline. LangGraph
then moves the inline list to ``channel_values["__pregel_tasks"]`` for every saver alike, so an
inline list is read the same everywhere. Values are carried as msgpack, never revived.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ckpt.backends.core.base import CheckpointRecord, Payload, PendingWrite
from ckpt.backends.core.msgpack_raw import pack, unpack

TASKS = "__pregel_tasks"
CURRENT_FORMAT = 4

# ``{"v": <fixint>, …}``: how every saver's serializer begins a checkpoint map, so the format
# is known from three bytes without decoding the channel values behind it.
_V_KEY = b"\xa1v"


def format_version(checkpoint: Payload) -> int | None:
    """The checkpoint's ``v``, or ``None`` when it is not a msgpack map with an integer ``v``."""
    data = checkpoint.data
    if checkpoint.type != "msgpack" or not data:
        return None
    if 0x80 <= data[0] <= 0x8F and data[1:3] == _V_KEY and len(data) > 3 and data[3] <= 0x7F:
        return data[3]
    try:
        fields = unpack(data)
    except (ValueError, TypeError):
        return None
    version = fields.get("v") if isinstance(fields, dict) else None
    return version if isinstance(version, int) else None


def is_legacy(record: CheckpointRecord) -> bool:
    version = format_version(record.checkpoint)
    return version is not None and version < CURRENT_FORMAT


def task_sends(writes: Sequence[PendingWrite]) -> list[PendingWrite]:
    """A checkpoint's ``__pregel_tasks`` writes in the order the savers rebuild them."""
    sends = [w for w in writes if w.channel == TASKS]
    return sorted(sends, key=lambda w: (w.task_path, w.task_id, w.idx))


def lacks_inline_sends(record: CheckpointRecord) -> bool:
    """A v<4 checkpoint with a parent and an empty ``pending_sends``: its Sends live in the parent."""
    if record.parent_checkpoint_id is None or not is_legacy(record):
        return False
    fields = unpack(record.checkpoint.data)
    return isinstance(fields, dict) and not fields.get("pending_sends")


def with_inline_sends(record: CheckpointRecord, parent_sends: Sequence[PendingWrite]) -> CheckpointRecord:
    """``record`` with the parent's Sends put inline, or ``record`` itself when there is nothing to do.

    A Send whose payload is not msgpack (pickle, encrypted) cannot be embedded without reviving
    it; the record is then returned unchanged and the caller reports it.
    """
    if not parent_sends or not lacks_inline_sends(record):
        return record
    values: list[Any] = []
    for write in parent_sends:
        if write.value.type != "msgpack":
            raise ValueError(f"a Send of type {write.value.type!r} cannot be embedded without decoding it")
        values.append(unpack(write.value.data))
    fields = unpack(record.checkpoint.data)
    fields["pending_sends"] = values
    return replace(record, checkpoint=Payload("msgpack", pack(fields)))
