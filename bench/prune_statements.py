"""Where a PostgreSQL ``ckpt prune`` spends its time, statement by statement.

    /work/venv/bin/python bench/prune_statements.py --pg URL --src prune_src1m [--jobs 1] [--no-clone]

Clones ``--src`` into ``prune_a`` (as ``bench_prune.py`` does; skipped with ``--no-clone``), then runs
``ckpt prune URL?schema=prune_a --keep-last 5 --min-idle 0 --yes --report json --jobs N`` in this
process with every psycopg ``Cursor.execute`` timed, and prints the statements by total time (the
first 90 characters of each, how many times it ran, seconds). Rows fetched later from a named
cursor are not in the statement's time. One job gives the plainest picture; with more, the times
of the jobs' connections add up.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_prune import clone  # noqa: E402


def timed_statements() -> dict[str, list[float]]:
    """Wrap ``psycopg.Cursor.execute`` (``Connection.execute`` goes through it) to time every statement."""
    import psycopg

    stats: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    original = psycopg.Cursor.execute

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(self, query, *args, **kwargs)
        finally:
            entry = stats[" ".join(str(query).split())[:90]]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    psycopg.Cursor.execute = execute  # type: ignore[method-assign]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg", required=True)
    parser.add_argument("--src", default="prune_src1m")
    parser.add_argument("--jobs", default="1")
    parser.add_argument("--no-clone", action="store_true")
    args = parser.parse_args()
    if not args.no_clone:
        import psycopg

        started = time.perf_counter()
        clone(psycopg.connect(args.pg, autocommit=True), args.src, "prune_a")
        print(f"cloned {args.src} into prune_a in {time.perf_counter() - started:.0f} s", flush=True)
    stats = timed_statements()
    url = f"{args.pg}?schema=prune_a"
    sys.argv = ["ckpt", "prune", url, "--keep-last", "5", "--min-idle", "0", "--yes", "--report", "json"]
    sys.argv += ["--jobs", args.jobs]
    from ckpt.cli.main import main as ckpt_main

    started = time.perf_counter()
    try:
        ckpt_main()
    except SystemExit as exc:
        print(f"ckpt exited with {exc.code}")
    print(f"\nwhole prune: {time.perf_counter() - started:.2f} s")
    for statement, (count, seconds) in sorted(stats.items(), key=lambda kv: -kv[1][1])[:25]:
        print(f"{seconds:8.2f} s {int(count):6d}x  {statement}")


if __name__ == "__main__":
    main()
