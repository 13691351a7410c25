"""``ckpt report merge``: the shards' reports added up, the missing ones named (issue #23)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.shards import Shard
from ckpt.backends.ops.reports import merge_reports, write_report
from tests.shards.support import ckpt


def _report(tmp_path: Path, index: int, count: int, body: dict, command: str = "migrate") -> str:
    return write_report(str(tmp_path / f"{command}-{{shard}}.json"), command, body, Shard(index, count))


def _body(written: int, ok: bool = True) -> dict:
    return {"target": "sqlite:///t.db", "checkpoints_written": written, "bad_records": [], "verify": {"ok": ok}}


def test_complete_reports_add_up(tmp_path: Path) -> None:
    files = [_report(tmp_path, k, 3, _body(10 * (k + 1))) for k in range(3)]
    assert Path(files[2]).name == "migrate-2-of-3.json"
    result = ckpt("report", "merge", *files, "-o", "json")
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)
    assert merged["complete"] and merged["ok"] and merged["shards"] == 3 and merged["reports"] == 3
    assert merged["totals"]["checkpoints_written"] == 60
    assert merged["totals"]["target"] == "sqlite:///t.db"  # the same in every report: kept once
    assert merged["totals"]["verify"] == {"ok": True}


def test_missing_shards_are_named_and_exit_1(tmp_path: Path) -> None:
    files = [_report(tmp_path, k, 7, _body(1)) for k in (0, 2, 3, 6)]
    result = ckpt("report", "merge", *files, "-o", "json")
    assert result.returncode == ExitCode.ERROR
    assert json.loads(result.stdout)["missing_shards"] == [1, 4, 5]
    assert "shard(s) 1, 4, 5 of 7 have not reported" in result.stderr


def test_a_failed_verdict_in_one_shard_fails_the_merge(tmp_path: Path) -> None:
    files = [_report(tmp_path, k, 2, _body(1, ok=k == 0)) for k in range(2)]
    merged = merge_reports(files)
    assert merged.complete and not merged.ok
    assert ckpt("report", "merge", *files).returncode == ExitCode.ERROR


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ((1, 4, "migrate"), "different splits"),
        ((0, 3, "migrate"), "both report shard 0/3"),
        ((1, 3, "prune"), "different commands"),
    ],
)
def test_reports_of_different_jobs_are_refused(tmp_path: Path, second: tuple[int, int, str], message: str) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    first = _report(tmp_path / "a", 0, 3, _body(1))
    other = _report(tmp_path / "b", second[0], second[1], _body(1), command=second[2])
    result = ckpt("report", "merge", first, other)
    assert result.returncode == ExitCode.USAGE
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_file_that_is_not_a_report_is_a_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "out.json"
    bad.write_text('{"checkpoints_written": 3}')
    result = ckpt("report", "merge", str(bad))
    assert result.returncode == ExitCode.DATA and "not a ckpt report" in result.stderr
    missing = ckpt("report", "merge", str(tmp_path / "nope.json"))
    assert missing.returncode == ExitCode.NOT_FOUND
