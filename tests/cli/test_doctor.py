"""doctor recognises each saver's stores and reports planted problems."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from tests.backends.test_sqlite_layouts import _downgrade_to_3_1_1
from tests.cli.test_prune import official_store
from tests.conftest import Cli, sqlite_url


@pytest.mark.parametrize("kind", ["sqlite", "postgres", "redis", "mongodb"])
def test_recognises_each_official_saver(cli: Cli, tmp_path: Path, kind: str) -> None:
    with official_store(kind, tmp_path) as (url, _):
        result = cli("doctor", url, "-o", "json")
        report = json.loads(result.stdout)
        saver = {"sqlite": "sqlite", "postgres": "postgres", "redis": "redis", "mongodb": "mongodb"}[kind]
        assert report["layout"]["saver"] == f"langgraph-checkpoint-{saver}" and report["checkpoints"] == 29
        assert "delete" in report["capabilities"]
        if kind == "redis":  # RedisSaver without a TTL config leaves every key persistent
            assert result.exit_code == ExitCode.ERROR and "29 checkpoint(s) have no TTL" in report["findings"]
        else:
            assert result.exit_code == 0 and report["healthy"] is True, report["findings"]


def test_reports_older_layout_planted_orphan_and_undecodable_row(cli: Cli, db_copy: Path) -> None:
    conn = sqlite3.connect(db_copy)
    conn.execute(
        "INSERT INTO writes SELECT thread_id, checkpoint_ns, '1f000000-0000-6000-8000-000000000001', task_id,"
        " task_path, idx, channel, type, value FROM writes LIMIT 1"
    )
    cid = conn.execute("SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = 'thread-2'").fetchone()[0]
    conn.execute("UPDATE checkpoints SET checkpoint = X'c1' WHERE checkpoint_id = ?", (cid,))
    conn.commit()
    conn.close()
    _downgrade_to_3_1_1(db_copy)
    result = cli("doctor", sqlite_url(db_copy), "-o", "json")
    assert result.exit_code == ExitCode.ERROR
    findings = json.loads(result.stdout)["findings"]
    assert "schema drift: writes has no task_path column; SqliteSaver 3.1.2 setup() adds it" in findings
    assert "1 orphan writes (ckpt compact removes them)" in findings
    assert any(f.startswith(f"undecodable: cannot decode thread 'thread-2', ns '', checkpoint {cid}") for f in findings)
    table = cli("doctor", sqlite_url(db_copy), "-o", "table")
    assert table.exit_code == ExitCode.ERROR and "finding: 1 orphan writes" in table.stdout


def test_shallow_postgres_tables_are_a_finding(cli: Cli) -> None:
    import psycopg

    from tests.servers import postgres_schema

    with postgres_schema() as (url, libpq):
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("CREATE TABLE checkpoints (thread_id TEXT, checkpoint_ns TEXT, checkpoint JSONB)")
        result = cli("doctor", url, "-o", "json")
        assert result.exit_code == ExitCode.ERROR
        assert "ShallowPostgresSaver" in json.loads(result.stdout)["findings"][0]
