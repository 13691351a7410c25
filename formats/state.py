"""A checkpoint record → what a person asks of it: values, next nodes, writes, interrupts.

``next`` is derived from the stored data only (no graph is loaded): a node is next when one
of its trigger channels holds a value newer than what the node has seen (``branch:to:<node>``;
``start:<node>``, ``branch:<src>:<cond>:<node>`` and the source node's own channel in graphs of
LangGraph 0.2), plus one task per pending ``Send`` (``__pregel_tasks``, or ``pending_sends`` in
checkpoints older than format v4). This matches what the saver's ``StateSnapshot.next`` shows
for graphs built with ``StateGraph``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ckpt.backends.core.base import CheckpointRecord
from ckpt.backends.core.errors import CorruptRecordError
from ckpt.formats.payloads import PayloadDecoder, PayloadError
from ckpt.formats.view import readable

INTERRUPT = "__interrupt__"
_TRIGGER_PREFIX = "branch:to:"
_TASKS = "__pregel_tasks"
_START = "__start__"
_PLUMBING = (_TRIGGER_PREFIX, "start:", "branch:", "join:", "__")


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


def view_record(
    record: CheckpointRecord, decoder: PayloadDecoder, learned: Mapping[str, set[str]] | None = None
) -> CheckpointView:
    """Decode a record for display; raises ``CorruptRecordError`` naming the row. ``learned``:
    channel → nodes it triggers, from other checkpoints of the graph (see :func:`next_nodes`)."""
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
        values=values if opaque else _state(values, _node_names(checkpoint)),
        next=[] if opaque else next_nodes(checkpoint, learned),
        pending_writes=writes,
        interrupts=_interrupts(writes),
    )


def _internal(channel: str, nodes: set[str] | frozenset[str] = frozenset()) -> bool:
    """Channels that are the graph's plumbing, not its state: triggers of every LangGraph era
    (``branch:to:n``; before v3 ``start:n``, ``branch:src:cond:n``, ``join:a+b:n``), the node-named
    channels LangGraph 0.2 wrote when a node finished, and the ``__…__`` ones."""
    return channel.startswith(_PLUMBING) or channel in nodes


def _state(values: dict[str, Any], nodes: set[str]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not _internal(k, nodes)}


def _triggered_node(channel: str) -> str | None:
    """The node a trigger channel wakes, from its name alone (every LangGraph era)."""
    if channel.startswith(_TRIGGER_PREFIX):
        return channel[len(_TRIGGER_PREFIX) :]
    if channel == _START:
        return _START  # an input checkpoint: the graph starts from its input
    if channel.startswith(("start:", "join:")) or (channel.startswith("branch:") and channel.count(":") == 3):
        return channel.rsplit(":", 1)[1]
    return None


def _node_names(checkpoint: dict[str, Any]) -> set[str]:
    seen = checkpoint.get("versions_seen") or {}
    return {node for node in seen if isinstance(node, str) and not node.startswith("__")}


def next_nodes(checkpoint: dict[str, Any], learned: Mapping[str, set[str]] | None = None) -> list[str]:
    """Nodes that would run from this checkpoint, one entry per task (see module docstring).

    A node is next when one of its trigger channels holds a value newer than the node has
    seen. Its triggers are the channels named for it and those it recorded in
    ``versions_seen`` when it last ran (how LangGraph 0.2's plain edges, triggered by the
    source node's own channel, are found without the graph), plus ``learned`` ones: a node that
    never ran in this thread is known to read a node channel only from another thread where it
    did (:func:`unexplained_channels`, :func:`seen_triggers`). Each pending ``Send`` is a task.
    """
    values = checkpoint.get("channel_values") or {}
    versions = checkpoint.get("channel_versions") or {}
    seen = checkpoint.get("versions_seen") or {}
    triggers: dict[str, set[str]] = {}
    for node, node_seen in seen.items():
        if isinstance(node_seen, dict) and node != INTERRUPT:
            triggers.setdefault(node, set()).update(node_seen)
    for channel in values:
        node = _triggered_node(channel)
        if node is not None:
            triggers.setdefault(node, set()).add(channel)
        for reader in (learned or {}).get(channel, ()):
            triggers.setdefault(reader, set()).add(channel)
    nodes = [node for node, channels in triggers.items() if _woken(node, channels, values, versions, seen)]
    sends = values.get(_TASKS) or checkpoint.get("pending_sends") or []
    nodes += [send["$send"] for send in sends if isinstance(send, dict) and "$send" in send]
    return sorted(nodes)


def unexplained_channels(checkpoint: dict[str, Any]) -> set[str]:
    """Node channels (LangGraph 0.2: written when a node finished) holding a value that no node of
    this checkpoint is known to read: their readers are nodes that never ran in this thread."""
    values = checkpoint.get("channel_values") or {}
    readers = seen_triggers(checkpoint)
    return {channel for channel in _node_names(checkpoint) if channel in values and channel not in readers}


def seen_triggers(checkpoint: dict[str, Any]) -> dict[str, set[str]]:
    """Channel → the nodes that recorded it in ``versions_seen`` (so it triggers them)."""
    found: dict[str, set[str]] = {}
    for node, node_seen in (checkpoint.get("versions_seen") or {}).items():
        if isinstance(node_seen, dict) and node != INTERRUPT:
            for channel in node_seen:
                found.setdefault(channel, set()).add(node)
    return found


def _woken(
    node: str, channels: set[str], values: dict[str, Any], versions: dict[str, Any], seen: dict[str, Any]
) -> bool:
    node_seen = seen.get(node) if isinstance(seen.get(node), dict) else {}
    # LangGraph runs a node only for a trigger that holds a value (an empty channel never fires).
    return any(c in values and _newer(versions.get(c), (node_seen or {}).get(c)) for c in channels)


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
