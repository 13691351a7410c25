"""Shell completion scripts in completions/ are what the CLI generates today."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("shell", "file"), [("bash", "ckpt.bash"), ("zsh", "_ckpt"), ("fish", "ckpt.fish")])
def test_completion_script_is_current(shell: str, file: str) -> None:
    env = {**os.environ, "_CKPT_COMPLETE": f"source_{shell}"}
    generated = subprocess.run([sys.executable, "-m", "ckpt.cli"], env=env, capture_output=True, text=True, check=True)
    # scripts/gen_completions.sh drops the leading blank lines typer's templates start with
    assert generated.stdout.lstrip("\n") == (ROOT / "completions" / file).read_text(), "run scripts/gen_completions.sh"


def test_zsh_completion_file_starts_with_compdef() -> None:
    # compinit autoloads a file from $fpath only when its first line is the #compdef tag
    assert (ROOT / "completions" / "_ckpt").read_text().splitlines()[0] == "#compdef ckpt"


def test_completing_a_command_name_imports_no_driver() -> None:
    env = {**os.environ, "_CKPT_COMPLETE": "complete_bash", "COMP_WORDS": "ckpt ex", "COMP_CWORD": "1"}
    drivers = ("sqlite3", "psycopg", "redis", "pymongo", "couchbase", "ckpt.backends.sqlite.store")
    probe = (
        "import sys, runpy; sys.argv = ['ckpt']\n"
        "try:\n    runpy.run_module('ckpt.cli', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in sys.modules if m in {drivers!r}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True).stdout
    assert "export" in out
    assert "LOADED []" in out
