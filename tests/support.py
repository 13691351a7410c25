"""What the official savers see: the oracle every fidelity test compares against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from examples.graphs import build_graph, config, serializer


@contextmanager
def official_saver(location: Path | str) -> Iterator[Any]:
    """The official saver for a SQLite path or a PostgreSQL libpq URL (search_path set)."""
    if isinstance(location, Path):
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(str(location)) as saver:
            saver.serde = serializer()
            yield saver
    else:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(location) as saver:
            saver.serde = serializer()
            yield saver


def saver_view(location: Path | str, thread_id: str) -> list[dict[str, Any]]:
    """``get_state_history`` of a thread as the official saver loads it, plus pending writes."""
    with official_saver(location) as saver:
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


def resume(location: Path | str, thread_id: str, answer: str = "yes") -> dict[str, Any]:
    """Resume an interrupted thread with ``Command(resume=...)`` on the official saver."""
    from langgraph.types import Command

    with official_saver(location) as saver:
        result: dict[str, Any] = build_graph(saver).invoke(Command(resume=answer), config(thread_id))
        return result


def populate_official(location: Path | str, threads: int = 3) -> list[str]:
    """Run the example graph on the official saver at ``location`` (creating its tables)."""
    from examples.graphs import populate

    with official_saver(location) as saver:
        if hasattr(saver, "setup"):
            saver.setup()
        return populate(saver, threads)
