"""Issue #17's acceptance at scale: prune realistic stores and have the official saver re-read every kept checkpoint.

    .venv/bin/python bench/prune_oracle.py --checkpoints 10000 [--stores postgres,mongodb,redis] [--jobs 2]

The source is ``bench/make_store.py``'s store (the real example graph's rows, replayed turn after turn,
so versions repeat along a chain: the shape that broke the PostgreSQL prune) plus hand-made edge cases
(tests/histories.py: forks, consumed triggers, per-call and persistent subgraphs, pending interrupts and
Sends, DeltaChannel markers, histories over weeks). For each store and policy: a fresh target, ``ckpt
migrate`` of the source, the generated histories written by the official saver itself, every checkpoint
read through the official saver, ``ckpt prune … --yes``, every kept checkpoint read again; any
difference is printed and the script exits 1. Servers: ``eval "$(bash scripts/services.sh start)"``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.histories import write_histories  # noqa: E402
from tests.oracle import non_contiguous, snapshot  # noqa: E402
from tests.servers import fresh_redis, mongo_database, postgres_schema  # noqa: E402
from tests.support import official_saver  # noqa: E402

CKPT = str(Path(sys.executable).parent / "ckpt")
POLICIES = {
    "keep-last 2": ["--keep-last", "2"],
    "keep-last 1 + daily 3 (non-contiguous)": ["--keep-last", "1", "--keep-daily", "3"],
    "within 12d + weekly 2": ["--keep-within", "12d", "--keep-weekly", "2"],
}


@contextmanager
def _postgres() -> Iterator[tuple[str, str]]:
    with postgres_schema() as (url, libpq):
        yield url, libpq


@contextmanager
def _mongodb() -> Iterator[tuple[str, str]]:
    with mongo_database() as url:
        yield url, url


@contextmanager
def _redis() -> Iterator[tuple[str, str]]:
    with fresh_redis() as url:
        yield url, url


TARGETS: dict[str, Callable[[], AbstractContextManager[tuple[str, str]]]] = {
    "postgres": _postgres,
    "mongodb": _mongodb,
    "redis": _redis,
}


def one(kind: str, source: Path, policy: list[str], jobs: int | None) -> bool:
    with TARGETS[kind]() as (url, location):
        subprocess.run([CKPT, "migrate", f"sqlite:///{source}", url], check=True, capture_output=True)
        with official_saver(location) as saver:
            write_histories(saver, 17, threads=40, prefix="edge")
        if kind == "postgres":
            import psycopg

            with psycopg.connect(location, autocommit=True) as conn:
                conn.execute("ANALYZE checkpoints")  # --jobs splits where the statistics cut the threads
        started = time.time()
        before = snapshot(url, location)
        read = time.time() - started
        args = [*policy, *(["--jobs", str(jobs)] if jobs and kind == "postgres" else [])]
        result = subprocess.run(
            [CKPT, "prune", url, *args, "--min-idle", "0s", "--yes"], capture_output=True, text=True
        )
        after = snapshot(url, location)
        changed = [k for k, v in after.items() if before.get(k) != v]
        print(
            f"{kind:9} {' '.join(args):44} exit {result.returncode}: {len(before):6} read in {read:5.1f} s, "
            f"{len(after):6} kept, {len(changed)} changed, non-contiguous: {non_contiguous(before, sorted(after))}",
            flush=True,
        )
        if result.returncode != 0:
            print("   ", result.stderr.strip()[-400:])
        for key in changed[:3]:
            print("    changed:", key)
        return result.returncode == 0 and not changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=int, default=10_000)
    parser.add_argument("--stores", default="postgres,mongodb,redis")
    parser.add_argument("--jobs", type=int, default=None, help="also run PostgreSQL with --jobs N")
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--policy", action="append", choices=sorted(POLICIES), help="only these policies (repeatable)")
    options = parser.parse_args()
    options.data.mkdir(parents=True, exist_ok=True)
    source = options.data / f"oracle-{options.checkpoints}.db"
    if not source.exists():
        subprocess.run(
            [sys.executable, str(ROOT / "bench" / "make_store.py"), str(options.checkpoints), str(source)], check=True
        )
    ok = True
    for kind in options.stores.split(","):
        for name, policy in POLICIES.items():
            if options.policy and name not in options.policy:
                continue
            ok &= one(kind, source, policy, None)
            if kind == "postgres" and options.jobs:
                ok &= one(kind, source, policy, options.jobs)
    print("every kept checkpoint reads as before" if ok else "FAILED", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("CKPT_REQUIRE_BACKENDS", "1")
    raise SystemExit(main())
