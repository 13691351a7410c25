"""Pending ``Send``s of checkpoints older than format v4 (spec §1, "Format history").

Before v4 a checkpoint named the Sends its next step runs in ``pending_sends``. From
langgraph-checkpoint 2.0 the loop left that list empty and kept the Sends only as the parent
checkpoint's writes on ``__pregel_tasks``, for readers to rebuild on load. LangGraph itself
(``Pregel._migrate_checkpoint``) then moves an inline list to ``channel_values["__pregel_tasks"]``
with version ``max(channel_versions)``. The savers differ in what they hand it:

- ``PostgresSaver`` rebuilds the list from the parent's writes (and drops an inline one);
- ``SqliteSaver``, ``MongoDBSaver``, ``CouchbaseSaver`` return the inline list only;
- ``RedisSaver`` neither (its parent lookup in ``get_tuple`` never matches a key, spec §5.5).

So the Sends LangGraph means are the inline list, else the parent's ``__pregel_tasks`` writes
ordered by ``(task_path, task_id, idx)``. Where a target's saver would not find them, ckpt
stores them as LangGraph's own migration leaves them in memory: in the ``__pregel_tasks``
channel, which every saver reads (``materialized``). ``v``, ids and the rest stay as they are.
Values are carried as msgpack, never revived.
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
# is known from four bytes without decoding the channel values behind it.
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


def legacy_sends(record: CheckpointRecord) -> tuple[list[Any], bool] | None:
    """``(inline pending_sends, whether the Sends are in the tasks channel already)`` of a v<4
    checkpoint with a parent, or ``None`` for any other (nothing to find for those)."""
    if record.parent_checkpoint_id is None or not is_legacy(record):
        return None
    fields = unpack(record.checkpoint.data)
    if not isinstance(fields, dict):
        return None
    inline = fields.get("pending_sends") or []
    values = fields.get("channel_values")
    return (inline if isinstance(inline, list) else []), isinstance(values, dict) and bool(values.get(TASKS))


def has_materialized_sends(record: CheckpointRecord) -> bool:
    """A v<4 checkpoint with its Sends in the tasks channel: only ``materialized`` makes one."""
    found = legacy_sends(record)
    return found is not None and found[1]


def send_values(writes: Sequence[PendingWrite]) -> list[Any]:
    """The Sends of ``__pregel_tasks`` writes as msgpack values (raises ``ValueError`` for a
    payload that is not msgpack: pickled or encrypted Sends cannot be embedded unread)."""
    values: list[Any] = []
    for write in writes:
        if write.value.type != "msgpack":
            raise ValueError(f"a Send of type {write.value.type!r} cannot be embedded without decoding it")
        values.append(unpack(write.value.data))
    return values


def materialized(record: CheckpointRecord, sends: list[Any]) -> CheckpointRecord:
    """``record`` as ``Pregel._migrate_checkpoint`` leaves it: ``sends`` in the tasks channel at
    version ``max(channel_versions)``, ``pending_sends`` empty. ``v`` is kept."""
    fields = unpack(record.checkpoint.data)
    versions = fields.get("channel_versions") or {}
    if not sends or not versions:
        return record
    fields.setdefault("channel_values", {})[TASKS] = sends
    versions[TASKS] = max(versions.values())
    fields["channel_versions"] = versions
    if "pending_sends" in fields:
        fields["pending_sends"] = []
    return replace(record, checkpoint=Payload("msgpack", pack(fields)))
