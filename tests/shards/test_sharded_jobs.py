"""N shards run at once, as the pods of an Indexed Job, give exactly what one run gives (issue #23).

For migrate, export/import and prune, with N = 1, 3 and 7: the shards run as concurrent
processes, each with its ``JOB_COMPLETION_INDEX`` and ``--shard auto/N``; their reports merge
to the single run's totals, and the stores are compared as a whole afterwards (``--verify``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ckpt as lib
from ckpt.backends import Selection, open_store
from ckpt.backends.core.shards import Shard
from tests.conftest import sqlite_url
from tests.servers import postgres_schema
from tests.shards.support import ckpt, many_threads_store, run_shards

COUNTS = [1, 3, 7]


def _ok(results: list) -> list[dict]:
    for result in results:
        assert result.returncode == 0, result.stderr
    return [json.loads(result.stdout) for result in results]


def _merged(tmp_path: Path, pattern: str) -> dict:
    result = ckpt("report", "merge", *sorted(str(p) for p in tmp_path.glob(pattern)), "-o", "json")
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)
    assert merged["complete"] and merged["ok"] and merged["missing_shards"] == []
    return merged


def _same_stores(a: str, b: str) -> None:
    for left, right in ((a, b), (b, a)):
        report = lib.verify_stores(left, right)
        assert report.ok, report.as_json()


@pytest.mark.parametrize("count", COUNTS)
def test_sharded_migrate_into_postgres_is_the_single_run(count: int, official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db")
    with postgres_schema() as (single, _), postgres_schema() as (sharded, _):
        one = ckpt("migrate", source, single, "-o", "json")
        assert one.returncode == 0, one.stderr
        reports = str(tmp_path / "migrate-{shard}.json")
        bodies = _ok(run_shards(count, "migrate", source, sharded, "--verify", "--report", reports, "-o", "json"))
        with open_store(source) as src:
            for index, body in enumerate(bodies):  # each shard copied its own threads, and verified them
                assert body["shard"] == {"index": index, "count": count, "hash": "md5-60"}
                assert body["checkpoints_written"] == src.count(Selection(shard=Shard(index, count)))
                assert body["verify"]["ok"]
        merged = _merged(tmp_path, "migrate-*-of-*.json")
        assert merged["totals"]["checkpoints_written"] == json.loads(one.stdout)["checkpoints_written"]
        assert merged["totals"]["writes_written"] == json.loads(one.stdout)["writes_written"]
        whole = ckpt("migrate", source, sharded, "--verify", "-o", "json")  # the whole store, verified
        assert whole.returncode == 0, whole.stderr
        body = json.loads(whole.stdout)
        assert body["checkpoints_written"] == 0 and body["verify"]["ok"]
        assert body["verify"]["checkpoints"] == body["checkpoints_read"] > 0
        _same_stores(single, sharded)


@pytest.mark.parametrize("count", COUNTS)
def test_sharded_export_then_import_is_the_single_run(count: int, official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db")
    exported = _ok(run_shards(count, "export", source, str(tmp_path / "part-{shard}.jsonl.gz"), "-o", "json"))
    files = sorted(str(p) for p in tmp_path.glob("part-*-of-*.jsonl.gz"))
    assert len(files) == count == len(exported)
    # one import of every file, and the same files imported by N shards at once
    together = sqlite_url(tmp_path / "together.db")
    result = ckpt("import", *files, together, "-o", "json")
    assert result.returncode == 0, result.stderr
    assert "not given" not in result.stderr
    sharded = sqlite_url(tmp_path / "sharded.db")
    _ok(run_shards(count, "import", *files, sharded, "--report", str(tmp_path / "import-{shard}.json"), "-o", "json"))
    merged = _merged(tmp_path, "import-*-of-*.json")
    for target in (together, sharded):
        _same_stores(source, target)
    assert merged["totals"]["checkpoints_written"] == sum(body["checkpoints_written"] for body in exported)


@pytest.mark.parametrize("count", COUNTS)
def test_sharded_prune_is_the_single_run(count: int, official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db")
    shutil.copyfile(tmp_path / "source.db", tmp_path / "single.db")
    shutil.copyfile(tmp_path / "source.db", tmp_path / "sharded.db")
    rules = ["--keep-last", "2", "--min-idle", "0s", "--yes", "-o", "json"]
    one = ckpt("prune", sqlite_url(tmp_path / "single.db"), *rules)
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["checkpoints_deleted"] > 0
    reports = str(tmp_path / "prune-{shard}.json")
    _ok(run_shards(count, "prune", sqlite_url(tmp_path / "sharded.db"), *rules, "--report", reports))
    merged = _merged(tmp_path, "prune-*-of-*.json")
    assert merged["totals"]["checkpoints_deleted"] == json.loads(one.stdout)["checkpoints_deleted"]
    _same_stores(sqlite_url(tmp_path / "single.db"), sqlite_url(tmp_path / "sharded.db"))
    assert not lib.verify_stores(source, sqlite_url(tmp_path / "sharded.db")).ok  # it did prune


def test_sharded_prune_in_postgres_sql_is_the_single_run(official_db: Path, tmp_path: Path) -> None:
    """PostgreSQL plans a prune in SQL: the shard's hash is part of that query (prune/sql.py)."""
    source = many_threads_store(official_db, tmp_path / "source.db")
    rules = ["--keep-last", "2", "--min-idle", "0s", "--yes", "-o", "json"]
    with postgres_schema() as (single, _), postgres_schema() as (sharded, _):
        for target in (single, sharded):
            assert ckpt("migrate", source, target).returncode == 0
        one = ckpt("prune", single, *rules)
        assert one.returncode == 0, one.stderr
        bodies = _ok(run_shards(3, "prune", sharded, *rules))
        assert sum(b["checkpoints_deleted"] for b in bodies) == json.loads(one.stdout)["checkpoints_deleted"] > 0
        _same_stores(single, sharded)


def test_sharded_migrate_into_export_files(official_db: Path, tmp_path: Path) -> None:
    """A shard's migrate into a JSONL file writes that shard (the shard's lock is the file's own:
    nothing else may open the file for writing, or it would be rewritten empty on close)."""
    source = many_threads_store(official_db, tmp_path / "source.db")
    _ok(run_shards(3, "migrate", source, str(tmp_path / "m-{shard}.jsonl"), "-o", "json"))
    files = sorted(str(p) for p in tmp_path.glob("m-*-of-3.jsonl"))
    assert len(files) == 3
    target = sqlite_url(tmp_path / "back.db")
    result = ckpt("import", *files, target)
    assert result.returncode == 0, result.stderr
    _same_stores(source, target)
