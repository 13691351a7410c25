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
    elif location.startswith("mongodb"):
        from urllib.parse import urlsplit

        from langgraph.checkpoint.mongodb import MongoDBSaver

        database = urlsplit(location).path.strip("/") or "checkpointing_db"
        with MongoDBSaver.from_conn_string(location, db_name=database) as saver:
            saver.serde = serializer()
            yield saver
    elif location.startswith("redis+cluster://"):
        from langgraph.checkpoint.redis import RedisSaver

        # RedisSaver in cluster mode: a RedisCluster client (RESP2: without it a second setup() fails)
        client = cluster_client(location)
        try:
            saver = RedisSaver(redis_client=client)
            saver.setup()  # detects cluster_mode from the client's class
            assert saver.cluster_mode
            yield saver
        finally:
            client.close()
    elif location.startswith("redis"):
        from langgraph.checkpoint.redis import RedisSaver

        with RedisSaver.from_conn_string(location) as saver:
            saver.setup()  # RedisSaver's serializer is its own JSON one; it takes no serde
            yield saver
    else:
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(location) as saver:
            saver.serde = serializer()
            yield saver


def command_calls(client: Any, command: str, field: str = "calls") -> int:
    """A Redis server's count of ``command`` (``INFO commandstats``: ``calls``, ``rejected_calls`` …)."""
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get(field, 0))


def cluster_client(url: str) -> Any:
    """A redis-py ``RedisCluster`` on the nodes of a ``redis+cluster://h:p,h:p`` URL, as an app would make it."""
    from redis.cluster import ClusterNode, RedisCluster

    nodes = [ClusterNode(h, int(p)) for h, _, p in (n.rpartition(":") for n in url.split("://", 1)[1].split(","))]
    return RedisCluster(startup_nodes=nodes, protocol=2)


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
        if hasattr(saver, "setup") and not type(saver).__name__.startswith("MongoDB"):
            saver.setup()
        return populate(saver, threads)


def plain(value: Any) -> Any:
    """A value as JSON would keep it: how RedisSaver-stored state is compared with the others.

    RedisSaver stores JSON (spec §5.1): datetimes come back as strings, sets revive as sets,
    pydantic models as dicts. Comparing ``plain(a) == plain(b)`` asks "same data", not "same
    Python types", which is the most a Redis round trip can promise.
    """
    import dataclasses
    import datetime
    import uuid

    from langchain_core.messages import BaseMessage
    from pydantic import BaseModel

    if isinstance(value, BaseMessage):
        calls = [(c["name"], plain(c["args"]), c["id"]) for c in getattr(value, "tool_calls", [])]
        return [value.type, plain(value.content), calls, getattr(value, "tool_call_id", None), value.id]
    if isinstance(value, BaseModel):
        return plain(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            "$class": type(value).__name__,
            **{f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
        }
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v) for v in value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        if value.get("lc") == 2 and value.get("type") == "constructor" and isinstance(value.get("kwargs"), dict):
            return plain(value["kwargs"])  # RedisSaver hands unrevivable models back as their envelope (spec §9)
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "__dict__") and type(value).__module__.startswith("langgraph"):
        return {"$class": type(value).__name__, **{k: plain(v) for k, v in vars(value).items()}}
    return value


def tuple_view(location: Path | str, keys: list[tuple[str, str, str]]) -> list[Any]:
    """``get_tuple`` of each checkpoint key on the official saver, as plain data."""
    with official_saver(location) as saver:
        return tuples_of(saver, keys)


def tuples_of(saver: Any, keys: list[tuple[str, str, str]]) -> list[Any]:
    """``get_tuple`` of each checkpoint key on ``saver``, as plain data."""
    if True:
        out = []
        for thread_id, ns, checkpoint_id in keys:
            cfg = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
            found = saver.get_tuple(cfg)
            assert found is not None, (thread_id, ns, checkpoint_id)
            parent = found.parent_config["configurable"]["checkpoint_id"] if found.parent_config else None
            meta = {k: v for k, v in found.metadata.items() if k != "writes"}
            writes = sorted((t, c, repr(plain(v))) for t, c, v in found.pending_writes or [])
            out.append(
                [thread_id, ns, checkpoint_id, parent, plain(found.checkpoint["channel_values"]), plain(meta), writes]
            )
        return out
