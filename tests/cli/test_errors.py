"""The one error boundary (issue #19): every failure is one line on stderr with a documented exit code.

Brackets go through every path as typed (no rich markup), usage errors are one line (exit 2),
an unexpected exception is one line and exit 70 with its traceback behind --traceback or
CKPT_DEBUG, and a declined confirmation deletes nothing and exits 8.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ckpt.backends.core.errors import BackendUnavailableError, ExitCode
from ckpt.cli.main import build_app
from tests.conftest import Cli, file_hash, sqlite_url

BRACKETS = ("[bold]", "[/x]", "[/]", "[red]x[/red]", ":smile:")


def _one_error_line(result: Any) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    return str(lines[0])


def _ckpt(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed entry point (``main``), as a shell runs it."""
    probe = "import sys; from ckpt.cli.main import main; sys.argv = ['ckpt', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", probe, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


# -- item 1: brackets through every error path ------------------------------------------------------------


@pytest.mark.parametrize("text", BRACKETS)
def test_a_thread_id_with_brackets_is_named_as_typed(cli: Cli, official_db: Path, text: str) -> None:
    thread = f"thread-{text}9"
    for verb in ("show", "replay", "diff"):
        result = cli(verb, sqlite_url(official_db), thread)
        assert result.exit_code == ExitCode.NOT_FOUND, (verb, result.stderr)
        assert thread in _one_error_line(result)


@pytest.mark.parametrize("text", BRACKETS)
def test_a_path_with_brackets_is_named_as_typed(cli: Cli, tmp_path: Path, text: str) -> None:
    path = tmp_path / f"no{text}.db"
    result = cli("list", str(path))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert f"no{text}.db" in _one_error_line(result)


def test_the_installed_command_reports_a_closing_tag_in_one_line(official_db: Path) -> None:
    done = _ckpt("show", str(official_db), "thread-[/x]")
    assert done.returncode == ExitCode.NOT_FOUND
    assert done.stderr == "error: no thread 'thread-[/x]' in this store\n"


def test_a_missing_extra_names_the_whole_install_line(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` fails as without the extra
    monkeypatch.setitem(sys.modules, "ckpt.backends.redis.store", None)  # also when an earlier test loaded it
    result = cli("list", "redis://127.0.0.1:1/0")
    assert result.exit_code == ExitCode.UNAVAILABLE
    assert "pip install 'langgraph-ckpt[redis]'" in _one_error_line(result)


def test_check_without_budgets_names_both_sections(
    cli: Cli, official_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(official_db.parent)
    result = cli("check", sqlite_url(official_db))
    assert result.exit_code == ExitCode.USAGE
    line = _one_error_line(result)
    assert "[tool.ckpt.budget]" in line and "[budget]" in line


@pytest.mark.parametrize("text", BRACKETS)
def test_usage_errors_keep_brackets(cli: Cli, text: str) -> None:
    result = cli("prune", f"--bogus{text}")
    assert result.exit_code == ExitCode.USAGE
    assert f"--bogus{text}" in _one_error_line(result)


@pytest.mark.parametrize("text", BRACKETS)
def test_library_errors_internal_errors_warnings_and_info_keep_brackets(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    for raised, code in (
        (BackendUnavailableError(f"down {text} pip install 'langgraph-ckpt[redis]'"), ExitCode.UNAVAILABLE),
        (RuntimeError(f"boom {text}"), ExitCode.INTERNAL),
    ):
        result = _run_raising(monkeypatch, raised)
        assert result.exit_code == code
        assert str(raised) in _one_error_line(result)

    from ckpt.cli.console import error, info, stderr, warn

    with stderr().capture() as captured:
        warn(f"w {text}")
        info(f"i {text}")
        error(f"e {text} postgresql://u:secret@h/db")
    assert captured.get().splitlines() == [
        f"warning: w {text}",
        f"i {text}",
        f"error: e {text} postgresql://u:***@h/db",
    ]


@pytest.mark.parametrize("text", BRACKETS)
def test_table_cells_and_titles_from_user_data_keep_brackets(text: str) -> None:
    from rich.table import Table

    from ckpt.cli.console import stdout

    table = Table("thread", title=f"store {text}")
    table.add_row(f"user{text}1")  # a str cell, as commands build them
    with stdout().capture() as captured:
        stdout().print(table)
    out = captured.get()
    assert f"store {text}" in out and f"user{text}1" in out


# -- item 2: anything else is a bug: one line, exit 70, the traceback on request ------------------------------


def _run_raising(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, *args: str, env: dict[str, str] | None = None
) -> Any:
    def boom(*_: Any, **__: Any) -> Any:
        raise exc

    monkeypatch.setattr("ckpt.backends.open_store", boom)
    return CliRunner().invoke(build_app(), [*args, "show", "sqlite:///x.db", "t"], env=env, catch_exceptions=False)


def test_an_unexpected_exception_is_one_line_and_exit_70(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_raising(monkeypatch, KeyError("gone"))
    assert result.exit_code == ExitCode.INTERNAL and int(ExitCode.INTERNAL) == 70
    line = _one_error_line(result)
    assert line.startswith("error: internal error: KeyError: 'gone'") and "--traceback" in line


@pytest.mark.parametrize(("args", "env"), [(("--traceback",), None), ((), {"CKPT_DEBUG": "1"})])
def test_traceback_on_request_then_the_same_line_and_code(
    monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], env: dict[str, str] | None
) -> None:
    result = _run_raising(monkeypatch, KeyError("gone"), *args, env=env)
    assert result.exit_code == ExitCode.INTERNAL
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "raise exc" in result.stderr and result.stderr.splitlines()[-1].startswith("error: internal error: KeyError")
    known = _run_raising(monkeypatch, BackendUnavailableError("down"), *args, env=env)
    assert known.exit_code == ExitCode.UNAVAILABLE and known.stderr.splitlines()[-1] == "error: down"


def test_an_os_error_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run_raising(monkeypatch, PermissionError(13, "Permission denied", "/x/[/x]out.jsonl"))
    assert result.exit_code == ExitCode.ERROR
    assert _one_error_line(result) == "error: [Errno 13] Permission denied: '/x/[/x]out.jsonl'"


def test_the_installed_command_maps_a_bug_to_70() -> None:
    probe = (
        "import sys, ckpt.backends\n"
        "def boom(*a, **k): raise ZeroDivisionError('division by zero')\n"
        "ckpt.backends.open_store = boom\n"
        "from ckpt.cli.main import main; sys.argv = ['ckpt', 'list', 'x.db']; main()"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 70
    assert done.stderr.startswith("error: internal error: ZeroDivisionError: division by zero")
    assert len(done.stderr.splitlines()) == 1


# -- item 21: usage errors are one line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["prune", "--bogus-flag"], "error: no such option: --bogus-flag (try 'ckpt prune --help')"),
        (["--bogus-flag"], "error: no such option: --bogus-flag (try 'ckpt --help')"),
        (
            ["size", "x.db", "--top", "0"],
            "error: invalid value for '--top': 0 is not in the range x>=1 (try 'ckpt size --help')",
        ),
        (["show"], "error: missing argument 'URL' (try 'ckpt show --help')"),
        (["lst"], "error: no such command 'lst'. Did you mean 'list'? (try 'ckpt --help')"),
    ],
)
def test_usage_errors_are_one_line_exit_2(args: list[str], expected: str) -> None:
    done = _ckpt(*args)
    assert (done.returncode, done.stdout, done.stderr) == (ExitCode.USAGE, "", expected + "\n")


def test_bare_ckpt_still_prints_the_help() -> None:
    done = _ckpt()
    assert done.returncode == ExitCode.USAGE and "Usage: ckpt" in done.stderr + done.stdout


# -- item 8: a declined confirmation --------------------------------------------------------------------------


def test_answering_n_on_a_terminal_deletes_nothing_and_exits_8(db_copy: Path) -> None:
    before = file_hash(db_copy)
    master, slave = pty.openpty()  # stdin is a terminal, as for a person at the prompt
    try:
        probe = "import sys; from ckpt.cli.main import main; sys.argv = ['ckpt', *sys.argv[1:]]; main()"
        args = ["prune", sqlite_url(db_copy), "--keep-last", "1", "--min-idle", "0s"]
        child = subprocess.Popen(
            [sys.executable, "-c", probe, *args], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        os.write(master, b"n\n")  # typed ahead: the terminal holds it until the prompt reads it
        out, err = child.communicate(timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert child.returncode == ExitCode.ABORTED and int(ExitCode.ABORTED) == 8, err
    question, _, answer = err.partition("[y/N]:")  # the terminal, not stderr, echoes the typed "n"
    assert question.startswith("delete ") and question.rstrip().endswith("?")  # the plan, asked
    assert answer.strip() == "error: nothing deleted: the prune was not confirmed"
    assert out.strip() == ""
    assert file_hash(db_copy) == before


@pytest.mark.parametrize(("verb", "said"), [("prune", "nothing deleted"), ("compact", "nothing changed")])
@pytest.mark.parametrize("answer", ["n", "ctrl-c"])
def test_declining_in_process_exits_8(
    cli: Cli, db_copy: Path, monkeypatch: pytest.MonkeyPatch, verb: str, said: str, answer: str
) -> None:
    def confirm(question: str) -> bool:  # the terminal's side (CliRunner's stdin is no terminal)
        assert question.startswith("delete" if verb == "prune" else "compact")
        if answer == "ctrl-c":
            raise typer.Abort()  # what typer.confirm raises on Ctrl-C or end of input
        return False

    monkeypatch.setattr("ckpt.cli.console.confirm", confirm)
    before = file_hash(db_copy)
    extra = ["--keep-last", "1"] if verb == "prune" else []
    result = cli(verb, sqlite_url(db_copy), *extra, "--min-idle", "0s")
    assert result.exit_code == ExitCode.ABORTED
    line = _one_error_line(result)
    assert said in line if answer == "n" else "nothing was changed" in line
    assert file_hash(db_copy) == before


# -- item 5: one JSON rule ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["doctor", "{url}"],
        ["compact", "{url}", "--min-idle", "0s", "--dry-run"],
        ["prune", "{url}", "--keep-last", "2", "--min-idle", "0s", "--dry-run"],
    ],
)
def test_jsonl_is_one_compact_line_and_json_one_pretty_document(cli: Cli, db_copy: Path, args: list[str]) -> None:
    args = [a.replace("{url}", sqlite_url(db_copy)) for a in args]
    piped = cli(*args)  # CliRunner's stdout is a pipe: the default is jsonl
    explicit = cli(*args, "-o", "jsonl")
    pretty = cli(*args, "-o", "json")
    assert piped.stdout == explicit.stdout
    assert len(piped.stdout.splitlines()) == 1
    assert len(pretty.stdout.splitlines()) > 1
    assert json.loads(piped.stdout) == json.loads(pretty.stdout)
    if args[0] == "prune":
        assert cli(*args, "--report", "json").stdout == pretty.stdout  # the documented alias of -o json
