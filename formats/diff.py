"""Semantic diff of two checkpoints, per channel: messages as appended/removed/changed, the rest as
an RFC 6902 JSON Patch over the readable view. Internal channels are hidden unless asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ckpt.formats.state import CheckpointView
from ckpt.formats.view import is_message


def internal(channel: str) -> bool:
    return channel.startswith("branch:to:") or channel.startswith("__")


def document(view: CheckpointView, *, include_internal: bool = False) -> dict[str, Any]:
    """What is compared: state values, metadata, next nodes and pending interrupts."""
    values = view.checkpoint.get("channel_values") or {} if include_internal else view.values
    if "$opaque" in values:
        values = {"$opaque": values}
    return {
        "values": {k: v for k, v in values.items() if include_internal or not internal(k)},
        "metadata": view.metadata,
        "next": view.next,
        "interrupts": [{"id": i["id"], "value": i["value"]} for i in view.interrupts],
    }


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def json_patch(a: Any, b: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations that turn ``a`` into ``b``."""
    if type(a) is not type(b):
        return [{"op": "replace", "path": path, "value": b}]
    if isinstance(a, dict):
        ops: list[dict[str, Any]] = []
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{_escape(key)}"})
        for key, value in b.items():
            if key not in a:
                ops.append({"op": "add", "path": f"{path}/{_escape(key)}", "value": value})
            else:
                ops += json_patch(a[key], value, f"{path}/{_escape(key)}")
        return ops
    if isinstance(a, list):
        ops = []
        common = min(len(a), len(b))
        for i in range(common):
            ops += json_patch(a[i], b[i], f"{path}/{i}")
        for i in range(len(a) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": f"{path}/{i}"})
        for i in range(common, len(b)):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
        return ops
    return [] if a == b else [{"op": "replace", "path": path, "value": b}]


def apply_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """Apply RFC 6902 add/remove/replace operations (what ``json_patch`` emits)."""
    import copy

    result = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        if not parts:
            result = copy.deepcopy(op.get("value"))
            continue
        parent = result
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif op["op"] == "remove":
                del parent[index]
            else:
                parent[index] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return result


@dataclass
class ChannelChange:
    channel: str
    kind: str  # "added", "removed", "messages", "changed"
    appended: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)
    before: Any = None
    after: Any = None


def channel_changes(a: dict[str, Any], b: dict[str, Any]) -> list[ChannelChange]:
    """Per-channel changes between two ``values`` maps; message lists matched by message id."""
    changes = []
    for channel in list(a) + [c for c in b if c not in a]:
        if channel not in b:
            changes.append(ChannelChange(channel, "removed", before=a[channel]))
        elif channel not in a:
            changes.append(ChannelChange(channel, "added", after=b[channel]))
        elif a[channel] != b[channel]:
            changes.append(_change(channel, a[channel], b[channel]))
    return changes


def _messages(value: Any) -> bool:
    return isinstance(value, list) and all(is_message(v) for v in value)


def _change(channel: str, before: Any, after: Any) -> ChannelChange:
    if not (_messages(before) and _messages(after)):
        return ChannelChange(channel, "changed", before=before, after=after)
    old = {m.get("id") or f"#{i}": m for i, m in enumerate(before)}
    new = {m.get("id") or f"#{i}": m for i, m in enumerate(after)}
    return ChannelChange(
        channel,
        "messages",
        appended=[m for k, m in new.items() if k not in old],
        removed=[m for k, m in old.items() if k not in new],
        changed=[m for k, m in new.items() if k in old and old[k] != m],
    )
