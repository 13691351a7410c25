"""PostgreSQL against the official PostgresSaver: what ckpt writes it reads, what it wrote ckpt reads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ckpt.backends import CheckpointRecord, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.formats.semantic import semantic_form
from tests.conftest import Cli, sqlite_url
from tests.servers import postgres_schema
from tests.support import populate_official, resume, saver_view

THREADS = ("thread-1", "thread-2", "thread-3")


def _rows(libpq: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq) as conn:
        return conn.execute(sql).fetchall()


def _tables(libpq: str) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "checkpoints": _rows(
            libpq,
            "SELECT thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata "
            "FROM checkpoints ORDER BY 1, 2, 3",
        ),
        "blobs": _rows(libpq, "SELECT * FROM checkpoint_blobs ORDER BY 1, 2, 3, 4"),
        "writes": _rows(libpq, "SELECT * FROM checkpoint_writes ORDER BY 1, 2, 3, 4, 5"),
        "migrations": _rows(libpq, "SELECT v FROM checkpoint_migrations ORDER BY v"),
    }


def test_sqlite_to_postgres_reads_and_resumes_with_the_official_saver(
    cli: Cli, official_db: Path, db_copy: Path
) -> None:
    with postgres_schema() as (url, libpq):
        result = cli("migrate", sqlite_url(official_db), url, "--verify", "-o", "json")
        assert result.exit_code == 0, result.stdout
        assert json.loads(result.stdout)["verify"]["ok"] is True
        assert [r[0] for r in _tables(libpq)["migrations"]] == list(range(10))
        before = _tables(libpq)
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(libpq) as saver:
            saver.setup()  # must be a no-op on what ckpt created
        assert _tables(libpq) == before
        for thread in THREADS:
            assert saver_view(libpq, thread) == saver_view(official_db, thread)
        after_pg = resume(libpq, "thread-3")
        after_sqlite = resume(db_copy, "thread-3")
        assert [m.content for m in after_pg["messages"]] == [m.content for m in after_sqlite["messages"]]
        assert saver_view(libpq, "thread-3")[0]["next"] == ()


def test_postgres_written_by_the_saver_to_sqlite_and_back(cli: Cli, tmp_path: Path) -> None:
    with postgres_schema() as (src_url, src_libpq), postgres_schema() as (dst_url, dst_libpq):
        populate_official(src_libpq)
        target = tmp_path / "from-pg.db"
        assert cli("migrate", src_url, sqlite_url(target), "--verify").exit_code == 0
        for thread in THREADS:
            assert saver_view(target, thread) == saver_view(src_libpq, thread)
        resume(target, "thread-3")
        assert saver_view(target, "thread-3")[0]["values"]["messages"][-1].content == "approval: yes"
        # ... and back into a second schema: the saver's own rows come back identical.
        assert cli("migrate", sqlite_url(tmp_path / "from-pg.db"), dst_url, "--thread", "thread-[12]").exit_code == 0
        original, copied = _tables(src_libpq), _tables(dst_libpq)
        for table in ("checkpoints", "blobs", "writes"):
            assert [r for r in copied[table] if r[0] != "thread-3"] == [
                r for r in original[table] if r[0] != "thread-3"
            ], table


def test_postgres_to_jsonl_to_postgres_keeps_every_row(cli: Cli, tmp_path: Path) -> None:
    with postgres_schema() as (src_url, src_libpq), postgres_schema() as (dst_url, dst_libpq):
        populate_official(src_libpq)
        dump = tmp_path / "pg.jsonl.gz"
        assert cli("migrate", src_url, str(dump)).exit_code == 0
        assert cli("migrate", str(dump), dst_url, "--verify").exit_code == 0
        original, copied = _tables(src_libpq), _tables(dst_libpq)
        assert copied["blobs"] == original["blobs"] and copied["writes"] == original["writes"]
        assert copied["checkpoints"] == original["checkpoints"]  # JSONB compares by value
        for thread in THREADS:
            assert saver_view(dst_libpq, thread) == saver_view(src_libpq, thread)


def test_read_commands_do_not_write(cli: Cli, official_db: Path) -> None:
    with postgres_schema() as (url, libpq):
        cli("migrate", sqlite_url(official_db), url)
        before = _tables(libpq)
        for args in (("list", url), ("list", url, "-c"), ("show", url, "thread-3")):
            assert cli(*args, "-o", "json").exit_code == 0
        assert _tables(libpq) == before
        with open_store(url) as store:
            assert store.layout()["migration"] == 9 and store.layout()["task_path"] is True


def test_older_layouts_are_read(cli: Cli, official_db: Path) -> None:
    """2.0.0-2.0.21: no inline channel_values, `empty` blob rows, metadata as a JSON string, no task_path."""
    with postgres_schema() as (url, libpq):
        cli("migrate", sqlite_url(official_db), url)
        current = json.loads(cli("show", url, "thread-3", "-o", "json").stdout)
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob) "
                "SELECT c.thread_id, c.checkpoint_ns, v.key, c.checkpoint->'channel_versions'->>v.key, 'msgpack', "
                "CASE jsonb_typeof(v.value) WHEN 'number' THEN '\\x09'::bytea ELSE '\\xc0'::bytea END "
                "FROM checkpoints c, jsonb_each(c.checkpoint->'channel_values') v ON CONFLICT DO NOTHING"
            )
            conn.execute("UPDATE checkpoint_blobs SET blob = '\\x09' WHERE channel = 'counter' AND type = 'msgpack'")
            conn.execute("UPDATE checkpoints SET checkpoint = checkpoint - 'channel_values'")
            empty = conn.execute(  # every versioned channel without a value got an `empty` row
                "INSERT INTO checkpoint_blobs SELECT c.thread_id, c.checkpoint_ns, v.key, v.value, 'empty', NULL "
                "FROM checkpoints c, jsonb_each_text(c.checkpoint->'channel_versions') v ON CONFLICT DO NOTHING"
            ).rowcount
            assert empty > 0
            conn.execute("UPDATE checkpoints SET metadata = to_jsonb(metadata::text)")
            conn.execute("ALTER TABLE checkpoint_writes DROP COLUMN task_path")
            conn.execute("DELETE FROM checkpoint_migrations WHERE v = 9")
        old = json.loads(cli("show", url, "thread-3", "-o", "json").stdout)
        assert old["values"]["counter"] == 9 and old["values"]["messages"] == current["values"]["messages"]
        assert old["metadata"] == current["metadata"] and old["next"] == ["approve"]
        assert all(w["task_path"] == "" for w in old["pending_writes"])
        rows = [json.loads(line) for line in cli("list", url, "-c", "-o", "jsonl").stdout.splitlines()]
        assert len(rows) == 29 and {r["source"] for r in rows} == {"input", "loop"}


def test_shallow_saver_tables_are_refused(cli: Cli, official_db: Path) -> None:
    with postgres_schema() as (url, libpq):
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE checkpoints (thread_id TEXT NOT NULL, checkpoint_ns TEXT NOT NULL DEFAULT '', "
                "type TEXT, checkpoint JSONB NOT NULL, metadata JSONB NOT NULL DEFAULT '{}', "
                "PRIMARY KEY (thread_id, checkpoint_ns))"
            )
        for args in (("list", url), ("migrate", sqlite_url(official_db), url)):
            result = cli(*args)
            assert result.exit_code == ExitCode.DATA
            assert "ShallowPostgresSaver tables" in result.stderr
        assert _rows(libpq, "SELECT count(*) FROM checkpoints") == [(0,)]


def test_unknown_schema_is_refused_before_writing(cli: Cli, official_db: Path) -> None:
    with postgres_schema() as (url, _libpq):
        missing = url.rsplit("schema=", 1)[0] + "schema=no_such_schema"
        result = cli("migrate", sqlite_url(official_db), missing)
        assert result.exit_code == ExitCode.NOT_FOUND
        assert result.stderr.startswith("error: schema 'no_such_schema' does not exist")


@pytest.mark.parametrize(
    "make_url",
    [
        lambda base: "postgresql://ckpt_secret:hunter2@127.0.0.1:" + base.rsplit(":", 1)[1].split("/")[0] + "/postgres",
        lambda base: "postgresql://postgres:hunter2@127.0.0.1:1/postgres",
    ],
    ids=["wrong-password", "unreachable"],
)
def test_connection_failures_are_one_line_without_the_password(cli: Cli, official_db: Path, make_url: Any) -> None:
    from tests.servers import server_url

    url = make_url(server_url("postgres"))
    result = cli("migrate", sqlite_url(official_db), url)
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "hunter2" not in result.stderr and "hunter2" not in result.stdout
    assert result.stderr.startswith("error: cannot connect to postgresql://")
    assert len(result.stderr.splitlines()) == 1


def test_encrypted_checkpoint_cannot_be_split_and_says_so(cli: Cli, tmp_path: Path) -> None:
    from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    from examples.graphs import populate, serializer
    from tests.formats.test_payloads import KEY

    path = tmp_path / "enc.db"
    with SqliteSaver.from_conn_string(str(path)) as saver:
        saver.serde = EncryptedSerializer.from_pycryptodome_aes(serde=serializer(), key=KEY.encode())
        populate(saver, threads=1)
    with postgres_schema() as (url, libpq):
        result = cli("migrate", sqlite_url(path), url)
        assert result.exit_code == ExitCode.DATA
        assert "'msgpack+aes' checkpoint payload cannot be split into the PostgreSQL layout" in result.stderr
        assert _rows(libpq, "SELECT count(*) FROM checkpoints") == [(0,)]


def _with_int_versions(record: CheckpointRecord) -> CheckpointRecord:
    """The record as an int-version saver (MongoDBSaver, CouchbaseSaver) would have written it."""
    import ormsgpack

    def ext(code: int, data: bytes) -> ormsgpack.Ext:
        return ormsgpack.Ext(code, data)

    checkpoint = ormsgpack.unpackb(record.checkpoint.data, ext_hook=ext, option=ormsgpack.OPT_NON_STR_KEYS)

    def counter(version: Any) -> Any:
        return int(version.split(".")[0]) if isinstance(version, str) else version

    checkpoint["channel_versions"] = {k: counter(v) for k, v in checkpoint["channel_versions"].items()}
    checkpoint["versions_seen"] = {
        node: {k: counter(v) for k, v in seen.items()} for node, seen in checkpoint["versions_seen"].items()
    }
    data = ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS)
    return replace(record, checkpoint=replace(record.checkpoint, data=data))


def test_int_channel_versions_become_padded_strings(cli: Cli, official_db: Path, db_copy: Path) -> None:
    with open_store(sqlite_url(official_db)) as source:
        records = [_with_int_versions(r) for r in source.records()]
    with postgres_schema() as (url, libpq):
        with open_store(url, write=True) as target:
            target.write(records)
        versions = _rows(libpq, "SELECT DISTINCT version FROM checkpoint_blobs")
        assert versions and all(len(v.split(".")[0]) == 32 for (v,) in versions)
        for thread in THREADS:
            got, want = saver_view(libpq, thread), saver_view(official_db, thread)
            assert [(h["values"], h["next"], h["tasks"], h["pending_writes"]) for h in got] == [
                (h["values"], h["next"], h["tasks"], h["pending_writes"]) for h in want
            ]
        with open_store(url) as store:  # versions compare by counter: the same checkpoints as the source
            assert [semantic_form(r) for r in store.records()] == [semantic_form(r) for r in records]
        resume(libpq, "thread-3")
        assert saver_view(libpq, "thread-3")[0]["values"]["messages"][-1].content == "approval: yes"


def test_a_row_that_cannot_be_assembled_stops_the_read_after_the_records_before_it(
    official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next page is fetched in a thread while this one is assembled: a checkpoint whose blob
    cannot be embedded still raises where it stands, after every record before it (pages of 4)."""
    from ckpt.backends.core.errors import CorruptRecordError
    from ckpt.backends.postgres import reads

    monkeypatch.setattr(reads, "PAGE", 4)
    with postgres_schema() as (url, libpq):
        with open_store(sqlite_url(official_db)) as source, open_store(url, write=True) as target:
            target.write(list(source.records()))
        with open_store(url) as store:
            keys = [r.key for r in store.records()]
        bad = keys[len(keys) // 2]
        with psycopg.connect(libpq, autocommit=True) as conn:
            blob = conn.execute(
                "SELECT b.channel, b.version FROM checkpoints c, "
                "jsonb_each_text(c.checkpoint -> 'channel_versions') v, checkpoint_blobs b "
                "WHERE c.thread_id = %s AND c.checkpoint_ns = %s AND c.checkpoint_id = %s "
                "AND b.thread_id = c.thread_id AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = v.key "
                "AND b.version = v.value AND b.type = 'msgpack' LIMIT 1",
                (bad.thread_id, bad.checkpoint_ns, bad.checkpoint_id),
            ).fetchone()
            assert blob is not None
            conn.execute(
                "UPDATE checkpoint_blobs SET type = 'no-such-type' WHERE thread_id = %s AND checkpoint_ns = %s "
                "AND channel = %s AND version = %s",
                (bad.thread_id, bad.checkpoint_ns, *blob),
            )
        read: list[Any] = []
        with open_store(url) as store, pytest.raises(CorruptRecordError, match="cannot be embedded"):
            for record in store.records():
                read.append(record.key)
        first_bad = next(i for i, key in enumerate(keys) if key.thread_id == bad.thread_id and key not in read)
        assert read == keys[:first_bad] and first_bad <= keys.index(bad)


@pytest.mark.parametrize("write", [False, True])
def test_the_urls_own_options_are_kept(official_db: Path, write: bool) -> None:
    """``options`` in the URL (libpq's ``-c name=value``) reach the server beside ckpt's own
    (a read-only open adds ``default_transaction_read_only``, which used to replace them)."""
    with postgres_schema() as (url, _):
        with open_store(sqlite_url(official_db)) as source, open_store(url, write=True) as target:
            target.write(list(source.records()))
        with open_store(f"{url}&options=-c%20statement_timeout%3D12345", write=write) as store:
            conn = store._conn  # type: ignore[attr-defined]
            assert conn.execute("SHOW statement_timeout").fetchone()[0] == "12345ms"
            read_only = conn.execute("SHOW default_transaction_read_only").fetchone()[0]
            assert read_only == ("off" if write else "on")
            assert len(list(store.records())) == 29
