"""Prune a PostgreSQL store to --keep-last 5 (``--keep``): ckpt vs the official saver's prune thread by thread.

    /work/venv/bin/python bench/bench_prune.py build-src --pg URL --from bench/data/grow-100k.db --schema prune_src
    /work/venv/bin/python bench/bench_prune.py run --pg URL --src prune_src [--runs 3] [--baseline 300] \
        [--ckpt-before CMD]

``build-src`` migrates a SQLite store once with ``ckpt migrate`` into schema ``--schema``.
``run`` alternates, per run, the two variants (A B, B A, ...):

- ckpt: the source is cloned into ``prune_a`` (``CREATE TABLE … (LIKE … INCLUDING ALL)``, ``INSERT … SELECT``,
  ``ANALYZE``, ``CHECKPOINT``), then ``ckpt prune URL?schema=prune_a --keep-last K --min-idle 0 --yes --report
  json`` (K: ``--keep``, 5 by default) runs as a subprocess on the whole store (wall time, peak RSS). Afterwards
  every thread must keep exactly ``min(K, n)`` root checkpoints.
- baseline: ``PostgresSaver.prune([tid], strategy="keep_latest")`` thread by thread on ``--baseline`` threads of
  ``prune_b``, a clone made once; each run takes the next disjoint slice of threads, so every run prunes threads
  nobody touched. The time is extrapolated per thread to all threads. ``keep_latest``, the saver's only strategy
  that keeps anything, keeps 1 checkpoint per namespace: it deletes n - 1 of a thread's n checkpoints where
  keep-last 5 deletes n - 5. ``--keep 1`` runs ckpt with ``--keep-last 1``: the same deletions as the saver's.

Each timed run starts once no autovacuum worker is busy; ``prune_a`` is dropped right after ckpt's run is
checked, so that its cleanup does not overlap the saver's run. Each line also records the load average and
the CPU seconds of the PostgreSQL server (all its processes) and of the client (the ckpt subprocess, or this
process for the baseline).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
# As a user's shell has it: .pyc files written (this environment sets PYTHONDONTWRITEBYTECODE,
# and every run compiled ckpt's and psycopg's modules again).
USER_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")}
TABLES = ("checkpoint_migrations", "checkpoints", "checkpoint_blobs", "checkpoint_writes")


@dataclass
class Run:
    seconds: float
    server_cpu: float
    client_cpu: float
    load: float
    rss_mb: float = 0.0


@dataclass
class Variant:
    name: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs)


def server_cpu(data_dir: str) -> float:
    """CPU seconds (user + system) of the postmaster and every process it started, live or ended."""
    with open(os.path.join(data_dir, "postmaster.pid")) as f:
        root = int(f.readline())
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(pid) == root:  # its own time and that of the children it has reaped (ended backends)
            total += sum(int(v) for v in fields[11:15]) / ticks
        elif int(fields[1]) == root:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def load() -> float:
    return os.getloadavg()[0]


def clone(admin: Any, src: str, schema: str) -> None:
    admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.execute(f"CREATE SCHEMA {schema}")
    for table in TABLES:
        admin.execute(f"CREATE TABLE {schema}.{table} (LIKE {src}.{table} INCLUDING ALL)")
        admin.execute(f"INSERT INTO {schema}.{table} SELECT * FROM {src}.{table}")
        admin.execute(f"VACUUM (ANALYZE) {schema}.{table}")  # hint bits and visibility map set, as in a live store
    admin.execute("CHECKPOINT")


def quiet(admin: Any) -> None:
    """Wait until no autovacuum worker is busy, so that a timed run starts on an idle server."""
    busy = "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query <> ''"
    while admin.execute(busy).fetchone()[0]:
        time.sleep(1)


def root_counts(admin: Any, schema: str) -> dict[str, int]:
    rows = admin.execute(
        f"SELECT thread_id, count(*) FROM {schema}.checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id"
    ).fetchall()
    return {str(t): int(c) for t, c in rows}


def run_ckpt(
    pg: str, data_dir: str, admin: Any, before: dict[str, int], extra: list[str], keep: int, command: str = CKPT
) -> Run:
    args = [command, "prune", f"{pg}?schema=prune_a", "--keep-last", str(keep), "--min-idle", "0", "--yes"]
    args += ["--report", "json"]
    cpu0, load0 = server_cpu(data_dir), load()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen([*args, *extra], stdout=out, stderr=err, env=USER_ENV)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"ckpt prune failed:\n{err.read().decode()[-2000:]}")
    after = root_counts(admin, "prune_a")
    bad = {t: (n, after.get(t)) for t, n in before.items() if after.get(t) != min(keep, n)}
    assert not bad, f"{len(bad)} threads kept the wrong number of root checkpoints, e.g. {list(bad.items())[:3]}"
    return Run(
        seconds, server_cpu(data_dir) - cpu0, usage.ru_utime + usage.ru_stime, (load0 + load()) / 2,
        usage.ru_maxrss / 1024,
    )  # fmt: skip


def run_baseline(pg: str, data_dir: str, admin: Any, threads: list[str], subset: list[str]) -> Run:
    from langgraph.checkpoint.postgres import PostgresSaver

    url = f"{pg}?options={quote('-csearch_path=prune_b')}"
    with PostgresSaver.from_conn_string(url) as saver:
        cpu0, load0, own0 = server_cpu(data_dir), load(), resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        for thread_id in subset:
            saver.prune([thread_id], strategy="keep_latest")
        seconds = time.perf_counter() - started
        own1 = resource.getrusage(resource.RUSAGE_SELF)
        server = server_cpu(data_dir) - cpu0
    after = root_counts(admin, "prune_b")
    assert all(after[t] == 1 for t in subset)
    scale = len(threads) / len(subset)  # extrapolated per thread to the whole store
    client = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    return Run(seconds * scale, server * scale, client * scale, (load0 + load()) / 2)


def bench(args: argparse.Namespace) -> None:
    import psycopg

    admin = psycopg.connect(args.pg, autocommit=True)
    data_dir = str(admin.execute("SHOW data_directory").fetchone()[0])  # type: ignore[index]
    before = root_counts(admin, args.src)
    total = int(admin.execute(f"SELECT count(*) FROM {args.src}.checkpoints").fetchone()[0])  # type: ignore[index]
    threads = sorted(before)
    started = time.perf_counter()
    clone(admin, args.src, "prune_b")
    print(f"store {args.src}: {total:,} checkpoints in {len(threads):,} threads; prune_b cloned in "
          f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    commands = {"ckpt": CKPT, **({"ckpt-before": args.ckpt_before} if args.ckpt_before else {})}
    variants = {name: Variant(name) for name in ("baseline", *commands)}
    for n in range(args.runs):
        subset = threads[n * args.baseline : (n + 1) * args.baseline]
        order = list(variants)[n % len(variants) :] + list(variants)[: n % len(variants)]  # rotated per run
        for name in order:
            if name in commands:
                started = time.perf_counter()
                clone(admin, args.src, "prune_a")
                print(f"prune_a cloned in {time.perf_counter() - started:.0f} s", flush=True)
            quiet(admin)
            if name in commands:
                run = run_ckpt(args.pg, data_dir, admin, before, args.ckpt_arg or [], args.keep, commands[name])
                # Checked; dropped so that autovacuum does not clean it up during the saver's run.
                admin.execute("DROP SCHEMA prune_a CASCADE")
            else:
                run = run_baseline(args.pg, data_dir, admin, threads, subset)
            variants[name].runs.append(run)
            print(f"run {n + 1} {name:8} {run.seconds:8.2f} s  server cpu {run.server_cpu:7.2f} s  client cpu "
                  f"{run.client_cpu:7.2f} s  load {run.load:4.1f}  rss {run.rss_mb:.0f} MB", flush=True)  # fmt: skip
    for schema in ("prune_a", "prune_b"):
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    base = variants["baseline"].median("seconds")
    print(f"\nbaseline timed on {args.baseline} threads per run (disjoint slices), extrapolated to {len(threads):,}")
    print("| variant | median s | checkpoints/s | x baseline | server CPU s | client CPU s | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for v in variants.values():
        seconds, rss = v.median("seconds"), max(r.rss_mb for r in v.runs)
        print(f"| {v.name} | {seconds:.2f} | {total / seconds:,.0f} | {base / seconds:.1f} | "
              f"{v.median('server_cpu'):.1f} | {v.median('client_cpu'):.1f} | {rss:.0f} |")  # fmt: skip


def build_src(args: argparse.Namespace) -> None:
    import psycopg

    admin = psycopg.connect(args.pg, autocommit=True)
    admin.execute(f"DROP SCHEMA IF EXISTS {args.schema} CASCADE")
    admin.execute(f"CREATE SCHEMA {args.schema}")  # ckpt creates the saver's tables, not the schema
    started = time.perf_counter()
    source = f"sqlite:///{os.path.abspath(args.source)}"
    subprocess.run([CKPT, "migrate", source, f"{args.pg}?schema={args.schema}", "-o", "json"], check=True)
    print(f"built {args.schema} in {time.perf_counter() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build-src")
    build.add_argument("--pg", required=True)
    build.add_argument("--from", dest="source", required=True)
    build.add_argument("--schema", default="prune_src")
    run = sub.add_parser("run")
    run.add_argument("--pg", required=True)
    run.add_argument("--src", default="prune_src")
    run.add_argument("--runs", type=int, default=3)
    run.add_argument("--baseline", type=int, default=300, help="threads per run for the baseline")
    run.add_argument("--ckpt-arg", action="append", help="extra argument for ckpt prune (repeatable)")
    run.add_argument("--keep", type=int, default=5, help="ckpt's --keep-last (1: the saver's keep_latest)")
    run.add_argument(
        "--ckpt-before",
        help="a second ckpt command (e.g. a checkout of the code before a change) timed side by side",
    )
    args = parser.parse_args()
    build_src(args) if args.command == "build-src" else bench(args)


if __name__ == "__main__":
    main()
