"""``ckpt upgrade`` as a user runs it: plan first, confirm, idempotent, killed and rerun (issue #20).

The store is langgraph-checkpoint-sqlite 2.0.0's own (tests/fixtures/old): writes without
``task_path``, which ckpt adds as today's ``SqliteSaver.setup()`` would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, file_hash, sqlite_url, table_rows
from tests.old_stores import FIXTURES_DIR, dump_store, loaded

OLD = FIXTURES_DIR / "sqlite-2.0.0" / "store.sqlite"
pytestmark = pytest.mark.skipif(not OLD.exists(), reason="no sqlite-2.0.0 fixture (scripts/old_stores/make.py)")


def _old_store(tmp_path: Path, name: str = "old.sqlite") -> Path:
    path = tmp_path / name
    shutil.copyfile(OLD, path)
    return path


def _rows(path: Path) -> list[list[object]]:
    return [list(map(list, table_rows(path, table))) for table in ("checkpoints", "writes")]


def test_dry_run_plans_and_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    path = _old_store(tmp_path)
    before = file_hash(path)
    result = cli("upgrade", sqlite_url(path), "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["generation"].startswith("langgraph-checkpoint-sqlite <3.1")
    assert [step["name"] for step in plan["steps"]] == ["add-task-path"]
    # LangGraph 0.2 kept this release's Sends inline as well, where today's SqliteSaver finds them
    assert plan["checkpoints_to_rewrite"] == 0
    assert not plan["current"]
    assert file_hash(path) == before


def test_refuses_without_yes_off_a_terminal(cli: Cli, tmp_path: Path) -> None:
    path = _old_store(tmp_path)
    before = file_hash(path)
    result = cli("upgrade", sqlite_url(path))
    assert result.exit_code == ExitCode.USAGE
    assert "refusing to upgrade without --yes" in result.stderr
    assert file_hash(path) == before


def test_upgrade_then_current_then_nothing_to_do(cli: Cli, tmp_path: Path) -> None:
    path = _old_store(tmp_path)
    backup = tmp_path / "before.jsonl.gz"
    result = cli("upgrade", sqlite_url(path), "--yes", "--backup", str(backup), "--verify", "-o", "json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["current"] and done["verified"]["ok"] and backup.exists()
    assert [step["done"] for step in done["steps"]] == [step["count"] for step in done["steps"]]
    again = cli("upgrade", sqlite_url(path), "--yes", "-o", "table")
    assert again.exit_code == 0
    assert "already current: nothing to do" in again.stderr


def test_unrecognised_store_is_never_touched(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "invoices.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    before = file_hash(path)
    result = cli("upgrade", sqlite_url(path), "--yes")
    assert result.exit_code == ExitCode.DATA
    assert file_hash(path) == before


_CKPT = Path(sys.executable).with_name("ckpt")
CKPT = [str(_CKPT)] if _CKPT.exists() else [sys.executable, "-m", "ckpt.cli"]


def _upgrade_argv(url: str) -> list[str]:
    return [*CKPT, "upgrade", url, "--yes", "--batch-size", "1", "-o", "json"]


REDIS_0_0 = FIXTURES_DIR / "redis-0.0.8"
LOCK_TTL = 1.0


def _short_lock_ttl() -> dict[str, str]:
    """A killed run's lock lapses after its TTL (backends/core/locks.py): short, so the rerun may wait."""
    return {**os.environ, "CKPT_LOCK_TTL": str(LOCK_TTL)}


@pytest.mark.skipif(not REDIS_0_0.is_dir(), reason="no redis-0.0.8 fixture")
def test_sigkill_at_any_point_then_a_rerun_gives_the_same_store() -> None:
    """The 0.0.x store is the one with most to do (indexes, every checkpoint rewritten and staged,
    misfiled and blob documents dropped); the process is killed at points spread over a run."""
    with loaded(REDIS_0_0) as url:
        started = time.monotonic()
        done = subprocess.run(_upgrade_argv(url), check=True, capture_output=True, text=True, env=_short_lock_ttl())
        whole = time.monotonic() - started
        assert json.loads(done.stdout)["current"], done.stdout
        reference = dump_store(url)
    killed_midway = 0
    for fraction in (0.35, 0.5, 0.65, 0.8, 0.9):
        with loaded(REDIS_0_0) as url:
            process = subprocess.Popen(
                _upgrade_argv(url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_short_lock_ttl()
            )
            time.sleep(whole * fraction)
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                killed_midway += 1
            process.wait()
            rerun = subprocess.run(_upgrade_argv(url), capture_output=True, text=True, env=_short_lock_ttl())
            if rerun.returncode == ExitCode.LOCKED:  # the killed run's lock: it lapses after its TTL
                time.sleep(LOCK_TTL + 0.5)
                rerun = subprocess.run(_upgrade_argv(url), capture_output=True, text=True, env=_short_lock_ttl())
            assert rerun.returncode == 0, rerun.stderr
            assert dump_store(url) == reference, f"killed at {fraction:.0%} of a run, then rerun"
    assert killed_midway, "no kill landed before the end (the run is too quick to interrupt here)"
