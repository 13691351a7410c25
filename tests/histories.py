"""Generated checkpoint histories, written through an official saver's own ``put``/``put_writes``.

The example graph writes one shape of history. Retention and integrity bugs hide in others: channels
updated at different rates (so a kept checkpoint shares blob versions with deleted ones), trigger
channels consumed to an empty value, forks, per-call and persistent subgraph namespaces, pending
interrupts and Sends on the newest checkpoint, DeltaChannel markers, and checkpoints spread over
days and weeks (so ``--keep-daily``/``--keep-weekly`` keep non-contiguous checkpoints). Every value is
JSON-friendly so that RedisSaver's JSON serializer stores it without loss.

``write_histories(saver, seed)`` is deterministic in ``seed``; versions come from the saver's own
``get_next_version`` (padded strings or ints, as that saver writes them).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

GREGORIAN_OFFSET = 0x01B21DD213814000
DAY = 86400.0


def uuid6_at(epoch: float, clock_seq: int, node: int) -> str:
    """LangGraph's uuid6 layout with a chosen time: ids sort by time, as the saver's do."""
    ticks = int(epoch * 1e7) + GREGORIAN_OFFSET
    return (
        f"{ticks >> 28:08x}-{(ticks >> 12) & 0xFFFF:04x}-6{ticks & 0xFFF:03x}-"
        f"{0x8000 | (clock_seq & 0x3FFF):04x}-{node:012x}"
    )


@dataclass
class _Head:
    """The newest checkpoint of one namespace while it is being written."""

    checkpoint_id: str | None
    versions: dict[str, Any]
    values: dict[str, Any]


class _Writer:
    def __init__(self, saver: Any, rng: random.Random, thread_id: str, now: float) -> None:
        self.saver, self.rng, self.thread_id = saver, rng, thread_id
        self.now = now
        self.clock = now - rng.uniform(3, 40) * DAY  # spread over days, for the day and week buckets
        self.node = rng.getrandbits(48)
        self.seq = 0
        self.written: list[tuple[str, str]] = []  # (ns, checkpoint_id), in write order

    def tick(self) -> str:
        # minutes to two days between steps: several steps a day, and days with none
        step = self.rng.choice((60.0, 600.0, 3600.0, 0.4 * DAY, 1.3 * DAY, 2.1 * DAY))
        limit = self.now - 60.0  # never in the future: every thread is idle for --min-idle 0s
        self.clock = self.clock + step if self.clock + step < limit else self.clock + (limit - self.clock) / 2
        self.seq += 1
        return uuid6_at(self.clock, self.seq, self.node)

    def put(
        self, ns: str, head: _Head, updates: dict[str, Any], consumed: tuple[str, ...], metadata: dict[str, Any]
    ) -> _Head:
        from langgraph.checkpoint.base import empty_checkpoint

        versions = dict(head.versions)
        values = dict(head.values)
        new_versions: dict[str, Any] = {}
        for channel, value in updates.items():
            versions[channel] = new_versions[channel] = self.saver.get_next_version(versions.get(channel), None)
            values[channel] = value
        for channel in consumed:  # a trigger read by its node: a new version, and no value any more
            if channel in values:
                versions[channel] = new_versions[channel] = self.saver.get_next_version(versions.get(channel), None)
                del values[channel]
        checkpoint = empty_checkpoint()
        checkpoint_id = self.tick()
        checkpoint.update(
            v=4,
            id=checkpoint_id,
            ts=time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(self.clock)),
            channel_values=dict(values),
            channel_versions=dict(versions),
            versions_seen={"node": {k: v for k, v in versions.items() if not k.startswith("branch:")}},
            updated_channels=sorted(updates),  # as LangGraph: a trigger consumed to nothing is not listed
        )
        checkpoint.pop("pending_sends", None)
        config = {
            "configurable": {"thread_id": self.thread_id, "checkpoint_ns": ns, "checkpoint_id": head.checkpoint_id}
        }
        if head.checkpoint_id is None:
            del config["configurable"]["checkpoint_id"]
        self.saver.put(config, checkpoint, metadata, new_versions)
        self.written.append((ns, checkpoint_id))
        return _Head(checkpoint_id, versions, values)

    def writes(self, ns: str, checkpoint_id: str, task: str, items: list[tuple[str, Any]]) -> None:
        config = {"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}
        self.saver.put_writes(config, items, task, f"~__pregel_pull, {task[:6]}")


def _namespace_history(
    w: _Writer, ns: str, steps: int, metadata: dict[str, Any], delta: bool, replay: bool = False
) -> _Head:
    """One namespace's chain: channels at different rates, a trigger consumed, a fork now and then."""
    rng = w.rng
    head = _Head(None, {}, {})
    heads: list[_Head] = []
    for step in range(steps):
        updates: dict[str, Any] = {}
        if step == 0:
            updates["__start__"] = {"question": f"q-{w.thread_id}-{ns}"}
        updates["log"] = [f"{ns or 'root'}:{i}" for i in range(step + 1)]  # every step
        if step % 3 == 0:
            updates["profile"] = {"step": step, "tags": ["a", "b"][: step % 2 + 1]}  # every third step
        if step % 2 == 1:
            updates["counter"] = step  # a primitive: inline in PostgreSQL's JSONB
        if step == 1:
            updates["title"] = f"thread {w.thread_id}"  # set once, kept by every later checkpoint
        if step % 4 == 2:
            updates["branch:to:tool"] = {"call": step}  # a trigger, consumed at the next step
        consumed = ("__start__",) if step == 1 else ("branch:to:tool",) if step % 4 == 3 else ()
        md: dict[str, Any] = {"source": "loop" if step else "input", "step": step - 1, **metadata}
        if delta:
            md["counters_since_delta_snapshot"] = {"log": step % 3}
        if heads and rng.random() < 0.08:  # a fork: a new branch from an older checkpoint
            head = rng.choice(heads)
            md["source"] = "fork"
        elif replay and len(heads) > 2 and rng.random() < 0.25:
            # the chain goes on from its head, but with an older checkpoint's versions and values (a
            # run replayed into the thread, as bench/make_store.py writes): versions no longer grow
            older = rng.choice(heads[:-1])
            head = _Head(head.checkpoint_id, dict(older.versions), dict(older.values))
        head = w.put(ns, head, updates, consumed, md)
        heads.append(head)
        if rng.random() < 0.5:  # writes of the tasks that ran on this checkpoint
            w.writes(
                ns, head.checkpoint_id or "", f"task-{step:04d}-{rng.getrandbits(32):08x}", [("log", [f"w{step}"])]
            )
    return head


def write_thread(saver: Any, rng: random.Random, thread_id: str, now: float, replay: bool) -> list[tuple[str, str]]:
    """One thread: a root chain, maybe per-call and persistent subgraphs, maybe a pending interrupt."""
    from langgraph.types import Interrupt, Send

    w = _Writer(saver, rng, thread_id, now)
    delta = rng.random() < 0.15
    root = _namespace_history(w, "", rng.randint(1, 14), {}, delta, replay)
    for _call in range(rng.choice((0, 0, 1, 2))):
        # a per-call subgraph namespace follows its root checkpoint (metadata parents[""])
        anchor = rng.choice([cid for ns, cid in w.written if ns == ""])
        ns = f"research:{rng.getrandbits(64):016x}"
        _namespace_history(w, ns, rng.randint(1, 4), {"parents": {"": anchor}}, False)
    if rng.random() < 0.2:
        _namespace_history(w, "memory", rng.randint(2, 6), {}, False)  # a persistent subgraph: no task id
    if rng.random() < 0.5 and root.checkpoint_id:  # waiting at an interrupt, with a Send pending
        task = f"ask-{rng.getrandbits(32):08x}"
        w.writes("", root.checkpoint_id, task, [("__interrupt__", [Interrupt(value={"q": "approve?"}, id=task)])])
        w.writes("", root.checkpoint_id, f"send-{task}", [("__pregel_tasks", Send("worker", {"item": 1}))])
    return w.written


def write_histories(saver: Any, seed: int, threads: int = 8, prefix: str = "gen", replay: bool = True) -> list[str]:
    """``threads`` generated threads through ``saver``; returns their ids. ``replay``: some root
    chains continue with an older checkpoint's versions (see :func:`_namespace_history`)."""
    rng = random.Random(seed)
    now = time.time()
    ids = []
    for n in range(threads):
        thread_id = f"{prefix}-{seed % 1000:03d}-{n:02d}"
        write_thread(saver, rng, thread_id, now, replay)
        ids.append(thread_id)
    return ids
