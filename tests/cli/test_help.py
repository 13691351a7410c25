"""Help texts (issue #19): examples kept line by line, every command named, placeholders named,
and the examples and advice they give work."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from ckpt.backends.core.errors import ExitCode
from ckpt.cli.main import COMMANDS, EXIT_CODES_HELP, GROUPS, _command, app
from tests.conftest import Cli, sqlite_url

ROOT = Path(__file__).resolve().parents[2]


def _subcommands() -> list[str]:
    from importlib import import_module

    return [
        f"{group} {info.name}"
        for group, module in GROUPS.items()
        for info in import_module(f"ckpt.cli.{module}").app.registered_commands
    ]


SUBCOMMANDS = _subcommands()


def _callback(name: str) -> object:
    if " " not in name:
        return _command(name)
    from importlib import import_module

    group, sub = name.split()
    return next(i.callback for i in import_module(f"ckpt.cli.{GROUPS[group]}").app.registered_commands if i.name == sub)


def _examples(name: str) -> list[str]:
    doc = inspect.getdoc(_callback(name)) or ""
    block = doc[doc.index("Example:") :].split("\n\n")[0]
    return [line.strip() for line in block.splitlines()[1:]]


@pytest.mark.parametrize("name", sorted(COMMANDS) + SUBCOMMANDS)
def test_every_example_is_kept_on_its_own_line(cli: Cli, name: str) -> None:
    lines = [line.strip() for line in cli(*name.split(), "--help").stdout.splitlines()]
    examples = _examples(name)
    assert examples and all(example.startswith(f"ckpt {name} ") or "ckpt " in example for example in examples)
    at = lines.index("Example:")
    assert lines[at + 1 : at + 1 + len(examples)] == examples


@pytest.mark.parametrize("name", ["", *sorted(COMMANDS), *SUBCOMMANDS])
def test_placeholders_are_named(cli: Cli, name: str) -> None:
    text = cli(*name.split(), "--help").stdout
    assert not re.search(r"<(str|int|float|path|text|int range|integer|float range)>", text), text
    usage = text.splitlines()[0]
    arguments = usage.split("[OPTIONS]", 1)[1]  # `URL THREAD`, not typer's `{url} {thread}`
    assert "{" not in arguments and arguments == arguments.upper(), usage


def test_the_top_level_help_names_every_command_once_and_every_exit_code(cli: Cli) -> None:
    text = cli("--help").stdout
    description = text[: text.index("Options:")]
    assert all(re.search(rf"\b{name}\b", description) for name in COMMANDS)
    assert text.count("Exit codes:") == 1
    listed = {int(code) for code in re.findall(r"\b(\d+) [a-z]", EXIT_CODES_HELP)}
    assert listed == {int(code) for code in ExitCode}
    assert sorted(typer.main.get_command(app).commands) == sorted([*COMMANDS, *GROUPS])  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_the_replay_example_runs(official_db: Path) -> None:
    example = next(e for e in _examples("replay") if "| jq" in e)
    program = re.search(r"jq -c '(.*)'$", example)
    assert program is not None
    timeline = subprocess.run(
        [sys.executable, "-m", "ckpt.cli", "replay", sqlite_url(official_db), "thread-1"],
        capture_output=True,
        check=True,
    ).stdout
    done = subprocess.run(["jq", "-c", program[1]], input=timeline, capture_output=True, check=True)
    events = done.stdout.decode().splitlines()
    assert len(events) == len(timeline.splitlines()) - 1  # every event, the header skipped
    assert events[1].startswith('{"step":0,"ran":[')


def test_size_says_what_to_do_about_growing_threads(cli: Cli, official_db: Path) -> None:
    result = cli("size", sqlite_url(official_db))
    assert "grew at every one of more than" in result.stderr
    hint = result.stderr.splitlines()[-1]
    assert "DeltaChannel" in hint and "ckpt prune --keep-last" in hint and "docs/cli.md#growing-threads" in hint
    assert "\n### Growing threads\n" in (ROOT / "docs" / "cli.md").read_text()


def test_docs_say_what_list_shows_and_how_to_install_completions() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text()
    plain_list = re.search(r"^ckpt list sqlite:///agent\.db +# (.*)$", docs, re.M)
    assert plain_list is not None and "size" not in plain_list[1]  # sizes need --sizes
    readme = (ROOT / "README.md").read_text()
    for file in ("ckpt.bash", "_ckpt", "ckpt.fish"):
        assert re.search(rf"^cp completions/{re.escape(file)} ~/\S+", readme, re.M), file
