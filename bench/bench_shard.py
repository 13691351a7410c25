"""Issue #23: ``ckpt migrate --shard K/N`` SQLite → PostgreSQL, against one unsharded ``--jobs 2`` run.

    .venv/bin/python bench/make_store.py 1000000 bench/data/1m.db
    .venv/bin/python bench/bench_shard.py bench/data/1m.db --pg "$CKPT_TEST_POSTGRES_URL"
        [--rounds 1] [--first a|b] [--shards 4] [--parallel 2] [--linear 1,2,4,8] [--linear-rounds 1]
        [--only ab,linear,split,pod] [--pod "4:--jobs 2;4:--jobs 2 --verify"] [--json out.json]

Every ckpt run writes into a fresh schema ``bench_shard_<pid>_<n>`` of the server at ``--pg``,
dropped afterwards (then ``CHECKPOINT``, so the next run does not pay for this one's dirty pages).

- ``ab`` (the issue's comparison; the two take turns, round after round):
  (a) ``unsharded``: one ``ckpt migrate SRC PG --jobs 2`` into an empty schema.
  (b) ``sharded``: ``--shard K/4 --jobs 1 --report r-{shard}.json`` for K = 0..3 into one empty
  schema, run by a **pool** of ``--parallel`` (2) processes: the next shard starts as soon as one
  ends, as in a Kubernetes Indexed Job with ``parallelism: 2``. Wall time of the whole pool.
  Afterwards ``ckpt report merge`` of the four reports must exit 0 (complete, every verdict ok),
  and the result is checked against (a)'s: the counts of ``checkpoints``, ``checkpoint_writes``
  and ``checkpoint_blobs``, and an order-independent sum of the MD5 of every row (all columns as
  text) of each table, must be equal; ``ckpt migrate SRC B --dry-run -o json`` must find nothing to
  copy. (``--verify`` is not used: it reads both stores in full, ~70 s per 100k checkpoints.)
- ``linear``: shard 0 of N alone (``--shard 0/N --jobs 1``) into an empty schema, for each N of
  ``--linear``: seconds, and seconds × N (constant if the time grows linearly with the share 1/N).
- ``pod``: shard 0 of N alone as a pod of ``docs/k8s/migrate-indexed-job.yaml`` runs it, for each
  ``N:args`` of ``--pod`` (default ``--jobs 2``, then ``--jobs 2 --verify``): what a pod needs.
- ``split``: what choosing a shard's threads costs, whatever its share: the SQLite queries with the
  ``ckpt_shard`` UDF that each shard runs (``count(*)`` of its checkpoints and of its writes, with
  the UDF registered as the driver registers it), the same without the UDF (the whole table), and
  ``ckpt migrate --shard 0/N --dry-run`` into an empty schema (the CLI's whole plan for a shard).

For each ckpt process: wall seconds, its CPU (user + sys of it and its workers, ``os.wait4``), the
peak RSS of its process tree (summed, sampled every 0.05 s: what a pod's memory limit must hold),
and its largest single process (``ru_maxrss``). For each phase: the PostgreSQL cluster's CPU (all
backends, including those that exited). ``/proc/loadavg`` is printed at the start and end of each
measurement. Prints a Markdown summary; ``--json`` saves every number.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_migrate import _sample_tree_rss  # noqa: E402  # the process-tree RSS sampler
from common import CKPT  # noqa: E402

TABLES = ("checkpoints", "checkpoint_writes", "checkpoint_blobs")


def load() -> str:
    """The 1-, 5- and 15-minute load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


@dataclass
class Proc:
    """One ckpt process: what a pod running it would need."""

    name: str
    seconds: float = 0.0
    started_at: float = 0.0
    """Seconds after its phase began."""
    cpu_s: float = 0.0
    """User + sys of the process and the workers it waited for."""
    tree_rss_mb: float = 0.0
    """Peak of the summed RSS of the process tree (sampled)."""
    max_rss_mb: float = 0.0
    """``ru_maxrss``: the largest single process of the tree."""
    checkpoints: int = 0
    writes: int = 0


@dataclass
class Phase:
    """A measured phase: one or more ckpt processes, the server's CPU and the load around it."""

    name: str
    seconds: float = 0.0
    server_cpu_s: float = 0.0
    load_start: str = ""
    load_end: str = ""
    procs: list[Proc] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


class Server:
    """The PostgreSQL server at ``pg``: fresh schemas, their contents, the cluster's CPU."""

    def __init__(self, pg: str) -> None:
        self.pg = pg
        self.admin = psycopg.connect(pg, autocommit=True, application_name="bench-shard-admin")
        self.n = 0
        pid = self.admin.info.backend_pid
        with open(f"/proc/{pid}/stat") as f:
            self.postmaster = int(f.read().rsplit(")", 1)[1].split()[1])

    def url(self, schema: str) -> str:
        return f"{self.pg}{'&' if '?' in self.pg else '?'}schema={quote(schema)}"

    def fresh(self) -> str:
        self.n += 1
        name = f"bench_shard_{os.getpid()}_{self.n}"
        self.admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        return name

    def drop(self, schema: str) -> None:
        self.admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
        self.admin.execute("CHECKPOINT")

    def cpu(self) -> float:
        """User + sys seconds of the cluster: the postmaster, its live children, and (its ``cutime``,
        ``cstime``) every backend that has exited. Waits up to 10 s for other sessions' backends
        to exit (a just-closed connection's backend is still exiting), then reads what there is."""
        others = (
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
        deadline = time.monotonic() + 10
        while self.admin.execute(others).fetchone()[0] and time.monotonic() < deadline:  # type: ignore[index]
            time.sleep(0.05)
        time.sleep(0.2)  # ... and the postmaster reaps it
        with open(f"/proc/{self.postmaster}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total = sum(int(x) for x in fields[11:15])
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    child = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(child[1]) == self.postmaster:
                total += int(child[11]) + int(child[12])
        return total / os.sysconf("SC_CLK_TCK")

    def digest(self, schema: str) -> dict[str, tuple[int, int]]:
        """Per table: (rows, the sum of the first 60 bits of each row's MD5 over all its columns as
        text), which is independent of the row order and of the physical layout."""
        out: dict[str, tuple[int, int]] = {}
        for table in TABLES:
            query = sql.SQL(
                "SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0) "
                "FROM {}.{} AS t"
            ).format(sql.Identifier(schema), sql.Identifier(table))
            rows, total = self.admin.execute(query).fetchone()  # type: ignore[misc]
            out[table] = (int(rows), int(total))
        return out


class Running:
    """A ckpt process started now: its tree's RSS sampled until it ends."""

    def __init__(self, name: str, args: list[str], phase_start: float) -> None:
        self.proc = Proc(name, started_at=time.perf_counter() - phase_start)
        self.err = tempfile.TemporaryFile()  # noqa: SIM115  # closed by finish()
        self.args = args
        self.started = time.perf_counter()
        self.child = subprocess.Popen([CKPT, *args], stdout=subprocess.DEVNULL, stderr=self.err)
        self.peak, self.done = [0.0], threading.Event()
        self.sampler = threading.Thread(target=_sample_tree_rss, args=(self.child.pid, self.peak, self.done))
        self.sampler.start()

    def finish(self, status: int, usage: Any) -> Proc:
        self.proc.seconds = time.perf_counter() - self.started
        self.done.set()
        self.sampler.join()
        self.proc.tree_rss_mb = self.peak[0]
        self.proc.max_rss_mb = usage.ru_maxrss / 1024
        self.proc.cpu_s = usage.ru_utime + usage.ru_stime
        code = os.waitstatus_to_exitcode(status)
        self.err.seek(0)
        err = self.err.read().decode()
        self.err.close()
        if code != 0:
            raise SystemExit(f"ckpt {' '.join(self.args)} failed ({code}):\n{err[-3000:]}")
        return self.proc


def run_pool(jobs: list[tuple[str, list[str]]], parallel: int) -> tuple[float, list[Proc]]:
    """Run ``jobs`` (name, ckpt args), at most ``parallel`` at a time, starting the next as soon as
    one ends; return the wall time of the whole and each process's figures, in the order given."""
    start = time.perf_counter()
    waiting = list(jobs)
    running: dict[int, Running] = {}
    done: dict[str, Proc] = {}
    while waiting or running:
        while waiting and len(running) < parallel:
            name, args = waiting.pop(0)
            r = Running(name, args, start)
            running[r.child.pid] = r
        pid, status, usage = os.wait4(-1, 0)
        if pid in running:
            r = running.pop(pid)
            done[r.proc.name] = r.finish(status, usage)
    return time.perf_counter() - start, [done[name] for name, _ in jobs]


def migrate_args(src: str, target: str, *extra: str) -> list[str]:
    return ["migrate", f"sqlite:///{os.path.abspath(src)}", target, *extra]


def read_report(path: str, proc: Proc) -> None:
    with open(path) as f:
        body = json.load(f)
    body = body.get("report", body)
    proc.checkpoints = int(body.get("checkpoints_written", 0))
    proc.writes = int(body.get("writes_written", 0))


def phase_unsharded(server: Server, src: str, jobs: int) -> tuple[Phase, str]:
    """(a): one unsharded run; the schema is kept for (b)'s comparison (the caller drops it)."""
    schema = server.fresh()
    phase = Phase(f"unsharded --jobs {jobs}", load_start=load())
    cpu = server.cpu()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r.json")
        phase.seconds, (proc,) = run_pool(
            [("unsharded", migrate_args(src, server.url(schema), "--jobs", str(jobs), "--report", report))], 1
        )
        read_report(report, proc)
    phase.server_cpu_s = server.cpu() - cpu
    phase.load_end = load()
    phase.procs.append(proc)
    return phase, schema


def phase_sharded(server: Server, src: str, shards: int, parallel: int) -> tuple[Phase, str]:
    """(b): every shard, ``parallel`` at a time, into one schema; merged reports checked."""
    schema = server.fresh()
    phase = Phase(f"{shards} shards, pool of {parallel}", load_start=load())
    cpu = server.cpu()
    with tempfile.TemporaryDirectory() as tmp:
        pattern = os.path.join(tmp, "r-{shard}.json")
        jobs = [
            (f"shard {k}/{shards}", migrate_args(src, server.url(schema), "--shard", f"{k}/{shards}", "--jobs", "1",
                                                  "--report", pattern))
            for k in range(shards)
        ]  # fmt: skip
        phase.seconds, procs = run_pool(jobs, parallel)
        phase.server_cpu_s = server.cpu() - cpu
        phase.load_end = load()
        for k, proc in enumerate(procs):
            read_report(pattern.replace("{shard}", f"{k}-of-{shards}"), proc)
        files = sorted(os.path.join(tmp, name) for name in os.listdir(tmp))
        merged = subprocess.run([CKPT, "report", "merge", *files, "-o", "json"], capture_output=True, text=True)
        phase.extra["merge_exit"] = merged.returncode
        phase.extra["merge"] = json.loads(merged.stdout) if merged.stdout.strip() else merged.stderr
    phase.procs.extend(procs)
    return phase, schema


def check_same(server: Server, src: str, a: str, b: str) -> dict[str, Any]:
    """(b)'s target against (a)'s: rows and row digests of each table, and a dry run finding nothing."""
    started = time.perf_counter()
    da, db = server.digest(a), server.digest(b)
    digest_s = time.perf_counter() - started
    started = time.perf_counter()
    dry = subprocess.run([CKPT, *migrate_args(src, server.url(b), "--dry-run", "-o", "json")],
                         capture_output=True, text=True)  # fmt: skip
    plan = json.loads(dry.stdout) if dry.returncode == 0 else {"error": dry.stderr[-2000:]}
    return {
        "unsharded": {t: list(v) for t, v in da.items()},
        "sharded": {t: list(v) for t, v in db.items()},
        "equal": da == db,
        "digest_s": round(digest_s, 2),
        "dry_run": plan,
        "dry_run_s": round(time.perf_counter() - started, 2),
    }


def phase_linear(server: Server, src: str, n: int) -> Phase:
    """Shard 0 of N alone, ``--jobs 1``: the time a shard takes for its share 1/N."""
    return _one_shard(server, src, n, f"shard 0/{n} alone", ["--jobs", "1"])


def phase_pod(server: Server, src: str, n: int, extra: list[str]) -> Phase:
    """Shard 0 of N alone as a pod of docs/k8s/migrate-indexed-job.yaml runs it (``extra``: e.g.
    ``--jobs 2 --verify``): its wall time, CPU and the peak RSS of its process tree."""
    return _one_shard(server, src, n, f"pod: shard 0/{n} {' '.join(extra)}", extra)


def _one_shard(server: Server, src: str, n: int, name: str, extra: list[str]) -> Phase:
    schema = server.fresh()
    phase = Phase(name, load_start=load())
    cpu = server.cpu()
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "r.json")
        args = migrate_args(src, server.url(schema), "--shard", f"0/{n}", *extra, "--report", report)
        phase.seconds, (proc,) = run_pool([(f"shard 0/{n}", args)], 1)
        read_report(report, proc)
    phase.server_cpu_s = server.cpu() - cpu
    phase.load_end = load()
    phase.procs.append(proc)
    phase.extra["n"] = n
    server.drop(schema)
    return phase


def timed(conn: sqlite3.Connection, query: str, params: tuple[Any, ...] = ()) -> tuple[float, int]:
    started = time.perf_counter()
    value = int(conn.execute(query, params).fetchone()[0])
    return time.perf_counter() - started, value


def split_cost(server: Server, src: str, counts: list[int], repeat: int, dry_repeat: int) -> dict[str, Any]:
    """What picking shard 0 of N costs, per query, median of ``repeat`` (warm page cache)."""
    from ckpt.backends.core.shards import shard_of

    conn = sqlite3.connect(f"file:{os.path.abspath(src)}?mode=ro", uri=True)
    conn.create_function("ckpt_shard", 2, shard_of, deterministic=True)  # as backends/sqlite/connect.py
    out: dict[str, Any] = {"load_start": load()}
    for table in ("checkpoints", "writes"):
        runs = [timed(conn, f"SELECT count(*) FROM {table}") for _ in range(repeat)]
        out[f"{table}: count(*), no filter"] = (statistics.median(s for s, _ in runs), runs[0][1])
    for n in counts:
        if n == 1:
            continue
        for table in ("checkpoints", "writes"):
            q = f"SELECT count(*) FROM {table} WHERE ckpt_shard(thread_id, ?) = 0"
            runs = [timed(conn, q, (n,)) for _ in range(repeat)]
            out[f"{table}: count(*) WHERE ckpt_shard(thread_id, {n}) = 0"] = (
                statistics.median(s for s, _ in runs), runs[0][1])  # fmt: skip
    # the alternative of docs/research-23.md §2: distinct ids from the index, hashed in Python
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        ids = [t for (t,) in conn.execute("SELECT DISTINCT thread_id FROM checkpoints") if shard_of(t, 4) == 0]
        runs.append((time.perf_counter() - started, len(ids)))
    out["checkpoints: DISTINCT thread_id, md5 in Python, shard 0 of 4 kept"] = (
        statistics.median(s for s, _ in runs), runs[0][1])  # fmt: skip
    conn.close()
    schema = server.fresh()
    for n in counts:
        args = migrate_args(src, server.url(schema), "--dry-run", "-o", "json") + (
            ["--shard", f"0/{n}"] if n > 1 else [])  # fmt: skip
        times: list[float] = []
        for _ in range(dry_repeat):
            seconds, (proc,) = run_pool([(f"dry-run 0/{n}", args)], 1)
            times.append(seconds)
        label = f"--shard 0/{n} " if n > 1 else ""
        out[f"ckpt migrate {label}--dry-run (empty target)"] = (statistics.median(times), proc.tree_rss_mb)
    server.drop(schema)
    out["load_end"] = load()
    return out


def show(phase: Phase) -> None:
    print(f"## {phase.name}: {phase.seconds:.1f} s, server CPU {phase.server_cpu_s:.1f} s, "
          f"load {phase.load_start} -> {phase.load_end}", flush=True)  # fmt: skip
    for p in phase.procs:
        print(f"   {p.name:14s} start +{p.started_at:6.1f} s  {p.seconds:7.1f} s  cpu {p.cpu_s:6.1f} s "
              f"({p.cpu_s / p.seconds:.2f} cores)  tree RSS {p.tree_rss_mb:5.0f} MB  max proc {p.max_rss_mb:5.0f} MB  "
              f"{p.checkpoints:,} checkpoints, {p.writes:,} writes", flush=True)  # fmt: skip
    for key, value in phase.extra.items():
        print(f"   {key}: {json.dumps(value)[:600]}", flush=True)


def summary(ab: list[tuple[Phase, Phase]], linear: list[Phase], split: dict[str, Any] | None) -> None:
    if ab:
        a = statistics.median(x.seconds for x, _ in ab)
        b = statistics.median(y.seconds for _, y in ab)
        print("\n| run | wall s (each round) | median s | x unsharded | server CPU s | peak tree RSS MB per process |")
        print("|---|---|---:|---:|---:|---:|")
        for label, phases, med in (
            ("unsharded --jobs 2", [x for x, _ in ab], a),
            (ab[0][1].name, [y for _, y in ab], b),
        ):
            rss = max(p.tree_rss_mb for ph in phases for p in ph.procs)
            print(f"| {label} | {', '.join(f'{ph.seconds:.1f}' for ph in phases)} | {med:.1f} | {med / a:.3f} | "
                  f"{statistics.median(ph.server_cpu_s for ph in phases):.1f} | {rss:.0f} |")  # fmt: skip
        verdict = "met" if b <= 1.2 * a else "NOT met"
        print(f"\nsharded / unsharded = {b / a:.3f} (target <= 1.2: {verdict})")
    if linear:
        by_n: dict[int, list[Phase]] = {}
        for ph in linear:
            by_n.setdefault(int(ph.extra["n"]), []).append(ph)
        print("\n| N | share | checkpoints | runs s | median s | s x N | cpu s | cores | tree RSS MB |")
        print("|---:|---:|---:|---|---:|---:|---:|---:|---:|")
        for n, phases in sorted(by_n.items()):
            med = statistics.median(ph.seconds for ph in phases)
            p = phases[0].procs[0]
            cpu = statistics.median(ph.procs[0].cpu_s for ph in phases)
            print(f"| {n} | 1/{n} | {p.checkpoints:,} | {', '.join(f'{ph.seconds:.1f}' for ph in phases)} | "
                  f"{med:.1f} | {med * n:.1f} | {cpu:.1f} | {cpu / med:.2f} | "
                  f"{max(ph.procs[0].tree_rss_mb for ph in phases):.0f} |")  # fmt: skip
    if split:
        print("\n| split step | median s | rows / RSS MB |")
        print("|---|---:|---:|")
        for key, value in split.items():
            if isinstance(value, tuple):
                print(f"| {key} | {value[0]:.3f} | {value[1]:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db", help="SQLite store (bench/data/1m.db)")
    parser.add_argument("--pg", default=os.environ.get("CKPT_TEST_POSTGRES_URL"))
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (a) and (b), alternating")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=2, help="shards running at a time (the pool)")
    parser.add_argument("--jobs", type=int, default=2, help="--jobs of the unsharded run")
    parser.add_argument("--linear", default="1,2,4,8", help="N for which shard 0/N runs alone")
    parser.add_argument("--linear-rounds", type=int, default=1)
    parser.add_argument("--split-repeat", type=int, default=3, help="runs of each split query")
    parser.add_argument("--dry-run-repeat", type=int, default=1, help="runs of each split dry run")
    parser.add_argument("--first", choices=["a", "b"], default="a", help="which of (a), (b) starts round 1")
    parser.add_argument("--pod", default="4:--jobs 2;4:--jobs 2 --verify", help="N:args;... for --only pod")
    parser.add_argument("--only", default="ab,linear,split", help="of ab, linear, split, pod")
    parser.add_argument("--json", help="write every number here")
    args = parser.parse_args()
    if not args.pg:
        raise SystemExit("--pg or CKPT_TEST_POSTGRES_URL is needed")
    only = set(args.only.split(","))
    counts = [int(n) for n in args.linear.split(",") if n]
    server = Server(args.pg)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "backends", "cli"], capture_output=True,
                           text=True).stdout.strip()  # fmt: skip
    print(f"# {args.db}, commit {commit}{' (backends/ or cli/ modified)' if dirty else ''}, "
          f"{os.cpu_count()} cores, load {load()}", flush=True)  # fmt: skip
    with open(args.db, "rb") as f:  # warm the page cache, so the first run does not pay for it
        while f.read(1 << 24):
            pass
    ab: list[tuple[Phase, Phase]] = []
    linear: list[Phase] = []
    split: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = []
    if "split" in only:
        split = split_cost(server, args.db, counts, args.split_repeat, args.dry_run_repeat)
        print(f"## split: {json.dumps(split)}", flush=True)
    for i in range(max(args.rounds, args.linear_rounds)):
        if "ab" in only and i < args.rounds:
            order = ["a", "b"] if (i % 2 == 0) == (args.first == "a") else ["b", "a"]
            got: dict[str, tuple[Phase, str]] = {}
            for which in order:
                if which == "a":
                    got["a"] = phase_unsharded(server, args.db, args.jobs)
                else:
                    got["b"] = phase_sharded(server, args.db, args.shards, args.parallel)
                show(got[which][0])
            check = check_same(server, args.db, got["a"][1], got["b"][1])
            checks.append(check)
            print(f"## check round {i + 1}: {json.dumps(check)}", flush=True)
            server.drop(got["a"][1])
            server.drop(got["b"][1])
            ab.append((got["a"][0], got["b"][0]))
        if "linear" in only and i < args.linear_rounds:
            for n in counts if i % 2 == 0 else list(reversed(counts)):
                linear.append(phase_linear(server, args.db, n))
                show(linear[-1])
    pods: list[Phase] = []
    if "pod" in only:
        for item in args.pod.split(";"):
            n, _, extra = item.partition(":")
            pods.append(phase_pod(server, args.db, int(n), extra.split()))
            show(pods[-1])
    summary(ab, linear, split)
    print(f"# load at the end {load()}")
    if args.json:
        body = {
            "db": args.db,
            "commit": commit,
            "ab": [[asdict(a), asdict(b)] for a, b in ab],
            "checks": checks,
            "linear": [asdict(p) for p in linear],
            "split": split,
            "pods": [asdict(p) for p in pods],
        }
        with open(args.json, "w") as f:
            json.dump(body, f, indent=1)


if __name__ == "__main__":
    main()
