"""``ckpt memory migrate`` SQLite → PostgreSQL against the official stores' copy loop (issue #21).

    .venv/bin/python bench/bench_memory.py build 100000 bench/data/mem-100k.db
    flock /tmp/ckpt-bench.lock .venv/bin/python bench/bench_memory.py run bench/data/mem-100k.db \
        --pg "$CKPT_TEST_POSTGRES_URL" [--runs 3] [--baseline 5000]

``build`` writes N items in the layout of ``SqliteStore`` (ckpt's SQLite memory driver, whose
rows the tests prove the official store reads as its own): 1,000 users, each with a ``prefs`` and a
``memories`` namespace, values of ~150-600 bytes (a remembered fact and a few fields), every tenth
item with a TTL.

``run`` alternates, ``--runs`` rounds, each into a fresh PostgreSQL schema:

* ``ckpt``: ``ckpt memory migrate sqlite:///DB PG?schema=S`` (a fresh process; its peak RSS too);
* ``official``: a fresh Python process that copies with the official stores only:
  ``SqliteStore.list_namespaces`` → ``search(namespace, limit=1000, offset=…)`` per namespace →
  ``PostgresStore.batch([PutOp …])`` per page (``index=False``: no embeddings), stopping after the
  first ``--baseline`` items; its rate is extrapolated to the whole store.

* ``floor``: a fresh Python process doing the least work with the same drivers: ``sqlite3`` rows
  straight into ``COPY store FROM STDIN`` of a bare table shaped like ``store``, one transaction per
  2,000 (no parsing, no checks, no upsert): what the server itself costs.

Reports medians of wall time, items per second, the ratios, and the peak RSS of ``ckpt``.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")

OFFICIAL = r"""
import sqlite3, sys, time
from langgraph.store.base import PutOp
from langgraph.store.postgres import PostgresStore
from langgraph.store.sqlite import SqliteStore
db, pg, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
source = SqliteStore(sqlite3.connect(f"file:{db}?mode=ro", uri=True, check_same_thread=False))
started = time.perf_counter()
copied = 0
with PostgresStore.from_conn_string(pg) as target:
    target.setup()
    namespaces = source.list_namespaces(limit=10**9)
    for ns in namespaces:
        offset = 0
        while copied < limit:
            page = [i for i in source.search(ns, limit=1000, offset=offset) if i.namespace == ns]
            if not page:
                break
            target.batch([PutOp(i.namespace, i.key, i.value, index=False) for i in page])
            copied += len(page)
            offset += 1000
        if copied >= limit:
            break
print(copied, time.perf_counter() - started)
"""


FLOOR = r"""
import sqlite3, sys, time, psycopg
db, pg = sys.argv[1], sys.argv[2]
started = time.perf_counter()
src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
with psycopg.connect(pg) as conn, conn.cursor() as cur:
    cur.execute("CREATE TABLE store (prefix text NOT NULL, key text NOT NULL, value jsonb NOT NULL, "
                "created_at timestamptz, updated_at timestamptz, expires_at timestamptz, ttl_minutes int, "
                "PRIMARY KEY (prefix, key))")
    rows = src.execute("SELECT prefix, key, CAST(value AS TEXT), created_at, updated_at, expires_at, "
                       "CAST(ttl_minutes AS INT) FROM store")
    while batch := rows.fetchmany(2000):
        with cur.copy("COPY store FROM STDIN") as copy:
            for row in batch:
                copy.write_row(row)
        conn.commit()
print(time.perf_counter() - started)
"""


def build(count: int, path: str) -> None:
    import orjson

    from ckpt.backends.core.memory import MemoryItem
    from ckpt.backends.sqlite.memory import SqliteMemory

    rng = random.Random(21)
    now = datetime.now(timezone.utc)
    words = ["tea", "coffee", "mountains", "jazz", "chess", "python", "rust", "hiking", "novels", "cooking"]
    with SqliteMemory.open(f"sqlite:///{path}", write=True) as store:
        batch = []
        for n in range(count):
            user = n % 1000
            namespace = ("users", str(user), "prefs" if n % 5 == 0 else "memories")
            text = " ".join(rng.choice(words) for _ in range(rng.randint(15, 80)))
            value = {"text": text, "kind": namespace[2], "n": n, "tags": rng.sample(words, 3)}
            at = now - timedelta(minutes=count - n)
            ttl = 60.0 * 24 * 30 if n % 10 == 0 else None
            batch.append(
                MemoryItem(
                    namespace, f"m-{n:08d}", orjson.dumps(value), at, at,
                    at + timedelta(minutes=ttl) if ttl else None, ttl,
                )
            )  # fmt: skip
            if len(batch) == 5000:
                store.write(batch)
                batch = []
        if batch:
            store.write(batch)


def _schema_urls(pg: str, schema: str) -> tuple[str, str]:
    sep = "&" if "?" in pg else "?"
    return f"{pg}{sep}schema={schema}", f"{pg}{sep}options={quote(f'-csearch_path={schema}')}"


def _fresh_schema(pg: str) -> str:
    import psycopg

    schema = f"bench_mem_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop_schema(pg: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def _timed(argv: list[str]) -> tuple[float, float, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{argv[:3]} failed:\n{err.read().decode()[-2000:]}")
        return seconds, usage.ru_maxrss / 1024, out.read().decode()


def run(db: str, pg: str, runs: int, baseline: int) -> None:
    import sqlite3

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM store").fetchone()[0]
    ckpt_times: list[float] = []
    rss: list[float] = []
    official_rates: list[float] = []
    floor_times: list[float] = []
    for round_ in range(runs):
        order = ("ckpt", "official", "floor") if round_ % 2 == 0 else ("floor", "official", "ckpt")
        for variant in order:
            schema = _fresh_schema(pg)
            ckpt_url, libpq_url = _schema_urls(pg, schema)
            try:
                if variant == "ckpt":
                    seconds, peak, _ = _timed([CKPT, "memory", "migrate", f"sqlite:///{db}", ckpt_url, "-o", "json"])
                    ckpt_times.append(seconds)
                    rss.append(peak)
                    print(f"round {round_ + 1} ckpt: {seconds:.2f} s, {total / seconds:,.0f} items/s, {peak:.0f} MB")
                elif variant == "floor":
                    seconds, _, _ = _timed([sys.executable, "-c", FLOOR, db, libpq_url])
                    floor_times.append(seconds)
                    print(f"round {round_ + 1} floor: {seconds:.2f} s, {total / seconds:,.0f} items/s")
                else:
                    _, _, out = _timed([sys.executable, "-c", OFFICIAL, db, libpq_url, str(baseline)])
                    copied, seconds = out.split()
                    rate = int(copied) / float(seconds)
                    official_rates.append(rate)
                    print(f"round {round_ + 1} official: {copied} items in {float(seconds):.2f} s, {rate:,.0f} items/s")
            finally:
                _drop_schema(pg, schema)
    ckpt_rate = total / statistics.median(ckpt_times)
    official_rate = statistics.median(official_rates)
    print(f"\nstore: {total:,} items; load {os.getloadavg()[0]:.1f}")
    median = statistics.median(ckpt_times)
    print(f"ckpt     median {median:.2f} s = {ckpt_rate:,.0f} items/s, peak RSS {max(rss):.0f} MB")
    print(f"official median {official_rate:,.0f} items/s (≈{total / official_rate:.1f} s for the whole store)")
    floor = statistics.median(floor_times)
    print(f"floor    median {floor:.2f} s = {total / floor:,.0f} items/s")
    print(f"ckpt vs official loop: {ckpt_rate / official_rate:.1f}x faster")
    print(f"ckpt vs floor: {median / floor:.2f}x the time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("count", type=int)
    b.add_argument("path")
    r = sub.add_parser("run")
    r.add_argument("db")
    r.add_argument("--pg", required=True)
    r.add_argument("--runs", type=int, default=3)
    r.add_argument("--baseline", type=int, default=5000)
    args = parser.parse_args()
    if args.command == "build":
        build(args.count, args.path)
    else:
        run(args.db, args.pg, args.runs, args.baseline)


if __name__ == "__main__":
    main()
