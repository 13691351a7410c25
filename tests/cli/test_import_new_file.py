"""``import`` into a SQLite file that does not exist yet writes as it reads (issue #24).

Elsewhere every file is read through once before anything is written. A new SQLite file needs no
such pass: a bad line fails the import inside the store's ``with`` block, which removes the file it
made. These tests prove the pass is skipped there and only there, that a failure leaves no file
behind (also when the bad line is in the second of two files), and that a file someone else made
in the meantime is checked first after all.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import ckpt
from ckpt.backends.core.errors import ExitCode, FormatError
from ckpt.backends.jsonl.store import JsonlStore
from ckpt.backends.sqlite.store import SqliteStore
from tests.conftest import Cli, file_hash, sqlite_url, table_rows


@pytest.fixture
def dump(cli: Cli, official_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "dump.jsonl"
    assert cli("export", sqlite_url(official_db), str(path)).exit_code == 0
    return path


def _count_validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    seen: list[str] = []
    real = JsonlStore.validate

    def counted(self: JsonlStore) -> int:
        seen.append(self.path)
        return real(self)

    monkeypatch.setattr(JsonlStore, "validate", counted)
    return seen


def test_a_new_file_is_written_without_the_check_pass(
    dump: Path, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    validated = _count_validations(monkeypatch)
    totals: list[int | None] = []
    target = tmp_path / "new.db"
    report = ckpt.import_(str(dump), sqlite_url(target), on_total=totals.append)
    assert validated == [] and totals == [29] and report.checkpoints_written == 29
    assert table_rows(target, "checkpoints") == table_rows(official_db, "checkpoints")
    again = ckpt.import_(str(dump), sqlite_url(target), on_total=totals.append)  # exists now: checked first
    assert validated == [str(dump)] and totals[-1] == 29 and again.checkpoints_written == 0


def test_a_compressed_file_has_no_total_up_front(dump: Path, tmp_path: Path) -> None:
    packed = tmp_path / "dump.jsonl.gz"
    packed.write_bytes(gzip.compress(dump.read_bytes()))
    totals: list[int | None] = []
    report = ckpt.import_(str(packed), sqlite_url(tmp_path / "new.db"), on_total=totals.append)
    assert totals == [None] and report.checkpoints_written == 29


def test_a_bad_line_in_the_second_file_leaves_no_file_at_all(cli: Cli, dump: Path, tmp_path: Path) -> None:
    lines = dump.read_text().splitlines()
    header = json.loads(lines[0])
    second = tmp_path / "second.jsonl"
    second.write_text("\n".join([json.dumps(header), lines[1], '{"thread_id": 1}']) + "\n")
    target = tmp_path / "new.db"
    result = cli("import", str(dump), str(second), sqlite_url(target))
    assert result.exit_code == ExitCode.DATA and result.stderr.startswith(f"error: {second}:3: ")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")) == []


def test_a_file_made_meanwhile_is_checked_before_anything_is_written(
    dump: Path, official_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``new_at`` said new, but the file exists by the time it is opened (another process made it):
    the files are read through first, and a bad line leaves that file as it was."""
    target = tmp_path / "theirs.db"
    target.write_bytes(official_db.read_bytes())
    before = file_hash(target)
    monkeypatch.setattr(SqliteStore, "new_at", classmethod(lambda cls, url: True))
    validated = _count_validations(monkeypatch)
    with dump.open("a") as handle:
        handle.write('{"thread_id": 1}\n')
    with pytest.raises(FormatError, match=r":31: "):
        ckpt.import_(str(dump), sqlite_url(target))
    assert validated == [str(dump)] and file_hash(target) == before
