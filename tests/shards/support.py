"""What the shard tests share: a source store of many threads, and shards run as a Job runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ckpt.backends import CheckpointRecord, open_store
from ckpt.backends.core.iterate import batched
from tests.conftest import sqlite_url

_CKPT = Path(sys.executable).with_name("ckpt")
CKPT = [str(_CKPT)] if _CKPT.exists() else [sys.executable, "-m", "ckpt.cli"]
THREADS = 42
"""Threads in the source: every shard of 7 gets some (checked by the tests that need it)."""


def many_threads_store(official_db: Path, path: Path, threads: int = THREADS) -> str:
    """The official example store's threads (one interrupted, Sends, a subgraph) cloned under
    ``threads`` ids, into a new SQLite file; returns its URL."""
    with open_store(sqlite_url(official_db)) as source:
        records = list(source.records())
    by_thread: dict[str, list[CheckpointRecord]] = {}
    for record in records:
        by_thread.setdefault(record.key.thread_id, []).append(record)
    templates = list(by_thread.values())
    url = sqlite_url(path)
    with open_store(url, write=True) as store:
        for n in range(threads):
            clone = [replace(r, key=replace(r.key, thread_id=f"t-{n:03d}-ü")) for r in templates[n % len(templates)]]
            for batch in batched(clone, 100):
                store.write(batch)
    return url


def run_shards(count: int, *args: str, env: dict[str, str] | None = None) -> list[subprocess.CompletedProcess[str]]:
    """``ckpt ARGS --shard auto/COUNT`` as an Indexed Job runs it: COUNT processes at once, each
    with its ``JOB_COMPLETION_INDEX``."""
    procs = []
    for index in range(count):
        proc_env = {**os.environ, **(env or {}), "JOB_COMPLETION_INDEX": str(index)}
        procs.append(
            subprocess.Popen(
                [*CKPT, *args, "--shard", f"auto/{count}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=proc_env,
            )
        )
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def ckpt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CKPT, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300
    )
