"""Time ``ckpt list`` against a bare GROUP BY on the same SQLite file, in one run.

    /work/venv/bin/python bench/bench_list.py bench/data/1m.db [--repeat 5] [--json]

Each round runs, one after the other:
  (a) bare SQL: ``SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id``, fully
      fetched, Python sqlite3 opened read-only (connect + query + fetchall + close);
  (b) ``ckpt list sqlite:///PATH -o jsonl > /dev/null`` as a subprocess (interpreter start,
      imports, query and JSONL formatting);
  (c) ``list(open_store('sqlite:///' + PATH).threads(details=False))`` in this process (open + query).
One untimed warm-up of each comes first, so the OS page cache is warm for every timed run.
Reports medians, the ratios b/a and c/a, and the bytes each in-process variant read from
the file (``rchar`` of /proc/self/io; with a warm cache these are page-cache copies).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from ckpt.backends import open_store

BARE_SQL = "SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"
CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")


def rchar() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def bare(path: str) -> int:
    conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
    try:
        return len(conn.execute(BARE_SQL).fetchall())
    finally:
        conn.close()


def cli(path: str, capture: bool = False) -> int:
    out = subprocess.run(
        [CKPT, "list", "sqlite:///" + os.path.abspath(path), "-o", "jsonl"],
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        check=True,
    ).stdout
    return out.count(b"\n") if capture else -1


def library(path: str) -> int:
    with open_store("sqlite:///" + os.path.abspath(path)) as store:
        return len(list(store.threads(details=False)))


def timed(fn: Callable[[], int]) -> tuple[float, int, int]:
    """(seconds, result, bytes read by this process meanwhile)."""
    before, t0 = rchar(), time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result, rchar() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args()
    path: str = args.path
    variants: dict[str, Callable[[], int]] = {
        "a_bare_sql": lambda: bare(path),
        "b_ckpt_list_cli": lambda: cli(path),
        "c_store_threads": lambda: library(path),
    }
    # Warm-up (untimed): fills the page cache and checks that all three see the same threads.
    rows = {"a_bare_sql": bare(path), "b_ckpt_list_cli": cli(path, capture=True), "c_store_threads": library(path)}
    if len(set(rows.values())) != 1:
        sys.exit(f"thread counts differ: {rows}")
    times: dict[str, list[float]] = {k: [] for k in variants}
    read: dict[str, list[int]] = {k: [] for k in variants}
    for _ in range(args.repeat):
        for name, fn in variants.items():
            seconds, _, nbytes = timed(fn)
            times[name].append(seconds)
            read[name].append(nbytes)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "path": path,
        "file_mib": round(os.path.getsize(path) / 2**20, 1),
        "threads": rows["a_bare_sql"],
        "repeat": args.repeat,
        "page_cache": "warm (one untimed warm-up run of each variant first)",
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratio_b_over_a": round(med["b_ckpt_list_cli"] / med["a_bare_sql"], 2),
        "ratio_c_over_a": round(med["c_store_threads"] / med["a_bare_sql"], 2),
        "read_mib_in_process": {
            k: round(statistics.median(read[k]) / 2**20, 1) for k in ("a_bare_sql", "c_store_threads")
        },
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{path}: {result['file_mib']} MiB, {result['threads']:,} threads, {args.repeat} rounds, page cache warm")
    for name in variants:
        runs = " ".join(f"{x:.3f}" for x in times[name])
        print(f"  {name:<16} median {med[name]:7.3f} s   runs: {runs}")
    print(f"  ratio b/a {result['ratio_b_over_a']}   c/a {result['ratio_c_over_a']}   (target: <= 2)")
    print(f"  read from the file (in-process): {result['read_mib_in_process']} MiB")


if __name__ == "__main__":
    main()
