"""The floor of a PostgreSQL prune to ``--keep-last 5``: the deletes alone, keys known beforehand.

    /work/venv/bin/python bench/prune_floor.py --pg URL --src prune_src1m [--no-clone]

Clones ``--src`` into ``prune_a`` (as ``bench_prune.py`` does), computes untimed the doomed
checkpoints (rank > 5 from the newest per thread and namespace) and the blobs no remaining
checkpoint references into two tables, then times two connections at once, each deleting its half
of the threads with one ``DELETE … USING`` per table in one transaction: no plan, no batches, no
safety rules. What ``ckpt prune`` costs above this is its planning (bench/results/prune.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_prune import clone  # noqa: E402

S = "prune_a"
KEYS = "x.thread_id = d.thread_id AND x.checkpoint_ns = d.checkpoint_ns"


def prepare(admin: Any) -> None:
    admin.execute(f"DROP TABLE IF EXISTS {S}.doomed, {S}.freed")
    admin.execute(
        f"CREATE TABLE {S}.doomed AS SELECT thread_id, checkpoint_ns, checkpoint_id FROM (SELECT thread_id, "
        "checkpoint_ns, checkpoint_id, row_number() OVER (PARTITION BY thread_id, checkpoint_ns "
        f"ORDER BY checkpoint_id DESC) AS r FROM {S}.checkpoints) x WHERE r > 5"
    )
    admin.execute(
        f"CREATE TABLE {S}.freed AS SELECT b.thread_id, b.checkpoint_ns, b.channel, b.version "
        f"FROM {S}.checkpoint_blobs b WHERE NOT EXISTS (SELECT 1 FROM {S}.checkpoints c "
        f"LEFT JOIN {S}.doomed d USING (thread_id, checkpoint_ns, checkpoint_id) WHERE d.thread_id IS NULL "
        "AND c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
        "AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)"
    )
    for table in ("doomed", "freed"):
        admin.execute(f"CREATE INDEX ON {S}.{table} (thread_id)")
        admin.execute(f"ANALYZE {S}.{table}")
    admin.execute("CHECKPOINT")


def half(pg: str, condition: str, out: list[tuple[Any, ...]]) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn, conn.transaction():
        started = time.perf_counter()
        conn.execute("SET LOCAL jit = off; SET LOCAL work_mem = '64MB'")
        writes = conn.execute(
            f"DELETE FROM {S}.checkpoint_writes x USING {S}.doomed d WHERE d.{condition} AND {KEYS} "
            "AND x.checkpoint_id = d.checkpoint_id"
        ).rowcount
        checkpoints = conn.execute(
            f"DELETE FROM {S}.checkpoints x USING {S}.doomed d WHERE d.{condition} AND {KEYS} "
            "AND x.checkpoint_id = d.checkpoint_id"
        ).rowcount
        blobs = conn.execute(
            f"DELETE FROM {S}.checkpoint_blobs x USING {S}.freed d WHERE d.{condition} AND {KEYS} "
            "AND x.channel = d.channel AND x.version = d.version"
        ).rowcount
        out.append((checkpoints, writes, blobs, round(time.perf_counter() - started, 2)))


def main() -> None:
    import psycopg

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True)
    parser.add_argument("--src", default="prune_src1m")
    parser.add_argument("--no-clone", action="store_true")
    args = parser.parse_args()
    admin = psycopg.connect(args.pg, autocommit=True)
    if not args.no_clone:
        clone(admin, args.src, S)
    started = time.perf_counter()
    prepare(admin)
    print(f"keys prepared in {time.perf_counter() - started:.0f} s (untimed)", flush=True)
    row = admin.execute(
        "SELECT (histogram_bounds::text::text[])[50] FROM pg_stats "
        "WHERE schemaname = %s AND tablename = 'checkpoints' AND attname = 'thread_id'",
        (S,),
    ).fetchone()
    middle = str(row[0]) if row else "8"
    out: list[tuple[Any, ...]] = []
    halves = [f"thread_id < '{middle}'", f"thread_id >= '{middle}'"]
    workers = [threading.Thread(target=half, args=(args.pg, condition, out)) for condition in halves]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(f"floor: {time.perf_counter() - started:.2f} s; per half (checkpoints, writes, blobs, s): {out}")


if __name__ == "__main__":
    main()
