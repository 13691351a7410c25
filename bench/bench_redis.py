"""Target 1 (issue #4): migrate SQLite → Redis, ckpt against the official-saver copy loop, same run.

    /work/venv/bin/python bench/bench_redis.py bench/data/grow-100k.db --redis redis://127.0.0.1:56429 \
        [--runs 3] [--baseline 3000] [--jobs N]

Each run, in alternating order: ``ckpt migrate sqlite:///STORE 'redis://…?checkpoint_prefix=P…'`` on
the whole store (subprocess: wall time, peak RSS and CPU seconds via ``os.wait4``) and the loop
``SqliteSaver.list(None)`` → ``RedisSaver.put`` / ``put_writes`` on the first ``--baseline`` tuples
(``RedisSaver.put`` does not read the store, so its rate barely depends on the store's size).
Every run gets its own key prefix; after a ckpt run the script counts its checkpoint keys, then
drops both search indexes with their documents and deletes every other key the run created
(``--flushall``: empties the whole server instead, for a server that is the benchmark's alone).
With ``--server-pid`` it also reports the server's CPU seconds per run (from ``/proc``). Use a
Redis server no test runs against: the tests' ``fresh_redis`` fixture empties its server.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import CKPT, Run, Variant, copy_loop, print_table, redis_cleanup, source_count  # noqa: E402


def server_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cleanup(client: Any, before: set[bytes], prefix: str, flushall: bool) -> None:
    if flushall:  # the server is the benchmark's alone; FT.DROPINDEX … DD of 100k documents outlasts timeouts
        client.flushall()
        while int(client.info("memory").get("lazyfree_pending_objects", 0)):  # freed in the background
            time.sleep(0.5)
        return
    redis_cleanup(client, before, prefix)


def run_ckpt(db: str, target: str, total: int, jobs: int) -> tuple[Run, float]:
    """(run, client CPU seconds) of ``ckpt migrate``; checks that it reports every checkpoint written."""
    args = [CKPT, "migrate", f"sqlite:///{os.path.abspath(db)}", target, "-o", "json"]
    args += ["--jobs", str(jobs)] if jobs > 1 else []
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"ckpt failed:\n{err.read().decode()[-2000:]}")
        written = int(json.loads(out.read()).get("checkpoints_written", -1))
    assert written == total, f"ckpt reported {written:,} checkpoints written of {total:,}"
    return Run(seconds, total, usage.ru_maxrss / 1024), usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("store")
    parser.add_argument("--redis", default="redis://127.0.0.1:56379")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=3000, help="tuples for the official loop")
    parser.add_argument("--jobs", type=int, default=1, help="ckpt migrate --jobs")
    parser.add_argument("--server-pid", type=int, help="the Redis server's pid, for its CPU seconds")
    parser.add_argument("--flushall", action="store_true", help="empty the server after each run (yours alone)")
    args = parser.parse_args()

    import redis
    from langgraph.checkpoint.redis import RedisSaver

    client = redis.Redis.from_url(args.redis, socket_timeout=None, protocol=2)
    if args.flushall:
        client.flushall()
    before = set(client.scan_iter(count=10_000))
    total = source_count(args.store)
    variants = {"baseline": Variant("baseline"), "ckpt": Variant("ckpt")}
    for n in range(args.runs):
        for name in ("baseline", "ckpt") if n % 2 == 0 else ("ckpt", "baseline"):
            prefix = f"b{os.getpid()}_{n}_{name}"
            load, server = os.getloadavg()[0], server_cpu(args.server_pid)
            try:
                if name == "baseline":
                    cpu = time.process_time()
                    with RedisSaver.from_conn_string(
                        args.redis, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
                    ) as saver:
                        saver.setup()
                        run = copy_loop(args.store, saver, args.baseline)
                    cpu = time.process_time() - cpu
                else:
                    target = f"{args.redis}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
                    run, cpu = run_ckpt(args.store, target, total, args.jobs)
                    docs = sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=10_000))
                    assert docs == total, (docs, total)
                server = server_cpu(args.server_pid) - server
            finally:
                cleanup(client, before, prefix, args.flushall)
            variants[name].runs.append(run)
            k = run.checkpoints / 1000
            print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
                  f"{run.checkpoints / run.seconds:8,.0f} ckpt/s rss {run.rss_mb or 0:.0f} MB "
                  f"client cpu {cpu / k:.2f} s/1k server cpu {server / k:.2f} s/1k "
                  f"load {load:.1f}→{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    print_table(variants)
    base = variants["baseline"]
    ratios = [c.checkpoints / c.seconds / (b.checkpoints / b.seconds) for b, c in zip(base.runs, variants["ckpt"].runs)]
    print(f"\nper-run ratios: {', '.join(f'{r:.1f}' for r in ratios)}")


if __name__ == "__main__":
    main()
