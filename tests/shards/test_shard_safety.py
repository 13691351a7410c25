"""A shard is resumable on its own and holds only its own lock (issue #23).

A shard killed with SIGKILL and run again completes its part and touches no other shard's
threads; a second run of the same shard while one runs exits with the lock's code (6), while
other shards run beside it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import ckpt as lib
from ckpt.backends import Selection, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.locks import file_lock
from ckpt.backends.core.shards import Shard
from tests.conftest import sqlite_url
from tests.servers import postgres_schema
from tests.shards.support import CKPT, ckpt, many_threads_store

SHARD = Shard(1, 3)


def _threads(url: str) -> set[str]:
    with open_store(url) as store:
        return {t.thread_id for t in store.threads(details=False)}


def _written(url: str) -> int:
    try:
        with open_store(url) as store:
            return store.count() or 0
    except lib.CkptError:
        return 0  # not created yet


def test_a_killed_shard_rerun_completes_its_part_only(official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db", threads=120)
    with open_store(source) as src:
        mine = src.count(Selection(shard=SHARD))
    with postgres_schema() as (target, _):
        argv = [*CKPT, "migrate", source, target, "--shard", str(SHARD), "--batch-size", "1", "--jobs", "1"]
        first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while _written(target) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        # the same shard again while the first holds its lock: refused; another shard runs beside it
        again = ckpt("migrate", source, target, "--shard", str(SHARD))
        other = ckpt("migrate", source, target, "--shard", "2/3")
        os.kill(first.pid, signal.SIGKILL)
        first.communicate()
        assert first.returncode == -signal.SIGKILL  # killed midway, not finished
        assert again.returncode == ExitCode.LOCKED, again.stderr
        assert "another ckpt migrate.shard-1-of-3 is running" in again.stderr
        assert other.returncode == 0, other.stderr
        partial = _written(target)
        with open_store(source) as src:
            theirs = src.count(Selection(shard=Shard(2, 3)))
        assert theirs < partial < theirs + mine
        rerun = ckpt("migrate", source, target, "--shard", str(SHARD), "--verify", "-o", "json")
        assert rerun.returncode == 0, rerun.stderr
        body = json.loads(rerun.stdout)
        assert body["verify"]["ok"] and body["checkpoints_written"] == mine - (partial - theirs)
        assert lib.verify_stores(source, target, Selection(shard=SHARD)).ok
        with open_store(source) as src:
            shard_0 = {t.thread_id for t in src.threads(Selection(shard=Shard(0, 3)), details=False)}
        assert not shard_0 & _threads(target)  # nothing of the shard nobody ran


def test_a_shard_locked_elsewhere_exits_6_and_changes_nothing(official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db")
    target = sqlite_url(tmp_path / "target.db")
    assert ckpt("migrate", source, target, "--thread", "nothing-*").returncode == 0  # the target exists, empty
    with open_store(target, write=True) as store, store.lock("prune.shard-1-of-3"):
        pruned = ckpt("prune", target, "--keep-last", "1", "--yes", "--shard", "1/3")
        other = ckpt("prune", target, "--keep-last", "1", "--yes", "--shard", "0/3")
    assert pruned.returncode == ExitCode.LOCKED, pruned.stderr
    assert other.returncode == 0, other.stderr
    out = tmp_path / "part-1-of-3.jsonl"
    with file_lock(f"{out}.lock", "held by the test"):
        exported = ckpt("export", source, str(tmp_path / "part-{shard}.jsonl"), "--shard", "1/3")
    assert exported.returncode == ExitCode.LOCKED, exported.stderr
    assert not out.exists()


def test_shard_option_errors_are_one_line_usage_errors(official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db", threads=3)
    env = {k: v for k, v in os.environ.items() if k != "JOB_COMPLETION_INDEX"}
    for value, message in (
        ("3/3", "0 <= K < N"),
        ("x/3", "whole numbers"),
        ("3", "K/N or auto/N"),
        ("auto/3", "$JOB_COMPLETION_INDEX"),
    ):
        result = subprocess.run(
            [*CKPT, "export", source, "-", "--shard", value], capture_output=True, text=True, env=env
        )
        assert result.returncode == ExitCode.USAGE, (value, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    unnamed = ckpt("export", source, str(tmp_path / "x-{shard}.jsonl"))
    assert unnamed.returncode == ExitCode.USAGE and "no --shard" in unnamed.stderr
