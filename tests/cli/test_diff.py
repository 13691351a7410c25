"""diff between consecutive checkpoints of real graphs, and of one thread across two stores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import ormsgpack

from ckpt.backends import open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.formats.diff import apply_patch, document, json_patch
from ckpt.formats.payloads import PayloadDecoder
from ckpt.formats.state import view_record
from tests.conftest import Cli, sqlite_url
from tests.servers import postgres_schema


def _root_ids(path: Path, thread: str) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = conn.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = '' ORDER BY checkpoint_id",
        (thread,),
    ).fetchall()
    conn.close()
    return [r[0] for r in rows]


def test_consecutive_checkpoints_name_appended_messages_and_changed_channels(cli: Cli, official_db: Path) -> None:
    ids = _root_ids(official_db, "thread-1")
    result = cli("diff", sqlite_url(official_db), "thread-1", "--from", ids[1], "--to", ids[2], "-o", "table")
    assert result.exit_code == ExitCode.ERROR
    assert "messages + [ai] Let me look that up.  → lookup(query='find papers for thread-1')" in result.stdout
    assert "counter added: 1" in result.stdout and "branch:to" not in result.stdout
    latest = cli("diff", sqlite_url(official_db), "thread-1", "-o", "table").stdout
    assert "messages + [human] approval: yes" in latest and 'next: ["approve"] → []' in latest
    assert "branch:to:" in cli("diff", sqlite_url(official_db), "thread-1", "--all", "-o", "table").stdout


def test_json_output_is_a_patch_that_rebuilds_the_newer_checkpoint(cli: Cli, official_db: Path) -> None:
    ids = _root_ids(official_db, "thread-2")
    patch = json.loads(
        cli("diff", sqlite_url(official_db), "thread-2", "--from", ids[0], "--to", ids[-1], "-o", "json").stdout
    )
    assert {op["op"] for op in patch} <= {"add", "remove", "replace"} and patch
    with open_store(sqlite_url(official_db)) as store:
        records = {r.key.checkpoint_id: r for r in store.records() if r.key.thread_id == "thread-2"}
    older, newer = (document(view_record(records[i], PayloadDecoder())) for i in (ids[0], ids[-1]))
    assert apply_patch(older, patch) == newer
    assert json_patch(newer, newer) == []
    same = cli("diff", sqlite_url(official_db), "thread-2", "--from", ids[-1], "--to", ids[-1])
    assert same.exit_code == 0


def test_two_stores_after_a_migration_then_after_a_change(cli: Cli, official_db: Path, db_copy: Path) -> None:
    with postgres_schema() as (url, _):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        equal = cli("diff", sqlite_url(official_db), url, "--thread", "thread-3", "-o", "table")
        assert equal.exit_code == 0 and "identical in both stores" in equal.stdout
        conn = sqlite3.connect(db_copy)
        cid, blob = conn.execute(
            "SELECT checkpoint_id, checkpoint FROM checkpoints WHERE thread_id = 'thread-3' AND checkpoint_ns = '' "
            "ORDER BY checkpoint_id DESC LIMIT 1"
        ).fetchone()
        checkpoint = ormsgpack.unpackb(
            blob, ext_hook=lambda c, d: ormsgpack.Ext(c, d), option=ormsgpack.OPT_NON_STR_KEYS
        )
        checkpoint["channel_values"]["counter"] = 42
        conn.execute(
            "UPDATE checkpoints SET checkpoint = ? WHERE checkpoint_id = ?", (ormsgpack.packb(checkpoint), cid)
        )
        conn.commit()
        conn.close()
        changed = cli("diff", sqlite_url(db_copy), url, "--thread", "thread-3", "-o", "json")
        assert changed.exit_code == ExitCode.ERROR
        assert json.loads(changed.stdout) == {cid: [{"op": "replace", "path": "/values/counter", "value": 9}]}
