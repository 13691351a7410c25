"""A thread's history as a portable JSONL timeline (``ckpt replay``), readable with no Python.

One event per checkpoint in causal order: the root namespace in id order, each subgraph call's
checkpoints right after the root checkpoint they ran under. An event carries the step, source,
the tasks that ran to produce it (node, writes), its next nodes and interrupts, and the state as
an RFC 6902 delta against its parent in the same namespace (the first of a namespace, or every
event with ``full_state``, carries the whole ``state``). Values are in the readable view.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

from ckpt.backends.core.base import Selection, Store
from ckpt.formats.diff import json_patch
from ckpt.formats.payloads import PayloadDecoder
from ckpt.formats.state import CheckpointView, view_record

FORMAT = "ckpt/replay"
VERSION = 1


def header(thread_id: str, store: Store) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "thread_id": thread_id,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "store": {"kind": store.kind, "layout": store.layout()},
    }


def _node(task_path: str) -> str:
    """``~__pregel_pull, agent`` → ``agent``; a pushed task (Send) has no name in its path."""
    parts = [p.strip() for p in task_path.split(",")]
    if len(parts) >= 2 and parts[0] == "~__pregel_pull":
        return parts[1]
    if parts and parts[0] == "~__pregel_push":
        return "(send)"
    return parts[0] if parts and parts[0] else "(external)"


def _ran(parent: CheckpointView | None) -> list[dict[str, Any]]:
    if parent is None:
        return []
    tasks: dict[str, dict[str, Any]] = {}
    for write in parent.pending_writes:
        task = tasks.setdefault(
            write["task_id"], {"task_id": write["task_id"], "node": _node(write["task_path"]), "writes": []}
        )
        task["writes"].append({"channel": write["channel"], "value": write["value"]})
    return list(tasks.values())


def events(
    store: Store, thread_id: str, decoder: PayloadDecoder, *, full_state: bool = False
) -> Iterator[dict[str, Any]]:
    views = [view_record(r, decoder) for r in store.records(Selection(thread_id=thread_id))]
    by_ns: dict[str, list[CheckpointView]] = {}
    for view in views:
        by_ns.setdefault(view.checkpoint_ns, []).append(view)
    children: dict[str, list[str]] = {}
    for ns, group in by_ns.items():
        if ns:
            root = (group[0].metadata or {}).get("parents", {}).get("") if isinstance(group[0].metadata, dict) else None
            children.setdefault(str(root), []).append(ns)
    for event in _namespace(by_ns, "", full_state):
        yield event
        for ns in sorted(children.get(event["checkpoint_id"], [])):
            yield from _namespace(by_ns, ns, full_state)


def _namespace(by_ns: dict[str, list[CheckpointView]], ns: str, full_state: bool) -> Iterator[dict[str, Any]]:
    previous: CheckpointView | None = None
    for view in sorted(by_ns.get(ns, []), key=lambda v: v.checkpoint_id):
        metadata = view.metadata if isinstance(view.metadata, dict) else {}
        parent = previous if previous and previous.checkpoint_id == view.parent_checkpoint_id else None
        event: dict[str, Any] = {
            "event": "checkpoint",
            "checkpoint_ns": ns,
            "checkpoint_id": view.checkpoint_id,
            "parent_checkpoint_id": view.parent_checkpoint_id,
            "step": metadata.get("step"),
            "source": metadata.get("source"),
            "ts": view.checkpoint.get("ts"),
            "ran": _ran(parent),
            "next": view.next,
            "interrupts": view.interrupts,
        }
        if full_state or parent is None:
            event["state"] = view.values
        else:
            event["delta"] = json_patch(parent.values, view.values, "")
        yield event
        previous = view
