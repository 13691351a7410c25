"""``ckpt doctor``, ``size``, ``export`` and ``import`` against plain-Python floors (issue #24).

    flock /tmp/ckpt-bench.lock .venv/bin/python bench/bench_doctor_size.py bench/data/100k.db \
        [--runs 5] [--only doctor,size,export,import] [--work-dir /tmp] [--json] [--ckpt-before CMD]

Every variant is a fresh process (``ckpt …`` or ``python -c FLOOR``); the variants take turns,
``--runs`` rounds, every other round in reverse order, and the table reports medians of wall
time and of the child's peak RSS (``os.wait4``), with each ckpt command's ratio to its floor.
The floors use the same driver (``sqlite3``, ``orjson``, ``ormsgpack``, ``gzip``) doing the
least work with the same answer:

* ``read``: the driver's two ordered queries (checkpoints, writes) with every blob fetched;
* ``read+decode``: the same, plus one C unpack of every msgpack payload and ``orjson.loads`` of
  every metadata (``doctor``'s and ``size``'s floor: both must look into every payload);
* ``export``: the same rows as the lines ``ckpt export`` writes (base64, ``orjson.dumps``), into a
  plain file or a ``GzipFile`` at level 6 (the level ckpt uses);
* ``import``: one pass over the ``.jsonl`` (``orjson.loads``, base64) into a new SQLite file with
  the saver's schema, 2,000 checkpoints a transaction (ckpt reads the file twice: it checks the
  whole file before writing anything).

``--ckpt-before CMD`` adds each ckpt command run by CMD (a wrapper around a frozen copy of older
code, bench/README.md "older code") as ``before …``, in the same rounds, with its ratio to the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
CKPT = os.path.join(BIN, "ckpt")

_READ = """
import sqlite3, sys
conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
K = "thread_id, checkpoint_ns, checkpoint_id"
CK = f"SELECT {K}, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints ORDER BY {K}"
WR = f"SELECT {K}, task_id, task_path, idx, channel, type, value FROM writes ORDER BY {K}, task_id, idx"
"""
FLOOR_READ = (
    _READ
    + """
n = 0
for row in conn.execute(CK):
    n += len(row[5])
for row in conn.execute(WR):
    n += len(row[8])
print(n)
"""
)
FLOOR_DECODE = (
    _READ
    + """
import orjson, ormsgpack
O = ormsgpack.OPT_NON_STR_KEYS
unpack, Ext, loads = ormsgpack.unpackb, ormsgpack.Ext, orjson.loads
n = 0
for row in conn.execute(CK):
    unpack(row[5], ext_hook=Ext, option=O)
    loads(row[6])
    n += 1
for row in conn.execute(WR):
    if row[7] == "msgpack":
        unpack(row[8], ext_hook=Ext, option=O)
print(n)
"""
)
FLOOR_EXPORT = (
    _READ
    + """
import base64, gzip, itertools, orjson
out = sys.argv[2]
f = gzip.GzipFile(out, "wb", compresslevel=6, mtime=0) if out.endswith(".gz") else open(out, "wb")
b64 = lambda b: base64.b64encode(b).decode("ascii")
writes = itertools.groupby(conn.execute(WR), key=lambda w: w[:3])
pending = next(writes, None)
f.write(orjson.dumps({"format": "ckpt/jsonl", "version": 1}) + b"\\n")
for row in conn.execute(CK):
    ws = []
    while pending is not None and pending[0] < row[:3]:
        pending = next(writes, None)
    if pending is not None and pending[0] == row[:3]:
        ws = [{"task_id": w[3], "task_path": w[4], "idx": w[5], "channel": w[6],
               "value": {"type": w[7], "data": b64(w[8])}} for w in pending[1]]
        pending = next(writes, None)
    f.write(orjson.dumps({"thread_id": row[0], "checkpoint_ns": row[1], "checkpoint_id": row[2],
        "parent_checkpoint_id": row[3], "checkpoint": {"type": row[4], "data": b64(row[5])},
        "metadata": {"type": "json", "data": b64(row[6])}, "writes": ws}) + b"\\n")
f.close()
"""
)
FLOOR_IMPORT = """
import base64, sqlite3, sys, orjson
from ckpt.backends.sqlite.layout import SCHEMA_3_1_2 as SCHEMA
conn = sqlite3.connect(sys.argv[2], isolation_level=None)
conn.execute("PRAGMA journal_mode=WAL")
conn.executescript(SCHEMA)
d = lambda p: base64.b64decode(p["data"], validate=True)
CK = "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
WR = "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)"
WR += " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
def flush(cks, wrs):
    conn.execute("BEGIN")
    conn.executemany(CK, cks)
    conn.executemany(WR, wrs)
    conn.execute("COMMIT")
cks, wrs = [], []
with open(sys.argv[1], "rb") as f:
    next(f)
    for line in f:
        o = orjson.loads(line)
        key = (o["thread_id"], o["checkpoint_ns"], o["checkpoint_id"])
        cks.append((*key, o["parent_checkpoint_id"], o["checkpoint"]["type"], d(o["checkpoint"]), d(o["metadata"])))
        for w in o["writes"]:
            wrs.append((*key, w["task_id"], w["task_path"], w["idx"], w["channel"], w["value"]["type"], d(w["value"])))
        if len(cks) == 2000:
            flush(cks, wrs)
            cks, wrs = [], []
flush(cks, wrs)
"""


def run_once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one child; raises if it fails."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        ok = (0, 1) if "doctor" in args else (0,)  # doctor exits 1 on findings; 1 is any other failure
        if os.waitstatus_to_exitcode(status) not in ok:
            err.seek(0)
            raise RuntimeError(f"{' '.join(args)} failed: {err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def variants(db: str, work: str, only: set[str], before: str | None = None) -> dict[str, tuple[list[str], str | None]]:
    """name → (command, floor's name); a floor's own entry has ``None``."""
    url = "sqlite:///" + os.path.abspath(db)
    py = [sys.executable, "-c"]
    found: dict[str, tuple[list[str], str | None]] = {}
    if only & {"doctor", "size"}:
        found["floor read"] = ([*py, FLOOR_READ, db], None)
        found["floor read+decode"] = ([*py, FLOOR_DECODE, db], None)
    if "doctor" in only:
        found["ckpt doctor"] = ([CKPT, "doctor", url, "-o", "json"], "floor read+decode")
    if "size" in only:
        found["ckpt size"] = ([CKPT, "size", url, "-o", "json"], "floor read+decode")
    if "export" in only:
        for suffix in (".jsonl", ".jsonl.gz"):
            found[f"floor export {suffix}"] = ([*py, FLOOR_EXPORT, db, f"{work}/floor{suffix}"], None)
            found[f"ckpt export {suffix}"] = ([CKPT, "export", url, f"{work}/ckpt{suffix}"], f"floor export {suffix}")
    if "import" in only:
        source = f"{work}/import-source.jsonl"
        found["floor import"] = ([*py, FLOOR_IMPORT, source, f"{work}/floor-import.db"], None)
        found["ckpt import"] = ([CKPT, "import", source, f"sqlite:///{work}/ckpt-import.db"], "floor import")
    if not before:
        return found
    paired: dict[str, tuple[list[str], str | None]] = {}
    for name, (cmd, floor) in found.items():  # each "before" right after its ckpt: the two alternate
        paired[name] = (cmd, floor)
        if name.startswith("ckpt "):
            paired["before " + name[5:]] = ([before, *cmd[1:]], floor)
    return paired


def _clean(work: str) -> None:
    """Outputs of the previous run: each export and import starts from nothing."""
    for name in os.listdir(work):
        if name != "import-source.jsonl":
            os.remove(os.path.join(work, name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("db")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="doctor,size,export,import")
    parser.add_argument("--work-dir", default=None, help="scratch directory (default: a new one under /tmp)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--ckpt-before", default=None, help="a wrapper running older code (see the docstring)")
    args = parser.parse_args()
    only = set(args.only.split(","))
    work = args.work_dir or tempfile.mkdtemp(prefix="ckpt-bench-doctor-")
    os.makedirs(work, exist_ok=True)
    if "import" in only and not os.path.exists(f"{work}/import-source.jsonl"):
        run_once([CKPT, "export", "sqlite:///" + os.path.abspath(args.db), f"{work}/import-source.jsonl"])
    found = variants(args.db, work, only, args.ckpt_before)
    walls: dict[str, list[float]] = {name: [] for name in found}
    rss: dict[str, list[float]] = {name: [] for name in found}
    for n in range(args.runs):
        order = list(found) if n % 2 == 0 else list(found)[::-1]  # no variant always runs first (or after another)
        for name in order:
            cmd = found[name][0]
            _clean(work)
            wall, peak = run_once(cmd)
            walls[name].append(wall)
            rss[name].append(peak)
    _clean(work)
    rows = []
    for name, (_cmd, floor) in found.items():
        median = statistics.median(walls[name])
        ratio = median / statistics.median(walls[floor]) if floor else None
        rows.append(
            {
                "variant": name,
                "median_s": round(median, 2),
                "floor": floor,
                "ratio": round(ratio, 2) if ratio else None,
                "peak_rss_mib": round(statistics.median(rss[name]), 1),
                "runs_s": [round(w, 2) for w in walls[name]],
            }
        )
    if args.json:
        print(json.dumps({"db": args.db, "runs": args.runs, "load": os.getloadavg(), "rows": rows}))
        return
    print(f"{args.db}: {args.runs} runs, medians; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'variant':<24} {'median':>8} {'ratio':>7}  {'peak RSS':>9}  vs            runs")
    for row in rows:
        shown = f"{row['ratio']:.2f}x" if row["ratio"] else ""
        print(
            f"{row['variant']:<24} {row['median_s']:>7.2f}s {shown:>7}  {row['peak_rss_mib']:>6.1f} MiB"
            f"  {row['floor'] or '':<18} {row['runs_s']}"
        )


if __name__ == "__main__":
    main()
