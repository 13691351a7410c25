"""prune and compact change rows of a known store only (issue #17).

They refuse a file that is not a checkpoint store (exit 5) without creating or altering schema
or switching the journal mode; a file from an older saver (no ``writes.task_path``) is pruned
as it is; and the integrity guard rolls back a batch that would take a kept checkpoint's writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends import CheckpointKey, open_store
from ckpt.backends.core.errors import ExitCode
from ckpt.backends.sqlite import store as sqlite_driver
from ckpt.backends.sqlite.delete import DeleteBatch
from ckpt.backends.sqlite.layout import SCHEMA_3_1_2
from tests.conftest import Cli, file_hash, sqlite_url, table_rows
from tests.servers import mongo_database, postgres_schema, redis_prefix

VERBS = {
    "prune": ["prune", "--keep-last", "1", "--min-idle", "0s", "--yes"],
    "compact": ["compact", "--min-idle", "0s", "--yes"],
}


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (9.5)")
    conn.commit()
    conn.close()


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _drifted(column: str) -> Callable[[Path], None]:
    """The saver's schema, except that ``writes`` lost ``column``: no saver ever wrote that."""

    def make(path: Path) -> None:
        conn = sqlite3.connect(path)
        conn.executescript(SCHEMA_3_1_2.replace(f"    {column} ", f"    {column}_gone ", 1))
        conn.close()

    return make


FILES = {
    "unrelated-table": _foreign,
    "zero-bytes": _empty,
    "writes-without-channel": _drifted("channel"),
    "writes-without-value": _drifted("value"),
}


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("kind", sorted(FILES))
def test_a_file_that_is_not_a_store_is_refused_and_left_byte_for_byte(
    cli: Cli, tmp_path: Path, verb: str, kind: str
) -> None:
    path = tmp_path / "foreign.db"
    FILES[kind](path)
    before = file_hash(path)
    result = cli(*VERBS[verb][:1], sqlite_url(path), *VERBS[verb][1:])
    assert result.exit_code == ExitCode.DATA, result.output
    assert len(result.stderr.splitlines()) == 1 and str(path) in result.stderr
    assert file_hash(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign.db"]  # no -wal, -shm or lock file


def test_the_writes_table_check_names_the_missing_column(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "drifted.db"
    _drifted("channel")(path)
    result = cli("prune", sqlite_url(path), "--keep-last", "1", "--min-idle", "0s", "--yes")
    assert "writes lacks column(s) channel" in result.stderr


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_a_missing_file_is_not_created(cli: Cli, tmp_path: Path, verb: str) -> None:
    path = tmp_path / "missing.db"
    result = cli(*VERBS[verb][:1], sqlite_url(path), *VERBS[verb][1:])
    assert result.exit_code == ExitCode.NOT_FOUND
    assert not path.exists() and list(tmp_path.iterdir()) == []


def _without_task_path(path: Path) -> None:
    """The writes table of langgraph-checkpoint-sqlite <= 3.1.1 (spec §3.4)."""
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE writes DROP COLUMN task_path")  # SQLite >= 3.35
    conn.close()


def _columns(path: Path, table: str) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [c[1] for c in conn.execute(f"PRAGMA table_info({table})")]
    finally:
        conn.close()


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_an_old_layout_is_changed_in_its_rows_only(cli: Cli, db_copy: Path, verb: str) -> None:
    _without_task_path(db_copy)
    columns, journal = _columns(db_copy, "writes"), _journal_mode(db_copy)
    checkpoints = len(table_rows(db_copy, "checkpoints"))
    result = cli(*VERBS[verb][:1], sqlite_url(db_copy), *VERBS[verb][1:])
    assert result.exit_code == 0, result.output
    assert _columns(db_copy, "writes") == columns and "task_path" not in columns
    assert _journal_mode(db_copy) == journal
    if verb == "prune":
        assert len(table_rows(db_copy, "checkpoints")) < checkpoints


def _kept_with_writes(url: str) -> CheckpointKey:
    """A checkpoint ``--keep-last 1`` keeps (newest of its thread and namespace) that has writes."""
    with open_store(url) as store:
        newest = {(h.key.thread_id, h.key.checkpoint_ns): h for h in store.headers()}
    return next(h.key for h in newest.values() if h.writes_count)


def test_the_guard_rolls_back_a_batch_that_takes_a_kept_checkpoints_writes(
    cli: Cli, db_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(db_copy)
    kept = _kept_with_writes(url)

    def plant(batch: DeleteBatch) -> None:
        batch.writes.append((kept.thread_id, kept.checkpoint_ns, kept.checkpoint_id))

    monkeypatch.setattr(sqlite_driver, "before_delete", plant)
    rows = table_rows(db_copy, "checkpoints"), table_rows(db_copy, "writes")
    result = cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes", "--batch-size", "100000")
    assert result.exit_code == ExitCode.INTEGRITY, result.output
    assert f"thread {kept.thread_id!r}" in result.stderr and kept.checkpoint_id in result.stderr
    assert (table_rows(db_copy, "checkpoints"), table_rows(db_copy, "writes")) == rows


def test_the_guard_stops_compact_from_taking_writes_whose_checkpoint_remains(
    cli: Cli, db_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(db_copy)
    kept = _kept_with_writes(url)
    planted = (kept.thread_id, kept.checkpoint_ns, kept.checkpoint_id)
    monkeypatch.setattr(sqlite_driver, "before_delete", lambda batch: batch.writes.append(planted))
    rows = table_rows(db_copy, "writes")
    result = cli("compact", url, "--min-idle", "0s", "--yes")
    assert result.exit_code == ExitCode.INTEGRITY, result.output
    assert table_rows(db_copy, "writes") == rows


def test_without_a_plant_the_guard_lets_prune_and_compact_through(cli: Cli, db_copy: Path) -> None:
    url = sqlite_url(db_copy)
    assert cli("prune", url, "--keep-last", "1", "--min-idle", "0s", "--yes").exit_code == 0
    assert cli("compact", url, "--min-idle", "0s", "--yes").exit_code == 0


def _postgres_tables(libpq_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(libpq_url) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
        return sorted(r[0] for r in rows.fetchall())


def _mongo_collections(url: str) -> list[str]:
    import pymongo

    client: pymongo.MongoClient[Any] = pymongo.MongoClient(url)
    try:
        return sorted(client.get_default_database().list_collection_names())
    finally:
        client.close()


def _redis_indexes(url: str) -> list[str]:
    import redis

    client = redis.Redis.from_url(url.split("?", 1)[0])
    try:
        return sorted(i.decode() for i in client.execute_command("FT._LIST"))  # type: ignore[no-untyped-call]
    finally:
        client.close()


@pytest.mark.parametrize("verb", sorted(VERBS))
@pytest.mark.parametrize("kind", ["mongodb", "postgres", "redis"])
def test_an_empty_server_place_is_refused_and_nothing_is_created(cli: Cli, kind: str, verb: str) -> None:
    """The driver's own write open sets a store up; destructive verbs first prove one is there."""
    with ExitStack() as stack:
        if kind == "postgres":
            url, libpq = stack.enter_context(postgres_schema())
            made: Callable[[], list[str]] = lambda: _postgres_tables(libpq)  # noqa: E731
        elif kind == "mongodb":
            url = stack.enter_context(mongo_database())
            made = lambda: _mongo_collections(url)  # noqa: E731
        else:
            url = stack.enter_context(redis_prefix())
            prefix = url.split("checkpoint_prefix=", 1)[1].split("&", 1)[0]
            made = lambda: [i for i in _redis_indexes(url) if i.startswith(prefix)]  # noqa: E731
        before = made()
        result = cli(*VERBS[verb][:1], url, *VERBS[verb][1:])
        assert result.exit_code == ExitCode.DATA, result.output
        assert len(result.stderr.splitlines()) == 1
        assert made() == before == []


def _pg_schema_shape(libpq: str) -> list[Any]:
    import psycopg

    with psycopg.connect(libpq) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() ORDER BY 1, 2"
        ).fetchall()
        indexes = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1")
        migrations = conn.execute("SELECT v FROM checkpoint_migrations ORDER BY v").fetchall()
        return [columns, indexes.fetchall(), migrations]


@pytest.mark.parametrize("verb", ["prune", "compact"])
def test_an_older_postgres_layout_is_pruned_without_a_migration(cli: Cli, official_db: Path, verb: str) -> None:
    """A store at migration v4 (PostgresSaver 2.0.0: no thread_id indexes, no task_path): prune and
    compact delete rows and add no column, index or migration (the saver's setup() is the app's call)."""
    import psycopg

    with postgres_schema() as (url, libpq):
        assert cli("migrate", sqlite_url(official_db), url).exit_code == 0
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute("ALTER TABLE checkpoint_writes DROP COLUMN task_path")
            for index in (
                "checkpoints_thread_id_idx",
                "checkpoint_blobs_thread_id_idx",
                "checkpoint_writes_thread_id_idx",
            ):
                conn.execute(f"DROP INDEX {index}")
            conn.execute("DELETE FROM checkpoint_migrations WHERE v > 4")
        shape = _pg_schema_shape(libpq)
        args = ["--keep-last", "1"] if verb == "prune" else []
        result = cli(verb, url, *args, "--min-idle", "0s", "--yes")
        assert result.exit_code == 0, result.output
        assert _pg_schema_shape(libpq) == shape
