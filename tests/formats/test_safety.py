"""Decoding never runs stored code: hostile ext payloads and pickles stay inert data."""

from __future__ import annotations

import json
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import ormsgpack

from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, sqlite_url
from tests.test_docs import _validate_file


class _Exploit:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch {self.target}",))


def _ext(code: int, payload: list[Any]) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, ormsgpack.packb(payload))


def _plant(db: Path, target: Path) -> None:
    """Put hostile values into the latest root checkpoint of thread-1 and into its writes."""
    conn = sqlite3.connect(db)
    thread, ns, cid, blob = conn.execute(
        "SELECT thread_id, checkpoint_ns, checkpoint_id, checkpoint FROM checkpoints "
        "WHERE thread_id = 'thread-1' AND checkpoint_ns = '' ORDER BY checkpoint_id DESC LIMIT 1"
    ).fetchone()
    checkpoint = ormsgpack.unpackb(blob, ext_hook=lambda c, d: ormsgpack.Ext(c, d), option=ormsgpack.OPT_NON_STR_KEYS)
    checkpoint["channel_values"]["evil_system"] = _ext(0, ["os", "system", f"touch {target}"])
    checkpoint["channel_values"]["evil_kw"] = _ext(2, ["subprocess", "run", {"args": ["touch", str(target)]}])
    checkpoint["channel_values"]["evil_method"] = _ext(3, ["os", "system", f"touch {target}", "__call__"])
    new_blob = ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS)
    conn.execute(
        "UPDATE checkpoints SET checkpoint = ? WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?",
        (new_blob, thread, ns, cid),
    )
    conn.execute(
        "INSERT INTO writes VALUES (?, ?, ?, 'evil-task', '', 0, 'evil', 'pickle', ?)",
        (thread, ns, cid, pickle.dumps(_Exploit(target))),
    )
    conn.commit()
    conn.close()


def test_show_and_export_never_execute_stored_data(
    cli: Cli, db_copy: Path, tmp_path: Path, no_pwned_file: Path
) -> None:
    _plant(db_copy, no_pwned_file)
    shown = cli("show", sqlite_url(db_copy), "thread-1", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert view["values"]["evil_system"] == {"$type": "os.system", "value": f"touch {no_pwned_file}"}
    assert view["values"]["evil_kw"]["$type"] == "subprocess.run"
    evil_write = next(w for w in view["pending_writes"] if w["channel"] == "evil")
    assert evil_write["value"]["$opaque"] == "pickle" and evil_write["value"]["data"]
    table = cli("show", sqlite_url(db_copy), "thread-1", "-o", "table")
    assert table.exit_code == 0 and "os.system" in table.stdout
    dump = tmp_path / "dump.jsonl"
    assert cli("export", sqlite_url(db_copy), str(dump), "--decode").exit_code == 0
    assert "os" in dump.read_text() and not no_pwned_file.exists()
    _validate_file(dump)
    restored = tmp_path / "restored.db"
    assert cli("import", str(dump), sqlite_url(restored)).exit_code == 0


def test_langgraphs_own_decoder_would_call_the_named_function() -> None:
    """The hazard is real: LangGraph's permissive decoder calls what an ext payload names."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    payload = ormsgpack.packb(_ext(0, ["builtins", "len", "abcd"]))
    assert JsonPlusSerializer().loads_typed(("msgpack", payload)) == 4
    from ckpt.backends.core.base import Payload
    from ckpt.formats.payloads import PayloadDecoder

    assert PayloadDecoder().decode(Payload("msgpack", payload)) == {"$ext": 0, "v": ["builtins", "len", "abcd"]}


def test_corrupt_blob_is_named_and_the_rest_still_listed(cli: Cli, db_copy: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(db_copy)
    thread, cid = conn.execute(
        "SELECT thread_id, checkpoint_id FROM checkpoints WHERE thread_id = 'thread-2' AND checkpoint_ns = '' "
        "ORDER BY checkpoint_id DESC LIMIT 1"
    ).fetchone()
    conn.execute("UPDATE checkpoints SET checkpoint = X'c1c1c1' WHERE checkpoint_id = ?", (cid,))
    total = conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
    conn.commit()
    conn.close()
    listed = cli("list", sqlite_url(db_copy), "--checkpoints", "-o", "jsonl")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == total
    shown = cli("show", sqlite_url(db_copy), thread)
    assert shown.exit_code == ExitCode.DATA
    assert shown.stderr.startswith(f"error: cannot decode thread '{thread}', ns '', checkpoint {cid}: ")
    dump = tmp_path / "dump.jsonl"
    exported = cli("export", sqlite_url(db_copy), str(dump), "--decode")
    assert exported.exit_code == ExitCode.DATA
    assert f"checkpoint {cid}" in exported.stderr
    assert _validate_file(dump) == total + 1
    assert cli("show", sqlite_url(db_copy), "thread-1").exit_code == 0
