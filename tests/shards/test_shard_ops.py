"""``--shard`` on the commands that change a store in place: delete and upgrade (issue #23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import ckpt as lib
from ckpt.backends.core.errors import ExitCode
from ckpt.backends.core.shards import shard_of
from tests.conftest import file_hash, sqlite_url
from tests.old_stores import FIXTURES_DIR, dump_store, loaded
from tests.shards.support import ckpt, many_threads_store, run_shards


def _threads(url: str) -> list[str]:
    with lib.open(url) as store:
        return [t.thread_id for t in store.threads(details=False)]


def test_sharded_delete_is_the_single_delete(official_db: Path, tmp_path: Path) -> None:
    source = many_threads_store(official_db, tmp_path / "source.db")
    shutil.copyfile(tmp_path / "source.db", tmp_path / "single.db")
    shutil.copyfile(tmp_path / "source.db", tmp_path / "sharded.db")
    single, sharded = sqlite_url(tmp_path / "single.db"), sqlite_url(tmp_path / "sharded.db")
    pattern = ["--thread", "t-0[0-2]*", "--yes", "-o", "json"]
    one = ckpt("delete", single, *pattern)
    assert one.returncode == 0, one.stderr
    bodies = [json.loads(r.stdout) for r in run_shards(3, "delete", sharded, *pattern)]
    for index, body in enumerate(bodies):
        assert all(shard_of(t, 3) == index for t in body["thread_ids"])
        assert body["clean"]
    assert sorted(t for b in bodies for t in b["thread_ids"]) == json.loads(one.stdout)["thread_ids"]
    assert _threads(single) == _threads(sharded) != _threads(source)
    assert lib.verify_stores(single, sharded).ok


def test_a_shard_without_matching_threads_has_nothing_to_delete(official_db: Path, tmp_path: Path) -> None:
    url = many_threads_store(official_db, tmp_path / "source.db")
    only = "t-000-ü"
    empty_shard = next(k for k in range(7) if shard_of(only, 7) != k)
    result = ckpt("delete", url, "--thread", only, "--yes", "--shard", f"{empty_shard}/7", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["thread_ids"] == []
    assert only in _threads(url)
    unsharded_miss = ckpt("delete", url, "--thread", "no-such-*", "--yes")
    assert unsharded_miss.returncode == ExitCode.NOT_FOUND


MONGO_LEGACY = FIXTURES_DIR / "mongodb-0.1.4"


@pytest.mark.skipif(not MONGO_LEGACY.is_dir(), reason="no mongodb-0.1.4 fixture (scripts/old_stores/make.py)")
def test_sharded_upgrade_is_the_single_upgrade() -> None:
    """langgraph-checkpoint-mongodb 0.1.x stores need every checkpoint rewritten, no store-wide step."""
    with loaded(MONGO_LEGACY) as url:
        with lib.open(url, write=True) as store:
            lib.upgrade(store)
        reference = dump_store(url)
    with loaded(MONGO_LEGACY) as url:
        results = run_shards(3, "upgrade", url, "--yes", "-o", "json")
        for result in results:
            assert result.returncode == 0, result.stderr
        assert sum(json.loads(r.stdout)["checkpoints_rewritten"] for r in results) > 0
        assert dump_store(url) == reference
        with lib.open(url) as store:
            assert lib.upgrade(store, dry_run=True).current


def test_an_upgrade_with_store_wide_steps_refuses_a_shard(tmp_path: Path) -> None:
    old = FIXTURES_DIR / "sqlite-2.0.0" / "store.sqlite"
    if not old.exists():
        pytest.skip("no sqlite-2.0.0 fixture")
    path = tmp_path / "old.sqlite"
    shutil.copyfile(old, path)
    before = file_hash(path)
    result = ckpt("upgrade", sqlite_url(path), "--yes", "--shard", "0/2")
    assert result.returncode == ExitCode.USAGE
    assert "store-wide steps (add-task-path)" in result.stderr
    assert file_hash(path) == before
