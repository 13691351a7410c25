"""Encrypted, pickled and unknown payloads: shown opaque or decrypted, never dropped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ckpt.backends import Payload
from ckpt.backends.core.errors import ExitCode, UsageError
from ckpt.formats.payloads import PayloadDecoder, aes_key_from
from examples.graphs import populate, serializer
from tests.conftest import Cli, sqlite_url, table_rows

KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def encrypted_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = tmp_path_factory.mktemp("aes") / "enc.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = EncryptedSerializer.from_pycryptodome_aes(serde=serializer(), key=KEY.encode())
        populate(saver, threads=2)
    return path


def test_encrypted_store_is_opaque_without_a_key(cli: Cli, encrypted_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGGRAPH_AES_KEY", raising=False)
    types = {row[8] for row in table_rows(encrypted_db, "checkpoints")}
    assert types == {"msgpack+aes"}
    result = cli("show", sqlite_url(encrypted_db), "thread-2", "-o", "json")
    assert result.exit_code == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["values"]["$opaque"] == "msgpack+aes" and view["values"]["data"] and view["next"] == []
    writes = view["pending_writes"]
    assert writes and all(w["value"] is None or w["value"].get("$opaque", "").endswith("+aes") for w in writes)
    assert "pass --aes-key" in writes[0]["value"]["reason"]


def test_encrypted_store_is_shown_decrypted_with_the_key(
    cli: Cli, encrypted_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = json.loads(cli("show", sqlite_url(encrypted_db), "thread-2", "--aes-key", KEY, "-o", "json").stdout)
    assert view["next"] == ["approve"]
    assert view["values"]["messages"][0]["content"] == "find papers for thread-2"
    monkeypatch.setenv("LANGGRAPH_AES_KEY", KEY)
    from_env = json.loads(cli("show", sqlite_url(encrypted_db), "thread-2", "-o", "json").stdout)
    assert from_env["values"] == view["values"]


def test_wrong_key_is_a_one_line_error(cli: Cli, encrypted_db: Path) -> None:
    result = cli("show", sqlite_url(encrypted_db), "thread-2", "--aes-key", "x" * 16)
    assert result.exit_code == ExitCode.DATA
    assert "wrong AES key?" in result.stderr and len(result.stderr.splitlines()) == 1
    short = cli("show", sqlite_url(encrypted_db), "thread-2", "--aes-key", "short")
    assert short.exit_code == ExitCode.USAGE


def test_encrypted_round_trip_is_byte_identical(cli: Cli, encrypted_db: Path, tmp_path: Path) -> None:
    dump, restored = tmp_path / "e.jsonl", tmp_path / "e.db"
    cli("export", sqlite_url(encrypted_db), str(dump), "--decode")
    cli("import", str(dump), sqlite_url(restored))
    for table in ("checkpoints", "writes"):
        assert table_rows(restored, table) == table_rows(encrypted_db, table)


def test_unknown_and_special_tags() -> None:
    decoder = PayloadDecoder()
    assert decoder.decode(Payload("null", b"")) is None
    assert decoder.decode(Payload("msgpack", b"\xc0")) is None  # None as written before checkpoint 2.0.24
    assert decoder.decode(Payload("bytes", b"\x01")) == {"$bin": "AQ=="}
    assert decoder.decode(Payload("bytearray", b"\x01")) == {"$bytearray": "AQ=="}
    assert decoder.decode(Payload("json", b'{"lc": 2}')) == {"lc": 2}
    weird = decoder.decode(Payload("protobuf", b"\x08\x01"))
    assert weird == {"$opaque": "protobuf", "data": "CAE=", "reason": "unknown serialization type 'protobuf'"}
    assert decoder.decode(Payload("msgpack+rot13", b"x"))["$opaque"] == "msgpack+rot13"


def test_aes_key_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANGGRAPH_AES_KEY", raising=False)
    assert aes_key_from(None) is None
    assert aes_key_from("k" * 24) == b"k" * 24
    with pytest.raises(UsageError):
        aes_key_from("k" * 10)


def test_encrypted_metadata_rows_stay_plain(encrypted_db: Path) -> None:
    """SqliteSaver never encrypts metadata (spec §3.2); list can read it without a key."""
    conn = sqlite3.connect(f"file:{encrypted_db}?mode=ro", uri=True)
    metadata = conn.execute("SELECT metadata FROM checkpoints LIMIT 1").fetchone()[0]
    conn.close()
    assert json.loads(metadata)["source"] in ("input", "loop")
