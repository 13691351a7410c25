"""What the official saver sees: the oracle every fidelity test compares against."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from examples.graphs import build_graph, config, serializer


def saver_view(path: Path, thread_id: str) -> list[dict[str, Any]]:
    """``get_state_history`` of a thread as the official SqliteSaver loads it, plus pending writes."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = serializer()
        graph = build_graph(saver)
        history = []
        for snap in graph.get_state_history(config(thread_id)):
            tuple_ = saver.get_tuple(snap.config)
            assert tuple_ is not None
            history.append(
                {
                    "config": snap.config,
                    "values": snap.values,
                    "next": snap.next,
                    "metadata": snap.metadata,
                    "parent": snap.parent_config,
                    "tasks": [(t.id, t.name, t.interrupts) for t in snap.tasks],
                    "pending_writes": tuple_.pending_writes,
                    "created_at": snap.created_at,
                }
            )
        return history


def resume(path: Path, thread_id: str, answer: str = "yes") -> dict[str, Any]:
    """Resume an interrupted thread with ``Command(resume=...)`` on the official saver."""
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.types import Command

    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = serializer()
        result: dict[str, Any] = build_graph(saver).invoke(Command(resume=answer), config(thread_id))
        return result
