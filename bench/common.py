"""What the benchmarks share: timed runs, their medians, the official copy loop, empty targets on servers."""

from __future__ import annotations

import itertools
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")


@dataclass
class Run:
    seconds: float
    checkpoints: int
    rss_mb: float | None = None


@dataclass
class Variant:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rate(self) -> float:
        return statistics.median(r.checkpoints / r.seconds for r in self.runs)

    @property
    def peak_rss(self) -> float | None:
        """The largest peak RSS of the runs (MB), when measured."""
        values = [r.rss_mb for r in self.runs if r.rss_mb is not None]
        return max(values) if values else None

    @property
    def rss(self) -> str:
        peak = self.peak_rss
        return f"{peak:.0f}" if peak is not None else "-"


def ckpt(*args: str) -> tuple[float, float, str]:
    """Run ckpt; return (wall seconds, the child's own peak RSS in MB from ``os.wait4``, stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([CKPT, *args], stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"ckpt {' '.join(args)} failed ({child.returncode}):\n{err.read().decode()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def source_count(db: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0])


def copy_loop(db: str, target: Any, limit: int) -> Run:
    """The official-saver copy loop on the first ``limit`` tuples of ``SqliteSaver.list(None)``."""
    import langchain_core.messages  # noqa: F401  # imported lazily by the first loads_typed; not timed
    from langgraph.checkpoint.sqlite import SqliteSaver

    source = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    started, done = time.perf_counter(), 0
    for item in source.list(None):
        config = item.parent_config or {
            "configurable": {k: v for k, v in item.config["configurable"].items() if k != "checkpoint_id"}
        }
        target.put(config, item.checkpoint, item.metadata, item.checkpoint["channel_versions"])
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in item.pending_writes or ():
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            target.put_writes(item.config, writes, task_id)
        done += 1
        if done == limit:
            break
    seconds = time.perf_counter() - started
    source.conn.close()
    return Run(seconds, done)


# -- Redis ------------------------------------------------------------------------------------------------------------


def redis_cleanup(client: Any, before: set[bytes], prefix: str) -> None:
    for name in (prefix, f"{prefix}_write"):
        if name.encode() in client.execute_command("FT._LIST"):
            client.execute_command("FT.DROPINDEX", name, "DD")
    new = [k for k in client.scan_iter(count=10_000) if k not in before]
    for i in range(0, len(new), 1000):
        client.delete(*new[i : i + 1000])


def print_table(variants: dict[str, Variant]) -> None:
    """The Markdown results table, each variant against ``variants["baseline"]``."""
    base = variants["baseline"]
    print("\n| variant | checkpoints | median s | checkpoints/s | x baseline | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants.values():
        print(f"| {v.name} | {v.runs[0].checkpoints:,} | {v.seconds:.2f} | {v.rate:,.0f} | "
              f"{v.rate / base.rate:.1f} | {v.rss} |")  # fmt: skip


# -- empty targets on a server -------------------------------------------------------------------------------------


def url(pg: str, schema: str) -> str:
    return f"{pg}{'&' if '?' in pg else '?'}schema={schema}"


_SCHEMAS = itertools.count()


@contextmanager
def new_target(server: str) -> Iterator[tuple[str, str]]:
    """``(ckpt URL, the loop's target spec)`` of an empty target of its own on the server at ``server``:
    a schema on PostgreSQL (``migrate-pg``: the source's server), a key prefix on Redis, a database
    on MongoDB (``--to``); removed after the run."""
    name = f"bpg{os.getpid()}x{next(_SCHEMAS)}"
    if server.startswith("postgres"):
        import psycopg

        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        try:
            yield url(server, name), f"schema:{name}"
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {name} CASCADE")
        return
    if server.startswith("redis"):
        import redis

        client = redis.Redis.from_url(server, socket_timeout=None)
        before = set(client.scan_iter(count=10_000))
        try:
            yield f"{server}?checkpoint_prefix={name}&checkpoint_write_prefix={name}_write", f"redis:{server}|{name}"
        finally:
            redis_cleanup(client, before, name)
        return
    import pymongo

    base, _, query = server.partition("?")
    try:
        yield f"{base.rstrip('/')}/{name}" + (f"?{query}" if query else ""), f"mongodb:{server}|{name}"
    finally:
        with pymongo.MongoClient(server) as client:
            client.drop_database(name)
