"""Time the whole ``ckpt list`` process against a bare GROUP BY on the same store, in one run.

    /work/venv/bin/python bench/bench_list.py bench/data/1m.db [--repeat 5] [--old DIR] [--json]
    /work/venv/bin/python bench/bench_list.py 'redis://127.0.0.1:56589?checkpoint_prefix=checkpoint' [--repeat 5]
    /work/venv/bin/python bench/bench_list.py 'mongodb://127.0.0.1:57227/DB?directConnection=true' [--repeat 5]

A store URL (issue #24) times the server's own aggregate instead: ``base_py`` is then a Python
process that runs ``FT.AGGREGATE <index> * GROUPBY 1 @thread_id REDUCE COUNT 0`` (cursor pages of
10,000, ``TIMEOUT 0``) or MongoDB's ``$group`` by ``thread_id`` with ``$sum: 1`` and prints
``thread_id|count`` per row; ``sql`` and ``base_sqlite3`` and the MiB read are SQLite-only.

Every variant is a new process whose stdout is a pipe that this script drains (not a TTY, so
``ckpt list`` prints JSON Lines by default). Variants:

  base_py      THE BASELINE: ``python -c`` that opens the file read-only (``mode=ro``), runs
               ``SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id`` and prints each
               row as ``thread_id|count`` (interpreter start-up, query and printing, nothing else)
  base_sqlite3 the same query in the ``sqlite3`` command-line shell (``-readonly``), for reference
  ckpt         ``ckpt list sqlite:///PATH`` (default output: JSON Lines; one process, one query)
  ckpt_csv     ``ckpt list sqlite:///PATH -o csv``
  ckpt_table   ``ckpt list sqlite:///PATH -o table`` (the plain formatter: not a terminal)
  ckpt_old     ``ckpt list sqlite:///PATH`` from a frozen copy of older code (``--old PATH``: a
               PYTHONPATH holding ``ckpt/``, and maybe the typer it ran with, put first)

and, in this process, ``lib``: ``list(store.threads(details=False))`` (open, query, close), and
``sql``: the bare query fetched here (the old baseline of this script).

One untimed warm-up of each first (page cache warm for all), then ``--repeat`` rounds whose order
alternates (forward, backward). Reports median wall time, median CPU seconds of the child (user +
system, from ``os.wait4``; above wall time when two cores work), the ratios to ``base_py``, the load
average, and checks that every variant lists the same number of threads. Last, the MiB that ``sql``
and ``lib`` read from the file (``rchar``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ckpt.backends import open_store

BARE_SQL = "SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"
CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
BASE_PY = """
import sqlite3, sys
conn = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
out = sys.stdout
for thread_id, count in conn.execute(sys.argv[2]):
    out.write(f"{thread_id}|{count}\\n")
"""

REDIS_FLOOR = """
import sys, redis
r, index = redis.Redis.from_url(sys.argv[1], protocol=2), sys.argv[2]
page, cursor = r.execute_command("FT.AGGREGATE", index, "*", "TIMEOUT", 0, "GROUPBY", 1, "@thread_id",
                                 "REDUCE", "COUNT", 0, "AS", "n", "WITHCURSOR", "COUNT", 10000)
out = sys.stdout
while True:
    for row in page[1:]:
        out.write(f"{row[1].decode()}|{row[3].decode()}\\n")
    if not cursor:
        break
    page, cursor = r.execute_command("FT.CURSOR", "READ", index, cursor)
"""
MONGO_FLOOR = """
import sys, pymongo
rows = pymongo.MongoClient(sys.argv[1]).get_default_database()[sys.argv[2]].aggregate(
    [{"$group": {"_id": "$thread_id", "n": {"$sum": 1}}}], allowDiskUse=True)
out = sys.stdout
for row in rows:
    out.write(f"{row['_id']}|{row['n']}\\n")
"""

Result = tuple[float, float, int]  # wall seconds, child CPU seconds, lines (threads) printed


def child(command: list[str], env: dict[str, str]) -> Result:
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE)
    assert process.stdout is not None
    lines = 0
    while chunk := process.stdout.read(1 << 20):
        lines += chunk.count(b"\n")
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(command)} failed")
    return wall, usage.ru_utime + usage.ru_stime, lines


def in_process(fn: Callable[[], int]) -> Result:
    start, cpu = time.perf_counter(), time.process_time()
    count = fn()
    return time.perf_counter() - start, time.process_time() - cpu, count


def read_mib(fn: Callable[[], int]) -> float:
    """MiB this process read from files while ``fn`` ran (``rchar``: page-cache copies included, all threads)."""

    def rchar() -> int:
        with open("/proc/self/io") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))

    before = rchar()
    fn()
    return round((rchar() - before) / 2**20, 1)


def bare(path: str) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return len(conn.execute(BARE_SQL).fetchall())
    finally:
        conn.close()


def library(path: str) -> int:
    with open_store(path if is_server(path) else "sqlite:///" + path) as store:
        return len(list(store.threads(details=False)))


def user_env() -> dict[str, str]:
    """This environment as a user's shell has it: .pyc files written (the warm-up writes them, as
    an install does) and stdout buffered. PYTHONPATH given to this script pins the "new" code."""
    drop = ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "CKPT_SQLITE_READERS")
    return {k: v for k, v in os.environ.items() if k not in drop}


def is_server(store: str) -> bool:
    return store.split("://", 1)[0] in ("redis", "rediss", "mongodb", "mongodb+srv")


def floor_command(url: str) -> list[str]:
    """The server's own aggregate in a fresh Python process (see the module docstring)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme.startswith("redis"):
        index = query.pop("checkpoint_prefix", "checkpoint")
        plain = urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if "prefix" not in k})))
        return [sys.executable, "-c", REDIS_FLOOR, plain, index]
    collection = query.pop("checkpoint_collection", "checkpoints")
    return [sys.executable, "-c", MONGO_FLOOR, urlunsplit(parts._replace(query=urlencode(query))), collection]


def server_variants(url: str, old: str | None) -> dict[str, Callable[[], Result]]:
    env = user_env()
    found: dict[str, Callable[[], Result]] = {
        "base_py": lambda: child(floor_command(url), env),
        "ckpt": lambda: child([CKPT, "list", url], env),
        "lib": lambda: in_process(lambda: library(url)),
    }
    if old:
        found["ckpt_old"] = lambda: child([CKPT, "list", url], {**env, "PYTHONPATH": old})
    return found


def variants(path: str, old: str | None) -> dict[str, Callable[[], Result]]:
    if is_server(path):
        return server_variants(path, old)
    env = user_env()
    url = "sqlite:///" + path
    found: dict[str, Callable[[], Result]] = {
        "base_py": lambda: child([sys.executable, "-c", BASE_PY, path, BARE_SQL], env),
        "ckpt": lambda: child([CKPT, "list", url], env),
        "ckpt_csv": lambda: child([CKPT, "list", url, "-o", "csv"], env),
        "ckpt_table": lambda: child([CKPT, "list", url, "-o", "table"], env),
        "lib": lambda: in_process(lambda: library(path)),
        "sql": lambda: in_process(lambda: bare(path)),
    }
    if shutil.which("sqlite3"):
        found["base_sqlite3"] = lambda: child(["sqlite3", "-readonly", path, BARE_SQL], env)
    if old:
        found["ckpt_old"] = lambda: child([CKPT, "list", url], {**env, "PYTHONPATH": old})
    return found


def expected_lines(name: str, threads: int) -> int:
    return {"ckpt_csv": threads + 1, "ckpt_table": threads + 4}.get(name, threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old", help="directory holding a frozen ckpt/ package to compare against")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    server = is_server(args.path)
    path = args.path if server else os.path.abspath(args.path)
    chosen = variants(path, args.old)
    threads = chosen["base_py"]()[2] if server else bare(path)
    for name, run in chosen.items():  # warm-up: page cache, .pyc files; and the same threads everywhere
        lines = run()[2]
        if lines != expected_lines(name, threads):
            sys.exit(f"{name} printed {lines} lines for {threads} threads")
    order = list(chosen)
    wall: dict[str, list[float]] = {k: [] for k in order}
    cpu: dict[str, list[float]] = {k: [] for k in order}
    loads = [os.getloadavg()[0]]
    for round_number in range(args.repeat):
        for name in order if round_number % 2 == 0 else reversed(order):
            seconds, cpu_seconds, _ = chosen[name]()
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
        loads.append(os.getloadavg()[0])
    med = {k: statistics.median(v) for k, v in wall.items()}
    result: dict[str, Any] = {
        "path": args.path,
        "file_mib": None if server else round(os.path.getsize(path) / 2**20, 1),
        "threads": threads,
        "repeat": args.repeat,
        "load_average_1min_per_round": [round(x, 2) for x in loads],
        "median_wall_s": {k: round(v, 3) for k, v in med.items()},
        "median_cpu_s": {k: round(statistics.median(v), 3) for k, v in cpu.items()},
        "runs_wall_s": {k: [round(x, 3) for x in v] for k, v in wall.items()},
        "ratio_to_base_py": {k: round(v / med["base_py"], 2) for k, v in med.items()},
    }
    if not server:
        result["read_mib"] = {"sql": read_mib(lambda: bare(path)), "lib": read_mib(lambda: library(path))}
    if args.json:
        print(json.dumps(result))
        return
    where = "server" if server else f"{result['file_mib']} MiB, page cache warm"
    print(f"{args.path}: {where}, {threads:,} threads, {args.repeat} rounds")
    print(f"load average (1 min) per round: {result['load_average_1min_per_round']}")
    print(f"  {'variant':<13} {'wall median':>11} {'CPU median':>11} {'vs base_py':>10}   wall runs")
    for name in order:
        runs = " ".join(f"{x:.3f}" for x in wall[name])
        print(
            f"  {name:<13} {med[name]:9.3f} s {statistics.median(cpu[name]):9.3f} s"
            f" {result['ratio_to_base_py'][name]:9.2f}x   {runs}"  # type: ignore[index]
        )
    print("  target: ckpt <= 2.00x base_py (whole processes, stdout a pipe)")
    if not server:
        print(f"  read from the file, in this process: {result['read_mib']} MiB (the index alone: no blob pages)")


if __name__ == "__main__":
    main()
