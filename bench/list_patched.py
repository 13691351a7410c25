"""Scratch what-if: end-to-end ``ckpt list`` time with cheaper ``SqliteStore.threads()`` queries.

    /work/venv/bin/python bench/list_patched.py bench/data/1m.db [--repeat 5]

backends/sqlite/store.py is not changed: each candidate query is monkeypatched into
``SqliteStore.threads`` in this process (library call, c') and in a child process that then
runs the real CLI entry point (``ckpt list -o jsonl > /dev/null``, b'). Same method as
bench_list.py: one warm-up each, then rounds alternating with the bare GROUP BY (a).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from ckpt.backends import open_store
from ckpt.backends.core.base import Selection, ThreadSummary
from ckpt.backends.sqlite.store import SqliteStore, _where

# name -> (SQL, row -> ThreadSummary); every column comes from the primary-key index.
CANDIDATES: dict[str, tuple[str, Callable[[tuple[str, ...]], ThreadSummary]] | None] = {
    "current": None,
    "no_bytes": (
        "SELECT thread_id, count(DISTINCT checkpoint_ns), count(*), min(checkpoint_id), max(checkpoint_id) "
        "FROM checkpoints {where} GROUP BY thread_id ORDER BY thread_id",
        lambda r: ThreadSummary(r[0], r[1], r[2], r[3], r[4]),  # type: ignore[arg-type]
    ),
    "no_bytes_no_ns": (
        "SELECT thread_id, count(*), min(checkpoint_id), max(checkpoint_id) "
        "FROM checkpoints {where} GROUP BY thread_id ORDER BY thread_id",
        lambda r: ThreadSummary(r[0], 0, r[1], r[2], r[3]),  # type: ignore[arg-type]
    ),
    "count_only": (
        "SELECT thread_id, count(*) FROM checkpoints {where} GROUP BY thread_id ORDER BY thread_id",
        lambda r: ThreadSummary(r[0], 0, r[1]),  # type: ignore[arg-type]
    ),
}


def patch(name: str) -> None:
    candidate = CANDIDATES[name]
    if candidate is None:
        return
    sql, make = candidate

    def threads(self: SqliteStore, selection: Selection = Selection()) -> Iterator[ThreadSummary]:
        where, params = _where(selection)
        for row in self._rows(sql.format(where=where), params):
            if selection.matches_thread(row[0]):
                yield make(row)

    SqliteStore.threads = threads  # type: ignore[method-assign]


def bare(path: str) -> int:
    """(a) of bench_list.py: the bare GROUP BY, read-only, fully fetched."""
    conn = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
    try:
        return len(conn.execute("SELECT thread_id, count(*) FROM checkpoints GROUP BY thread_id").fetchall())
    finally:
        conn.close()


def library(url: str) -> int:
    with open_store(url) as store:
        return len(list(store.threads()))


def cli(name: str, url: str) -> None:
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
        f"import list_patched as p; p.patch({name!r}); from ckpt.cli.main import main; "
        f"sys.argv = ['ckpt', 'list', {url!r}, '-o', 'jsonl']; main()"
    )
    subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    url = "sqlite:///" + os.path.abspath(args.path)
    original = SqliteStore.threads
    print(f"{args.path}: median of {args.repeat}, warm cache; ratios against the bare GROUP BY (a)")
    for name in CANDIDATES:
        SqliteStore.threads = original  # type: ignore[method-assign]
        patch(name)
        runs: dict[str, list[float]] = {"a": [], "b'": [], "c'": []}
        steps: dict[str, Callable[[], object]] = {
            "a": lambda: bare(args.path),
            "b'": lambda name=name: cli(name, url),  # type: ignore[misc]
            "c'": lambda: library(url),
        }
        for i in range(args.repeat + 1):
            for key, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                if i:
                    runs[key].append(time.perf_counter() - t0)
        a, b, c = (statistics.median(runs[k]) for k in ("a", "b'", "c'"))
        print(f"  {name:<15} a {a:6.3f} s   b' {b:6.3f} s ({b / a:5.1f}x)   c' {c:6.3f} s ({c / a:5.1f}x)", flush=True)


if __name__ == "__main__":
    main()
