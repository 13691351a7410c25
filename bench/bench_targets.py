"""The three speed targets, each against the official savers' loop in the same run (variants alternate).

    /work/venv/bin/python bench/make_growing_store.py 100000 bench/data/grow-100k.db
    /work/venv/bin/python bench/bench_targets.py redis bench/data/grow-100k.db [--runs 3] [--baseline 3000]
    /work/venv/bin/python bench/bench_targets.py mongo /tmp/g1k.db [--runs 3] [--baseline 300]

(The figures in bench/results/targets.md §1 and §2 now come from bench/bench_redis.py and
bench/bench_mongo.py: any server URL, CPU seconds, a loop-at-size baseline for MongoDB.)
    /work/venv/bin/python bench/bench_targets.py prune bench/data/grow-100k.db [--runs 3] [--baseline 300]

- ``redis`` / ``mongo``: ``ckpt migrate sqlite:///STORE TARGET`` (subprocess; wall time, peak RSS via ``os.wait4``)
  on the whole store vs ``SqliteSaver.list(None)`` → ``RedisSaver``/``MongoDBSaver`` ``put`` (parent config,
  ``new_versions=channel_versions``) + ``put_writes`` per task on the first ``--baseline`` tuples. Every run gets a
  fresh key prefix / database; keys, FT indexes and databases are removed afterwards.
- ``prune``: STORE is migrated once into schema ``prune_src`` by ``ckpt migrate``; each run clones it (tables with
  keys and indexes) into ``prune_a`` and ``prune_b``, times ``ckpt prune …?schema=prune_a --keep-last 5 --min-idle 0
  --yes --report json`` and ``PostgresSaver.prune([tid], strategy="keep_latest")`` thread by thread on the first
  ``--baseline`` threads of ``prune_b`` (extrapolated per thread to the whole store), then checks ``prune_a``.

Prints one line per run and a Markdown table of medians; compares checkpoints/s.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

REDIS = "redis://127.0.0.1:56379"
MONGO = "mongodb://127.0.0.1:57017/?directConnection=true"
PG = "postgresql://postgres@127.0.0.1:55432/postgres"
CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
PG_TABLES = ("checkpoint_migrations", "checkpoints", "checkpoint_blobs", "checkpoint_writes")


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
    def rss(self) -> str:
        values = [r.rss_mb for r in self.runs if r.rss_mb is not None]
        return f"{max(values):.0f}" if values else "-"


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


def redis_baseline(db: str, prefix: str, limit: int) -> Run:
    from langgraph.checkpoint.redis import RedisSaver

    with RedisSaver.from_conn_string(
        REDIS, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
    ) as saver:
        saver.setup()
        return copy_loop(db, saver, limit)


def redis_ckpt(db: str, prefix: str, total: int) -> Run:
    target = f"{REDIS}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    seconds, rss, out = ckpt("migrate", f"sqlite:///{os.path.abspath(db)}", target, "-o", "json")
    written = int(json.loads(out).get("checkpoints_written", -1))
    assert written == total, f"ckpt reported {written:,} checkpoints written of {total:,}"
    return Run(seconds, total, rss)


def bench_redis(db: str, runs: int, limit: int) -> dict[str, Variant]:
    import redis

    client = redis.Redis.from_url(REDIS)
    before = set(client.scan_iter(count=10_000))
    total = source_count(db)
    variants = {"baseline": Variant("baseline"), "ckpt": Variant("ckpt")}
    for n in range(runs):
        for name in ("baseline", "ckpt") if n % 2 == 0 else ("ckpt", "baseline"):
            prefix = f"b{os.getpid()}_{n}_{name}"
            try:
                if name == "baseline":
                    run = redis_baseline(db, prefix, limit)
                else:
                    run = redis_ckpt(db, prefix, total)
                    docs = sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=10_000))
                    assert docs == total, (docs, total)
            finally:
                redis_cleanup(client, before, prefix)
            variants[name].runs.append(run)
            print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
                  f"{run.checkpoints / run.seconds:8,.0f} ckpt/s rss {run.rss_mb or 0:.0f} MB", flush=True)  # fmt: skip
    return variants


# -- MongoDB ----------------------------------------------------------------------------------------------------------


def bench_mongo(db: str, runs: int, limit: int) -> dict[str, Variant]:
    import pymongo
    from langgraph.checkpoint.mongodb import MongoDBSaver

    client: pymongo.MongoClient[Any] = pymongo.MongoClient(MONGO)
    total = source_count(db)
    variants = {"baseline": Variant("baseline"), "ckpt": Variant("ckpt")}
    for n in range(runs):
        for name in ("baseline", "ckpt") if n % 2 == 0 else ("ckpt", "baseline"):
            dbname = f"bench{os.getpid()}_{n}_{name}"
            try:
                if name == "baseline":
                    with MongoDBSaver.from_conn_string(MONGO, db_name=dbname) as saver:
                        run = copy_loop(db, saver, limit)
                else:
                    url = f"mongodb://127.0.0.1:57017/{dbname}?directConnection=true"
                    seconds, rss, _ = ckpt("migrate", f"sqlite:///{os.path.abspath(db)}", url, "-o", "json")
                    run = Run(seconds, total, rss)
                    assert client[dbname].checkpoints.count_documents({}) == total
            finally:
                client.drop_database(dbname)
            variants[name].runs.append(run)
            print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
                  f"{run.checkpoints / run.seconds:8,.0f} ckpt/s rss {run.rss_mb or 0:.0f} MB", flush=True)  # fmt: skip
    return variants


# -- PostgreSQL prune -------------------------------------------------------------------------------------------------


def pg_clone(admin: Any, schema: str) -> None:
    admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.execute(f"CREATE SCHEMA {schema}")
    for table in PG_TABLES:
        admin.execute(f"CREATE TABLE {schema}.{table} (LIKE prune_src.{table} INCLUDING ALL)")
        admin.execute(f"INSERT INTO {schema}.{table} SELECT * FROM prune_src.{table}")
        admin.execute(f"ANALYZE {schema}.{table}")


def root_counts(admin: Any, schema: str) -> dict[str, int]:
    rows = admin.execute(
        f"SELECT thread_id, count(*) FROM {schema}.checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id"
    ).fetchall()
    return {str(t): int(c) for t, c in rows}


def bench_prune(db: str, runs: int, limit: int, rebuild: bool) -> dict[str, Variant]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver

    admin = psycopg.connect(PG, autocommit=True)
    exists = admin.execute("SELECT 1 FROM information_schema.schemata WHERE schema_name = 'prune_src'").fetchone()
    if rebuild or not exists:
        admin.execute("DROP SCHEMA IF EXISTS prune_src CASCADE")
        admin.execute("CREATE SCHEMA prune_src")  # ckpt creates the saver's tables, not the schema
        seconds, _, _ = ckpt("migrate", f"sqlite:///{os.path.abspath(db)}", f"{PG}?schema=prune_src", "-o", "json")
        print(f"built prune_src in {seconds:.1f} s", flush=True)
    before = root_counts(admin, "prune_src")
    total = int(admin.execute("SELECT count(*) FROM prune_src.checkpoints").fetchone()[0])  # type: ignore[index]
    threads = sorted(before)
    variants = {"baseline": Variant("baseline"), "ckpt": Variant("ckpt")}

    def run_ckpt() -> Run:
        seconds, rss, _ = ckpt(
            "prune", f"{PG}?schema=prune_a", "--keep-last", "5", "--min-idle", "0", "--yes", "--report", "json"
        )
        after = root_counts(admin, "prune_a")
        bad = {t: (before[t], after.get(t)) for t in threads if after.get(t) != min(5, before[t])}
        assert not bad, f"{len(bad)} threads kept the wrong number of root checkpoints, e.g. {list(bad.items())[:3]}"
        return Run(seconds, total, rss)

    def run_baseline() -> Run:
        subset = threads[:limit]
        url = f"{PG}?options={quote('-csearch_path=prune_b')}"
        with PostgresSaver.from_conn_string(url) as saver:
            started = time.perf_counter()
            for thread_id in subset:
                saver.prune([thread_id], strategy="keep_latest")
            seconds = time.perf_counter() - started
        after = root_counts(admin, "prune_b")
        assert all(after[t] == 1 for t in subset)
        # extrapolated to the whole store at the measured per-thread rate
        return Run(seconds * len(threads) / len(subset), total)

    for n in range(runs):
        for schema in ("prune_a", "prune_b"):
            pg_clone(admin, schema)
        admin.execute("CHECKPOINT")
        order: list[tuple[str, Callable[[], Run]]] = [("baseline", run_baseline), ("ckpt", run_ckpt)]
        for name, fn in order if n % 2 == 0 else order[::-1]:
            run = fn()
            variants[name].runs.append(run)
            print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
                  f"{run.checkpoints / run.seconds:8,.0f} ckpt/s rss {run.rss_mb or 0:.0f} MB", flush=True)  # fmt: skip
    for schema in ("prune_a", "prune_b"):
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    print(f"store: {total:,} checkpoints in {len(threads):,} threads; baseline timed on {min(limit, len(threads))}")
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["redis", "mongo", "prune"])
    parser.add_argument("store", help="SQLite store from bench/make_growing_store.py")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=3000, help="checkpoints (redis/mongo) or threads (prune)")
    parser.add_argument("--rebuild", action="store_true", help="prune: rebuild schema prune_src from the store")
    args = parser.parse_args()
    if args.target == "redis":
        variants = bench_redis(args.store, args.runs, args.baseline)
    elif args.target == "mongo":
        variants = bench_mongo(args.store, args.runs, args.baseline)
    else:
        variants = bench_prune(args.store, args.runs, args.baseline, args.rebuild)
    print_table(variants)


def print_table(variants: dict[str, Variant]) -> None:
    """The Markdown results table, each variant against ``variants["baseline"]``."""
    base = variants["baseline"]
    print("\n| variant | checkpoints | median s | checkpoints/s | x baseline | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants.values():
        print(f"| {v.name} | {v.runs[0].checkpoints:,} | {v.seconds:.2f} | {v.rate:,.0f} | "
              f"{v.rate / base.rate:.1f} | {v.rss} |")  # fmt: skip


if __name__ == "__main__":
    main()
