"""Every SQLite layout in the wild is read; writes always use the 3.1.2 layout."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from ckpt.backends import open_store
from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, sqlite_url, table_rows

# writes table of langgraph-checkpoint-sqlite <= 3.1.1: no task_path column.
OLD_WRITES = """
CREATE TABLE writes (
    thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL, idx INTEGER NOT NULL, channel TEXT NOT NULL, type TEXT, value BLOB,
    PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx))
"""


def _downgrade_to_3_1_1(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(
        "ALTER TABLE writes RENAME TO writes_new;"
        + OLD_WRITES
        + "; INSERT INTO writes SELECT thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, value"
        " FROM writes_new;"
        "DROP TABLE writes_new;"
    )
    conn.close()


def test_store_without_task_path_is_read(cli: Cli, db_copy: Path, official_db: Path, tmp_path: Path) -> None:
    _downgrade_to_3_1_1(db_copy)
    with open_store(sqlite_url(db_copy)) as old, open_store(sqlite_url(official_db)) as new:
        assert old.layout()["task_path"] is False and "<3.1.2" in old.layout()["version"]
        old_records, new_records = list(old.records()), list(new.records())
    assert [r.key for r in old_records] == [r.key for r in new_records]
    for a, b in zip(old_records, new_records):
        assert a.checkpoint == b.checkpoint and a.metadata == b.metadata
        assert [(w.task_id, w.idx, w.channel, w.value) for w in a.writes] == [
            (w.task_id, w.idx, w.channel, w.value) for w in b.writes
        ]
        assert all(w.task_path == "" for w in a.writes)
    view = json.loads(cli("show", sqlite_url(db_copy), "thread-3", "-o", "json").stdout)
    assert view["next"] == ["approve"] and view["interrupts"]
    assert [r[0] for r in table_rows(db_copy, "writes")]  # still the old table, untouched
    assert "task_path" not in {c[1] for c in sqlite3.connect(db_copy).execute("PRAGMA table_info(writes)")}


def test_import_into_old_layout_adds_task_path_like_setup(
    cli: Cli, db_copy: Path, official_db: Path, tmp_path: Path
) -> None:
    _downgrade_to_3_1_1(db_copy)
    dump = tmp_path / "d.jsonl"
    cli("export", sqlite_url(official_db), str(dump))
    assert cli("import", str(dump), sqlite_url(db_copy)).exit_code == 0
    columns = [c[1] for c in sqlite3.connect(db_copy).execute("PRAGMA table_info(writes)")]
    assert columns[-1] == "task_path"


def test_old_json_metadata_with_langchain_envelopes(cli: Cli, db_copy: Path) -> None:
    """langgraph-checkpoint-sqlite <= 2.0 wrote metadata with serde.dumps: lc envelopes, a `writes` key."""
    legacy = {
        "source": "loop",
        "step": 7,
        "writes": {
            "agent": {
                "messages": [
                    {
                        "lc": 1,
                        "type": "constructor",
                        "id": ["langchain", "schema", "messages", "AIMessage"],
                        "kwargs": {"content": "hi"},
                    }
                ]
            }
        },
        "parents": {},
    }
    conn = sqlite3.connect(db_copy)
    cid = conn.execute(
        "SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = 'thread-1' AND checkpoint_ns = ''"
    ).fetchone()[0]
    conn.execute("UPDATE checkpoints SET metadata = ? WHERE checkpoint_id = ?", (json.dumps(legacy).encode(), cid))
    conn.commit()
    conn.close()
    rows = [
        json.loads(line)
        for line in cli(
            "list", sqlite_url(db_copy), "-c", "-t", "thread-1", "--ns", "", "-o", "jsonl"
        ).stdout.splitlines()
    ]
    assert rows[-1]["step"] == 7 and rows[-1]["source"] == "loop"
    view = json.loads(cli("show", sqlite_url(db_copy), "thread-1", "-o", "json").stdout)
    assert view["metadata"]["writes"]["agent"]["messages"][0]["lc"] == 1


def test_pre_1_0_layout_is_refused(cli: Cli, tmp_path: Path) -> None:
    ancient = tmp_path / "ancient.db"
    conn = sqlite3.connect(ancient)
    conn.executescript(
        "CREATE TABLE checkpoints (thread_id TEXT NOT NULL, thread_ts TEXT NOT NULL, parent_ts TEXT,"
        " checkpoint BLOB, metadata BLOB, PRIMARY KEY (thread_id, thread_ts));"
        "CREATE TABLE writes (thread_id TEXT NOT NULL, thread_ts TEXT NOT NULL, task_id TEXT NOT NULL,"
        " idx INTEGER NOT NULL, channel TEXT NOT NULL, value BLOB, PRIMARY KEY (thread_id, thread_ts, task_id, idx));"
    )
    conn.close()
    result = cli("list", sqlite_url(ancient))
    assert result.exit_code == ExitCode.DATA
    assert "pre-1.0 SqliteSaver layout" in result.stderr


def test_new_store_gets_the_savers_exact_schema(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "d.jsonl"
    target = tmp_path / "new.db"
    cli("export", sqlite_url(official_db), str(dump))
    cli("import", str(dump), sqlite_url(target))

    def schema(path: Path) -> list[tuple[str, str]]:
        conn = sqlite3.connect(path)
        rows = conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
        conn.close()
        return [(n, " ".join(s.split()) if s else "") for n, s in rows]

    assert schema(target) == schema(official_db)
    mode = sqlite3.connect(target).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
