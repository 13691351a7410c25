"""Build a synthetic SQLite checkpoint store shaped like real LangGraph data (seeded, reproducible).

    /work/venv/bin/python bench/make_store.py 1000000 bench/data/1m.db [--threads T] [--seed 0]

The layout is exactly langgraph-checkpoint-sqlite 3.1.2 (``SCHEMA_3_1_2``, WAL journal).
Rows are cloned from a store written by the real example graph (``scripts/make_example.py``,
made once at ``/tmp/real.db`` unless ``--template`` names another file): the real msgpack
checkpoint blobs (0.4-3.9 KB, the largest ones spill into an overflow page), the real JSON
metadata and the real pending writes (~3.3 per checkpoint), replayed turn after turn.

Per thread: a uuid4 thread id, 10-20 checkpoints (uniform; ``--threads`` fixes the thread
count instead), i.e. one or two runs of the agent graph, each with a ``research:<task>``
subgraph namespace. Checkpoint ids are LangGraph-style uuid6 (60-bit time, clock_seq =
step) and sort by time; parent ids chain within each (thread, namespace). As in a live
server, rows of ``--interleave`` concurrent threads are inserted in time order, so one
thread's rows are scattered over the table rather than stored contiguously.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ckpt.backends.sqlite.store import SCHEMA_3_1_2

GREGORIAN_OFFSET = 0x01B21DD213814000  # 100-ns ticks from 1582-10-15 to 1970-01-01
BASE_EPOCH = 1767225600.0  # 2026-01-01T00:00:00Z
REAL_DB = "/tmp/real.db"
MAKE_EXAMPLE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "make_example.py")

CheckpointRow = tuple[str, str, str, "str | None", str, bytes, bytes]
WriteRow = tuple[str, str, str, str, str, int, str, str, bytes]


@dataclass(frozen=True)
class TemplateWrite:
    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str
    value: bytes


@dataclass(frozen=True)
class TemplateCheckpoint:
    """One real checkpoint of one graph run, in time order."""

    checkpoint_id: str
    checkpoint_ns: str
    type: str
    checkpoint: bytes
    metadata: dict[str, Any]
    writes: tuple[TemplateWrite, ...]


def ensure_real_store(path: str) -> None:
    if not os.path.exists(path):
        subprocess.run([sys.executable, MAKE_EXAMPLE, path], check=True, stdout=subprocess.DEVNULL)


def load_turns(path: str) -> list[list[TemplateCheckpoint]]:
    """Each completed thread of the real store is one 'turn' template (a full graph run)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    writes: dict[tuple[str, str, str], list[TemplateWrite]] = {}
    for t, ns, cid, task, tpath, idx, chan, typ, val in conn.execute(
        "SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value "
        "FROM writes ORDER BY thread_id, checkpoint_ns, checkpoint_id, task_id, idx"
    ):
        writes.setdefault((t, ns, cid), []).append(TemplateWrite(task, tpath, idx, chan, typ, bytes(val or b"")))
    turns: dict[str, list[TemplateCheckpoint]] = {}
    for t, ns, cid, typ, blob, meta in conn.execute(
        "SELECT thread_id, checkpoint_ns, checkpoint_id, type, checkpoint, metadata FROM checkpoints "
        "ORDER BY checkpoint_id"
    ):
        turns.setdefault(t, []).append(
            TemplateCheckpoint(cid, ns, typ, bytes(blob), json.loads(meta), tuple(writes.get((t, ns, cid), ())))
        )
    conn.close()
    full = max(len(v) for v in turns.values())
    return [v for v in turns.values() if len(v) == full]  # the interrupted thread is shorter


def uuid6(epoch: float, clock_seq: int, node: int) -> str:
    """LangGraph's uuid6: 60-bit 100-ns timestamp, version 6, clock_seq carries the step."""
    ticks = int(epoch * 1e7) + GREGORIAN_OFFSET
    return (
        f"{ticks >> 28:08x}-{(ticks >> 12) & 0xFFFF:04x}-6{ticks & 0xFFF:03x}-"
        f"{0x8000 | (clock_seq & 0x3FFF):04x}-{node:012x}"
    )


def hex_uuid(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Generator:
    def __init__(self, turns: list[list[TemplateCheckpoint]], seed: int) -> None:
        self.turns = turns
        self.rng = random.Random(seed)

    def fresh(self, ids: dict[str, str], old: str) -> str:
        """A new random id for a template task id, the same one throughout a run."""
        if old not in ids:
            ids[old] = old if old.startswith("00000000-") else hex_uuid(self.rng.getrandbits(128))
        return ids[old]

    def thread(self, n: int, start: float) -> Iterator[tuple[float, CheckpointRow, list[WriteRow]]]:
        """The n checkpoints of one thread: whole runs of the graph, the last one possibly cut short."""
        rng = self.rng
        thread_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        now = start
        last_in_ns: dict[str, str] = {}
        emitted = turn_no = 0
        step_offset = 0
        while emitted < n:
            template = self.turns[rng.randrange(len(self.turns))]
            ids: dict[str, str] = {}  # template id (checkpoint or task) -> fresh id, per run
            max_step = 0
            for tc in template:
                if emitted >= n:
                    break
                now += rng.uniform(0.02, 2.5)
                step = int(tc.metadata.get("step", 0))
                root = tc.checkpoint_ns == ""
                if root:
                    step += step_offset
                    max_step = max(max_step, step)
                    ns = ""
                else:
                    name, _, task = tc.checkpoint_ns.partition(":")
                    ns = f"{name}:{self.fresh(ids, task)}"
                cid = uuid6(now, step, rng.getrandbits(48))
                ids[tc.checkpoint_id] = cid
                metadata = dict(tc.metadata, step=step)
                parents: dict[str, str] = tc.metadata.get("parents") or {}
                metadata["parents"] = {k: ids.get(v, v) for k, v in parents.items()}
                blob = tc.checkpoint.replace(tc.checkpoint_id.encode(), cid.encode())
                row: CheckpointRow = (
                    thread_id,
                    ns,
                    cid,
                    last_in_ns.get(ns),
                    tc.type,
                    blob,
                    json.dumps(metadata).encode(),
                )
                last_in_ns[ns] = cid
                wrows: list[WriteRow] = [
                    (thread_id, ns, cid, self.fresh(ids, w.task_id), w.task_path, w.idx, w.channel, w.type, w.value)
                    for w in tc.writes
                ]
                emitted += 1
                yield now, row, wrows
            turn_no += 1
            step_offset = max_step + 2  # the next input checkpoint is the next step
            now += rng.uniform(60, 6 * 3600)  # the user comes back later


def plan(n: int, threads: int | None, rng: random.Random) -> list[int]:
    """Checkpoints per thread, summing to exactly n."""
    if threads:
        base, extra = divmod(n, threads)
        return [base + (1 if i < extra else 0) for i in range(threads)]
    sizes: list[int] = []
    left = n
    while left > 0:
        k = min(left, rng.randint(10, 20))
        sizes.append(k)
        left -= k
    return sizes


def build(n: int, path: str, threads: int | None, seed: int, interleave: int, template: str) -> None:
    ensure_real_store(template)
    gen = Generator(load_turns(template), seed)
    sizes = plan(n, threads, random.Random(seed + 1))
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(SCHEMA_3_1_2)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")  # 256 MiB while building
    started = time.perf_counter()
    window_start = BASE_EPOCH
    done = writes_total = 0
    for first in range(0, len(sizes), interleave):
        window = sizes[first : first + interleave]
        span = 86400.0 * len(window) / 1000  # ~1000 new threads a day
        rows: list[tuple[float, CheckpointRow, list[WriteRow]]] = []
        for k in window:
            rows.extend(gen.thread(k, window_start + gen.rng.uniform(0, span)))
        rows.sort(key=lambda r: r[0])  # a live server writes concurrent threads interleaved in time
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", (r[1] for r in rows))
        conn.executemany(
            "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, "
            "value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (w for r in rows for w in r[2]),
        )
        conn.execute("COMMIT")
        done += len(rows)
        writes_total += sum(len(r[2]) for r in rows)
        window_start += span
        print(f"\r{done:,}/{n:,} checkpoints ({time.perf_counter() - started:.0f}s)", end="", file=sys.stderr)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = os.path.getsize(path)
    print(
        f"\nwrote {path}: {n:,} checkpoints, {writes_total:,} writes, {len(sizes):,} threads, "
        f"{size / 2**20:,.0f} MiB in {time.perf_counter() - started:.0f}s",
        file=sys.stderr,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, help="number of checkpoints")
    parser.add_argument("path", help="SQLite file to (re)create")
    parser.add_argument(
        "--threads", type=int, default=None, help="fixed thread count (default: 10-20 checkpoints each)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--interleave", type=int, default=1000, help="threads written concurrently (default 1000)")
    parser.add_argument("--template", default=REAL_DB, help=f"real store to clone rows from (default {REAL_DB})")
    args = parser.parse_args()
    build(args.n, args.path, args.threads, args.seed, args.interleave, args.template)


if __name__ == "__main__":
    main()
