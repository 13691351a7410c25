"""Scratch investigation: why is ``ckpt list`` slower than a bare GROUP BY, and what would fix it?

    /work/venv/bin/python bench/list_variants.py bench/data/1m.db [--repeat 3] [--indexed COPY]
    /work/venv/bin/python bench/list_variants.py bench/data/1m.db --micro

Prints ``EXPLAIN QUERY PLAN`` of the two queries in ``SqliteStore.threads()`` and times
variants of them, fully fetched, in-process with a warm page cache (median of --repeat,
after one warm-up), together with the bytes read from the file (``rchar``). ``--indexed
COPY`` copies the store to COPY, adds covering indexes there, and times the queries on it.
The store itself is opened read-only and never modified.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import time

CKPT_Q = (
    "SELECT thread_id, count(DISTINCT checkpoint_ns), count(*), min(checkpoint_id), max(checkpoint_id), "
    "sum(ifnull(length(checkpoint), 0) + ifnull(length(metadata), 0)) "
    "FROM checkpoints {hint} GROUP BY thread_id ORDER BY thread_id"
)
WRITES_Q = "SELECT thread_id, sum(ifnull(length(value), 0)) FROM writes {hint} GROUP BY thread_id ORDER BY thread_id"
BARE = "SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id"
NO_BYTES = (
    "SELECT thread_id, count(DISTINCT checkpoint_ns), count(*), min(checkpoint_id), max(checkpoint_id) "
    "FROM checkpoints GROUP BY thread_id ORDER BY thread_id"
)
NO_DISTINCT = (
    "SELECT thread_id, count(*), min(checkpoint_id), max(checkpoint_id), "
    "sum(ifnull(length(checkpoint), 0) + ifnull(length(metadata), 0)) "
    "FROM checkpoints GROUP BY thread_id ORDER BY thread_id"
)
COUNT_MIN_MAX = (
    "SELECT thread_id, count(*), min(checkpoint_id), max(checkpoint_id) "
    "FROM checkpoints GROUP BY thread_id ORDER BY thread_id"
)
# count(DISTINCT checkpoint_ns) without the temp b-tree: the PK index is already ordered by ns.
NS_SUBQUERY = (
    "SELECT thread_id, count(*), sum(n), min(lo), max(hi) FROM ("
    "SELECT thread_id, checkpoint_ns, count(*) AS n, min(checkpoint_id) AS lo, max(checkpoint_id) AS hi "
    "FROM checkpoints GROUP BY thread_id, checkpoint_ns) GROUP BY thread_id ORDER BY thread_id"
)
# Price of each aggregate over the PK index: one connection, median of 5 after a warm-up.
MICRO = {
    "count(*)": "count(*)",
    "+ min(id)": "count(*), min(checkpoint_id)",
    "+ max(id)": "count(*), max(checkpoint_id)",
    "+ min(id), max(id)": "count(*), min(checkpoint_id), max(checkpoint_id)",
    "+ count(DISTINCT ns)": "count(*), count(DISTINCT checkpoint_ns)",
}
INDEXES = (
    "CREATE INDEX bench_ckpt_size ON checkpoints "
    "(thread_id, checkpoint_ns, checkpoint_id, ifnull(length(checkpoint), 0) + ifnull(length(metadata), 0))",
    "CREATE INDEX bench_writes_size ON writes (thread_id, ifnull(length(value), 0))",
)


def rchar() -> int:
    with open("/proc/self/io") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("rchar:"))


def connect(path: str, pragmas: tuple[str, ...] = ()) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
    for pragma in pragmas:
        conn.execute(pragma)
    return conn


def measure(path: str, queries: tuple[str, ...], pragmas: tuple[str, ...], repeat: int) -> tuple[float, float]:
    """(median seconds, median MiB read) for connect + all queries fully fetched + close."""
    times: list[float] = []
    reads: list[int] = []
    for i in range(repeat + 1):
        before, t0 = rchar(), time.perf_counter()
        conn = connect(path, pragmas)
        for q in queries:
            conn.execute(q).fetchall()
        conn.close()
        if i:  # the first run is the warm-up
            times.append(time.perf_counter() - t0)
            reads.append(rchar() - before)
    return statistics.median(times), statistics.median(reads) / 2**20


def plans(path: str, queries: dict[str, str]) -> None:
    conn = connect(path)
    for name, q in queries.items():
        steps = "; ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + q))
        print(f"  {name:<14} {steps}")
    conn.close()


def micro(path: str) -> None:
    conn = connect(path)
    print("aggregates over the PK index (SELECT thread_id, ... GROUP BY thread_id), median of 5:")
    for name, columns in MICRO.items():
        sql = f"SELECT thread_id, {columns} FROM checkpoints GROUP BY thread_id"
        times: list[float] = []
        for i in range(6):
            t0 = time.perf_counter()
            conn.execute(sql).fetchall()
            if i:
                times.append(time.perf_counter() - t0)
        print(f"  {name:<22} {statistics.median(times):7.3f} s", flush=True)
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--indexed", metavar="COPY", help="copy the store here and add covering indexes")
    parser.add_argument("--micro", action="store_true", help="only price each aggregate on one connection")
    args = parser.parse_args()
    path: str = args.path
    if args.micro:
        micro(path)
        return
    ckpt_q, writes_q = CKPT_Q.format(hint=""), WRITES_Q.format(hint="")
    print(f"{path} ({os.path.getsize(path) / 2**20:,.0f} MiB), sqlite {sqlite3.sqlite_version}")
    print("EXPLAIN QUERY PLAN:")
    plans(path, {"bare": BARE, "threads ckpt": ckpt_q, "threads writes": writes_q, "no bytes": NO_BYTES})
    big = 2**33
    variants: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
        ("bare GROUP BY (a)", (BARE,), ()),
        ("threads(): both queries", (ckpt_q, writes_q), ()),
        ("  checkpoints query only", (ckpt_q,), ()),
        ("  writes query only", (writes_q,), ()),
        ("both, mmap_size=8GiB", (ckpt_q, writes_q), (f"PRAGMA mmap_size={big}",)),
        ("both, cache_size=1GiB", (ckpt_q, writes_q), ("PRAGMA cache_size=-1048576",)),
        (
            "both, NOT INDEXED (table scan+sort)",
            (CKPT_Q.format(hint="NOT INDEXED"), WRITES_Q.format(hint="NOT INDEXED")),
            (),
        ),
        ("ckpt query w/o count(DISTINCT)", (NO_DISTINCT,), ()),
        ("no byte sums, no writes query", (NO_BYTES,), ()),
        ("no byte sums, ns via subquery", (NS_SUBQUERY,), ()),
        ("no byte sums, no count(DISTINCT)", (COUNT_MIN_MAX,), ()),
    ]
    print(f"timings (warm cache, median of {args.repeat}):")
    base = 0.0
    for name, queries, pragmas in variants:
        seconds, mib = measure(path, queries, pragmas, args.repeat)
        base = base or seconds
        print(f"  {name:<38} {seconds:7.3f} s  {seconds / base:6.1f}x bare  read {mib:8,.1f} MiB", flush=True)
    if args.indexed:
        if not os.path.exists(args.indexed):
            shutil.copyfile(path, args.indexed)
            conn = sqlite3.connect(args.indexed)
            t0 = time.perf_counter()
            for ddl in INDEXES:
                conn.execute(ddl)
            conn.commit()
            conn.close()
            print(
                f"built covering indexes on {args.indexed} in {time.perf_counter() - t0:.0f}s "
                f"(+{(os.path.getsize(args.indexed) - os.path.getsize(path)) / 2**20:,.0f} MiB)"
            )
        print("with covering indexes (copy):")
        plans(args.indexed, {"threads ckpt": ckpt_q, "threads writes": writes_q})
        for name, queries in (("bare GROUP BY (a)", (BARE,)), ("threads(): both queries", (ckpt_q, writes_q))):
            seconds, mib = measure(args.indexed, queries, (), args.repeat)
            print(f"  {name:<38} {seconds:7.3f} s  read {mib:8,.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
