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

``--from-redis`` measures the other direction (issue #24: migrate from Redis ≥ 10x the official
loop). STORE is loaded once into the server under the prefix ``src`` (``--source-prefix``; ``ckpt migrate``, kept for
the next run of the script; ``--flushall`` is then refused). Each run, alternating: ``ckpt migrate
'redis://…?checkpoint_prefix=src…' TARGET`` on the whole store, and the official loop
``RedisSaver.list({thread})`` for each thread (ids read from STORE, not timed) →
``SqliteSaver.put``/``put_writes`` (``--to sqlite``: a new file each run, ``PRAGMA synchronous`` as
sqlite3 leaves it), ``PostgresSaver.put``/``put_writes`` (``--to postgresql://…``: a new schema
each run, dropped after; the checkpoint without the ``pending_sends`` RedisSaver adds, which
PostgresSaver's JSONB cannot hold), ``RedisSaver`` (``--to redis://…``: a key prefix of its own each run, on
any server, the source's included) or ``MongoDBSaver`` (``--to mongodb://…``: a new database each
run), on the first ``--baseline`` checkpoints. ``--floor`` adds two read floors
to the rotation (``_read_floor``: every document read by ``JSON.MGET`` and parsed by orjson, nothing
written; ``floor-script``: the same with the documents of each call joined by the server).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import CKPT, Run, Variant, copy_loop, new_target, print_table, redis_cleanup, source_count  # noqa: E402


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
    return _run_migrate(args, total)


def _run_migrate(args: list[str], total: int) -> tuple[Run, float]:
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
    parser.add_argument("--from-redis", action="store_true", help="migrate Redis → --to (see the docstring)")
    parser.add_argument("--to", default="sqlite", help="with --from-redis: sqlite or a server URL")
    parser.add_argument("--floor", action="store_true", help="with --from-redis: also time the read floors")
    parser.add_argument(
        "--source-prefix", default="src", help="with --from-redis: the key prefix STORE is loaded under (one per store)"
    )
    args = parser.parse_args()
    if args.from_redis:
        if args.flushall:
            raise SystemExit("--from-redis keeps its source in the server: no --flushall")
        from_redis(args)
        return

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
            _print_run(n, name, run, cpu, server, load)
    _print_summary(variants)


def _print_run(n: int, name: str, run: Run, cpu: float, server: float, load: float) -> None:
    k = run.checkpoints / 1000
    print(f"run {n + 1} {name:9} {run.checkpoints:>7,} ckpts {run.seconds:8.2f} s "
          f"{run.checkpoints / run.seconds:8,.0f} ckpt/s rss {run.rss_mb or 0:.0f} MB "
          f"client cpu {cpu / k:.2f} s/1k server cpu {server / k:.2f} s/1k "
          f"load {load:.1f}→{os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip


def _print_summary(variants: dict[str, Variant]) -> None:
    """The table of medians, then ckpt's rate over the official loop's, run by run."""
    print_table(variants)
    base = variants["baseline"]
    ratios = [c.checkpoints / c.seconds / (b.checkpoints / b.seconds) for b, c in zip(base.runs, variants["ckpt"].runs)]
    print(f"\nper-run ratios: {', '.join(f'{r:.1f}' for r in ratios)}")


def from_redis(args: argparse.Namespace) -> None:
    import redis
    from langgraph.checkpoint.redis import RedisSaver

    client = redis.Redis.from_url(args.redis, socket_timeout=None, protocol=2)
    total = source_count(args.store)
    prefix = args.source_prefix  # the loaded store's key prefix (writes: PREFIX_write)
    source = f"{args.redis}?checkpoint_prefix={prefix}&checkpoint_write_prefix={prefix}_write"
    if sum(1 for _ in client.scan_iter(match=f"{prefix}:*", count=10_000)) != total:
        print(f"loading {args.store} into {source} …", flush=True)
        subprocess.run([CKPT, "migrate", f"sqlite:///{os.path.abspath(args.store)}", source, "--jobs", "2"], check=True)
    with sqlite3.connect(f"file:{args.store}?mode=ro", uri=True) as conn:
        threads = [r[0] for r in conn.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id")]
    work = tempfile.mkdtemp(prefix="ckpt-bench-from-redis-")
    names = ["baseline", "ckpt"] + (["floor", "floor-script"] if args.floor else [])
    variants = {name: Variant(name) for name in names}
    for n in range(args.runs):
        for name in names if n % 2 == 0 else names[::-1]:
            with _target(args.to, work, f"r{os.getpid()}_{n}_{name}") as (target, spec):
                load, server = os.getloadavg()[0], server_cpu(args.server_pid)
                if name == "baseline":
                    cpu = time.process_time()
                    with (
                        RedisSaver.from_conn_string(
                            args.redis, checkpoint_prefix=prefix, checkpoint_write_prefix=f"{prefix}_write"
                        ) as reader,
                        _saver(spec, args.to) as writer,
                    ):
                        drop_sends = args.to.startswith("postgres")
                        run = _loop_by_thread(reader, writer, threads, args.baseline, drop_sends=drop_sends)
                    cpu = time.process_time() - cpu
                elif name == "ckpt":
                    run, cpu = run_ckpt_from(source, target, total, args.jobs)
                else:
                    cpu = time.process_time()
                    run = _read_floor(client, prefix, total, scripted=name == "floor-script")
                    cpu = time.process_time() - cpu
                server = server_cpu(args.server_pid) - server
            variants[name].runs.append(run)
            _print_run(n, name, run, cpu, server, load)
    _print_summary(variants)


_CONCAT = """
local args = {}
for i, key in ipairs(KEYS) do args[i] = key end
args[#KEYS + 1] = '$'
local docs = redis.call('JSON.MGET', unpack(args))
for i = 1, #KEYS do docs[i] = docs[i] or 'null' end
return '[' .. table.concat(docs, ',') .. ']'
"""


def _read_floor(client: Any, prefix: str, total: int, *, scripted: bool) -> Run:
    """The least a reader does: every checkpoint and write key of the source (SCAN), every document
    read by ``JSON.MGET`` (500 keys a call, bytes replies, no response callback) and parsed by orjson;
    nothing converted or written. ``scripted``: each call's documents joined by the server into one
    reply (a script), parsed by one ``orjson.loads``, as ckpt's reader gets them."""
    import orjson

    started, docs = time.perf_counter(), 0
    for pattern in (f"{prefix}:*", f"{prefix}_write:*"):
        keys = list(client.scan_iter(match=pattern, count=10_000))
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            if scripted:
                docs += sum(1 for d in orjson.loads(client.execute_command("EVAL", _CONCAT, len(chunk), *chunk)) if d)
            else:
                docs += sum(1 for raw in client.execute_command("JSON.MGET", *chunk, "$") if raw and orjson.loads(raw))
    assert docs >= total, (docs, total)
    return Run(time.perf_counter() - started, total)


@contextmanager
def _target(to: str, work: str, name: str) -> Iterator[tuple[str, str]]:
    """(ckpt URL, the loop's target spec) of an empty target, removed after: a new SQLite file
    (``sqlite``), else ``common.new_target`` on the server ``to`` (a schema, a key prefix, a database)."""
    if to.startswith(("postgres", "redis", "mongodb")):
        with new_target(to) as found:
            yield found
        return
    path = os.path.join(work, f"{name}.db")
    try:
        yield f"sqlite:///{path}", path
    finally:
        for file in (path, path + "-wal", path + "-shm"):
            if os.path.exists(file):
                os.remove(file)


@contextmanager
def _saver(spec: str, to: str) -> Iterator[Any]:
    """The official saver on a target spec from ``_target``, set up (as bench_pg_source.py's loop)."""
    if spec.startswith("schema:"):
        from urllib.parse import quote

        from langgraph.checkpoint.postgres import PostgresSaver

        on = to + ("&" if "?" in to else "?") + "options=" + quote("-csearch_path=" + spec[7:])
        with PostgresSaver.from_conn_string(on) as saver:
            saver.setup()
            yield saver
    elif spec.startswith("redis:"):
        from langgraph.checkpoint.redis import RedisSaver

        url, prefix = spec[6:].rsplit("|", 1)
        with RedisSaver.from_conn_string(
            url, checkpoint_prefix=prefix, checkpoint_write_prefix=prefix + "_write"
        ) as rs:
            rs.setup()
            yield rs
    elif spec.startswith("mongodb:"):
        from langgraph.checkpoint.mongodb import MongoDBSaver

        url, db = spec[8:].rsplit("|", 1)
        with MongoDBSaver.from_conn_string(url, db_name=db) as saver:
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        saver = SqliteSaver(sqlite3.connect(spec, check_same_thread=False))
        saver.setup()
        try:
            yield saver
        finally:
            saver.conn.close()


def _loop_by_thread(reader: Any, writer: Any, threads: list[str], limit: int, *, drop_sends: bool = False) -> Run:
    """The official copy loop, thread by thread (as bench_pg_source.py's), on the first ``limit`` checkpoints.

    ``drop_sends`` (into PostgreSQL): RedisSaver hands each v4 checkpoint back with the Sends of its
    parent's writes in ``pending_sends``, which PostgresSaver.put stores as JSONB and cannot encode
    (``TypeError: Object of type Send is not JSON serializable``); the loop leaves the field out, as
    an app's copy loop must (the Sends still come as the parent's pending writes)."""
    import langchain_core.messages  # noqa: F401  # imported lazily by the first loads_typed; not timed

    started, done = time.perf_counter(), 0
    for thread_id in threads:
        for item in reader.list({"configurable": {"thread_id": thread_id}}):
            config = item.parent_config or {
                "configurable": {k: v for k, v in item.config["configurable"].items() if k != "checkpoint_id"}
            }
            checkpoint = item.checkpoint
            if drop_sends:
                checkpoint = {k: v for k, v in checkpoint.items() if k != "pending_sends"}
            writer.put(config, checkpoint, item.metadata, checkpoint["channel_versions"])
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in item.pending_writes or ():
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                writer.put_writes(item.config, writes, task_id)
            done += 1
            if done == limit:
                return Run(time.perf_counter() - started, done)
    return Run(time.perf_counter() - started, done)


def run_ckpt_from(source: str, target: str, total: int, jobs: int | None = None) -> tuple[Run, float]:
    """(run, client CPU seconds) of ``ckpt migrate SOURCE TARGET [--jobs N]``; checks every checkpoint was written."""
    extra = ["--jobs", str(jobs)] if jobs else []
    return _run_migrate([CKPT, "migrate", source, target, "-o", "json", *extra], total)


if __name__ == "__main__":
    main()
