"""PostgreSQL as a source (issue #24): ``migrate`` PG → SQLite and ``list`` on PG, at several sizes, in one run.

    # once: the sources, as schemas of one server (bench/data/ is git-ignored)
    .venv/bin/python bench/make_store.py 100000 bench/data/pgsrc-100k.db
    psql "$PG" -c 'CREATE SCHEMA src100k'
    .venv/bin/ckpt migrate sqlite:///$PWD/bench/data/pgsrc-100k.db "$PG?schema=src100k" --jobs 2
    # then
    flock /tmp/ckpt-bench.lock .venv/bin/python bench/bench_pg_source.py --pg "$PG" \\
        --sizes 10k=src10k,100k=src100k,1m=src1m --runs 3 --baseline 5000 [--ckpt-before CMD]

Variants, each a fresh process, run round-robin per size (medians of ``--runs``):

- ``migrate``: ``ckpt migrate PG?schema=S sqlite:///tmp/....db`` (a new file each run, deleted
  after); wall time and the peak RSS of the process tree (sampled every 0.05 s).
- ``migrate-before``: the same with ``--ckpt-before CMD`` (older code, e.g. a ``git archive`` of
  the last commit, see bench/README.md); only at sizes listed in ``--before-sizes``.
- ``baseline``: the official copy loop in a child process: ``PostgresSaver.list({thread})`` for
  each thread (ids from ``SELECT DISTINCT``, timed) → ``SqliteSaver.put(parent config, ...)`` +
  ``put_writes`` per task, on the first ``--baseline`` checkpoints (the rate is per checkpoint).
- ``baseline-nosync``: the same loop with ``PRAGMA synchronous=OFF`` on the SQLite connection (no
  fsync per commit): the loop's best case, what the ratio is also given against.
- ``migrate-pg`` and ``baseline-pg`` (only when named in ``--only``): the same two into PostgreSQL,
  each run into a new empty schema of the same server (dropped after): ``ckpt migrate`` with its
  defaults, and the loop ending in ``PostgresSaver.put``/``put_writes`` (``setup()`` first, untimed).
- ``migrate-pg-before``: ``migrate-pg`` with ``--ckpt-before CMD``.
- ``migrate-to`` and ``baseline-to`` (``--to URL`` of a Redis or MongoDB server): the same two into
  that server, each run under a key prefix (Redis) or in a database (MongoDB) of its own, removed
  after; the loop ends in ``RedisSaver``'s or ``MongoDBSaver``'s ``put``/``put_writes``.
- ``list``: ``ckpt list PG?schema=S`` (JSON Lines into a pipe); ``list-floor``: ``python -c``
  that runs ``SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id`` with psycopg and
  prints each row (start-up, query and printing, nothing else).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_migrate import _sample_tree_rss  # noqa: E402  # the process-tree RSS sampler
from common import Run, Variant, new_target, url  # noqa: E402

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
FLOOR = """
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.execute("SET search_path TO " + sys.argv[2])
out = sys.stdout
for thread_id, count in conn.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"):
    out.write(f"{thread_id}|{count}\\n")
"""
BASELINE = """
import sqlite3, sys, time
from urllib.parse import quote
import langchain_core.messages  # imported lazily by the first loads; not timed
import psycopg, psycopg.rows
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver
pg, schema, out, limit, sync = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
on = lambda s: pg + ("&" if "?" in pg else "?") + "options=" + quote("-csearch_path=" + s)
from contextlib import ExitStack
with PostgresSaver.from_conn_string(on(schema)) as source, ExitStack() as stack:
    if out.startswith("schema:"):  # a PostgreSQL target: PostgresSaver in that (empty) schema
        target = PostgresSaver(psycopg.connect(on(out[7:]), autocommit=True, prepare_threshold=0,
                                               row_factory=psycopg.rows.dict_row))  # fmt: skip
        target.setup()
    elif out.startswith("redis:"):  # "redis:URL|PREFIX": RedisSaver under its own key prefix
        from langgraph.checkpoint.redis import RedisSaver
        url, prefix = out[6:].rsplit("|", 1)
        target = stack.enter_context(RedisSaver.from_conn_string(
            url, checkpoint_prefix=prefix, checkpoint_write_prefix=prefix + "_write"))  # fmt: skip
        target.setup()
    elif out.startswith("mongodb:"):  # "mongodb:URL|DB": MongoDBSaver in an empty database
        from langgraph.checkpoint.mongodb import MongoDBSaver
        url, db = out[8:].rsplit("|", 1)
        target = stack.enter_context(MongoDBSaver.from_conn_string(url, db_name=db))
    else:
        target = SqliteSaver(sqlite3.connect(out, check_same_thread=False))
        target.setup()
        target.conn.execute("PRAGMA synchronous=" + sync)  # FULL: sqlite3's default; OFF: no fsync per commit
    started, done = time.perf_counter(), 0
    threads = [r["thread_id"] for r in source.conn.execute("SELECT DISTINCT thread_id FROM checkpoints")]
    for thread_id in threads:
        for item in source.list({"configurable": {"thread_id": thread_id}}):
            config = item.parent_config or {
                "configurable": {k: v for k, v in item.config["configurable"].items() if k != "checkpoint_id"}
            }
            target.put(config, item.checkpoint, item.metadata, item.checkpoint["channel_versions"])
            by_task = {}
            for task_id, channel, value in item.pending_writes or ():
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                target.put_writes(item.config, writes, task_id)
            done += 1
            if done == limit:
                break
        if done == limit:
            break
    print(time.perf_counter() - started, done)
"""


def timed(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, bytes]:
    """Wall seconds, peak RSS (MB) of the process tree, and stdout (when piped) of ``cmd``."""
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE)
    peak, done = [0.0], threading.Event()
    sampler = threading.Thread(target=_sample_tree_rss, args=(child.pid, peak, done), daemon=True)
    sampler.start()
    out, err = child.communicate()
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err.decode()[-2000:]}")
    return seconds, peak[0], out or b""


def run_migrate(ckpt: str, pg: str, schema: str, total: int) -> Run:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        seconds, rss, _ = timed([ckpt, "migrate", url(pg, schema), f"sqlite:///{tmp}/out.db"])
    return Run(seconds, total, rss)


def run_migrate_to(ckpt: str, pg: str, schema: str, to: str, total: int) -> Run:
    with new_target(to) as (target, _spec):
        seconds, rss, _ = timed([ckpt, "migrate", url(pg, schema), target])
    return Run(seconds, total, rss)


def run_baseline_to(pg: str, schema: str, to: str, limit: int) -> Run:
    with new_target(to) as (_target, spec):
        _, _, out = timed([sys.executable, "-c", BASELINE, pg, schema, spec, str(limit), "-"], subprocess.PIPE)
    seconds, done = out.split()
    return Run(float(seconds), int(done))


def run_baseline(pg: str, schema: str, limit: int, sync: bool = True) -> Run:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        cmd = [sys.executable, "-c", BASELINE, pg, schema, f"{tmp}/out.db", str(limit), "FULL" if sync else "OFF"]
        _, _, out = timed(cmd, subprocess.PIPE)
    seconds, done = out.split()
    return Run(float(seconds), int(done))


def run_list(cmd: list[str], threads: int) -> Run:
    seconds, rss, out = timed(cmd, subprocess.PIPE)
    lines = out.count(b"\n")
    if lines != threads:
        raise SystemExit(f"{' '.join(cmd)} printed {lines} lines for {threads} threads")
    return Run(seconds, threads, rss)


def counts(pg: str, schema: str) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        row = conn.execute("SELECT count(*), count(DISTINCT thread_id) FROM checkpoints").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


Runner = Callable[[], Run]


def runners_for(args: argparse.Namespace, schema: str, total: int, threads: int, label: str) -> dict[str, Runner]:
    pg = args.pg
    runners: dict[str, Runner] = {
        "baseline": lambda: run_baseline(pg, schema, args.baseline),
        "baseline-nosync": lambda: run_baseline(pg, schema, args.baseline, sync=False),
        "migrate": lambda: run_migrate(CKPT, pg, schema, total),
        "baseline-pg": lambda: run_baseline_to(pg, schema, pg, args.baseline),
        "migrate-pg": lambda: run_migrate_to(CKPT, pg, schema, pg, total),
        "baseline-to": lambda: run_baseline_to(pg, schema, args.to, args.baseline),
        "migrate-to": lambda: run_migrate_to(CKPT, pg, schema, args.to, total),
        "list": lambda: run_list([CKPT, "list", url(pg, schema)], threads),
        "list-floor": lambda: run_list([sys.executable, "-c", FLOOR, pg, schema], threads),
    }
    if args.ckpt_before and label in args.before_sizes.split(","):
        runners["migrate-before"] = lambda: run_migrate(args.ckpt_before, pg, schema, total)
        runners["migrate-pg-before"] = lambda: run_migrate_to(args.ckpt_before, pg, schema, pg, total)
    return runners


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default=os.environ.get("CKPT_TEST_POSTGRES_URL"))
    parser.add_argument("--sizes", default="10k=src10k,100k=src100k,1m=src1m", help="label=schema,...")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=5000, help="checkpoints the official loop copies")
    parser.add_argument("--only", default="baseline,migrate,migrate-before,list,list-floor")
    parser.add_argument("--ckpt-before", help="a command running older ckpt (see bench/README.md)")
    parser.add_argument("--to", help="baseline-to/migrate-to: a Redis or MongoDB server URL (a new prefix/db a run)")
    parser.add_argument("--before-sizes", default="10k,100k", help="sizes at which to run --ckpt-before")
    args = parser.parse_args()
    chosen = args.only.split(",")
    sizes = [tuple(item.split("=", 1)) for item in args.sizes.split(",")]
    results: dict[tuple[str, str], Variant] = {}
    for label, schema in sizes:
        total, threads = counts(args.pg, schema)
        print(f"# {label}: schema {schema}, {total:,} checkpoints, {threads:,} threads", flush=True)
        runners = runners_for(args, schema, total, threads, label)
        names = [n for n in chosen if n in runners]
        for i in range(args.runs):
            for name in names if i % 2 == 0 else reversed(names):
                run = runners[name]()
                results.setdefault((label, name), Variant(name)).runs.append(run)
                rss = f", peak RSS {run.rss_mb:.0f} MB" if run.rss_mb else ""
                print(f"run {i + 1} {label:5s} {name:15s} {run.seconds:8.2f} s {run.checkpoints / run.seconds:10,.0f}/s"
                      f"{rss}, load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    report(results, [label for label, _ in sizes])


def report(results: dict[tuple[str, str], Variant], labels: list[str]) -> None:
    print("\n| size | variant | items | median s | items/s | ratio | peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label in labels:
        base, floor = results.get((label, "baseline")), results.get((label, "list-floor"))
        for (size, name), v in results.items():
            if size != label:
                continue
            nosync = results.get((label, "baseline-nosync"))
            if name in ("migrate-pg", "migrate-to"):
                base_pg = results.get((label, name.replace("migrate", "baseline")))
                ratio = f"{v.rate / base_pg.rate:.1f}x {name.replace('migrate', 'baseline')}" if base_pg else "-"
            elif name.startswith("migrate") and base:
                ratio = f"{v.rate / base.rate:.1f}x baseline"
                ratio += f", {v.rate / nosync.rate:.1f}x nosync" if nosync else ""
            elif name == "list" and floor:
                ratio = f"{v.seconds / floor.seconds:.2f}x floor time"
            else:
                ratio = "-"
            rss = v.rss
            n = v.runs[0].checkpoints
            print(f"| {label} | {name} | {n:,} | {v.seconds:.2f} | {v.rate:,.0f} | {ratio} | {rss} |")
    migrate = {label: results[(label, "migrate")] for label in labels if (label, "migrate") in results}
    ordered = list(migrate.items())
    for (small, a), (big, b) in zip(ordered, ordered[1:]):
        grow = b.runs[0].checkpoints / a.runs[0].checkpoints
        rss_a, rss_b = a.peak_rss or 0, b.peak_rss or 0
        print(f"migrate {small} -> {big}: {grow:.0f}x the data, {b.seconds / a.seconds:.2f}x the time, "
              f"peak RSS {rss_a:.0f} -> {rss_b:.0f} MB ({rss_b / (rss_a or 1):.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
