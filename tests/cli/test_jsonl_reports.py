"""Every command's report follows one rule: ``-o jsonl`` is one compact line, ``-o json`` one indented document."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli, sqlite_url


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_migrate_export_and_import_reports(cli: Cli, official_db: Path, tmp_path: Path, fmt: str) -> None:
    source = sqlite_url(official_db)
    runs = [
        ("migrate", source, sqlite_url(tmp_path / "m.db")),
        ("migrate", source, sqlite_url(tmp_path / "m2.db"), "--dry-run"),
        ("export", source, str(tmp_path / "e.jsonl")),
        ("import", str(tmp_path / "e.jsonl"), sqlite_url(tmp_path / "i.db")),
    ]
    for args in runs:
        result = cli(*args, "-o", fmt)
        assert result.exit_code == 0, result.output
        lines = result.stdout.strip().splitlines()
        assert (len(lines) == 1) == (fmt == "jsonl"), (args, result.stdout)
        assert isinstance(json.loads(result.stdout), dict)
