"""`ckpt list` on a large SQLite file lists ranges of the thread ids shared by two processes at
once; what it prints must not change, in any streaming format or selection."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ckpt.backends.core.errors import DataError
from ckpt.backends.ops import forked
from ckpt.backends.sqlite import store as sqlite_driver
from tests.conftest import Cli, sqlite_url

ODD_IDS = ["", "a", "ab", "user-1", "user-10", "user-2", "Z", "é", "中文", "\U0001f600", "x" * 300, "new\nline"]


@pytest.fixture
def many_threads(db_copy: Path) -> Path:
    """The official store plus copies of one checkpoint under odd and numerous thread ids."""
    conn = sqlite3.connect(db_copy)
    row = conn.execute("SELECT * FROM checkpoints ORDER BY checkpoint_id LIMIT 1").fetchone()
    ids = ODD_IDS + [f"{n:08x}-{n % 7}" for n in range(0, 2**32, 2**32 // 500)]
    conn.executemany("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)", [(i, *row[1:]) for i in ids])
    conn.commit()
    conn.close()
    return db_copy


@pytest.fixture
def in_parts_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every listing is made in two processes; the number of parts of each listing that really was."""
    made: list[int] = []
    real = forked.in_parts

    def counted(parts: int, here: Callable[[int], Any], there: Callable[[], Any]) -> Iterator[Any]:
        made.append(parts)
        return real(parts, here, there)

    monkeypatch.setattr(forked, "in_parts", counted)
    monkeypatch.setattr(sqlite_driver, "worth_two_readers", lambda path: True)
    return made


@pytest.mark.parametrize(
    "args",
    [
        ["-o", "jsonl"],
        ["-o", "csv"],
        ["-o", "csv", "--thread", "user-*"],
        ["-o", "jsonl", "--ns", ""],
        ["-o", "jsonl", "--sizes"],
        ["-o", "csv", "--thread", "nothing-*"],
    ],
)
def test_two_processes_print_what_one_process_prints(
    cli: Cli, many_threads: Path, monkeypatch: pytest.MonkeyPatch, in_parts_made: list[int], args: list[str]
) -> None:
    url = sqlite_url(many_threads)
    split = cli("list", url, *args)
    assert split.exit_code == 0, split.stderr
    monkeypatch.setattr(sqlite_driver, "worth_two_readers", lambda path: False)
    whole = cli("list", url, *args)
    assert whole.exit_code == 0, whole.stderr
    assert split.stdout == whole.stdout
    listed = whole.stdout.count("\n") - ("csv" in args)
    assert len(in_parts_made) == (1 if listed > 1 else 0)  # the two-process path ran wherever there was a split
    assert all(2 <= parts <= 16 for parts in in_parts_made)
    assert listed > (500 if "--thread" not in args else 2 if "user-*" in args else -1)


def test_table_and_json_are_made_in_one_process(cli: Cli, many_threads: Path, in_parts_made: list[int]) -> None:
    for fmt in ("table", "json"):
        assert cli("list", sqlite_url(many_threads), "-o", fmt).exit_code == 0
    assert in_parts_made == []


def test_a_store_opened_for_writing_is_never_split(many_threads: Path, in_parts_made: list[int]) -> None:
    from ckpt.backends import Selection, open_store

    with open_store(sqlite_url(many_threads), write=True) as store:
        assert store.thread_splits(Selection(), 8) == []
    with open_store(sqlite_url(many_threads)) as store:
        splits = store.thread_splits(Selection(), 8)
        assert 1 <= len(splits) <= 7 and splits == sorted(set(splits))


@pytest.mark.parametrize("readers", ["1", "2"])
@pytest.mark.parametrize("selection", [[], ["--thread", "user-*"]], ids=["all", "few"])
def test_the_real_process_prints_every_row_before_it_ends_without_teardown(
    cli: Cli, many_threads: Path, readers: str, selection: list[str]
) -> None:
    """`ckpt list` ends its process without the interpreter's teardown (console.skip_teardown):
    through a pipe, in one process or two, every row still comes out (a few rows are a tail that
    only a flush writes), and the exit code is 0."""
    import os
    import subprocess
    import sys

    url = sqlite_url(many_threads)
    env = {**os.environ, "CKPT_SQLITE_READERS": readers}
    env.pop("PYTHONUNBUFFERED", None)  # a user's default: stdout buffered, so only a flush writes the tail
    args = ["list", url, "-o", "jsonl", *selection]
    done = subprocess.run([sys.executable, "-m", "ckpt.cli", *args], capture_output=True, env=env, check=False)
    assert done.returncode == 0 and done.stderr == b""
    assert done.stdout.decode() == cli(*args).stdout
    assert done.stdout.count(b"\n") > (500 if not selection else 2)


def test_rows_read_before_a_failure_still_come_out() -> None:
    from ckpt.cli.list_ import _chunks

    def failing() -> Iterator[int]:
        yield from range(5)
        raise DataError("page 7 is corrupt")

    out: list[list[int]] = []
    with pytest.raises(DataError, match="page 7"):
        for chunk in _chunks(failing(), 3):
            out.append(chunk)
    assert out == [[0, 1, 2], [3, 4]]
