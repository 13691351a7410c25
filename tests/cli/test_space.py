"""compact, size and check: reclaim space, see where it goes, hold it to a budget."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ckpt.backends import open_store
from ckpt.backends.core.errors import ExitCode
from tests.cli.test_prune import _old_bulk
from tests.conftest import Cli, sqlite_url
from tests.servers import fresh_redis, mongo_database, postgres_schema
from tests.support import tuple_view


def test_compact_shrinks_sqlite_after_a_prune(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(path), 200)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO writes SELECT thread_id, checkpoint_ns, '1f000000-0000-6000-8000-000000000001', task_id,"
        " task_path, idx, channel, type, value FROM writes LIMIT 3"
    )  # orphans: their checkpoint does not exist
    conn.commit()
    conn.close()
    assert cli("prune", sqlite_url(path), "--keep-last", "1", "--yes").exit_code == 0
    pruned = path.stat().st_size
    dry = json.loads(cli("compact", sqlite_url(path), "--dry-run", "-o", "json").stdout)
    assert dry["removed"] == {"orphan_writes": 3} and path.stat().st_size == pruned
    done = json.loads(cli("compact", sqlite_url(path), "--yes", "-o", "json").stdout)
    assert done["removed"] == {"orphan_writes": 3}
    assert done["bytes_after"] < done["bytes_before"] / 2 and path.stat().st_size < pruned / 2
    again = json.loads(cli("compact", sqlite_url(path), "--yes", "-o", "json").stdout)
    assert again["removed"] == {"orphan_writes": 0}


def test_compact_removes_exactly_the_orphaned_postgres_blobs(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    import psycopg

    source = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(source), 3)
    with postgres_schema() as (url, libpq):
        assert cli("migrate", sqlite_url(source), url).exit_code == 0
        keys = [(h.key.thread_id, h.key.checkpoint_ns, h.key.checkpoint_id) for h in open_store(url).headers()]
        before = tuple_view(libpq, keys)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO checkpoint_blobs SELECT thread_id, checkpoint_ns, channel, version || '-orphan', type,"
                " blob FROM checkpoint_blobs WHERE channel = 'messages' AND thread_id = 'old-0001'"
            )
            planted = conn.execute("SELECT count(*) FROM checkpoint_blobs WHERE version LIKE '%-orphan'").fetchone()[0]
            conn.execute(
                "INSERT INTO checkpoint_blobs SELECT thread_id, checkpoint_ns, 'ghost', '1', 'empty', NULL "
                "FROM checkpoints WHERE thread_id = 'old-0002' LIMIT 1"
            )
            total = conn.execute("SELECT count(*) FROM checkpoint_blobs").fetchone()[0]
        assert planted > 0
        dry = json.loads(cli("compact", url, "--dry-run", "-o", "json").stdout)
        assert dry["removed"] == {"orphan_writes": 0, "orphan_blobs": planted + 1}
        done = json.loads(cli("compact", url, "--yes", "-o", "json").stdout)
        assert done["removed"] == {"orphan_writes": 0, "orphan_blobs": planted + 1}
        with psycopg.connect(libpq) as conn:
            assert conn.execute("SELECT count(*) FROM checkpoint_blobs").fetchone()[0] == total - planted - 1
        assert tuple_view(libpq, keys) == before  # nothing a checkpoint needs was touched


def test_compact_cleans_redis_and_mongodb(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    import pymongo
    import redis

    source = tmp_path / "old.db"
    _old_bulk(official_db, sqlite_url(source), 2)
    with fresh_redis() as url:
        cli("migrate", sqlite_url(source), url)
        client = redis.Redis.from_url(url, decode_responses=True)
        victim = next(
            key
            for key in client.scan_iter(match="checkpoint:old-0000:__empty__:*")
            if client.exists("write_keys_zset:" + key.split(":", 1)[1])
        )
        client.delete(victim)  # leaves its writes, zset and maybe the latest pointer behind
        result = json.loads(cli("compact", url, "--yes", "-o", "json").stdout)
        assert result["removed"]["orphan_writes"] >= 1 and result["removed"]["orphan_zsets"] == 1
        for pointer in client.scan_iter(match="checkpoint_latest:*"):
            assert client.exists(client.get(pointer))
    with mongo_database() as url:
        cli("migrate", sqlite_url(source), url)
        database = pymongo.MongoClient(url).get_default_database()
        doc = database["checkpoints"].find_one({"thread_id": "old-0001", "checkpoint_ns": ""})
        assert doc is not None
        orphaned = database["checkpoint_writes"].count_documents(
            {"thread_id": "old-0001", "checkpoint_ns": "", "checkpoint_id": doc["checkpoint_id"]}
        )
        database["checkpoints"].delete_one({"_id": doc["_id"]})
        result = json.loads(cli("compact", url, "--yes", "-o", "json").stdout)
        assert result["removed"] == {"orphan_writes": orphaned}


def test_size_by_thread_channel_and_day(cli: Cli, official_db: Path) -> None:
    report = json.loads(cli("size", sqlite_url(official_db), "-o", "json").stdout)
    with open_store(sqlite_url(official_db)) as store:
        records = list(store.records())
    assert report["store_bytes"] == sum(r.size for r in records) and report["checkpoints"] == 29
    assert report["top_threads"][0]["bytes"] >= report["top_threads"][-1]["bytes"]
    assert report["channels"][0]["name"] == "messages"
    assert sum(report["growth_per_day"].values()) == report["store_bytes"]
    assert report["growing_threads"] == ["thread-1", "thread-2", "thread-3"]
    table = cli("size", sqlite_url(official_db), "--by", "channel", "--top", "3", "-o", "csv").stdout.splitlines()
    assert table[0] == "name,bytes" and len(table) == 4 and table[1].startswith("messages,")


def test_check_budgets(cli: Cli, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    url = sqlite_url(official_db)
    assert cli("check", url).exit_code == ExitCode.USAGE  # no budgets anywhere
    (tmp_path / "pyproject.toml").write_text(
        '[tool.ckpt.budget]\nmax_thread_bytes = "1MiB"\nmax_store_bytes = "10MB"\n'
    )
    assert cli("check", url).exit_code == 0
    (tmp_path / "ckpt.toml").write_text("[budget]\nmax_channel_bytes = 1000\nmax_checkpoints_per_thread = 9\n")
    result = cli("check", url, "-o", "json")
    assert result.exit_code == ExitCode.ERROR
    breaches = json.loads(result.stdout)["breaches"]
    assert {"budget": "max_checkpoints_per_thread", "limit": 9, "actual": 10, "thread_id": "thread-1"} in breaches
    channels = {(b["thread_id"], b["channel"]) for b in breaches if b["budget"] == "max_channel_bytes"}
    assert ("thread-1", "messages") in channels  # the offending thread and channel are named
    assert all(b["actual"] > 1000 for b in breaches if b["budget"] == "max_channel_bytes")
    assert "error: " in result.stderr and "max_" in result.stderr
    markdown = cli("check", url, "-o", "markdown").stdout
    assert "❌ over budget" in markdown and "| max_channel_bytes | 1000 |" in markdown
    (tmp_path / "baseline.json").write_text(result.stdout)
    assert cli("check", url, "--baseline", str(tmp_path / "baseline.json")).exit_code == 0  # no growth
    (tmp_path / "ckpt.toml").write_text("[budget]\nmax_thread_bytes = 'lots'\n")
    assert cli("check", url).exit_code == ExitCode.USAGE
    (tmp_path / "ckpt.toml").write_text("[budget]\nmax_thraed_bytes = 5\n")
    bad = cli("check", url)
    assert bad.exit_code == ExitCode.USAGE and "unknown budget key(s) max_thraed_bytes" in bad.stderr


def test_compact_needs_yes_off_a_terminal(cli: Cli, db_copy: Path) -> None:
    result = cli("compact", sqlite_url(db_copy))
    assert result.exit_code == ExitCode.USAGE and "refusing to delete without --yes" in result.stderr
