"""Read commands never change a store, never create one, and fail clearly on bad input."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, file_hash, sqlite_url

READ_COMMANDS = [
    ("list",),
    ("list", "--checkpoints"),
    ("show", "{url}", "thread-3"),
    ("export", "{url}", "{out}"),
]


def _journal_mode(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def _run_all_reads(cli: Cli, path: Path, tmp_path: Path) -> None:
    url = sqlite_url(path)
    for args in (
        ("list", url),
        ("list", url, "--checkpoints"),
        ("show", url, "thread-3"),
        ("show", url, "thread-1", "--ns", "x"),
    ):
        assert cli(*args, "-o", "json").exit_code in (0, ExitCode.NOT_FOUND)
    assert cli("export", url, str(tmp_path / "out.jsonl.gz"), "--decode").exit_code == 0


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_reads_leave_file_and_journal_mode_unchanged(cli: Cli, db_copy: Path, tmp_path: Path, journal: str) -> None:
    conn = sqlite3.connect(db_copy)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.close()
    before, mode = file_hash(db_copy), _journal_mode(db_copy)
    siblings = sorted(p.name for p in db_copy.parent.iterdir())
    _run_all_reads(cli, db_copy, tmp_path)
    assert file_hash(db_copy) == before
    assert _journal_mode(db_copy) == mode == journal
    assert sorted(p.name for p in db_copy.parent.iterdir() if p.name != "out.jsonl.gz") == siblings


def test_missing_file_is_an_error_and_is_not_created(cli: Cli, tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for args in (
        ("list", sqlite_url(missing)),
        ("show", sqlite_url(missing), "t"),
        ("export", sqlite_url(missing), "-"),
    ):
        result = cli(*args)
        assert result.exit_code == ExitCode.NOT_FOUND
        assert result.stderr == f"error: no such SQLite file: {missing}\n"
    assert not missing.exists()


def test_non_sqlite_file_is_refused(cli: Cli, tmp_path: Path) -> None:
    bogus = tmp_path / "notes.db"
    bogus.write_text("these are not the checkpoints you are looking for\n" * 20)
    before = file_hash(bogus)
    result = cli("list", sqlite_url(bogus))
    assert result.exit_code == ExitCode.DATA
    assert result.stderr.startswith(f"error: {bogus} is not a SQLite database")
    assert len(result.stderr.splitlines()) == 1
    assert file_hash(bogus) == before


def test_sqlite_file_without_checkpoint_tables_is_refused(cli: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = cli("list", sqlite_url(other))
    assert result.exit_code == ExitCode.DATA
    assert result.stderr == f"error: {other} has no LangGraph checkpoint tables (checkpoints, writes)\n"


def test_unknown_scheme_lists_known_schemes(cli: Cli) -> None:
    result = cli("list", "ftp://example.com/x")
    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith("error: unknown URL scheme 'ftp'; expected one of: ")
    assert "sqlite://" in result.stderr


def test_password_in_url_is_never_printed(cli: Cli) -> None:
    result = cli("list", "ftp://admin:hunter2@example.com/x")
    assert "hunter2" not in result.stderr and "hunter2" not in result.stdout
    assert "admin:***@" in result.stderr or "'ftp'" in result.stderr


def test_unknown_thread_is_not_found(cli: Cli, official_db: Path) -> None:
    result = cli("show", sqlite_url(official_db), "no-such-thread")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stderr == "error: no thread 'no-such-thread' in this store\n"
