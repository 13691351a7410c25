"""A checkpoint record → what a person asks of it: values, next nodes, writes, interrupts.

``next`` is derived from the stored data only (no graph is loaded): a node is next when
its trigger channel ``branch:to:<node>`` holds a value newer than what the node has seen,
plus the targets of pending ``Send``s in ``__pregel_tasks``. This matches what the saver's
``StateSnapshot.next`` shows for graphs built with ``StateGraph``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.formats.payloads import PayloadDecoder, PayloadError
from ckpt.formats.view import readable

INTERRUPT = "__interrupt__"
_TRIGGER_PREFIX = "branch:to:"
_TASKS = "__pregel_tasks"


@dataclass
class CheckpointView:
    """Decoded, readable content of one checkpoint."""

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    metadata: Any
    checkpoint: dict[str, Any]
    values: dict[str, Any]
    next: list[str]
    pending_writes: list[dict[str, Any]] = field(default_factory=list)
    interrupts: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "checkpoint_ns": self.checkpoint_ns,
            "checkpoint_id": self.checkpoint_id,
            "parent_checkpoint_id": self.parent_checkpoint_id,
            "v": self.checkpoint.get("v"),
            "ts": self.checkpoint.get("ts"),
            "metadata": self.metadata,
            "values": self.values,
            "next": self.next,
            "interrupts": self.interrupts,
            "pending_writes": self.pending_writes,
        }


def decode_record(record: CheckpointRecord, decoder: PayloadDecoder) -> dict[str, Any]:
    """The exact tagged-JSON view of a record's payloads (what ``export --decode`` adds)."""
    try:
        return {
            "checkpoint": decoder.decode(record.checkpoint),
            "metadata": decoder.decode(record.metadata),
            "writes": [decoder.decode(w.value) for w in record.writes],
        }
    except PayloadError as exc:
        raise CorruptRecordError(f"cannot decode {record.key}: {exc}") from exc


def view_record(record: CheckpointRecord, decoder: PayloadDecoder) -> CheckpointView:
    """Decode a record for display; raises ``CorruptRecordError`` naming the row."""
    decoded = decode_record(record, decoder)
    checkpoint = readable(decoded["checkpoint"])
    if not isinstance(checkpoint, dict):
        raise CorruptRecordError(f"cannot decode {record.key}: the checkpoint payload is not a map")
    # An opaque checkpoint (encrypted without a key, unknown tag) is shown as such,
    # never as an empty state.
    opaque = "$opaque" in checkpoint
    values = checkpoint if opaque else (checkpoint.get("channel_values") or {})
    writes = [
        {"task_id": w.task_id, "task_path": w.task_path, "idx": w.idx, "channel": w.channel, "value": readable(v)}
        for w, v in zip(record.writes, decoded["writes"])
    ]
    key = record.key
    return CheckpointView(
        thread_id=key.thread_id,
        checkpoint_ns=key.checkpoint_ns,
        checkpoint_id=key.checkpoint_id,
        parent_checkpoint_id=record.parent_checkpoint_id,
        metadata=readable(decoded["metadata"]),
        checkpoint=checkpoint,
        values=values if opaque else {k: v for k, v in values.items() if not _internal(k)},
        next=[] if opaque else next_nodes(checkpoint),
        pending_writes=writes,
        interrupts=_interrupts(writes),
    )


def _internal(channel: str) -> bool:
    return channel.startswith(_TRIGGER_PREFIX) or channel.startswith("__")


def next_nodes(checkpoint: dict[str, Any]) -> list[str]:
    """Nodes that would run from this checkpoint (see module docstring)."""
    values = checkpoint.get("channel_values") or {}
    versions = checkpoint.get("channel_versions") or {}
    seen = checkpoint.get("versions_seen") or {}
    nodes: list[str] = []
    for channel in values:
        if not channel.startswith(_TRIGGER_PREFIX):
            continue
        node = channel[len(_TRIGGER_PREFIX) :]
        node_seen = seen.get(node)
        if not isinstance(node_seen, dict):
            node_seen = {}
        if _newer(versions.get(channel), node_seen.get(channel)) and node not in nodes:
            nodes.append(node)
    start_seen = seen.get("__start__") if isinstance(seen.get("__start__"), dict) else {}
    if "__start__" in values and _newer(versions.get("__start__"), (start_seen or {}).get("__start__")):
        nodes.append("__start__")  # an input checkpoint: the graph starts from its input
    for send in values.get(_TASKS) or []:
        if isinstance(send, dict) and "$send" in send and send["$send"] not in nodes:
            nodes.append(send["$send"])
    return sorted(nodes)


def _newer(version: Any, seen: Any) -> bool:
    if version is None:
        return False
    if seen is None:
        return True
    try:
        return bool(version > seen)
    except TypeError:
        return str(version) > str(seen)


def _interrupts(writes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for write in writes:
        if write["channel"] != INTERRUPT:
            continue
        items = write["value"] if isinstance(write["value"], list) else [write["value"]]
        for item in items:
            if isinstance(item, dict) and item.get("$type", "").endswith("Interrupt"):
                found.append({"id": item.get("id"), "value": item.get("value"), "task_id": write["task_id"]})
            else:
                found.append({"id": None, "value": item, "task_id": write["task_id"]})
    return found
