"""Build a synthetic SQLite checkpoint store whose threads grow message by message (seeded).

    /work/venv/bin/python bench/make_growing_store.py 100000 bench/data/grow-100k.db [--seed 0]

Layout: exactly langgraph-checkpoint-sqlite 3.1.2 (``SCHEMA_3_1_2``, WAL journal). Every
checkpoint is a valid LangGraph v4 checkpoint serialized by LangGraph's own
``JsonPlusSerializer().dumps_typed``: ``channel_values`` holds the thread's growing list of
LangChain ``HumanMessage``/``AIMessage`` objects plus an int ``counter``; string channel
versions ``f"{n:032}.{random:016}"``; ``versions_seen``; ``updated_channels``. Threads run
16-24 steps (~20); step n holds n+1 messages, so blobs grow from ~0.8 KB to ~12 KB (~5 KB
on average). Each checkpoint but a thread's last has 2 pending writes of one task (with
``task_path``): ``messages`` = msgpack ``[AIMessage|HumanMessage]`` (the next message) and
``branch:to:agent`` = ``('null', b'')``. Metadata is ``{"source": "loop", "step": n, "parents": {}}``.

Ids are LangGraph uuid6 (``langgraph.checkpoint.base.id.UUID``, version 6, clock_seq = step)
built from a seeded synthetic clock instead of the wall clock, so the file is reproducible;
they sort by time and ``parent_checkpoint_id`` chains each thread. ``--concurrency`` threads
are live at once and rows are inserted in time order, so a thread's rows are scattered over
the table as in a live server.

Speed: messages come from a pre-built pool, each turned once into the ``ormsgpack.Ext`` that
LangGraph's encoder makes for it, so ``dumps_typed`` on the checkpoint dict yields the very
bytes it would for the message objects (checked at start) without re-dumping pydantic models.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import ormsgpack
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base.id import UUID
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer, _msgpack_default

from ckpt.backends.sqlite.store import SCHEMA_3_1_2

GREGORIAN_OFFSET = 0x01B21DD213814000  # 100-ns ticks from 1582-10-15 to 1970-01-01
BASE_EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z
POOL = 512
BATCH = 20_000
VOCABULARY = (
    "the a to of and in is it that for you on with this be are as can at not have your from or by will an "
    "agent graph state node tool call message user assistant thread checkpoint result search query answer "
    "data file order refund invoice account model token step run error retry please thanks could would "
    "should need want find show list update delete create report summary weather flight hotel price"
)
WORDS = VOCABULARY.split()
SERDE = JsonPlusSerializer()

CheckpointRow = tuple[str, str, str, "str | None", str, bytes, bytes]
WriteRow = tuple[str, str, str, str, str, int, str, str, bytes]


def uuid6_at(epoch: float, clock_seq: int, node: int) -> str:
    """LangGraph's ``uuid6(clock_seq=...)`` bit layout, on a given clock instead of ``time.time_ns()``."""
    ticks = int(epoch * 1e7) + GREGORIAN_OFFSET
    value = ((ticks >> 12) & 0xFFFFFFFFFFFF) << 80 | (ticks & 0x0FFF) << 64
    value |= (clock_seq & 0x3FFF) << 48 | (node & 0xFFFFFFFFFFFF)
    return str(UUID(int=value, version=6))


def text(rng: random.Random, chars: int) -> str:
    out: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        out.append(word)
        size += len(word) + 1
    return " ".join(out).capitalize() + "."


def message_pool(rng: random.Random) -> tuple[list[BaseMessage], list[BaseMessage]]:
    humans: list[BaseMessage] = [
        HumanMessage(content=text(rng, rng.randint(40, 400)), id=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        for _ in range(POOL)
    ]
    ais: list[BaseMessage] = [
        AIMessage(
            content=text(rng, rng.randint(20, 240)),
            id=f"run--{uuid.UUID(int=rng.getrandbits(128), version=4)}-0",
            response_metadata={"model_name": "gpt-4o-mini-2024-07-18", "finish_reason": "stop"},
            usage_metadata={
                "input_tokens": rng.randint(50, 4000),
                "output_tokens": rng.randint(10, 400),
                "total_tokens": rng.randint(100, 4400),
            },
        )  # fmt: skip
        for _ in range(POOL)
    ]
    return humans, ais


def ext(message: BaseMessage) -> ormsgpack.Ext:
    """The ``ormsgpack.Ext`` LangGraph's msgpack encoder turns a message into."""
    value = _msgpack_default(message)
    assert isinstance(value, ormsgpack.Ext)
    return value


@dataclass
class Thread:
    thread_id: str
    length: int
    step: int = 0
    parent: str | None = None
    messages: list[ormsgpack.Ext] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


class Generator:
    def __init__(self, seed: int, concurrency: int) -> None:
        self.rng = random.Random(seed)
        humans, ais = message_pool(self.rng)
        self.humans = [ext(m) for m in humans]
        self.ais = [ext(m) for m in ais]
        # The Ext shortcut must give LangGraph's own bytes for the message objects.
        assert SERDE.dumps_typed([humans[0], ais[0]]) == SERDE.dumps_typed([self.humans[0], self.ais[0]])
        self.concurrency = concurrency
        self.clock = BASE_EPOCH

    def _new_thread(self) -> Thread:
        thread_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return Thread(thread_id, self.rng.randint(16, 24))

    def _next_message(self, step: int) -> ormsgpack.Ext:
        return self.rng.choice(self.humans if step % 2 == 0 else self.ais)

    def _version(self, n: int) -> str:
        return f"{n:032}.{self.rng.random():016}"

    def rows(self, total: int) -> Iterator[tuple[CheckpointRow, list[WriteRow]]]:
        live = [self._new_thread() for _ in range(self.concurrency)]
        for _ in range(total):
            slot = self.rng.randrange(len(live))
            thread = live[slot]
            self.clock += self.rng.expovariate(20.0)  # ~20 checkpoints/s across the whole store
            yield self._checkpoint(thread)
            if thread.step == thread.length:
                live[slot] = self._new_thread()

    def _checkpoint(self, t: Thread) -> tuple[CheckpointRow, list[WriteRow]]:
        n = t.step
        rng = self.rng
        if n == 0:
            t.messages.append(self._next_message(0))
            t.versions["__start__"] = self._version(1)
        t.versions["messages"] = self._version(n + 1)
        t.versions["counter"] = self._version(n + 1)
        t.versions["branch:to:agent"] = self._version(n + 1)
        checkpoint_id = uuid6_at(self.clock, n, rng.getrandbits(48))
        checkpoint: dict[str, Any] = {
            "v": 4,
            "ts": datetime.fromtimestamp(self.clock, timezone.utc).isoformat(),
            "id": checkpoint_id,
            "channel_values": {"messages": list(t.messages), "counter": n},
            "channel_versions": dict(t.versions),
            "versions_seen": {
                "__input__": {},
                "__start__": {"__start__": t.versions["__start__"]},
                "agent": {"branch:to:agent": t.versions["branch:to:agent"]},
            },
            "updated_channels": ["messages", "counter"],
        }
        type_, blob = SERDE.dumps_typed(checkpoint)
        metadata = json.dumps({"source": "loop", "step": n, "parents": {}}).encode()
        row: CheckpointRow = (t.thread_id, "", checkpoint_id, t.parent, type_, blob, metadata)
        writes: list[WriteRow] = []
        t.step, t.parent = n + 1, checkpoint_id
        if t.step < t.length:
            nxt = self._next_message(t.step)
            task_id = str(uuid.UUID(int=rng.getrandbits(128), version=5))
            values = [("messages", SERDE.dumps_typed([nxt])), ("branch:to:agent", SERDE.dumps_typed(None))]
            for idx, (channel, (wtype, wblob)) in enumerate(values):
                writes.append((t.thread_id, "", checkpoint_id, task_id, "~__pregel_pull, agent", idx, channel, wtype,
                               wblob))  # fmt: skip
            t.messages.append(nxt)
        return row, writes


def build(total: int, path: str, seed: int, concurrency: int) -> None:
    if os.path.exists(path):
        raise SystemExit(f"{path} exists; delete it first")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")  # what SqliteSaver.setup() does
    conn.execute("PRAGMA synchronous=OFF")  # build speed only; not stored in the file
    conn.executescript(SCHEMA_3_1_2)
    gen = Generator(seed, concurrency)
    started, blob_bytes = time.perf_counter(), 0
    ckpts: list[CheckpointRow] = []
    writes: list[WriteRow] = []

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", ckpts)
        conn.executemany("INSERT INTO writes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", writes)
        conn.execute("COMMIT")
        ckpts.clear()
        writes.clear()

    for done, (row, row_writes) in enumerate(gen.rows(total), 1):
        ckpts.append(row)
        writes.extend(row_writes)
        blob_bytes += len(row[5])
        if len(ckpts) >= BATCH:
            flush()
            print(f"\r{done:,}/{total:,}", end="", file=sys.stderr)
    flush()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n_writes = conn.execute("SELECT count(*) FROM writes").fetchone()[0]
    threads = conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints").fetchone()[0]
    conn.close()
    print(
        f"\r{path}: {total:,} checkpoints in {threads:,} threads, {n_writes:,} writes, "
        f"avg checkpoint blob {blob_bytes / max(total, 1):,.0f} B, {os.path.getsize(path) / 2**20:,.0f} MiB, "
        f"{time.perf_counter() - started:.0f} s",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=int)
    parser.add_argument("path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=64, help="threads live at once (interleaving)")
    args = parser.parse_args()
    build(args.checkpoints, args.path, args.seed, args.concurrency)


if __name__ == "__main__":
    main()
