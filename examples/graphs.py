"""A small but realistic LangGraph agent used for the shipped example store and the tests.

Its state holds what production agents store: LangChain messages with tool calls, a
counter reducer, a datetime, a set, raw bytes, a pydantic model and a dataclass. The run
goes through a subgraph (non-empty ``checkpoint_ns``), a ``Send`` fan-out and an
``interrupt`` that waits for a human answer.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.types import Command, Send, interrupt
from pydantic import BaseModel


class Profile(BaseModel):
    """A pydantic model kept in state (msgpack ext 5)."""

    name: str
    tier: int


@dataclass
class Note:
    """A dataclass kept in state (msgpack ext 2)."""

    text: str
    score: float


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    counter: Annotated[int, operator.add]
    results: Annotated[list[str], operator.add]
    when: datetime
    tags: set[str]
    raw: bytes
    profile: Profile
    note: Note


class ResearchState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    counter: Annotated[int, operator.add]


def _agent(state: State) -> dict[str, Any]:
    question = state["messages"][-1].content
    call = {"name": "lookup", "args": {"query": question}, "id": "call-1", "type": "tool_call"}
    return {
        "messages": [AIMessage(content="Let me look that up.", tool_calls=[call])],
        "counter": 1,
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        "tags": {"agent", "lookup"},
        "raw": b"\x00\x01\x02",
        "profile": Profile(name="ada", tier=2),
        "note": Note(text="first pass", score=0.5),
    }


def _tools(state: State) -> dict[str, Any]:
    call = state["messages"][-1].tool_calls[0]  # type: ignore[union-attr]
    reply = ToolMessage(content=f"found 2 results for {call['args']['query']!r}", tool_call_id=call["id"])
    return {"messages": [reply], "counter": 1}


def _fan_out(state: State) -> list[Send]:
    return [Send("worker", {"item": item}) for item in ("alpha", "beta")]


def _worker(state: dict[str, Any]) -> dict[str, Any]:
    return {"results": [f"processed {state['item']}"], "counter": 1}


def _summarise(state: ResearchState) -> dict[str, Any]:
    return {"messages": [AIMessage(content="Summary: both results look relevant.")], "counter": 1}


def _research_graph() -> Any:
    sub = StateGraph(ResearchState)
    sub.add_node("summarise", _summarise)
    sub.add_edge(START, "summarise")
    sub.add_edge("summarise", END)
    return sub.compile()


def _approve(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "Send the summary?", "asked_at": datetime(2024, 1, 2, tzinfo=timezone.utc)})
    return {"messages": [HumanMessage(content=f"approval: {answer}")], "note": Note(text="approved", score=1.0)}


def build_graph(checkpointer: Any) -> Any:
    """Compile the agent graph on the given checkpointer (any official saver)."""
    graph = StateGraph(State)
    graph.add_node("agent", _agent)
    graph.add_node("tools", _tools)
    graph.add_node("worker", _worker)
    graph.add_node("research", _research_graph())
    graph.add_node("approve", _approve)
    graph.add_edge(START, "agent")
    graph.add_edge("agent", "tools")
    graph.add_conditional_edges("tools", _fan_out, ["worker"])
    graph.add_edge("worker", "research")
    graph.add_edge("research", "approve")
    graph.add_edge("approve", END)
    return graph.compile(checkpointer=checkpointer)


def serializer() -> Any:
    """The saver's default serializer, told that this module's state classes are expected.

    Without it LangGraph warns on every load that ``Profile``/``Note`` are unregistered.
    """
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    return JsonPlusSerializer(allowed_msgpack_modules=[("examples.graphs", "Profile"), ("examples.graphs", "Note")])


def config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def populate(checkpointer: Any, threads: int = 3) -> list[str]:
    """Run the graph on ``threads`` threads; every thread but the last is resumed to the end.

    Returns the thread ids; the last one is left waiting at its interrupt.
    """
    app = build_graph(checkpointer)
    ids = [f"thread-{n}" for n in range(1, threads + 1)]
    for thread_id in ids:
        app.invoke({"messages": [HumanMessage(content=f"find papers for {thread_id}")]}, config(thread_id))
    for thread_id in ids[:-1]:
        app.invoke(Command(resume="yes"), config(thread_id))
    return ids
