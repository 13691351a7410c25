"""Two versions of the PostgreSQL prune's batch statement, batch by batch on cold pages.

    /work/venv/bin/python bench/prune_batch_ab.py --pg URL [--schema prune_a] --variant FILE [--base FILE]
                                                  [--size 5000] [--offset 0]

On a fresh clone (``bench_prune.py``'s ``prune_a``), runs one batch (``--size`` checkpoints, cut as
a run cuts them) at each of 29 regions of the thread ids (``XXoo0000`` for XX = 02, 0b, …, oo =
``--offset`` in hex), alternating the two statements (base, variant, variant, base, …), each in a
transaction rolled back. Every batch meets its pages for the first time, as a run does; pass a new
``--offset`` (0, 64, 128, 192, 32, …) for each comparison on the same clone. ``--base`` defaults
to the statement in ``ckpt.backends.postgres.prune.batches``; a variant is that text, edited.
Prints median and mean milliseconds per batch (bench/results/prune.md, session 5).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from urllib.parse import quote


def main() -> None:
    import psycopg

    from ckpt.backends.ops.retention import Policy
    from ckpt.backends.postgres.prune import rules as pg_prune
    from ckpt.backends.postgres.prune.batches import _BATCH_SESSION, BATCH, _batch_end

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True)
    parser.add_argument("--schema", default="prune_a")
    parser.add_argument("--variant", required=True)
    parser.add_argument("--base")
    parser.add_argument("--size", type=int, default=5000)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    separator = "&" if "?" in args.pg else "?"
    conn = psycopg.connect(f"{args.pg}{separator}options={quote(f'-csearch_path={args.schema}')}", autocommit=True)
    params = {**pg_prune.bounds(Policy(keep_last=5, min_idle=0.0), time.time()), "from": None, "to": None}
    statements = {
        "base": Path(args.base).read_text() if args.base else BATCH,
        "variant": Path(args.variant).read_text(),
    }
    times: dict[str, list[float]] = {name: [] for name in statements}
    for n, start in enumerate(f"{i:02x}{args.offset:02x}0000" for i in range(2, 256, 9)):
        name = "base" if (n + n // 2) % 2 == 0 else "variant"
        end = _batch_end(conn, start, None, args.size)
        with conn.transaction():
            conn.execute(_BATCH_SESSION)
            started = time.perf_counter()
            conn.execute(statements[name], {**params, "lo": start, "hi": end}).fetchall()
            times[name].append((time.perf_counter() - started) * 1000)
            raise psycopg.Rollback()
    for name, values in times.items():
        median, mean = statistics.median(values), statistics.mean(values)
        print(f"{name:8} median {median:7.1f} ms  mean {mean:7.1f} ms  n {len(values)}")


if __name__ == "__main__":
    main()
