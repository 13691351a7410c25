"""The least time a Redis server takes to store RedisSaver's documents (issue #24: Redis targets).

    flock /tmp/ckpt-bench.lock .venv/bin/python bench/redis_write_floor.py bench/data/100k.db \\
        --redis redis://127.0.0.1:56430 --checkpoints 25000 --runs 3

The first ``--checkpoints`` records of STORE are encoded once by ckpt's own Redis writer (untimed:
the very commands ``ckpt migrate`` sends, in its blocks of 250 checkpoints with the latest pointers),
then each run sends them (timed) into a fresh key prefix whose two search indexes exist already, on
one pipelined connection as ckpt does: the server's parsing, storing and indexing, and the wire, and
nothing else. Alternating with it, ``ckpt migrate`` of the same records (``--thread``-free: a
``--until`` is not possible, so ckpt copies a SQLite file holding just those records) into another
fresh prefix. The floor against the official loop's rate bounds any tool's ratio on this server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CKPT, redis_cleanup  # noqa: E402

from ckpt.backends import open_store  # noqa: E402
from ckpt.backends.core.iterate import batched  # noqa: E402
from ckpt.backends.redis.wire import Block, Pipeline  # noqa: E402


def encoded(store_url: str, redis_url: str, limit: int, work: str) -> tuple[list[Block], str]:
    """ckpt's blocks for the first ``limit`` records, and a SQLite file holding just those records."""
    blocks: list[Block] = []
    subset = f"sqlite:///{work}/subset.db"
    with open_store(store_url) as source, open_store(subset, write=True) as part:
        records = list(islice(source.records(), limit))
        part.write(records)
        url = f"{redis_url}?checkpoint_prefix=floorenc&checkpoint_write_prefix=floorenc_write"
        with open_store(url, write=True) as target:  # nothing is written under this prefix: encoding only
            for batch in batched(records, 2000):
                flags: list[str | None] = []
                blocks += [target._block(batch[i : i + 250], flags) for i in range(0, len(batch), 250)]
                last = Block()
                target._point_latest(last, batch)
                blocks.append(last)
    return blocks, subset


def run_floor(redis_url: str, blocks: list[Block], prefix: str) -> float:
    import redis

    with open_store(f"{redis_url}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write", write=True):
        pass  # the two indexes, made as the saver's setup() makes them
    client = redis.Redis.from_url(redis_url, socket_timeout=120, protocol=2)
    renamed = [_renamed(block, prefix) for block in blocks]
    started = time.perf_counter()
    pipeline = Pipeline(client)
    for block in renamed:
        pipeline.send(block)
    pipeline.finish()
    pipeline.close(failed=False)
    return time.perf_counter() - started


def _renamed(block: Block, prefix: str) -> Block:
    out = Block()
    out.parts = [p.replace(b"floorenc", prefix.encode()) for p in block.parts]
    out.kinds = list(block.kinds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--checkpoints", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import redis

    client = redis.Redis.from_url(args.redis, protocol=2)
    work = tempfile.mkdtemp(prefix="ckpt-redis-floor-")
    before = set(client.scan_iter(count=10_000))
    blocks, subset = encoded(f"sqlite:///{os.path.abspath(args.store)}", args.redis, args.checkpoints, work)
    redis_cleanup(client, before, "floorenc")  # its two empty indexes
    floor, ckpt = [], []
    for n in range(args.runs):
        for name in ("floor", "ckpt") if n % 2 == 0 else ("ckpt", "floor"):
            prefix = f"f{os.getpid() % 10_000:04d}{n % 10}{name[0]}x"  # as long as "floorenc": RESP lengths hold
            before = set(client.scan_iter(count=10_000))
            try:
                if name == "floor":
                    floor.append(run_floor(args.redis, blocks, prefix))
                else:
                    target = f"{args.redis}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
                    started = time.perf_counter()
                    subprocess.run([CKPT, "migrate", subset, target, "-o", "json"], check=True, capture_output=True)
                    ckpt.append(time.perf_counter() - started)
            finally:
                redis_cleanup(client, before, prefix)
            print(f"run {n + 1} {name:6} {(floor if name == 'floor' else ckpt)[-1]:7.2f} s", flush=True)
    f, c = statistics.median(floor), statistics.median(ckpt)
    rate = args.checkpoints / f
    print(
        f"\n{args.checkpoints:,} checkpoints: floor {f:.2f} s ({rate:,.0f}/s), ckpt {c:.2f} s; ckpt/floor {c / f:.2f}x"
    )


if __name__ == "__main__":
    main()
