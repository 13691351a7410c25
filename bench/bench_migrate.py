"""SQLite → PostgreSQL: the official-saver copy loop, ``ckpt migrate`` and a raw COPY floor, in one run.

    /work/venv/bin/python bench/make_growing_store.py 100000 bench/data/grow-100k.db
    /work/venv/bin/python bench/bench_migrate.py bench/data/grow-100k.db [--runs 3] [--baseline 5000]
        [--pg postgresql://postgres@127.0.0.1:55432/postgres] [--only baseline,floor,ckpt,...] [--batch-size 500]

Variants, run round-robin (each in a fresh schema, dropped afterwards, then ``CHECKPOINT``):

- ``baseline``: ``SqliteSaver(conn).list(None)`` → ``PostgresSaver.put(parent config, checkpoint,
  metadata, new_versions=checkpoint["channel_versions"])`` + ``put_writes`` per task, on the first
  ``--baseline`` tuples that ``list`` yields (newest first); timed after ``setup()``.
- ``ckpt``, ``ckpt -j2``, ``ckpt --batch-size 2000``: ``ckpt migrate`` as a subprocess; wall time
  and the child's own peak RSS (``os.wait4``).
- ``floor``: sqlite3 reads every row of both tables (all columns, raw bytes, table order) and
  psycopg ``COPY``s them (``FORMAT BINARY``) into bare tables of the same columns (no keys, no
  indexes) in one transaction. ``floor-text``: the same with text ``COPY`` (what ckpt uses);
  ``floor-lz4``: the same with ``SET default_toast_compression = lz4``.

Where the time of ``ckpt migrate`` goes (``--only`` these; in-process, same code as the CLI,
``server CPU`` = the PostgreSQL backend's user + sys time from /proc):

- ``read``: ``SqliteStore.records()`` only; ``read+split``: plus ``postgres._rows_for`` (the
  msgpack → JSONB + blob split) per batch of 500, nothing written.
- ``inproc``: ``transfer.copy_records`` as ``ckpt migrate`` runs it (no CLI start-up, no count).
- ``x-lazy``: ``inproc`` with ``pg_layout._split`` not building ``value_bytes`` (a third walk over
  ``channel_values``) unless a channel version is an int, the only case that uses it.
- ``x-binary``: ``inproc`` staging with ``COPY … (FORMAT BINARY)`` instead of text.
- ``x-direct``: ``inproc`` with ``COPY`` straight into the saver's tables (no temp table, no
  ``ON CONFLICT``): only valid on an empty target; prices the staging step.
- ``x-pipe``: ``inproc`` with read+split in a second thread, feeding the writer through a queue of
  4 batches (psycopg releases the GIL while PostgreSQL works, so the two overlap).
- ``x-fast``: ``inproc`` with ``fast_split``: ormsgpack decodes the checkpoint (exts kept opaque)
  and re-encodes each channel value in C; used only when re-encoding the whole checkpoint gives
  back the very bytes read (so every slice is byte-identical too), else ``_split`` as today.
- ``x-lz4``: ``inproc`` with ``SET default_toast_compression = lz4`` on the writing session (TOAST
  values of the saver's columns compressed with lz4 instead of pglz; the schema is unchanged).
- ``x-all``: ``x-fast`` + ``x-binary`` (idempotent, sequential).
- ``x-best``: ``x-all`` + ``x-lz4`` (idempotent, sequential).
- ``x-bound``: ``x-fast`` + binary ``COPY`` straight into the tables (not idempotent).

Prints one line per run and a Markdown table of medians (checkpoints/s and the two target ratios).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import queue
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock
from urllib.parse import quote

import psycopg
from psycopg import sql

PG = "postgresql://postgres@127.0.0.1:55432/postgres"
CKPT = os.path.join(os.path.dirname(sys.executable), "ckpt")
FLOOR_DDL = {  # table -> (columns, binary COPY types)
    "checkpoints": (
        "thread_id text, checkpoint_ns text, checkpoint_id text, parent_checkpoint_id text, "
        "type text, checkpoint bytea, metadata bytea",
        ["text"] * 5 + ["bytea"] * 2,
    ),
    "writes": (
        "thread_id text, checkpoint_ns text, checkpoint_id text, task_id text, task_path text, "
        "idx integer, channel text, type text, value bytea",
        ["text"] * 5 + ["int4", "text", "text", "bytea"],
    ),
}


@dataclass
class Run:
    seconds: float
    checkpoints: int
    rss_mb: float | None = None
    cpu_s: float = 0.0
    """CPU (user + sys) of the copying client process, not of the PostgreSQL server."""
    server_cpu_s: float | None = None


@dataclass
class Variant:
    name: str
    runs: list[Run] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def rate(self) -> float:
        return statistics.median(r.checkpoints / r.seconds for r in self.runs)

    @property
    def rss(self) -> float | None:
        values = [r.rss_mb for r in self.runs if r.rss_mb is not None]
        return max(values) if values else None


class Schemas:
    """Fresh uniquely named schemas; each dropped (and the cluster checkpointed) after use."""

    def __init__(self, pg: str) -> None:
        self.pg = pg
        self.admin = psycopg.connect(pg, autocommit=True, application_name="bench-admin")
        self.n = 0

    def fresh(self) -> str:
        self.n += 1
        name = f"bench_mig_{os.getpid()}_{self.n}"
        self.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name

    def count(self, schema: str, table: str) -> int:
        row = self.admin.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(*map(sql.Identifier, (schema, table))))
        return int(row.fetchone()[0])  # type: ignore[index]

    def drop(self, schema: str) -> None:
        self.admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        self.admin.execute("CHECKPOINT")  # the next run does not pay for this one's dirty pages


def with_search_path(pg: str, schema: str) -> str:
    sep = "&" if "?" in pg else "?"
    return f"{pg}{sep}options={quote(f'-csearch_path={schema}')}"


def run_baseline(db: str, pg: str, schema: str, limit: int) -> Run:
    import langchain_core.messages  # noqa: F401  # imported lazily by the first loads_typed; not timed
    from langgraph.checkpoint.postgres import PostgresSaver
    from langgraph.checkpoint.sqlite import SqliteSaver

    source = SqliteSaver(sqlite3.connect(db, check_same_thread=False))
    with PostgresSaver.from_conn_string(with_search_path(pg, schema)) as target:
        target.setup()
        assert isinstance(target.conn, psycopg.Connection)
        pid = target.conn.info.backend_pid
        started, cpu, server = time.perf_counter(), time.process_time(), backend_cpu(pid)
        done, first = 0, None
        for item in source.list(None):
            if first is None:  # list(None) sorts the whole table by checkpoint_id before the first tuple
                first = time.perf_counter() - started
            config = item.parent_config or {
                "configurable": {k: v for k, v in item.config["configurable"].items() if k != "checkpoint_id"}
            }
            target.put(config, item.checkpoint, item.metadata, item.checkpoint["channel_versions"])
            by_task: dict[str, list[tuple[str, Any]]] = {}
            for task_id, channel, value in item.pending_writes or ():
                by_task.setdefault(task_id, []).append((channel, value))
            for task_id, writes in by_task.items():
                target.put_writes(item.config, writes, task_id)
            done += 1
            if done == limit:
                break
        seconds, cpu, server = time.perf_counter() - started, time.process_time() - cpu, backend_cpu(pid) - server
    source.conn.close()
    print(f"# baseline: first tuple after {first or 0:.2f} s (SQLite's ORDER BY checkpoint_id DESC sort)")
    return Run(seconds, done, cpu_s=cpu, server_cpu_s=server)


def cluster_cpu(pg: str) -> float:
    """User + sys seconds of the whole local PostgreSQL cluster: the postmaster, its live children,
    and (``cutime``/``cstime``) every backend that has exited, e.g. the CLI's worker connections."""
    with psycopg.connect(pg, autocommit=True) as conn, open(f"/proc/{conn.info.backend_pid}/stat") as f:
        postmaster = int(f.read().rsplit(")", 1)[1].split()[1])
        others = (
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() AND application_name <> 'bench-admin'"
        )
        while conn.execute(others).fetchone()[0]:  # type: ignore[index]
            time.sleep(0.05)  # a just-closed connection's backend is still exiting
    time.sleep(0.2)  # ... and the postmaster reaps it (its CPU moves to cutime/cstime)
    with open(f"/proc/{postmaster}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total = sum(int(x) for x in fields[11:15])
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as f:
                child = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if entry.isdigit() and int(child[1]) == postmaster:
            total += int(child[11]) + int(child[12])
    return total / os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> set[int]:
    """``root`` and all its descendants (the CLI and its worker processes)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree, grew = tree | more, bool(more)
    return tree


def _rss_mb(tree: set[int]) -> float:
    pages = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/statm") as f:
                pages += int(f.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _sample_tree_rss(root: int, peak: list[float], done: threading.Event) -> None:
    """Peak of the summed RSS of the process tree: members found every 0.5 s, memory read every 0.05 s."""
    tree, found = _tree(root), time.monotonic()
    while not done.wait(0.05):
        if time.monotonic() - found > 0.5:
            tree, found = _tree(root), time.monotonic()
        peak[0] = max(peak[0], _rss_mb(tree))


def run_ckpt(db: str, pg: str, schema: str, extra: list[str]) -> Run:
    sep = "&" if "?" in pg else "?"
    cmd = [CKPT, "migrate", f"sqlite:///{os.path.abspath(db)}", f"{pg}{sep}schema={schema}", *extra]
    server = cluster_cpu(pg)
    started = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = [0.0], threading.Event()
    sampler = threading.Thread(target=_sample_tree_rss, args=(child.pid, peak, done), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(child.pid, 0)  # includes the worker processes it waited for
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    print(f"# {' '.join(extra) or 'default'}: peak RSS of the process tree (summed, every 0.05 s) {peak[0]:.0f} MB")
    server = cluster_cpu(pg) - server
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode() if child.stderr else ""
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({child.returncode}):\n{err}")
    # ru_maxrss of wait4 is the largest single process of the tree (the parent or one worker).
    return Run(seconds, -1, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, server)


def run_ckpt_in(db: str, pg: str, extra: list[str], schema: str) -> Run:
    return run_ckpt(db, pg, schema, extra)


def run_floor(db: str, pg: str, schema: str, binary: bool, lz4: bool = False) -> Run:
    server = cluster_cpu(pg)  # measured like the CLI's: the whole cluster, no connection of ours open
    started, cpu = time.perf_counter(), time.process_time()
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    with psycopg.connect(pg) as dst, dst.cursor() as cur:
        if lz4:
            cur.execute("SET default_toast_compression = lz4")
        cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        done = 0
        for table, (columns, types) in FLOOR_DDL.items():
            cur.execute(f"CREATE TABLE {table} ({columns})")
            rows = src.execute(f"SELECT * FROM {table}")
            with cur.copy(f"COPY {table} FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy:
                if binary:
                    copy.set_types(types)
                while batch := rows.fetchmany(2000):
                    for row in batch:
                        copy.write_row(row)
                    if table == "checkpoints":
                        done += len(batch)
        dst.commit()
    src.close()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(seconds, done, cpu_s=cpu, server_cpu_s=cluster_cpu(pg) - server)


def run_floor_parallel(db: str, pg: str, schema: str, jobs: int = 2) -> Run:
    """``floor`` split over ``jobs`` connections (rows by ``rowid % jobs``), one thread each: context
    for ``ckpt --jobs``, which also uses both cores; the issue's floor is the one-connection ``floor``."""
    server = cluster_cpu(pg)
    started, cpu = time.perf_counter(), time.process_time()
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        for table, (columns, _types) in FLOOR_DDL.items():
            conn.execute(f"CREATE TABLE {table} ({columns})")
    counts = [0] * jobs

    def part(k: int) -> None:
        src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        with psycopg.connect(pg) as dst, dst.cursor() as cur:
            cur.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            for table, (_columns, types) in FLOOR_DDL.items():
                rows = src.execute(f"SELECT * FROM {table} WHERE rowid % {jobs} = {k}")
                with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)
                    while batch := rows.fetchmany(2000):
                        for row in batch:
                            copy.write_row(row)
                        counts[k] += len(batch) if table == "checkpoints" else 0
            dst.commit()
        src.close()

    workers = [threading.Thread(target=part, args=(k,)) for k in range(jobs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(seconds, sum(counts), cpu_s=cpu, server_cpu_s=cluster_cpu(pg) - server)


# -- where the time goes: in-process variants of the copy -------------------------------------

FEATURES = {  # in-process variant -> changes applied to ckpt's copy
    "read": set(),
    "read+split": set(),
    "inproc": set(),
    "x-lazy": {"lazy"},
    "x-binary": {"binary"},
    "x-direct": {"direct"},
    "x-pipe": {"pipe"},
    "x-fast": {"fast"},
    "x-lz4": {"lz4"},
    "x-all": {"fast", "binary"},
    "x-best": {"fast", "binary", "lz4"},
    "x-bound": {"fast", "binary", "direct"},
}


def backend_cpu(pid: int) -> float:
    """User + sys seconds of a local PostgreSQL backend process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def lazy_split(data: bytes) -> Any:
    """``pg_layout._split`` minus the ``value_bytes`` walk, done only when a version is an int."""
    import orjson

    from ckpt.backends.core.msgpack_spans import map_entries
    from ckpt.backends.core.versions import string_versions
    from ckpt.backends.postgres import layout as lay

    fields: dict[str, Any] = {}
    inline: dict[str, Any] = {}
    blobs: list[tuple[str, str, bytes]] = []
    values_at: int | None = None
    for raw_key, start, end in map_entries(data):
        key = lay._unpack_plain(raw_key)
        if key == "channel_values":
            fields[key], values_at = inline, start
            lay._split_values(data, start, inline, blobs)
        elif key == "pending_sends":
            fields[key] = []
        else:
            fields[key] = lay._unpack_plain(data[start:end])
    if any(isinstance(v, int) for v in (fields.get("channel_versions") or {}).values()):
        spans = map_entries(data, values_at) if values_at is not None else []
        string_versions(fields, {lay._unpack_plain(k): data[s:e] for k, s, e in spans})
    versions = fields.get("channel_versions") or {}
    rows = []
    for channel, type_tag, blob in blobs:
        if channel not in versions:
            raise ValueError(f"channel {channel!r} has a value but no version")
        rows.append((channel, str(versions[channel]), type_tag, blob))
    return lay.SplitCheckpoint(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS).decode(), rows)


class _DeltaSeen(Exception):
    """A delta-channel snapshot (ext 7): left to ``_split``."""


def _keep_ext(code: int, data: bytes) -> Any:
    import ormsgpack

    if code == 7:
        raise _DeltaSeen
    return ormsgpack.Ext(code, data)


def fast_split(data: bytes) -> Any:
    """``pg_layout._split`` done by ormsgpack in C when the checkpoint re-encodes to the same bytes."""
    import orjson
    import ormsgpack

    from ckpt.backends.postgres import layout as lay

    option = ormsgpack.OPT_NON_STR_KEYS
    try:
        fields = ormsgpack.unpackb(data, ext_hook=_keep_ext, option=option)
        canonical = isinstance(fields, dict) and ormsgpack.packb(fields, option=option) == data
    except (_DeltaSeen, ormsgpack.MsgpackDecodeError, ormsgpack.MsgpackEncodeError, TypeError, ValueError):
        canonical = False
    values = fields.get("channel_values") if canonical else None
    versions = fields.get("channel_versions") if canonical else None
    if not canonical or not isinstance(values, dict) or not isinstance(versions, dict):
        return lay._split(data)
    if any(isinstance(v, int) for v in versions.values()) or any(
        isinstance(v, ormsgpack.Ext) for k, v in fields.items() if k != "channel_values"
    ):
        return lay._split(data)  # int versions, or exts where _split refuses them: the slow path decides
    inline: dict[str, Any] = {}
    blobs: list[tuple[str, str, str, bytes]] = []
    for channel, value in values.items():
        if channel not in versions and not (value is None or isinstance(value, (str, int, float, bool))):
            return lay._split(data)  # _split raises its own error for this
        if (value is None or isinstance(value, (str, int, float, bool))) and lay._json_safe(value):
            inline[channel] = value
        elif isinstance(value, bytes):
            blobs.append((channel, str(versions[channel]), "bytes", value))
        else:
            blobs.append((channel, str(versions[channel]), "msgpack", ormsgpack.packb(value, option=option)))
    fields["channel_values"] = inline
    if "pending_sends" in fields:
        fields["pending_sends"] = []
    try:
        return lay.SplitCheckpoint(orjson.dumps(fields, option=orjson.OPT_NON_STR_KEYS).decode(), blobs)
    except TypeError:  # an ext nested outside channel_values: _split refuses it with its own error
        return lay._split(data)


def direct_copy(conn: psycopg.Connection[Any], table: str, rows: list[tuple[Any, ...]], binary: bool = False) -> int:
    """``COPY`` straight into the saver's table: no stage, no conflict check (empty targets only)."""
    from psycopg.types.json import set_json_dumps

    from ckpt.backends.postgres.writes import BINARY_TYPES, COLUMNS

    columns = sql.SQL(", ").join(map(sql.Identifier, COLUMNS[table]))
    fmt = sql.SQL(" (FORMAT BINARY)" if binary else "")
    with (
        conn.cursor() as cur,
        cur.copy(sql.SQL("COPY {} ({}) FROM STDIN{}").format(sql.Identifier(table), columns, fmt)) as c,
    ):
        if binary:
            set_json_dumps(lambda text: text, conn)
            c.set_types(BINARY_TYPES[table])
        for row in rows:
            c.write_row(row)
    return len(rows)


def pipelined_copy(source: Any, target: Any, batch_size: int) -> None:
    """Read + split in a second thread; this thread only writes (what ``PostgresStore.write`` does)."""
    from ckpt.backends.core.iterate import batched
    from ckpt.backends.postgres import store as pgmod

    work: queue.Queue[Any] = queue.Queue(maxsize=4)

    def produce() -> None:
        try:
            for batch in batched(source.records(), batch_size):
                work.put(pgmod._rows_for(batch))
        finally:
            work.put(None)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    conn = target._conn
    insert = vars(pgmod)["stage_and_insert"]  # looked up now: the patched one where patched
    while (item := work.get()) is not None:
        ckpt_rows, blob_rows, write_rows = item
        with conn.transaction():
            insert(conn, "checkpoint_blobs", blob_rows)
            insert(conn, "checkpoints", ckpt_rows)
            insert(conn, "checkpoint_writes", write_rows)
    producer.join()


@contextlib.contextmanager
def patched(name: str) -> Iterator[None]:
    from ckpt.backends.postgres import layout as pg_layout
    from ckpt.backends.postgres import store as pgmod
    from ckpt.backends.postgres import writes as pg_writes

    features = FEATURES[name]
    insert = {
        frozenset({"binary"}): pg_writes.stage_and_insert,  # the prototype became the product's
        frozenset({"direct"}): direct_copy,
        frozenset({"binary", "direct"}): functools.partial(direct_copy, binary=True),
    }.get(frozenset(features & {"binary", "direct"}))
    with contextlib.ExitStack() as stack:
        if "lazy" in features:
            stack.enter_context(mock.patch.object(pg_layout, "_split", lazy_split))
        if "fast" in features:
            stack.enter_context(mock.patch.object(pg_layout, "_split", fast_split))
        if insert is not None:
            stack.enter_context(mock.patch.object(pgmod, "stage_and_insert", insert))
        yield


def run_inproc(name: str, db: str, pg: str, schema: str, batch_size: int = 500) -> Run:
    from ckpt.backends import open_store
    from ckpt.backends.ops.transfer import batched, copy_records
    from ckpt.backends.postgres import store as pgmod
    from ckpt.backends.postgres.store import PostgresStore

    started, cpu = time.perf_counter(), time.process_time()
    done, server = 0, None
    with open_store(f"sqlite:///{db}") as source, patched(name):
        if name in ("read", "read+split"):
            for batch in batched(source.records(), batch_size):
                done += len(batch)
                if name == "read+split":
                    pgmod._rows_for(batch)
        else:
            sep = "&" if "?" in pg else "?"
            with open_store(f"{pg}{sep}schema={schema}", write=True) as target:
                assert isinstance(target, PostgresStore)
                pid = target._conn.info.backend_pid
                if "lz4" in FEATURES[name]:
                    target._conn.execute("SET default_toast_compression = lz4")
                before = backend_cpu(pid)
                if "pipe" in FEATURES[name]:
                    pipelined_copy(source, target, batch_size)
                else:
                    copy_records(source, target, batch_size=batch_size)
                server = backend_cpu(pid) - before
    return Run(time.perf_counter() - started, done, cpu_s=time.process_time() - cpu, server_cpu_s=server)


def run_inproc_in(name: str, db: str, pg: str, batch_size: int, schema: str) -> Run:
    return run_inproc(name, db, pg, schema, batch_size)


def check_splits(db: str, n: int = 5000) -> None:
    """``lazy_split`` and ``fast_split`` must give exactly what ``pg_layout._split`` gives; prints µs each."""
    from ckpt.backends import open_store
    from ckpt.backends.postgres import layout as pg_layout

    with open_store(f"sqlite:///{db}") as source:
        blobs = [record.checkpoint.data for _, record in zip(range(n), source.records())]
    for data in blobs:
        assert lazy_split(data) == pg_layout._split(data) == fast_split(data)
    for name, split in (("_split", pg_layout._split), ("lazy_split", lazy_split), ("fast_split", fast_split)):
        best = min(_cpu_of(split, blobs) for _ in range(3))
        print(f"# {name}: {best / len(blobs) * 1e6:.1f} µs CPU per checkpoint (best of 3, {len(blobs)} checkpoints)")


def check_product_split(db: str, n: int) -> None:
    """The product's C fast path: how often it applies, and that it equals the span walker every time."""
    from ckpt.backends import open_store
    from ckpt.backends.postgres import layout as pg_layout

    fast = slow = 0
    with open_store(f"sqlite:///{db}") as source:
        for _, record in zip(range(n), source.records()):
            data = record.checkpoint.data
            quick = pg_layout._fast_split(data)
            if quick is None:
                slow += 1
            else:
                fast += 1
                assert quick == pg_layout._walk_split(data), record.key
    print(f"# product split: {fast:,} checkpoints by the C fast path (each equal to the span walker), {slow:,} walked")


def _cpu_of(split: Callable[[bytes], Any], blobs: list[bytes]) -> float:
    started = time.process_time()
    for data in blobs:
        split(data)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=int, default=5000, help="checkpoints the baseline loop copies")
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--batch-size", type=int, default=500, help="batch of the in-process variants (ckpt: 500)")
    parser.add_argument("--only", default="baseline,floor,floor-text,ckpt,ckpt-j2,ckpt-b2000")
    parser.add_argument("--check-split", type=int, default=0, help="first N checkpoints: fast split == walker")
    args = parser.parse_args()

    db = os.path.abspath(args.db)
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        n_writes = conn.execute("SELECT count(*) FROM writes").fetchone()[0]
        avg = conn.execute("SELECT avg(length(checkpoint)) FROM checkpoints").fetchone()[0]
    print(f"# {db}: {total:,} checkpoints (avg blob {avg:,.0f} B), {n_writes:,} writes", flush=True)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", repo, "status", "--short", "backends", "cli"], capture_output=True, text=True)
    print(f"# ckpt at {head.stdout.strip()}; uncommitted in backends/ cli/: {dirty.stdout.split()[1::2] or 'none'}")
    schemas = Schemas(args.pg)
    ckpt_variants: dict[str, list[str]] = {
        "ckpt": [],
        "ckpt-j1": ["--jobs", "1"],
        "ckpt-j2": ["--jobs", "2"],
        "ckpt-j4": ["--jobs", "4"],
        "ckpt-b2000": ["--batch-size", "2000"],
    }
    runners: dict[str, Callable[[str], Run]] = {
        "baseline": lambda s: run_baseline(db, args.pg, s, args.baseline),
        "floor": lambda s: run_floor(db, args.pg, s, binary=True),
        "floor-text": lambda s: run_floor(db, args.pg, s, binary=False),
        "floor-lz4": lambda s: run_floor(db, args.pg, s, binary=True, lz4=True),
        "floor-j2": lambda s: run_floor_parallel(db, args.pg, s),
        **{name: functools.partial(run_ckpt_in, db, args.pg, extra) for name, extra in ckpt_variants.items()},
        **{name: functools.partial(run_inproc_in, name, db, args.pg, args.batch_size) for name in FEATURES},
    }
    chosen = [v for v in args.only.split(",") if v]
    if args.check_split:
        check_product_split(db, args.check_split)
    if any(FEATURES.get(name, set()) & {"lazy", "fast"} for name in chosen):
        check_splits(db)
    variants = {name: Variant(name) for name in chosen}
    for i in range(args.runs):
        for name in chosen:
            schema = schemas.fresh()
            try:
                run = runners[name](schema)
                extra = ""
                if name not in ("read", "read+split"):
                    table = "writes" if name.startswith("floor") else "checkpoint_writes"
                    copied = schemas.count(schema, "checkpoints")
                    expected = args.baseline if name == "baseline" else total
                    if copied != min(expected, total):
                        raise SystemExit(f"{name}: {copied} checkpoints in the target, expected {expected}")
                    run.checkpoints = copied
                    extra = f", {schemas.count(schema, table):,} writes"
            finally:
                schemas.drop(schema)
            rss = f", peak RSS {run.rss_mb:.0f} MB" if run.rss_mb is not None else ""
            server = f", server CPU {run.server_cpu_s:6.2f} s" if run.server_cpu_s is not None else ""
            load = os.getloadavg()[0]
            print(f"run {i + 1} {name:11s} {run.seconds:8.2f} s  {run.checkpoints / run.seconds:9,.0f} ckpt/s  "
                  f"client CPU {run.cpu_s:6.2f} s{server}{rss}{extra}, load {load:.1f}", flush=True)  # fmt: skip
            variants[name].runs.append(run)
    report(variants)


def report(variants: dict[str, Variant]) -> None:
    base, floor = variants.get("baseline"), variants.get("floor")
    print("\n| variant | checkpoints | median s | checkpoints/s | x baseline | time / floor | client CPU s "
          "| server CPU s | peak RSS MB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants.values():
        vs_base = f"{v.rate / base.rate:.1f}" if base else "-"
        vs_floor = f"{v.median_s / floor.median_s:.2f}" if floor and v is not base else "-"
        rss = f"{v.rss:.0f}" if v.rss is not None else "-"
        n = v.runs[0].checkpoints
        cpu = statistics.median(r.cpu_s for r in v.runs)
        servers = [r.server_cpu_s for r in v.runs if r.server_cpu_s is not None]
        server = f"{statistics.median(servers):.1f}" if servers else "-"
        print(f"| {v.name} | {n:,} | {v.median_s:.2f} | {v.rate:,.0f} | {vs_base} | {vs_floor} | {cpu:.1f} | {server} "
              f"| {rss} |")  # fmt: skip


if __name__ == "__main__":
    main()
