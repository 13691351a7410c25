"""The documented surface matches the code: help examples, exit codes, the export schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import typer

from ckpt.backends.core.errors import ExitCode
from ckpt.cli.main import app
from tests.conftest import Cli, sqlite_url

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "formats" / "schemas" / "jsonl-v1.schema.json").read_text())
COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


SUBCOMMANDS = [
    f"{name} {sub}"
    for name, group in typer.main.get_command(app).commands.items()  # type: ignore[attr-defined]
    for sub in getattr(group, "commands", {})
]


@pytest.mark.parametrize("name", COMMANDS + SUBCOMMANDS)
def test_every_command_has_help_with_an_example(cli: Cli, name: str) -> None:
    result = cli(*name.split(), "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "ckpt " + name in result.stdout


def test_exit_code_table_matches_the_enum() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    documented = {int(code): name for code, name in re.findall(r"^\| (\d+) \| (\w+) \|", text, re.M)}
    assert documented == {int(code): code.name for code in ExitCode}


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    assert blocks[1].strip() == "bash scripts/test.sh"
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "sqlite:///examples/agent.db" in blocks[0] and (ROOT / "examples" / "agent.db").exists()


def _validate_file(path: Path) -> int:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, start=1):
        errors = sorted(validator.iter_errors(json.loads(line)), key=lambda e: e.path)
        assert not errors, f"line {number}: {errors[0].message[:300]}"
    return len(lines)


def test_schema_is_valid_and_every_exported_line_validates(cli: Cli, official_db: Path, tmp_path: Path) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    plain, decoded = tmp_path / "plain.jsonl", tmp_path / "decoded.jsonl"
    cli("export", sqlite_url(official_db), str(plain))
    cli("export", sqlite_url(official_db), str(decoded), "--decode")
    assert _validate_file(plain) == _validate_file(decoded) == 30
    first = json.loads(decoded.read_text().splitlines()[1])
    assert first["decoded"]["checkpoint"]["v"] == 4


def test_schema_rejects_what_import_rejects() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    assert not validator.is_valid({"thread_id": "t"})
    header = {"format": "ckpt/jsonl", "version": 2, "created_at": "x", "source": None, "decoded": False}
    assert not validator.is_valid(header)
