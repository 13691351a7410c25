"""One deterministic LangGraph scenario, runnable under old (0.2.x era) and current LangGraph.

Used twice (issue #20):
- ``make.py`` runs it inside a virtualenv holding an OLD release of an official saver, so the
  store it leaves is exactly what that release wrote; ``view`` of the old saver is kept as
  ``expected.json``.
- the tests import it (by file path) under the CURRENT savers and compare ``view`` on the same store.

It must therefore import nothing from ckpt and use only APIs present across that range:
``StateGraph``, ``add_messages``, ``Send``, ``interrupt_before`` (no ``interrupt()`` / ``Command``).

    python scenario.py KIND TARGET [--expected OUT.json] [--couchbase-standin PATH --couchbase-dump OUT.json]

KIND/TARGET: sqlite PATH | postgres LIBPQ_URL | redis URL | mongodb URL#DB | couchbase -
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import operator
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages

try:  # langgraph >= 0.2.2x
    from langgraph.types import Send
except ImportError:  # the 0.2.0 era kept it here
    from langgraph.constants import Send  # type: ignore[no-redef]

# Thread ids written by run(); the unicode one checks key/ID escaping in every store.
T_COMPLETE = "complete"
T_ASK = "paused-ask"
T_WORKERS = "paused-workers"
T_SUBGRAPH = "paused-subgraph"
T_UNICODE = "ünï-✓-线程"
THREADS = [T_COMPLETE, T_ASK, T_WORKERS, T_SUBGRAPH, T_UNICODE]


class State(TypedDict, total=False):
    messages: Annotated[list[BaseMessage], add_messages]
    results: Annotated[list[str], operator.add]
    topic: str


# ---- nodes: pure functions with fixed message ids, so every run writes the same values ---------
def agent(state: State) -> dict[str, Any]:
    call = {"name": "lookup", "args": {"q": state.get("topic", "")}, "id": "call-1"}
    return {"messages": [AIMessage(content="", id="ai-1", tool_calls=[call])]}


def tools(state: State) -> dict[str, Any]:
    return {"messages": [ToolMessage(content="found: 42", tool_call_id="call-1", id="tool-1")]}


def fan_out(state: State) -> list[Any]:
    return [Send("worker", {"item": "alpha"}), Send("worker", {"item": "beta"})]


def worker(state: dict[str, Any]) -> dict[str, Any]:
    return {"results": [f"done:{state['item']}"]}


def ask(state: State) -> dict[str, Any]:
    return {"messages": [AIMessage(content="shall I go on?", id="ai-ask")]}


def inner_prep(state: State) -> dict[str, Any]:
    return {"results": ["prepared"]}


def inner(state: State) -> dict[str, Any]:
    return {"messages": [AIMessage(content="subgraph done ✓", id="ai-inner")]}


def build_subgraph() -> Any:
    sub = StateGraph(State)
    sub.add_node("inner_prep", inner_prep)
    sub.add_node("inner", inner)
    sub.add_edge(START, "inner_prep")
    sub.add_edge("inner_prep", "inner")
    sub.add_edge("inner", END)
    # checkpointer left unset: the parent's is inherited, so its checkpoints land in ns "middle:<task>"
    return sub.compile(interrupt_before=["inner"])


def build_graph(checkpointer: Any, interrupt_before: tuple[str, ...] = ("ask",)) -> Any:
    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", tools)
    graph.add_node("worker", worker)  # type: ignore[type-var]  # its input is the Send's arg, not State
    graph.add_node("ask", ask)
    graph.add_node("middle", build_subgraph())
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "tools")
    graph.add_conditional_edges("tools", fan_out, ["worker"])
    graph.add_edge("worker", "ask")
    graph.add_edge("ask", "middle")
    graph.add_edge("middle", END)
    return graph.compile(checkpointer=checkpointer, interrupt_before=list(interrupt_before))


def _config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def _start(graph: Any, thread_id: str) -> None:
    first = {"messages": [HumanMessage(content=f"look up {thread_id}", id="human-1")], "topic": thread_id}
    graph.invoke(first, _config(thread_id))


def _resume(graph: Any, thread_id: str, times: int) -> None:
    for _ in range(times):
        if not graph.get_state(_config(thread_id)).next:
            return
        graph.invoke(None, _config(thread_id))


def run(checkpointer: Any) -> None:
    """Write the five threads; each stops at a fixed place."""
    graph = build_graph(checkpointer)
    for thread_id in (T_COMPLETE, T_UNICODE):
        _start(graph, thread_id)
        _resume(graph, thread_id, 5)  # past ask, past the subgraph's inner
    _start(graph, T_ASK)  # stops before ask
    _start(graph, T_SUBGRAPH)
    _resume(graph, T_SUBGRAPH, 1)  # stops inside middle, before inner
    _start(build_graph(checkpointer, ("worker", "ask")), T_WORKERS)  # stops with two pending Sends


# ---- view: what a saver shows, normalized to JSON ------------------------------------------
def normalize(value: Any) -> Any:
    """JSON form of state/write values that is the same whichever serializer stored them."""
    if isinstance(value, BaseMessage):
        return {
            "type": value.type,
            "content": value.content,
            "id": value.id,
            "tool_calls": [
                {"name": c["name"], "args": normalize(c["args"]), "id": c["id"]}
                for c in (getattr(value, "tool_calls", None) or [])
            ],
            "tool_call_id": getattr(value, "tool_call_id", None),
        }
    if type(value).__name__ == "Send" and hasattr(value, "node"):
        return {"__send__": value.node, "arg": normalize(value.arg)}
    if type(value).__name__ == "Interrupt":
        return {"__interrupt__": normalize(getattr(value, "value", None))}
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((normalize(v) for v in value), key=repr)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    return {"__repr__": f"{type(value).__name__}"}


def _ids(config: Any) -> dict[str, Any] | None:
    if not config:
        return None
    conf = config.get("configurable", {})
    return {"checkpoint_ns": conf.get("checkpoint_ns", ""), "checkpoint_id": conf.get("checkpoint_id")}


def _snapshot(snapshot: Any) -> dict[str, Any]:
    tasks = []
    for task in getattr(snapshot, "tasks", ()) or ():
        entry: dict[str, Any] = {"name": task.name}
        interrupts = getattr(task, "interrupts", None)
        if interrupts:
            entry["interrupts"] = [normalize(getattr(i, "value", i)) for i in interrupts]
        sub = getattr(task, "state", None)
        if sub is not None and hasattr(sub, "values"):  # a subgraph's StateSnapshot (subgraphs=True)
            entry["state"] = _snapshot(sub)
        tasks.append(entry)
    return {
        "config": _ids(snapshot.config),
        "values": normalize(snapshot.values),
        "next": list(snapshot.next),
        "tasks": tasks,
    }


def _writes(checkpointer: Any, config: Any) -> list[Any] | None:
    found = checkpointer.get_tuple(config)
    if found is None:
        return None
    writes = [[task_id, channel, normalize(value)] for task_id, channel, value in found.pending_writes or []]
    return sorted(writes, key=lambda w: json.dumps(w, sort_keys=True, ensure_ascii=False))


def _history_entry(checkpointer: Any, config: Any, parent: Any, metadata: Any, next_: Any) -> dict[str, Any]:
    metadata = metadata or {}
    return {
        "config": _ids(config),
        "parent": _ids(parent),
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "next": list(next_) if next_ is not None else None,
        "pending_writes": _writes(checkpointer, config),
    }


def _get_state(graph: Any, config: Any) -> Any:
    try:
        return graph.get_state(config, subgraphs=True)
    except TypeError:  # before subgraphs=
        return graph.get_state(config)


def _catch(fn: Any, *args: Any) -> Any:
    """A saver that raises is part of what it shows: record the error instead of stopping."""
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any failure is data here
        return {"__error__": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _subgraph_history(checkpointer: Any, thread_id: str, state: dict[str, Any]) -> dict[str, Any]:
    """Checkpoint list of each paused subgraph namespace (ns = its StateSnapshot config)."""
    out: dict[str, Any] = {}
    for task in state.get("tasks", []):
        sub = task.get("state")
        if not sub or not sub.get("config"):
            continue
        ns = sub["config"]["checkpoint_ns"]
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns}}
        # list() first: SqliteSaver holds its (non-reentrant) lock while list() yields
        found = list(checkpointer.list(config))
        out[ns] = [_history_entry(checkpointer, t.config, t.parent_config, t.metadata, None) for t in found]
    return out


def view_thread(checkpointer: Any, thread_id: str) -> dict[str, Any]:
    graph = build_graph(checkpointer)
    config = _config(thread_id)
    state = _catch(lambda: _snapshot(_get_state(graph, config)))
    history = _catch(
        lambda: [
            _history_entry(checkpointer, s.config, s.parent_config, s.metadata, s.next)
            for s in list(graph.get_state_history(config))  # list(): see _subgraph_history
        ]
    )
    subgraphs = _catch(_subgraph_history, checkpointer, thread_id, state) if "__error__" not in state else {}
    return {"state": state, "history": history, "subgraph_history": subgraphs}


def view(checkpointer: Any) -> dict[str, Any]:
    """What the saver shows for every thread run() wrote (JSON-able)."""
    return {thread_id: view_thread(checkpointer, thread_id) for thread_id in THREADS}


# ---- opening a saver of each kind (constructors that exist in every release covered) ----------
@contextmanager
def open_saver(kind: str, target: str, couchbase_cluster: Any = None) -> Iterator[Any]:
    if kind == "sqlite":
        import sqlite3

        from langgraph.checkpoint.sqlite import SqliteSaver

        conn = sqlite3.connect(target, check_same_thread=False)
        try:
            yield SqliteSaver(conn)
        finally:
            conn.close()
    elif kind == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(target) as saver:
            saver.setup()
            yield saver
    elif kind == "redis":
        from langgraph.checkpoint.redis import RedisSaver

        with RedisSaver.from_conn_string(target) as saver:
            saver.setup()
            yield saver
    elif kind == "mongodb":
        import pymongo
        from langgraph.checkpoint.mongodb import MongoDBSaver

        url, db_name = target.rsplit("#", 1)
        client: Any = pymongo.MongoClient(url)
        try:
            yield MongoDBSaver(client, db_name=db_name)
        finally:
            client.close()
    elif kind == "couchbase":
        os.environ.setdefault("DO_NOT_TRACK", "1")  # the package posts telemetry on import otherwise
        from langgraph_checkpointer_couchbase import CouchbaseSaver  # type: ignore[import-untyped]

        yield CouchbaseSaver(couchbase_cluster, "app", "agents", "checkpoints", "checkpoint_writes")
    else:
        raise SystemExit(f"unknown kind {kind}")


def load_module(path: str, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind")
    parser.add_argument("target")
    parser.add_argument("--expected", help="write view() of the saver here")
    parser.add_argument("--couchbase-standin", help="path of tests/backends/couchbase_standin.py")
    parser.add_argument("--couchbase-dump", help="write the stand-in's documents here")
    args = parser.parse_args(argv)
    cluster = None
    if args.kind == "couchbase":
        cluster = load_module(args.couchbase_standin, "couchbase_standin").Cluster()
    with open_saver(args.kind, args.target, cluster) as saver:
        run(saver)
        if args.expected:
            with open(args.expected, "w", encoding="utf-8") as f:
                json.dump(view(saver), f, indent=1, ensure_ascii=False, sort_keys=True)
                f.write("\n")
    if cluster is not None and args.couchbase_dump:
        docs = {name: dict(sorted(c.docs.items())) for name, c in sorted(cluster.collections.items())}
        with open(args.couchbase_dump, "w", encoding="utf-8") as f:
            json.dump(docs, f, indent=1, ensure_ascii=False, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
