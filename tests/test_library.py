"""The public library (``import ckpt``): the README's example run as written, and each call tested directly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import ckpt
from tests.conftest import copy_file, sqlite_url
from tests.histories import write_histories
from tests.oracle import assert_kept_unchanged, snapshot
from tests.support import official_saver

ROOT = Path(__file__).resolve().parent.parent


def _readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## As a library") :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_readme_example_runs_as_written_and_does_its_work_once(official_db: Path, tmp_path: Path) -> None:
    """Spawned workers import the module again: the example's work is under ``__main__`` and must
    run exactly once (one export, one copy, each line printed once)."""
    copy_file(official_db, tmp_path / "agent.db")
    script = tmp_path / "example.py"
    script.write_text(_readme_example(), encoding="utf-8")
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("would delete") == 1 and run.stdout.count("within budget") == 1, run.stdout
    assert (tmp_path / "backup.jsonl.gz").exists() and (tmp_path / "copy.db").exists()


def _generated(tmp_path: Path) -> tuple[str, Path]:
    path = tmp_path / "gen.db"
    with official_saver(path) as saver:
        saver.setup()
        write_histories(saver, 31, threads=12)
    return sqlite_url(path), path


def test_prune_plans_with_keep_reasons_then_deletes_what_it_planned(tmp_path: Path) -> None:
    url, path = _generated(tmp_path)
    before = snapshot(url, path)
    policy = ckpt.Policy(keep_last=2, keep_daily=2)
    seen: list[Any] = []
    with ckpt.open(url, write=True, create=False) as store:
        plan = ckpt.prune(store, policy, min_idle="0s", dry_run=True, reasons=True, on_thread=seen.append)
        assert plan.dry_run and plan.checkpoints_to_delete > 0
        reasons = {r for thread in seen for kept in thread.kept for r in kept.reasons}
        assert {"newest", "last 2", "daily"} <= reasons
        kept_keys = {(t.thread_id, k.checkpoint_ns, k.checkpoint_id) for t in seen for k in t.kept}
        assert len(kept_keys) + plan.checkpoints_to_delete == len(before)
        done = ckpt.prune(store, policy, min_idle="0s")
        assert not done.dry_run and done.checkpoints_deleted == plan.checkpoints_to_delete and not done.errors
    assert set(assert_kept_unchanged(url, path, before)) == kept_keys


def test_a_declined_confirmation_deletes_nothing(tmp_path: Path) -> None:
    url, path = _generated(tmp_path)
    before = snapshot(url, path)
    with ckpt.open(url, write=True, create=False) as store, pytest.raises(ckpt.Aborted):
        ckpt.prune(store, ckpt.Policy(keep_last=1), min_idle="0s", confirm=lambda plan: False)
    assert snapshot(url, path) == before


def test_compact_size_and_check(official_db: Path, tmp_path: Path) -> None:
    url = sqlite_url(copy_file(official_db, tmp_path / "a.db"))
    with ckpt.open(url, write=True, create=False) as store:
        report = ckpt.compact(store, min_idle="0s")
        assert report.bytes_before is not None and report.bytes_after is not None and not report.dry_run
        sizes = ckpt.size(store).as_json()
        assert sizes["store_bytes"] > 0 and sizes["threads"] >= 3
        assert ckpt.check(store, {"max_thread_bytes": 10**9}).ok
        tight = ckpt.check(store, {"max_thread_bytes": 1})
        assert not tight.ok and tight.breaches


def test_export_import_and_migrate_with_verify(official_db: Path, tmp_path: Path) -> None:
    source = sqlite_url(official_db)
    exported = ckpt.export(source, str(tmp_path / "b.jsonl.gz"))
    assert exported.checkpoints_written > 0 and exported.decode_errors == []
    imported = ckpt.import_(str(tmp_path / "b.jsonl.gz"), sqlite_url(tmp_path / "restored.db"))
    assert imported.checkpoints_written == exported.checkpoints_written
    moved = ckpt.migrate(source, sqlite_url(tmp_path / "moved.db"), verify=True, jobs=1)
    assert moved.ok and moved.verified is not None and moved.verified.checkpoints == exported.checkpoints_written
    assert ckpt.migrate(source, sqlite_url(tmp_path / "moved.db"), jobs=1).copied.checkpoints_written == 0


def test_import_ckpt_loads_nothing_heavy() -> None:
    code = "import sys, ckpt; print(sorted(m for m in sys.modules if m.startswith('ckpt.')))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


def test_every_public_name_resolves_and_the_readme_lists_only_public_names() -> None:
    for name in ckpt.__all__:
        assert getattr(ckpt, name) is not None
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    names = text[text.index("Names: ") : text.index("Layout: ")]
    for name in re.findall(r"`([A-Za-z_]+)`", names):
        assert name in ckpt.__all__, name
