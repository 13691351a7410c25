"""export → import must give back what the official saver wrote, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ckpt.backends.core.errors import ExitCode
from tests.conftest import Cli, file_hash, sqlite_url, table_rows
from tests.support import resume, saver_view

THREADS = ("thread-1", "thread-2", "thread-3")


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_round_trip_is_byte_identical(cli: Cli, official_db: Path, tmp_path: Path, suffix: str) -> None:
    dump = tmp_path / f"dump{suffix}"
    restored = tmp_path / "restored.db"
    assert cli("export", sqlite_url(official_db), str(dump)).exit_code == 0
    result = cli("import", str(dump), sqlite_url(restored))
    assert result.exit_code == 0, result.stderr
    for table in ("checkpoints", "writes"):
        original = table_rows(official_db, table)
        assert original, f"the official store has no {table}"
        assert table_rows(restored, table) == original


def test_official_saver_sees_the_same_history_and_resumes(
    cli: Cli, official_db: Path, db_copy: Path, tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    restored = tmp_path / "restored.db"
    cli("export", sqlite_url(official_db), str(dump))
    cli("import", str(dump), sqlite_url(restored))
    for thread in THREADS:
        assert saver_view(restored, thread) == saver_view(official_db, thread)
    waiting = saver_view(restored, "thread-3")[0]
    assert waiting["next"] == ("approve",)
    after_import = resume(restored, "thread-3")
    after_original = resume(db_copy, "thread-3")
    assert [m.content for m in after_import["messages"]] == [m.content for m in after_original["messages"]]
    assert after_import["messages"][-1].content == "approval: yes"
    assert saver_view(restored, "thread-3")[0]["next"] == ()


def test_second_import_writes_nothing(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    target = tmp_path / "t.db"
    cli("export", sqlite_url(official_db), str(dump))
    first = json.loads(cli("import", str(dump), sqlite_url(target), "-o", "json").stdout)
    before = file_hash(target)
    second = json.loads(cli("import", str(dump), sqlite_url(target), "-o", "json").stdout)
    assert first["checkpoints_written"] == 29 and first["checkpoints_skipped"] == 0
    assert second["checkpoints_written"] == 0 and second["writes_written"] == 0
    assert second["checkpoints_skipped"] == first["checkpoints_written"]
    assert table_rows(target, "writes") == table_rows(official_db, "writes")
    assert before  # the file exists and was not recreated


def test_export_filters_by_thread_and_time(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "one.jsonl"
    cli("export", sqlite_url(official_db), str(dump), "--thread", "thread-2")
    lines = [json.loads(line) for line in dump.read_text().splitlines()]
    assert {line["thread_id"] for line in lines[1:]} == {"thread-2"}
    assert len(lines) - 1 == len([r for r in table_rows(official_db, "checkpoints") if r[0] == "thread-2"])
    future = tmp_path / "future.jsonl"
    cli("export", sqlite_url(official_db), str(future), "--since", "2999-01-01")
    assert len(future.read_text().splitlines()) == 1  # header only
    past = tmp_path / "past.jsonl"
    cli("export", sqlite_url(official_db), str(past), "--until", "1d")
    assert len(past.read_text().splitlines()) == 1


def test_export_records_are_in_key_order_with_a_header(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    cli("export", sqlite_url(official_db), str(dump))
    header, *records = (json.loads(line) for line in dump.read_text().splitlines())
    assert header["format"] == "ckpt/jsonl" and header["version"] == 1
    assert header["source"]["kind"] == "sqlite" and header["source"]["layout"]["task_path"] is True
    keys = [(r["thread_id"], r["checkpoint_ns"], r["checkpoint_id"]) for r in records]
    assert keys == sorted(keys)


def test_export_to_stdout(cli: Cli, official_db: Path) -> None:
    result = cli("export", sqlite_url(official_db), "-", "--thread", "thread-1")
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["format"] == "ckpt/jsonl"
    assert all(json.loads(line)["thread_id"] == "thread-1" for line in lines[1:])


@pytest.mark.parametrize(
    ("mangle", "line_no"),
    [
        (lambda lines: lines[:5] + [lines[5][: len(lines[5]) // 2]], 6),
        (lambda lines: lines[:3] + ["{not json"] + lines[4:], 4),
        (lambda lines: lines[:2] + [lines[2].replace('"checkpoint_id"', '"checkpoint_idx"')] + lines[3:], 3),
    ],
    ids=["truncated-last-line", "invalid-json", "missing-field"],
)
def test_bad_jsonl_line_is_named_and_nothing_is_written(
    cli: Cli, official_db: Path, tmp_path: Path, mangle: object, line_no: int
) -> None:
    dump = tmp_path / "dump.jsonl"
    cli("export", sqlite_url(official_db), str(dump))
    lines = dump.read_text().splitlines()
    dump.write_text("\n".join(mangle(lines)) + ("" if line_no == 6 else "\n"))  # type: ignore[operator]
    target = tmp_path / "target.db"
    result = cli("import", str(dump), sqlite_url(target))
    assert result.exit_code == ExitCode.DATA
    assert result.stderr.startswith(f"error: {dump}:{line_no}: ")
    assert len(result.stderr.splitlines()) == 1
    assert not target.exists() or not table_rows(target, "checkpoints")


def test_bad_line_leaves_an_existing_target_untouched(
    cli: Cli, official_db: Path, db_copy: Path, tmp_path: Path
) -> None:
    dump = tmp_path / "dump.jsonl"
    other = tmp_path / "other.db"
    from tests.conftest import make_official_store

    make_official_store(other, threads=1)
    cli("export", sqlite_url(other), str(dump))
    with dump.open("a") as handle:
        handle.write('{"thread_id": 1}\n')
    before = table_rows(db_copy, "checkpoints")
    assert cli("import", str(dump), sqlite_url(db_copy)).exit_code == ExitCode.DATA
    assert table_rows(db_copy, "checkpoints") == before


def test_failed_export_leaves_no_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    result = cli("export", sqlite_url(tmp_path / "missing.db"), str(target))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert not target.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_export_target_must_be_jsonl(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    result = cli("export", sqlite_url(official_db), str(tmp_path / "out.csv"))
    assert result.exit_code == ExitCode.USAGE
    assert "must end in .jsonl or .jsonl.gz" in result.stderr
