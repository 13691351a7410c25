"""Target 2 (issue #5): migrate SQLite → MongoDB, ckpt against the official-saver copy loop, same run.

    /work/venv/bin/python bench/bench_mongo.py bench/data/grow-100k.db --mongo mongodb://127.0.0.1:57067 \
        [--runs 2] [--baseline 1000] [--at-size 30]

Each run, in alternating order: ``ckpt migrate sqlite:///STORE mongodb://…/DB`` on the whole store
(subprocess: wall time, peak RSS via ``os.wait4``), and the loop ``SqliteSaver.list(None)`` →
``MongoDBSaver.put`` / ``put_writes`` on the first ``--baseline`` tuples into an empty database.
On nx-27017 every saver upsert scans its collection, so that baseline, timed while its
collection is small, flatters the saver. ``--at-size K`` also times the loop on K tuples into the
database ckpt has just filled (those K deleted first, so it holds the store minus K): the
saver's rate near the end of a migration of the whole store. Databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Run, Variant, ckpt, copy_loop, source_count  # noqa: E402


def first_tuples(db: str, limit: int) -> list[tuple[str, str, str]]:
    """The keys of the first ``limit`` tuples of ``SqliteSaver.list(None)`` (thread asc, id desc)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    saver = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    keys = []
    for item in saver.list(None):
        c = item.config["configurable"]
        keys.append((c["thread_id"], c["checkpoint_ns"], c["checkpoint_id"]))
        if len(keys) == limit:
            break
    saver.conn.close()
    return keys


def at_size(client: Any, base: str, dbname: str, db: str, limit: int) -> Run:
    """The loop on the first ``limit`` tuples into ``dbname`` (filled by ckpt) after deleting them there."""
    from langgraph.checkpoint.mongodb import MongoDBSaver

    database = client[dbname]
    for thread_id, ns, cid in first_tuples(db, limit):
        key = {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": cid}
        database.checkpoints.delete_many(key)
        database.checkpoint_writes.delete_many(key)
    with MongoDBSaver.from_conn_string(base, db_name=dbname) as saver:
        return copy_loop(db, saver, limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--mongo", default="mongodb://127.0.0.1:57017", help="server (no path, no query)")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--baseline", type=int, default=1000, help="tuples for the loop into an empty database")
    parser.add_argument("--at-size", type=int, default=0, help="tuples for the loop into ckpt's full database")
    args = parser.parse_args()

    import pymongo
    from langgraph.checkpoint.mongodb import MongoDBSaver

    base = f"{args.mongo}/?directConnection=true"
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(base)
    total = source_count(args.store)
    names = ["baseline", "ckpt"] + (["at-size"] if args.at_size else [])
    variants = {name: Variant(name) for name in names}
    for n in range(args.runs):
        for name in ("baseline", "ckpt") if n % 2 == 0 else ("ckpt", "baseline"):
            dbname = f"bench{os.getpid()}_{n}_{name}"
            load = os.getloadavg()[0]
            try:
                if name == "baseline":
                    with MongoDBSaver.from_conn_string(base, db_name=dbname) as saver:
                        run = copy_loop(args.store, saver, args.baseline)
                else:
                    url = f"{args.mongo}/{dbname}?directConnection=true"
                    seconds, rss, _ = ckpt("migrate", f"sqlite:///{os.path.abspath(args.store)}", url, "-o", "json")
                    run = Run(seconds, total, rss)
                    assert client[dbname].checkpoints.count_documents({}) == total
                    if args.at_size:
                        extra = at_size(client, base, dbname, args.store, args.at_size)
                        variants["at-size"].runs.append(extra)
                        print(f"run {n + 1} at-size   {extra.checkpoints:>7,} ckpts {extra.seconds:8.2f} s "
                              f"{extra.checkpoints / extra.seconds:8,.1f} ckpt/s (into {total - args.at_size:,})",
                              flush=True)  # fmt: skip
            finally:
                client.drop_database(dbname)
            variants[name].runs.append(run)
            print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
                  f"{run.checkpoints / run.seconds:8,.1f} ckpt/s rss {run.rss_mb or 0:.0f} MB "
                  f"load {load:.1f}→{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    ckpt_rate = variants["ckpt"].rate
    print("\n| variant | checkpoints | median s | checkpoints/s | ckpt x | peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants.values():
        print(f"| {v.name} | {v.runs[0].checkpoints:,} | {v.seconds:.2f} | {v.rate:,.1f} | "
              f"{ckpt_rate / v.rate:.1f} | {v.rss} |")  # fmt: skip


if __name__ == "__main__":
    main()
